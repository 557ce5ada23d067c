#!/usr/bin/env Rscript
# bench/reductions.R -- one thread, N = M = 3e4, x, y uniform in [0,1]^3, b: N x 6 |normal|:
# the time of each reduction kind on the same distances (best of 2 calls).
# Usage: Rscript bench/reductions.R [--append]   (R_LIBS selects the kernops build)
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(kernops))
kernops_threads(1)
set.seed(1); N <- 30000
x <- matrix(runif(3 * N), N, 3); y <- matrix(runif(3 * N), N, 3); b <- abs(matrix(rnorm(6 * N), N, 6))
forms <- c("Sum_Reduction(Exp(-s*SqDist(x,y))*b,0)", "Sum_Reduction(Exp(-s*SqDist(x,y)),0)",
           "LogSumExp_Reduction(-s*SqDist(x,y),0)", "SumSoftMaxWeight_Reduction(-s*SqDist(x,y),0,b)",
           "Sum_Reduction(LaplaceKernel(s,x,y,b),0)", "Sum_Reduction(Matern52Kernel(s,x,y,b),0)",
           "Min_ArgMin_Reduction(SqDist(x,y),0)", "ArgKMin_Reduction(SqDist(x,y),10,0)",
           "Sum_Reduction(Cos(s*SqDist(x,y))*b,0)", "Sum_Reduction(Exp(-Square(Sin(s*Sqrt(SqDist(x,y)))))*b,0)")
load_start <- loadavg()
rows <- lapply(forms, function(f) {
  op <- kernel_op(f, c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"))
  t <- min(replicate(2, system.time(op(x, y, b, 10))[["elapsed"]]))
  data.frame(formula = paste0("`", f, "`"), `time (s)` = t, `pairs/s` = N * N / t, check.names = FALSE)
})
report("Reductions, one thread", bench_command("bench/reductions.R", argv), do.call(rbind, rows),
       notes = "- N = M = 3e4, s = 10, best of 2 calls", append = "--append" %in% argv, load_start = load_start)

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
rows <- lapply(forms, function(f) {
  op <- kernel_op(f, c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"))
  t <- min(replicate(2, system.time(op(x, y, b, 10))[["elapsed"]]))
  data.frame(formula = paste0("`", f, "`"), `time (s)` = round(t, 3), `pairs/s` = signif(N * N / t, 3),
             check.names = FALSE)
})
tab <- do.call(rbind, rows)
lib <- dirname(find.package("kernops"))
section <- c(sprintf("## Reductions, one thread -- %s UTC", format(Sys.time(), "%Y-%m-%d %H:%M:%S", tz = "UTC")), "",
             sprintf("- kernops from %s, git of the working tree %s, load average %s", lib,
                     system("git rev-parse --short HEAD", intern = TRUE), loadavg()),
             sprintf("- command: `%sRscript bench/reductions.R%s`", if (nzchar(Sys.getenv("R_LIBS"))) paste0("R_LIBS=", Sys.getenv("R_LIBS"), " ") else "",
                     if ("--append" %in% argv) " --append" else ""), "",
             "| formula | time (s) | pairs/s |", "|---|---|---|",
             sprintf("| %s | %s | %s |", tab$formula, tab$`time (s)`, tab$`pairs/s`), "")
cat(section, sep = "\n")
if ("--append" %in% argv) cat(section, sep = "\n", file = "bench/RESULTS.md", append = TRUE)

#!/usr/bin/env Rscript
# bench/ops.R -- one thread, N = M = 1e4, x, y uniform in [0,1]^3, b: N x 1 normal: the time of
# Sum_Reduction(OP(...) * b, 0) for each elementwise operation of the formula language, on
# the squared distance (best of 3 calls). "identity" is the distance alone: the difference
# to it is the operation's own cost.
# Usage: Rscript bench/ops.R [--append]   (R_LIBS selects the kernops build)
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
kernops_threads(1)
set.seed(1); N <- 10000
x <- matrix(runif(3 * N), N, 3); y <- matrix(runif(3 * N), N, 3); b <- matrix(rnorm(N), N, 1)
d <- "SqDist(x,y)"
ops <- c(identity = d, Exp = sprintf("Exp(-%s)", d), Log = sprintf("Log(%s)", d), Sqrt = sprintf("Sqrt(%s)", d),
         Rsqrt = sprintf("Rsqrt(%s)", d), Inv = sprintf("Inv(%s)", d), Abs = sprintf("Abs(%s-1)", d),
         Sign = sprintf("Sign(%s-1)", d), Step = sprintf("Step(%s-1)", d), ReLU = sprintf("ReLU(%s-1)", d),
         Square = sprintf("Square(%s)", d), Sin = sprintf("Sin(%s)", d), Cos = sprintf("Cos(%s)", d),
         `Pow 3` = sprintf("Pow(%s,3)", d), `Pow -2` = sprintf("Pow(%s,-2)", d), `Powf 0.3` = sprintf("Powf(%s,0.3)", d),
         Min = sprintf("Min(%s,0.5)", d), Divide = sprintf("%s/(1+%s)", d, d),
         IfElse = sprintf("IfElse(%s-1,%s,1)", d, d), Clamp = sprintf("Clamp(%s,0.2,0.8)", d))
load_start <- loadavg()
rows <- lapply(names(ops), function(k) {
  times <- vapply(c("float64", "float32"), function(dt) {
    op <- kernel_op(sprintf("Sum_Reduction(%s*b,0)", ops[[k]]), c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"), dtype = dt)
    min(replicate(3, system.time(op(x, y, b))[["elapsed"]]))
  }, numeric(1))
  data.frame(op = k, F = paste0("`", ops[[k]], "`"), `float64 (s)` = times[[1]], `pairs/s` = N * N / times[[1]],
             `float32 (s)` = times[[2]], `pairs/s` = N * N / times[[2]], check.names = FALSE)
})
report("Elementwise operations, one thread", bench_command("bench/ops.R", argv), do.call(rbind, rows),
       notes = "- Sum_Reduction(F * b, 0), N = M = 1e4, best of 3 calls; pairs/s = N * M / time",
       append = "--append" %in% argv, load_start = load_start)

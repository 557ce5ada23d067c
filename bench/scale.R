#!/usr/bin/env Rscript
# bench/scale.R -- speed must not depend on the scale of the kernel values (issue 17).
# Times, in one process and alternated, the same reductions at an ordinary and at an extreme
# scale, where most kernel values fall below the smallest normal number (float64 2.2e-308,
# float32 1.2e-38): on Intel CPUs each subnormal result costs a microcode assist unless the
# engine flushes them to zero (Note [Subnormals] in src/core/fp_env.h).
#   W1 float32   Sum_Reduction(Exp(-s*SqDist(x,y))*b), s = 150 vs 8
#   W1 float64   the same, s = 4000 vs 8
#   LogSumExp    LogSumExp_Reduction(-s*SqDist(x,y)), s = 4000 vs 8, float64 and float32
#   W2           H and both gradients (kernel_value_and_grad), float32 against float64
# x, y: N x 3 uniform on [0, 1], b: N x 6 normal; N = M = 1e4 by default.
# Usage: Rscript bench/scale.R [--n 1e4] [--runs 5] [--append]
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))

argv <- commandArgs(trailingOnly = TRUE)
N <- as.numeric(bench_arg(argv, "--n", "1e4"))
runs <- as.integer(bench_arg(argv, "--runs", "5"))
load_start <- loadavg()

set.seed(1)
x <- matrix(runif(3 * N), N, 3)
y <- matrix(runif(3 * N), N, 3)
b <- matrix(rnorm(6 * N), N, 6)
decls <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)")
w1 <- function(dtype) kernel_op("Sum_Reduction(Exp(-s*SqDist(x,y))*b, 0)", decls, dtype = dtype)
lse <- function(dtype) kernel_op("LogSumExp_Reduction(-s*SqDist(x,y), 0)", decls[c(1, 2, 4)], dtype = dtype)

# Median times of f(ordinary) and f(extreme), alternated so that a change of clock or load
# hits both alike.
ratio_row <- function(name, f, ordinary, extreme) {
  f(ordinary); f(extreme)
  t <- matrix(NA_real_, runs, 2)
  for (r in seq_len(runs)) {
    t0 <- now(); f(ordinary); t[r, 1] <- now() - t0
    t0 <- now(); f(extreme); t[r, 2] <- now() - t0
  }
  med <- apply(t, 2, stats::median)
  data.frame(workload = name, ordinary = sprintf("s = %g", ordinary), extreme = sprintf("s = %g", extreme),
             t_ordinary_s = med[1], t_extreme_s = med[2], ratio = med[2] / med[1])
}

rows <- list()
op <- w1("float32")
rows[[1]] <- ratio_row("W1 float32", function(s) op(x, y, b, s), 8, 150)
op64 <- w1("float64")
rows[[2]] <- ratio_row("W1 float64", function(s) op64(x, y, b, s), 8, 4000)
l64 <- lse("float64")
rows[[3]] <- ratio_row("LogSumExp float64", function(s) l64(x, y, s), 8, 4000)
l32 <- lse("float32")
rows[[4]] <- ratio_row("LogSumExp float32", function(s) l32(x, y, s), 8, 4000)

# W2: the seed's Hamiltonian with both gradients in one pass (s = 0.5 as in bench/w2), and H
# alone at s = 0.5 and s = 3; float32 against float64, alternated.
set.seed(7)
q <- matrix(rnorm(3 * N), N, 3)
p <- matrix(rnorm(3 * N), N, 3)
w2 <- function(dtype) {
  kernel_op("Sum_Reduction(Exp(-SqDist(qi,qj)/(s*s)) * (pi|pj), 0)",
            c("qi = Vi(3)", "qj = Vj(3)", "pi = Vi(3)", "pj = Vj(3)", "s = Pm(1)"), dtype = dtype)
}
H64 <- w2("float64")
H32 <- w2("float32")
dtype_row <- function(name, f64, f32) {
  f64(); f32()
  t <- matrix(NA_real_, runs, 2)
  for (r in seq_len(runs)) {
    t0 <- now(); f64(); t[r, 1] <- now() - t0
    t0 <- now(); f32(); t[r, 2] <- now() - t0
  }
  med <- apply(t, 2, stats::median)
  data.frame(workload = name, ordinary = "float64", extreme = "float32",
             t_ordinary_s = med[1], t_extreme_s = med[2], ratio = med[2] / med[1])
}
both <- function(H) function() kernel_value_and_grad(H, q, q, p, p, 0.5, wrt = c("qi", "pi"))
rows[[5]] <- dtype_row("W2 H + both gradients, s = 0.5", both(H64), both(H32))
rows[[6]] <- dtype_row("W2 H alone, s = 0.5", function() H64(q, q, p, p, 0.5), function() H32(q, q, p, p, 0.5))
rows[[7]] <- dtype_row("W2 H alone, s = 3", function() H64(q, q, p, p, 3), function() H32(q, q, p, p, 3))

df <- do.call(rbind, rows)
report(sprintf("Scale independence (issue 17), N = M = %g", N), bench_command("bench/scale.R", argv), df,
       notes = c(sprintf("Median of %d alternated runs after one warm-up each, 2 threads.", runs),
                 "Rows 1-4: ratio = time at the extreme scale / time at the ordinary scale (target <= 1.2).",
                 "Rows 5-7: ratio = float32 time / float64 time (target for W2: <= 1/1.6 = 0.625)."),
       append = "--append" %in% argv, load_start = load_start)

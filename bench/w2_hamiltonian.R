#!/usr/bin/env Rscript
# bench/w2_hamiltonian.R -- workload W2 (hamiltonian-grad):
#   H(q, p) = 1/2 sum_ij exp(-|q_i - q_j|^2 / s^2) <p_i, p_j>, s = 0.5, q, p: N x 3 normal;
#   H, dH/dq and dH/dp for N in 1e3, 1e4, 1e5, float64 and float32.
# Usage: Rscript bench/w2_hamiltonian.R [--sizes 1e3,1e4,1e5] [--append]
# H is one Sum reduction; the two gradients are ONE reduction (kernel_grad with both
# names on the same side: Concat of the two Grad formulas, sharing the kernel value).
# By symmetry of H, dH/dq = gradient w.r.t. the i-role of q, and likewise for p.
# "one pass": kernel_value_and_grad(), which computes H and both gradients in ONE reduction
# (Concat(F, Grad...)), so the kernel is evaluated once for all three.
# Peak RSS: VmHWM of a fresh Rscript doing one H + gradient call at that size.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))

S <- 0.5
setup <- function(N, dtype) {
  set.seed(7)
  q <- matrix(rnorm(3 * N), N, 3); p <- matrix(rnorm(3 * N), N, 3)
  H <- kernel_op("Sum_Reduction(Exp(-SqDist(qi,qj)/(s*s)) * (pi|pj), 0)",
                 c("qi = Vi(3)", "qj = Vj(3)", "pi = Vi(3)", "pj = Vj(3)", "s = Pm(1)"), dtype = dtype)
  G <- kernel_grad(H, c("qi", "pi"))
  ones <- matrix(1, N, 1)
  list(q = q, p = p, H = function() sum(H(q, q, p, p, S)) / 2,
       grad = function() G(q, q, p, p, S, ones),
       both = function() kernel_value_and_grad(H, q, q, p, p, S, wrt = c("qi", "pi")))
}

argv <- commandArgs(trailingOnly = TRUE)
if (length(argv) && argv[1] == "--child") {
  w <- setup(as.numeric(argv[2]), argv[3])
  before <- proc_status_kb("VmHWM")
  invisible(w$H()); invisible(w$grad())
  cat(sprintf("W2CHILD before_kb=%.0f peak_kb=%.0f\n", before, proc_status_kb("VmHWM")))
  quit(save = "no")
}

script <- normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
sizes <- as.numeric(strsplit(bench_arg(argv, "--sizes", "1e3,1e4,1e5"), ",")[[1]])
load_start <- loadavg()
rows <- list()
for (N in sizes) for (dtype in c("float64", "float32")) {
  w <- setup(N, dtype)
  runs <- if (N >= 1e5) 1L else 3L
  t_h <- median_time(w$H, runs, warmup = N < 1e5)
  t_g <- median_time(w$grad, runs, warmup = N < 1e5)
  t_b <- median_time(w$both, runs, warmup = N < 1e5)
  t_dense <- NA; err <- NA
  if (N <= 1e4 && dtype == "float64") {
    dense <- function() {
      sq <- rowSums(w$q^2)
      K <- exp(-pmax(outer(sq, sq, "+") - 2 * tcrossprod(w$q), 0) / S^2)
      A <- K * tcrossprod(w$p)
      list(H = sum(A) / 2, dq = -2 / S^2 * (rowSums(A) * w$q - A %*% w$q), dp = K %*% w$p)
    }
    t_dense <- median_time(dense, 1L, warmup = FALSE)
    d <- dense(); g <- w$grad()
    err <- max(abs(g$qi - d$dq)) / max(abs(d$dq))
    err <- max(err, max(abs(g$pi - d$dp)) / max(abs(d$dp)), abs(w$H() - d$H) / abs(d$H))
    b <- w$both()
    err <- max(err, max(abs(b$gradient$qi - d$dq)) / max(abs(d$dq)), max(abs(b$gradient$pi - d$dp)) / max(abs(d$dp)),
               abs(b$value / 2 - d$H) / abs(d$H))
  }
  mem <- if (N >= 1e4) run_child(script, "W2CHILD", c(format(N, scientific = FALSE), dtype)) else NULL
  rows[[length(rows) + 1]] <- data.frame(
    `N` = format(N), dtype = dtype, `H (s)` = t_h, `dH/dq + dH/dp (s)` = t_g, `grad / H` = t_g / t_h,
    `H + grads (s)` = t_h + t_g, `H + grads, one pass (s)` = t_b, `dense R H + grads (s)` = t_dense, `max rel err vs dense` = err,
    `peak RSS (MB)` = if (is.null(mem)) NA else mem$peak_kb / 1024, check.names = FALSE)
  cat(".")
}
cat("\n")
report("W2 hamiltonian-grad", bench_command("bench/w2_hamiltonian.R", argv),
       do.call(rbind, rows), notes = "- runs: median of 3 after a warm-up (one run, no warm-up, at N = 1e5)",
       append = "--append" %in% argv, load_start = load_start)

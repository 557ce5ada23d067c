#!/usr/bin/env Rscript
# bench/solve_precond.R -- kernel_solve() (issue 20): (1) CG iterations and time with and
# without the Nystrom preconditioner on W6-like data (n points uniform in [0,1]^2, Gaussian
# kernel, sigma 0.25, the right-hand side sin(4 x1) cos(3 x2) + noise), for several lambda;
# (2) the m x m dense algebra of the preconditioner in Eigen (src/r_linalg.cpp) against base
# R's chol()/backsolve()/crossprod() (the reference BLAS/LAPACK on these machines).
# Usage: Rscript bench/solve_precond.R [--n 1e4] [--max_iter 3000] [--append]
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
n <- as.numeric(bench_arg(argv, "--n", "1e4"))
max_iter <- as.integer(bench_arg(argv, "--max_iter", "3000"))
load_start <- loadavg()
set.seed(1)
x <- matrix(runif(2 * n), n, 2)
b <- sin(4 * x[, 1]) * cos(3 * x[, 2]) + rnorm(n, sd = 0.05)
rows <- list()
for (lambda in c(1e-2, 1e-4, 1e-6)) for (pc in c("nystrom", "none")) {
  t0 <- now()
  s <- withCallingHandlers(kernel_solve("gaussian", x, b, lambda = lambda, sigma = 0.25, tol = 1e-6,
                                        precond = pc, max_iter = max_iter),
                           kernops_warning_convergence = function(w) invokeRestart("muffleWarning"))
  rows[[length(rows) + 1]] <- data.frame(n = n, lambda = lambda, precond = if (pc == "nystrom") "Nystrom m = 300" else "none",
                                         iterations = s$iterations, converged = s$converged,
                                         `relative residual` = max(s$residual), `time (s)` = now() - t0, check.names = FALSE)
}
report("kernel_solve: CG iterations with and without the Nystrom preconditioner", bench_command("bench/solve_precond.R", argv),
       do.call(rbind, rows),
       notes = c("- Gaussian kernel sigma = 0.25 (the statistics convention), tol = 1e-6 on the relative residual, float64, one call each (time includes the preconditioner's set-up)",
                 sprintf("- plain CG is stopped at max_iter = %d", max_iter)),
       append = "--append" %in% argv, load_start = load_start)

# (2) Eigen against base R at the sizes of the preconditioner
load_start <- loadavg()
rows <- list()
for (m in c(300L, 1000L, 2000L)) {
  C <- matrix(runif(2 * m), m, 2)
  A <- exp(-as.matrix(dist(C))^2 / (2 * 0.25^2)) + diag(1e-6, m)
  Kb <- matrix(runif(4000 * m), 4000, m)
  B <- matrix(rnorm(m * 9), m, 9)
  L <- kernops:::cpp_chol_lower(A)$L
  U <- chol(A)
  S <- matrix(0, m, m)
  runs <- if (m >= 2000) 1L else 3L
  rows[[length(rows) + 1]] <- data.frame(m = m,
    `Cholesky: Eigen (s)` = median_time(function() kernops:::cpp_chol_lower(A), runs),
    `Cholesky: R chol() (s)` = median_time(function() chol(A), runs),
    `2 triangular solves, 9 RHS: Eigen (s)` = median_time(function() kernops:::cpp_chol_solve(L, B), runs),
    `2 triangular solves, 9 RHS: R backsolve() (s)` = median_time(function() backsolve(U, backsolve(U, B, transpose = TRUE)), runs),
    `Nystrom block (4000 rows): Eigen (s)` = median_time(function() kernops:::cpp_nystrom_accumulate(S, Kb, L), runs),
    `Nystrom block (4000 rows): R (s)` = median_time(function() { Q <- t(backsolve(U, t(Kb), transpose = TRUE)); S + crossprod(Q) }, runs),
    check.names = FALSE)
}
report("kernel_solve: m x m algebra of the preconditioner, Eigen vs base R", bench_command("bench/solve_precond.R", argv),
       do.call(rbind, rows),
       notes = c("- median of 3 after a warm-up (1 at m = 2000); base R here calls the reference BLAS/LAPACK (single-threaded, unblocked); Eigen single-threaded, -O2 with R's flags",
                 "- Nystrom block: Q = Kb L^{-T} and S + Q'Q for a 4000 x m block of K(x, centres), what nystrom_setup() does per block of rows"),
       append = "--append" %in% argv, load_start = load_start)

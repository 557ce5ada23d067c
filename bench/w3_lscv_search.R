#!/usr/bin/env Rscript
# bench/w3_lscv_search.R -- the exact LSCV selector of W3 (bench/w3_kde.R's sample, n points
# in 2-D): the current search (a line search along the normal-scale H, then Newton with the
# exact gradient and Hessian from one pass, stopping at a tolerance of 1e-3 / n) against the
# previous one (the same line search, then BFGS with the gradient at a fixed relative
# tolerance of 1e-10, still reachable as cv_search() without a Hessian), in the same run,
# alternating. Counts the evaluations (passes over the pairs) of each.
#
# Usage: Rscript bench/w3_lscv_search.R [--n 2e4] [--runs 2] [--append]

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(TRUE)
n <- as.numeric(bench_arg(argv, "--n", "2e4"))
runs <- as.integer(bench_arg(argv, "--runs", "2"))
load_start <- loadavg()
options(progressr.enable = TRUE)  # cv_search reports one progression per evaluation

gen <- function(n) {
  half <- rbinom(1, n, 0.5)
  rbind(matrix(rnorm(2 * half), half, 2), matrix(rnorm(2 * (n - half), 2, sqrt(0.5)), n - half, 2))
}
set.seed(4)
x <- gen(n)
ns <- asNamespace("kernops")
Hns <- kde_bandwidth(x, "ns")
w <- rep(1 / n, n)
obj <- ns$lscv_objective(x, w, "float64", "auto")
searches <- list(
  "line search + Newton, tolerance 1e-3/n (current)" = function() kde_bandwidth(x, "lscv"),
  "line search + BFGS, reltol 1e-10 (before)" = function() ns$cv_search(x, Hns, obj, ns$lscv_gradient(x, w, "float64", "auto"),
                                                                        reltol = 1e-10))
rows <- list()
for (r in seq_len(runs)) for (what in names(searches)) {
  evals <- 0L
  t0 <- now()
  H <- withCallingHandlers(searches[[what]](), progression = function(c) evals <<- evals + 1L)
  secs <- now() - t0
  rows[[length(rows) + 1]] <- data.frame(what = what, run = r, n = n, seconds = secs, evaluations = evals,
                                         s_per_eval = secs / evals, H = paste(signif(diag(H), 4), collapse = ", "),
                                         objective = sprintf("%.10f", obj(sqrt(diag(H)))))
}
report("W3 LSCV search: evaluations and time", bench_command("bench/w3_lscv_search.R", argv), do.call(rbind, rows),
       append = "--append" %in% argv, load_start = load_start)

#!/usr/bin/env Rscript
# bench/w3_kde.R -- workload W3 (kde) of /work/shared/WORKLOADS.md:
#   n samples from 0.5*N((0,0), I) + 0.5*N((2,2), 0.5 I), Gaussian KDE with
#   H = diag(0.1^2, 0.1^2), evaluated exactly at m points (uniform on [-3, 5]^2);
#   and the exact LSCV selector (kde_bandwidth(x, "lscv"), a diagonal H) at n_lscv points.
#
# Usage:
#   Rscript bench/w3_kde.R [--n 1e5] [--m 1e4] [--n-lscv 2e4] [--runs 3] [--no-ks] [--append]
#
#   --no-ks   skip ks::kde (the unbinned call takes 25-90 s at the full size)
#   --append  append a dated section with the table to bench/RESULTS.md
#
# What is measured: whole-call wall times (median of --runs after one warm-up for kernops;
# one timed call for ks::kde(binned = FALSE), which is slow); max |difference| / max
# density of kernops float64 and ks' binned estimate against ks' unbinned one, and of
# float32 against float64; the kernops LSCV time (one call: a line search, then
# Newton with the exact Hessian, each evaluation one or two sums over the pairs).

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))

argv <- commandArgs(TRUE)
n <- as.numeric(bench_arg(argv, "--n", "1e5"))
m <- as.numeric(bench_arg(argv, "--m", "1e4"))
n_lscv <- as.numeric(bench_arg(argv, "--n-lscv", "2e4"))
runs <- as.integer(bench_arg(argv, "--runs", "3"))
with_ks <- !("--no-ks" %in% argv) && requireNamespace("ks", quietly = TRUE)
load_start <- loadavg()

gen <- function(n) {
  half <- rbinom(1, n, 0.5)
  rbind(matrix(rnorm(2 * half), half, 2), matrix(rnorm(2 * (n - half), 2, sqrt(0.5)), n - half, 2))
}
set.seed(3)
x <- gen(n)
E <- matrix(runif(2 * m, -3, 5), m, 2)
H <- diag(0.1^2, 2)

rows <- list()
t_kops <- median_time(function() kde(x, H = H, eval.points = E), runs = runs)
est <- kde(x, H = H, eval.points = E)$estimate
t32 <- median_time(function() kde(x, H = H, eval.points = E, dtype = "float32"), runs = runs)
est32 <- kde(x, H = H, eval.points = E, dtype = "float32")$estimate
rows[[1]] <- data.frame(what = "kde exact (kernops, float64)", n = n, m = m, seconds = t_kops, max_diff_rel_to_max = NA)
rows[[2]] <- data.frame(what = "kde exact (kernops, float32)", n = n, m = m, seconds = t32,
                        max_diff_rel_to_max = max(abs(est32 - est)) / max(est))
if (with_ks) {
  t0 <- now(); k <- ks::kde(x, H = H, eval.points = E, binned = FALSE); t_ks <- now() - t0
  # differences relative to the largest density (relative ones per point blow up in the tails,
  # where binning gives values many orders of magnitude off)
  rel <- function(a, b) max(abs(a - b)) / max(abs(b))
  rows[[3]] <- data.frame(what = "ks::kde(binned = FALSE)", n = n, m = m, seconds = t_ks,
                          max_diff_rel_to_max = rel(est, k$estimate))
  t0 <- now(); kb <- ks::kde(x, H = H, eval.points = E, binned = TRUE); t_kb <- now() - t0
  rows[[4]] <- data.frame(what = "ks::kde(binned = TRUE)", n = n, m = m, seconds = t_kb,
                          max_diff_rel_to_max = rel(kb$estimate, k$estimate))
}
set.seed(4)
xl <- gen(n_lscv)
t0 <- now(); Hl <- kde_bandwidth(xl, "lscv"); t_lscv <- now() - t0
rows[[length(rows) + 1]] <- data.frame(what = sprintf("kde_bandwidth(\"lscv\"), H = diag(%s)",
                                                      paste(signif(diag(Hl), 3), collapse = ", ")),
                                       n = n_lscv, m = n_lscv, seconds = t_lscv, max_diff_rel_to_max = NA)
df <- do.call(rbind, rows)
notes <- if (with_ks) sprintf("- speedup of exact kernops over ks::kde(binned = FALSE): %.1fx (float64)", t_ks / t_kops)
report("W3 kde: exact KDE and LSCV", bench_command("bench/w3_kde.R", argv), df, notes,
       append = "--append" %in% argv, load_start = load_start)

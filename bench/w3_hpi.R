#!/usr/bin/env Rscript
# bench/w3_hpi.R -- the exact 2-D plug-in selectors of kde_bandwidth() against ks, in the
# same run:
#   1. agreement: kde_bandwidth(x, "pi") against ks::Hpi(x, binned = FALSE) (the same
#      algorithm: SAMSE pilots, BFGS on the AMISE) and ks::Hpi(x) (binned for n > 500),
#      "pi_diag" against ks::Hpi.diag(binned = FALSE), on a correlated normal and a
#      two-cluster sample at n = --agree-n (several sizes), five seeds each: the largest
#      relative difference max|H - H_ks| / max|H_ks| over the seeds;
#   2. time at n = --n (default 2e4, W3's LSCV size): kde_bandwidth(x, "pi"), "pi_diag"
#      and the binned ks::Hpi(), ks::Hpi.diag().
# Usage: Rscript bench/w3_hpi.R [--n 2e4] [--agree-n 100,1000,3000] [--append]
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(TRUE)
n_time <- as.numeric(bench_arg(argv, "--n", "2e4"))
agree_n <- as.numeric(strsplit(bench_arg(argv, "--agree-n", "100,1000,3000"), ",")[[1]])
load_start <- loadavg()
samples <- list(
  correlated = function(n) { x <- matrix(rnorm(2 * n), n, 2); x[, 2] <- x[, 2] + 0.6 * x[, 1]; x },
  clusters = function(n) { h <- n %/% 2; rbind(matrix(rnorm(2 * h), h, 2), matrix(rnorm(2 * (n - h), 2, sqrt(0.5)), n - h, 2)) })
rel <- function(a, b) max(abs(a - b)) / max(abs(b))
rows <- list()
for (nm in names(samples)) for (n in agree_n) {
  d_full <- d_bin <- d_diag <- 0
  for (seed in 1:5) {
    set.seed(seed); x <- samples[[nm]](n)
    H <- kde_bandwidth(x, "pi")
    d_full <- max(d_full, rel(H, unname(ks::Hpi(x, binned = FALSE))))
    d_bin <- max(d_bin, rel(H, unname(ks::Hpi(x))))
    d_diag <- max(d_diag, rel(kde_bandwidth(x, "pi_diag"), unname(ks::Hpi.diag(x, binned = FALSE))))
  }
  rows[[length(rows) + 1]] <- data.frame(sample = nm, n = n, `pi vs Hpi(binned = FALSE)` = d_full,
                                         `pi vs Hpi()` = d_bin, `pi_diag vs Hpi.diag(binned = FALSE)` = d_diag,
                                         check.names = FALSE)
}
agree <- do.call(rbind, rows)
set.seed(4); x <- samples$clusters(n_time)
tm <- function(f) { t0 <- now(); f(); now() - t0 }
times <- data.frame(what = c("kde_bandwidth(x, \"pi\") (exact)", "ks::Hpi(x) (binned)",
                             "kde_bandwidth(x, \"pi_diag\") (exact)", "ks::Hpi.diag(x) (binned)"),
                    n = n_time,
                    seconds = c(tm(function() kde_bandwidth(x, "pi")), tm(function() ks::Hpi(x)),
                                tm(function() kde_bandwidth(x, "pi_diag")), tm(function() ks::Hpi.diag(x))))
report("W3 plug-in selectors in 2-D: agreement with ks (relative, max over 5 seeds)", bench_command("bench/w3_hpi.R", argv),
       agree, append = "--append" %in% argv, load_start = load_start)
report("W3 plug-in selectors in 2-D: time", bench_command("bench/w3_hpi.R", argv), times,
       append = "--append" %in% argv, load_start = load_start)

#!/usr/bin/env Rscript
# bench/w5_sinkhorn_scale.R -- workload W5 (Sinkhorn) of /work/shared/WORKLOADS.md across sizes:
# x uniform on [0,1]^2, y ~ N((0.5, 0.5), 0.1^2 I), uniform weights, cost |x - y|^2 / 2, debiased.
#   1. n = m = 1e3 and 5e3, blur 0.1: sinkhorn() in float64 and float32 against a dense
#      log-domain Sinkhorn in base R (float64, the same eps schedule, symmetrised updates
#      and stopping rule, n x m matrices), values compared;
#   2. n = m = --n-large (default 1e5), blur 0.1, in a fresh Rscript: time and peak RSS
#      (VmHWM) (targets: < 3 min, < 300 MB);
#   3. n = m = --n-small-blur (default 1e4), blur 0.02: time, iterations, marginal error and
#      the value against a run to tol = 1e-6 (target: converges), with and without
#      over-relaxation.
# Usage: Rscript bench/w5_sinkhorn_scale.R [--tol 1e-3] [--n-large 1e5] [--large-dtypes float32]
#          [--n-small-blur 1e4] [--skip 1,2,3] [--append]
# Internal: `--child n dtype blur tol overrelax` is the fresh-process mode of parts 2 and 3.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
gen <- function(n, seed = 5005) {
  set.seed(seed)
  list(x = matrix(runif(2 * n), n), y = matrix(0.5 + 0.1 * rnorm(2 * n), n))
}

if (length(argv) >= 1 && argv[1] == "--child") {
  n <- as.numeric(argv[2]); dtype <- argv[3]; blur <- as.numeric(argv[4]); tol <- as.numeric(argv[5])
  d <- gen(n)
  before <- proc_status_kb("VmHWM")
  t0 <- now()
  ot <- sinkhorn(d$x, d$y, blur = blur, tol = tol, dtype = dtype, overrelax = as.logical(argv[6]), max_iter = 5000)
  t1 <- now() - t0
  cat(sprintf("W5CHILD time=%.4f value=%.12g iterations=%d steps=%d err=%.4g w=%.4g hwm_before_kb=%.0f hwm_kb=%.0f\n",
              t1, ot$value, ot$iterations, length(ot$eps_schedule), ot$marginal_error, ot$overrelax, before,
              proc_status_kb("VmHWM")))
  quit(save = "no")
}

# The dense reference: the same algorithm on n x m matrices in base R (float64).
dense_sinkhorn <- function(x, y, blur, tol, scaling = 0.5) {
  eps <- blur^2
  cost <- function(u, v) pmax(outer(rowSums(u^2), rowSums(v^2), "+") - 2 * tcrossprod(u, v), 0) / 2
  softmin <- function(C, w, h, e) {  # -e log sum_j w_j exp((h_j - C_ij) / e), stabilised
    M <- (rep(h, each = nrow(C)) - C) / e
    mx <- M[cbind(seq_len(nrow(C)), max.col(M, "first"))]
    -e * (mx + log(as.vector(exp(M - mx) %*% w)))
  }
  a <- rep(1 / nrow(x), nrow(x)); b <- rep(1 / nrow(y), nrow(y))
  Cxy <- cost(x, y); Cyx <- t(Cxy); Cxx <- cost(x, x); Cyy <- cost(y, y)
  diam <- sqrt(sum((pmax(apply(x, 2, max), apply(y, 2, max)) - pmin(apply(x, 2, min), apply(y, 2, min)))^2))
  sched <- c(exp(seq(2 * log(diam), 2 * log(blur), by = 2 * log(scaling))), eps)
  g <- softmin(Cyx, a, 0, sched[1]); f <- softmin(Cxy, b, 0, sched[1])
  faa <- softmin(Cxx, a, 0, sched[1]); gbb <- softmin(Cyy, b, 0, sched[1])
  for (e in sched) {
    ft <- softmin(Cxy, b, g, e); gt <- softmin(Cyx, a, f, e)
    f <- (f + ft) / 2; g <- (g + gt) / 2
    faa <- (faa + softmin(Cxx, a, faa, e)) / 2; gbb <- (gbb + softmin(Cyy, b, gbb, e)) / 2
  }
  marg <- function(w, pot, new) sum(abs(w * expm1((pot - new) / eps)))
  g <- softmin(Cyx, a, f, eps)
  err_sym <- Inf
  repeat {
    ft <- softmin(Cxy, b, g, eps); err <- marg(a, f, ft); f <- ft
    if (err_sym >= tol / 10) {
      ta <- softmin(Cxx, a, faa, eps); tb <- softmin(Cyy, b, gbb, eps)
      err_sym <- marg(a, faa, ta) + marg(b, gbb, tb)
      faa <- (faa + ta) / 2; gbb <- (gbb + tb) / 2
    }
    g <- softmin(Cyx, a, f, eps)
    if (err + err_sym < tol) break
  }
  sum(a * (f - faa)) + sum(b * (g - gbb))
}

tol <- as.numeric(bench_arg(argv, "--tol", "1e-3"))
n_large <- as.numeric(bench_arg(argv, "--n-large", "1e5"))
large_dtypes <- strsplit(bench_arg(argv, "--large-dtypes", "float32"), ",")[[1]]
n_sb <- as.numeric(bench_arg(argv, "--n-small-blur", "1e4"))
skip <- strsplit(bench_arg(argv, "--skip", ""), ",")[[1]]
script <- normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
load_start <- loadavg()
rows <- list()
add <- function(...) rows[[length(rows) + 1]] <<- data.frame(..., check.names = FALSE)

if (!"1" %in% skip) for (n in c(1e3, 5e3)) {
  d <- gen(n)
  vals <- list()
  for (dtype in c("float64", "float32")) {
    ot <- NULL
    t <- median_time(function() ot <<- sinkhorn(d$x, d$y, blur = 0.1, tol = tol, dtype = dtype), if (n <= 1e3) 3L else 2L)
    vals[[dtype]] <- ot$value
    add(what = sprintf("sinkhorn() %s", dtype), n = n, blur = 0.1, `time (s)` = t, iterations = ot$iterations,
        `marginal error` = ot$marginal_error, value = sprintf("%.8f", ot$value), load = loadavg())
    cat(sprintf("n = %g %s: %.3f s\n", n, dtype, t))
  }
  t0 <- now(); v <- dense_sinkhorn(d$x, d$y, 0.1, tol); t <- now() - t0
  add(what = "dense base-R log-domain Sinkhorn float64", n = n, blur = 0.1, `time (s)` = t, iterations = NA,
      `marginal error` = NA, value = sprintf("%.8f (kernops f64 rel. diff %.1e)", v, vals$float64 / v - 1), load = loadavg())
  cat(sprintf("n = %g dense: %.3f s\n", n, t))
}

if (!"2" %in% skip) for (dtype in large_dtypes) {
  cat(sprintf("n = %g %s in a fresh process ...\n", n_large, dtype))
  ch <- run_child(script, "W5CHILD", c(format(n_large, scientific = FALSE), dtype, "0.1", format(tol), "TRUE"))
  if (!is.null(ch))
    add(what = sprintf("sinkhorn() %s, fresh process, peak RSS %.0f MB (%.0f MB before)", dtype, ch$hwm_kb / 1024,
                       ch$hwm_before_kb / 1024), n = n_large, blur = 0.1, `time (s)` = ch$time, iterations = ch$iterations,
        `marginal error` = ch$err, value = sprintf("%.8f", ch$value), load = loadavg())
}

if (!"3" %in% skip) {
  ref <- NULL
  for (cfg in list(c("float32", "1e-4", "TRUE"), c("float64", "1e-4", "TRUE"), c("float64", "1e-6", "TRUE"),
                   c("float32", "1e-4", "FALSE"))) {
    cat(sprintf("n = %g blur 0.02 %s tol %s overrelax %s ...\n", n_sb, cfg[1], cfg[2], cfg[3]))
    ch <- run_child(script, "W5CHILD", c(format(n_sb, scientific = FALSE), cfg[1], "0.02", cfg[2], cfg[3]))
    if (is.null(ch)) next
    add(what = sprintf("sinkhorn() %s, tol %s, over-relaxation %s (w = %.3g)", cfg[1], cfg[2], cfg[3], ch$w),
        n = n_sb, blur = 0.02, `time (s)` = ch$time, iterations = ch$iterations, `marginal error` = ch$err,
        value = sprintf("%.9f", ch$value), load = loadavg())
  }
}

report("W5 sinkhorn across sizes (debiased, cost |x - y|^2 / 2)", bench_command("bench/w5_sinkhorn_scale.R", argv),
       do.call(rbind, rows),
       notes = c(sprintf("- tol = %g on the marginal error unless stated; data as ../shared/data/w5_5000.csv (set.seed(5005)) at each n", tol),
                 "- parts 1: median of 3 (1e3) or 2 (5e3) calls after a warm-up; the dense reference once",
                 "- parts 2-3: one call in a fresh Rscript (compilation of the reductions included)"),
       append = "--append" %in% argv, load_start = load_start)

#!/usr/bin/env Rscript
# bench/w1_gauss_conv.R -- workload W1 (gauss-conv) of /work/shared/WORKLOADS.md:
#   gamma_i = sum_j exp(-s |x_i - y_j|^2) b_j,  x, y: N x 3 uniform[0,1], b: N x 6 normal, s = 10,
#   N = M in 1e3, 1e4, 1e5, float64 and float32.
#
# Usage:
#   Rscript bench/w1_gauss_conv.R [--sizes 1e3,1e4,1e5] [--dtypes float64,float32]
#                                 [--runs R] [--slow S] [--threads T] [--append]
#
#   --sizes    N = M values (default 1e3,1e4,1e5)
#   --runs     timed runs after one warm-up (default 5 for N <= 1e4, 3 above)
#   --slow     if the first call in the fresh process took more than S seconds (default 30),
#              skip the warm-up and do a single timed run (marked in the "runs" column)
#   --threads  kernops threads (default: kernops_threads())
#   --append   append a dated section with the table to bench/RESULTS.md
#
# What is measured, per size and dtype:
#   * compile: kernel_op() (parse + plan), cold = first kernel_op() call in a fresh R process;
#     median = median over many repeated calls in the benchmark process (high resolution).
#   * first call: the first op() call in a fresh R process (one timing).
#   * median: whole-call median of the timed op() runs after one warm-up, in this process.
#   * pairs/s = N * M / median.
#   * dense: base R exp(-s * D2) %*% b with D2 from outer() + tcrossprod(), float64, median of
#     the same number of runs after one warm-up; only for N <= 1e4 (1e5 needs 80 GB per matrix).
#   * speedup = dense median / kernops median; max rel err = max |kernops - dense| / max |dense|.
#   * RSS: VmHWM (peak resident set) of a FRESH Rscript process that loads kernops, generates
#     the data, compiles and calls the op once; "RSS before" is VmHWM just before the op() call
#     (R + package + data), "peak RSS" just after it.
#
# Internal: `--child N dtype threads` is the fresh-process mode used for the RSS measurement.

# kernops, the timer (now, have_bench), proc_status_kb, loadavg and cpu_description.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))

FORMULA <- "Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)"
ARGS <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)")
S <- 10
SEED <- 20240101L

gen_data <- function(N) {
  set.seed(SEED + as.integer(log10(N) * 1000))
  list(x = matrix(runif(N * 3), N, 3),
       y = matrix(runif(N * 3), N, 3),
       b = matrix(rnorm(N * 6), N, 6))
}

# mtime of the installed kernops shared library: a reinstall during a run (the package is
# developed concurrently) would mix builds between this process and its children.
so_mtime <- function() {
  f <- list.files(system.file("libs", package = "kernops"), pattern = "^kernops\\.(so|dll)$",
                  full.names = TRUE, recursive = TRUE)
  if (!length(f)) return(NA_real_)
  as.numeric(file.info(f[1])$mtime)
}

# ---------------------------------------------------------------------------------------------
# Child mode: fresh process, one workload, report cold compile, first call, peak RSS.
argv <- commandArgs(trailingOnly = TRUE)
if (length(argv) >= 1 && argv[1] == "--child") {
  N <- as.numeric(argv[2]); dtype <- argv[3]; threads <- as.integer(argv[4])
  kernops_threads(threads)
  d <- gen_data(N)
  t0 <- now()
  op <- kernel_op(FORMULA, ARGS, dtype = dtype)
  t_compile <- now() - t0
  hwm_before <- proc_status_kb("VmHWM")
  t0 <- now()
  g <- op(x = d$x, y = d$y, b = d$b, s = S)
  t_first <- now() - t0
  hwm <- proc_status_kb("VmHWM")
  stopifnot(is.matrix(g), nrow(g) == N, ncol(g) == 6)
  cat(sprintf("W1CHILD compile=%.9f first=%.6f hwm_before_kb=%.0f hwm_kb=%.0f so_mtime=%.3f\n",
              t_compile, t_first, hwm_before, hwm, so_mtime()))
  quit(save = "no", status = 0)
}

# ---------------------------------------------------------------------------------------------
# Options
get_opt <- function(name, default = NULL) {
  i <- match(name, argv)
  if (is.na(i)) return(default)
  if (i == length(argv)) stop("option ", name, " needs a value")
  argv[i + 1]
}
sizes <- as.numeric(strsplit(get_opt("--sizes", "1e3,1e4,1e5"), ",", fixed = TRUE)[[1]])
dtypes <- strsplit(get_opt("--dtypes", "float64,float32"), ",", fixed = TRUE)[[1]]
runs_opt <- get_opt("--runs")
slow_s <- as.numeric(get_opt("--slow", "30"))
if (!is.null(get_opt("--threads"))) kernops_threads(as.integer(get_opt("--threads")))
threads <- kernops_threads()
do_append <- "--append" %in% argv
DENSE_MAX <- 1e4
COMPILE_REPS <- 300L

file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
script <- normalizePath(sub("^--file=", "", file_arg[1]))
bench_dir <- dirname(script)
rscript <- file.path(R.home("bin"), "Rscript")
command <- bench_command("bench/w1_gauss_conv.R", argv)

# Times `expr_fun()` `runs` times; returns the vector of seconds.
time_runs <- function(expr_fun, runs) {
  if (have_bench) {
    m <- bench::mark(expr_fun(), iterations = runs, check = FALSE, memory = FALSE,
                     filter_gc = FALSE, time_unit = "s")
    as.numeric(m$time[[1]])
  } else {
    vapply(seq_len(runs), function(i) system.time(expr_fun(), gcFirst = FALSE)[["elapsed"]],
           numeric(1))
  }
}

run_child <- function(N, dtype) {
  out <- suppressWarnings(system2(rscript, c(shQuote(script), "--child", format(N, scientific = FALSE),
                                             dtype, threads), stdout = TRUE, stderr = TRUE))
  line <- grep("^W1CHILD ", out, value = TRUE)
  if (!length(line)) {
    warning("child process failed for N = ", N, " ", dtype, ":\n", paste(out, collapse = "\n"))
    return(list(compile = NA, first = NA, hwm_before_kb = NA, hwm_kb = NA, so_mtime = NA))
  }
  kv <- strsplit(strsplit(sub("^W1CHILD ", "", line[1]), " ")[[1]], "=")
  stats::setNames(lapply(kv, function(p) as.numeric(p[2])), vapply(kv, `[`, "", 1))
}

dense_conv <- function(d) {
  D2 <- outer(rowSums(d$x^2), rowSums(d$y^2), "+") - 2 * tcrossprod(d$x, d$y)
  exp(-S * D2) %*% d$b
}

load_start <- loadavg()
t_start <- Sys.time()
so_start <- so_mtime()
git <- tryCatch({
  owd <- setwd(dirname(bench_dir))
  h <- suppressWarnings(system2("git", c("rev-parse", "--short", "HEAD"), stdout = TRUE, stderr = FALSE))
  dirty <- suppressWarnings(system2("git", c("status", "--porcelain", "--", "src", "R"), stdout = TRUE, stderr = FALSE))
  setwd(owd)
  paste0(h, if (length(dirty)) " + uncommitted changes in src/ or R/" else "")
}, error = function(e) "unknown")
build_mismatch <- character()

cat(sprintf("W1 gauss-conv: sizes %s, dtypes %s, kernops threads %d, timer %s\n",
            paste(format(sizes, scientific = TRUE), collapse = ","), paste(dtypes, collapse = ","),
            threads, if (have_bench) "bench::mark" else "system.time"))

rows <- list()
for (N in sizes) {
  d <- gen_data(N)
  runs_n <- if (!is.null(runs_opt)) as.integer(runs_opt) else if (N <= 1e4) 5L else 3L

  dense_med <- NA_real_; dense_res <- NULL
  if (N <= DENSE_MAX) {
    cat(sprintf("  N = %g: dense base R ...\n", N))
    dense_res <- dense_conv(d)  # warm-up, also the reference result
    dense_med <- median(time_runs(function() dense_conv(d), runs_n))
    invisible(gc())
  }

  for (dtype in dtypes) {
    cat(sprintf("  N = %g, %s: fresh-process call (RSS) ...\n", N, dtype))
    ch <- run_child(N, dtype)
    if (!isTRUE(abs(ch$so_mtime - so_start) < 0.01))
      build_mismatch <- c(build_mismatch, sprintf("N = %g %s", N, dtype))

    tc <- time_runs(function() kernel_op(FORMULA, ARGS, dtype = dtype), COMPILE_REPS)
    op <- kernel_op(FORMULA, ARGS, dtype = dtype)
    call_op <- function() op(x = d$x, y = d$y, b = d$b, s = S)

    slow <- !is.na(ch$first) && ch$first > slow_s
    if (slow) {
      cat(sprintf("  N = %g, %s: first call took %.1f s > %g s: no warm-up, 1 timed run\n",
                  N, dtype, ch$first, slow_s))
      t0 <- now(); g <- call_op(); times <- now() - t0
      runs_label <- "1 (no warm-up)"
    } else {
      cat(sprintf("  N = %g, %s: warm-up + %d timed runs ...\n", N, dtype, runs_n))
      g <- call_op()
      times <- time_runs(call_op, runs_n)
      runs_label <- as.character(runs_n)
    }
    med <- median(times)
    err <- if (!is.null(dense_res)) max(abs(g - dense_res)) / max(abs(dense_res)) else NA_real_

    rows[[length(rows) + 1]] <- data.frame(
      N = N, dtype = dtype,
      compile_cold_ms = ch$compile * 1e3, compile_med_ms = median(tc) * 1e3,
      first_s = ch$first, runs = runs_label, median_s = med,
      range = sprintf("%.3g-%.3g", min(times), max(times)),
      pairs_per_s = N * N / med, dense_s = dense_med,
      speedup = dense_med / med, rel_err = err,
      rss_before_mb = ch$hwm_before_kb / 1024, peak_rss_mb = ch$hwm_kb / 1024,
      stringsAsFactors = FALSE)
  }
  rm(d, dense_res); invisible(gc())
}
res <- do.call(rbind, rows)
load_end <- loadavg()
notes <- character()
if (length(build_mismatch) || !isTRUE(abs(so_mtime() - so_start) < 0.01)) {
  notes <- sprintf("- WARNING: kernops was reinstalled during this run (fresh-process rows affected: %s); the numbers mix builds, rerun.",
                   if (length(build_mismatch)) paste(build_mismatch, collapse = ", ") else "none")
  message(notes)
}

# ---------------------------------------------------------------------------------------------
# Markdown table
fmt <- function(x, f) ifelse(is.na(x), "", sprintf(f, x))
dense_col <- ifelse(is.na(res$dense_s), ifelse(res$N > DENSE_MAX, "skipped (needs 80 GB)", ""),
                    sprintf("%.3f", res$dense_s))
tab <- c(
  "| N = M | dtype | compile cold (ms) | compile median (ms) | first call (s) | runs | median (s) | min-max (s) | pairs/s | dense base R (s) | speedup | max rel err | RSS before call (MB) | peak RSS (MB) |",
  "|---:|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
  sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
          format(res$N, scientific = TRUE), res$dtype,
          fmt(res$compile_cold_ms, "%.2f"), fmt(res$compile_med_ms, "%.3f"),
          fmt(res$first_s, "%.3f"), res$runs, fmt(res$median_s, "%.3f"), res$range,
          fmt(res$pairs_per_s, "%.3g"), dense_col,
          ifelse(is.na(res$speedup), "", sprintf("%.1fx", res$speedup)),
          fmt(res$rel_err, "%.2e"), fmt(res$rss_before_mb, "%.0f"), fmt(res$peak_rss_mb, "%.0f")))
cat("\n", paste(tab, collapse = "\n"), "\n", sep = "")

if (do_append) {
  cpu <- cpu_description()
  nproc <- tryCatch(system2("nproc", stdout = TRUE), error = function(e) NA)
  section <- c(
    "", sprintf("## W1 gauss-conv -- %s", format(t_start, "%Y-%m-%d %H:%M:%S %Z")), "",
    sprintf("- machine: nproc %s, CPU %s, %s", nproc, cpu, R.version.string),
    sprintf("- kernops %s from %s (kernops.so of %s; working tree at start: git %s), kernops_threads() = %d, CPU engine instruction set %s",
            as.character(utils::packageVersion("kernops")), dirname(system.file(package = "kernops")),
            format(as.POSIXct(so_start, origin = "1970-01-01"), "%Y-%m-%d %H:%M:%S"), git, threads,
            backend_info()$cpu$isa),
    sprintf("- timer: %s; load average at start %s, at end %s",
            if (have_bench) "bench::mark (hires)" else "system.time", load_start, load_end),
    sprintf("- command: `%s`", command),
    notes, "", tab)
  results <- file.path(bench_dir, "RESULTS.md")
  cat(section, file = results, sep = "\n", append = TRUE)
  cat("\nAppended to ", results, "\n", sep = "")
}

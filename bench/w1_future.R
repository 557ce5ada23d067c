#!/usr/bin/env Rscript
# bench/w1_future.R -- W1 (gauss-conv, /work/shared/WORKLOADS.md) sharded over future
# workers (issue 22, R/future.R), against one process with the same number of threads.
#
# Usage:
#   Rscript bench/w1_future.R [--sizes 1e5,2e5] [--runs R] [--workers W] [--sinkhorn n] [--append]
#
#   --sizes     N = M values (default 1e5); the last is "the largest W1 size run"
#   --runs      timed runs after one warm-up (default 3)
#   --workers   multisession workers, one thread each (default 2); the single process
#               gets as many threads
#   --sinkhorn  also W5-like sinkhorn() at n = m = this size (default 5000; 0 skips): the
#               per-iteration cost of sending the reduced side
#   --plans     future plans to shard over (default multisession; multicore forks and
#               so sends no input data)
#   --append    append a dated section to bench/RESULTS.md
#
# Per size (float64): the local call with W threads; the same call with
# options(kernops.future = TRUE) on plan(multisession, workers = W) (each worker has
# parallelly::availableCores() = 1, so one thread); the ratio sharded / local (target:
# within 15% at 1e5); the overhead of sharding = sharded wall time - the slowest shard's
# reduction time in its worker (transfers of the reduced side and of the result, future
# bookkeeping, rbind); the bytes sent per call (serialized shards) and received; and
# whether the two results are identical().

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
suppressPackageStartupMessages(library(future))

argv <- commandArgs(TRUE)
sizes <- as.numeric(strsplit(bench_arg(argv, "--sizes", "1e5"), ",")[[1]])
runs <- as.integer(bench_arg(argv, "--runs", "3"))
workers <- as.integer(bench_arg(argv, "--workers", "2"))
sink_n <- as.numeric(bench_arg(argv, "--sinkhorn", "5000"))
plans <- strsplit(bench_arg(argv, "--plans", "multisession"), ",")[[1]]
append <- "--append" %in% argv
load_start <- loadavg()

op <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"))
gen_data <- function(N) {
  set.seed(20240101L)
  list(x = matrix(runif(N * 3), N, 3), y = matrix(runif(N * 3), N, 3), b = matrix(rnorm(N * 6), N, 6))
}

use_plan <- function(p) {
  plan(p, workers = workers)
  invisible(value(lapply(seq_len(workers), function(k) future(Sys.getpid()))))  # start the workers
}
kernops_threads(workers)

rows <- list()
for (N in sizes) {
  d <- gen_data(N)
  options(kernops.future = FALSE)
  local_res <- NULL
  t_local <- median_time(function() local_res <<- op(d$x, d$y, d$b, 10), runs)
  for (p in plans) {
    use_plan(p)
    options(kernops.future = TRUE)
    shard_res <- op(d$x, d$y, d$b, 10)  # warm-up: the workers compile the formula
    kernops:::shard_stats_reset()
    t_shard <- median_time(function() shard_res <<- op(d$x, d$y, d$b, 10), runs, warmup = FALSE)
    st <- as.list(kernops:::shard_stats)
    options(kernops.future = FALSE)
    overhead <- (st$wall - st$worker_max) / st$calls
    half <- ceiling(N / workers)
    sent <- workers * length(serialize(list(x = d$x[seq_len(half), ], y = d$y, b = d$b), NULL))
    rows[[length(rows) + 1]] <- data.frame(
      N = N, plan = p, `local W threads (s)` = t_local, `sharded W workers (s)` = t_shard,
      `sharded / local` = t_shard / t_local, `sharding overhead (s)` = overhead,
      `MB sent` = if (p == "multicore") 0 else sent / 1e6, `MB back` = 8 * 6 * N / 1e6,
      identical = identical(local_res, shard_res), check.names = FALSE)
    cat(sprintf("N = %g, %s: local %.3f s, sharded %.3f s (x %.3f), overhead %.3f s, identical %s (load %s)\n",
                N, p, t_local, t_shard, t_shard / t_local, overhead, identical(local_res, shard_res), loadavg()))
  }
}
df <- do.call(rbind, rows)

notes <- sprintf("- W = %d; local: one process, kernops_threads(%d); sharded: plan(<plan>, workers = %d), one thread per worker (parallelly::availableCores() = 1 there), %d shards", workers, workers, workers, workers)
if (sink_n > 0) {
  set.seed(5)
  x <- matrix(runif(sink_n * 2), sink_n, 2)
  y <- matrix(rnorm(sink_n * 2, 0.5, 0.1), sink_n, 2)
  options(kernops.future = FALSE)
  t_loc <- median_time(function() sinkhorn(x, y, blur = 0.1), 1L)
  for (p in plans) {
    use_plan(p)
    options(kernops.future = TRUE)
    kernops:::shard_stats_reset()
    t_sh <- median_time(function() sinkhorn(x, y, blur = 0.1), 1L, warmup = FALSE)
    st <- as.list(kernops:::shard_stats)
    options(kernops.future = FALSE)
    line <- sprintf(paste("- W5-like sinkhorn(blur = 0.1) at n = m = %g, %s: local %.2f s, sharded %.2f s (x %.2f);",
                          "%d sharded reductions, %.1f ms each, of which %.1f ms overhead (transfers and futures);",
                          "the reduced side (points, potential, weights: %.2f MB) goes to each worker at every reduction"),
                    sink_n, p, t_loc, t_sh, t_sh / t_loc, st$calls, 1e3 * st$wall / st$calls,
                    1e3 * (st$wall - st$worker_max) / st$calls, 8 * sink_n * 4 / 1e6)
    cat(line, "\n")
    notes <- c(notes, line)
  }
}
plan(sequential)
report("W1 sharded over future workers (issue 22)", bench_command("bench/w1_future.R", argv), df,
       notes = notes, append = append, load_start = load_start)

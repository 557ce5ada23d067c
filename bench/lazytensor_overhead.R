#!/usr/bin/env Rscript
# bench/lazytensor_overhead.R -- per-call overhead of the LazyTensor layer (issue 4).
#
# Usage:
#   Rscript bench/lazytensor_overhead.R [--n 100] [--threads 1] [--rounds 2000] [--append]
#
# Workload: the Gaussian convolution gamma_i = sum_j exp(-s |x_i - y_j|^2) b_j with x, y:
# N x 3 uniform, b: N x 1 normal, s = 2.5, N = M = --n (default 100, where the kernel itself
# costs a few microseconds so that the timings are dominated by overhead).
#
# Timed expressions (all but "build only" return the same matrix):
#   direct op()       a kernel_op() compiled once, called with the data: the baseline.
#   lazy, rebuilt     sum(exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b), index = "j"): the whole
#                     expression rebuilt from the data on every call, as in an optimisation
#                     loop (s = 2.5 becomes a parameter, so every call hits the plan cache).
#   lazy, prebuilt    K built once, sum(K, index = "j") on every call.
#   build only        building the expression without reducing it.
#   lazy, no cache    the rebuilt expression with options(kernops.lazy_cache_size = 0):
#                     parse + plan on every call, what the cache saves.
#   kernel_op + call  compiling the KeOps string with kernel_op() and calling it, every call.
# Overhead = median over rounds of (lazy, rebuilt - direct op()), interleaved (see below).
#
# --threads defaults to 1: at N = 100 the run is a few microseconds of work, and starting
# threads would only add noise to the difference being measured.
# --append appends a dated section to bench/RESULTS.md (created with a header if absent).

suppressPackageStartupMessages(library(kernops))

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  k <- match(paste0("--", name), args)
  if (is.na(k)) default else args[k + 1]
}
N <- as.integer(as.numeric(opt("n", "100")))
threads <- as.integer(opt("threads", "1"))
append <- "--append" %in% args
if (!requireNamespace("bench", quietly = TRUE)) stop("this script needs the 'bench' package")

kernops_threads(threads)
set.seed(1)
x <- matrix(runif(3 * N), N, 3)
y <- matrix(runif(3 * N), N, 3)
b <- matrix(rnorm(N), N, 1)
s <- 2.5

op <- kernel_op("Sum_Reduction(Exp(-SqNorm2(x-y)*s)*b, 0)",
                c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
K <- exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b)
ref <- op(x = x, y = y, b = b, s = s)
stopifnot(
  isTRUE(all.equal(sum(exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b), index = "j"), ref, tolerance = 1e-14)),
  isTRUE(all.equal(sum(K, index = "j"), ref, tolerance = 1e-14))
)
load_start <- readLines("/proc/loadavg")

# Interleaved timing: in each round every expression runs once, in turn, timed with the
# high-resolution clock, so that a change of machine load affects all of them alike (the
# machine may be shared). Medians over the rounds; the overhead is the median of the
# per-round differences with the direct call.
exprs <- list(
  "direct op()" = function() op(x = x, y = y, b = b, s = s),
  "lazy, rebuilt" = function() sum(exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b), index = "j"),
  "lazy, prebuilt" = function() sum(K, index = "j"),
  "build only" = function() exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b),
  "lazy, no cache" = function() {
    old <- options(kernops.lazy_cache_size = 0)
    on.exit(options(old))
    sum(exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b), index = "j")
  },
  "kernel_op + call" = function() {
    kernel_op("Sum_Reduction(Exp(-SqNorm2(x-y)*s)*b, 0)",
              c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))(x, y, b, s)
  }
)
rounds <- as.integer(opt("rounds", "2000"))
clock <- function() as.numeric(bench::hires_time())
times <- matrix(NA_real_, rounds, length(exprs), dimnames = list(NULL, names(exprs)))
for (f in exprs) for (k in 1:20) f()  # warm-up
invisible(gc())
for (r in seq_len(rounds)) {
  for (e in names(exprs)) {
    f <- exprs[[e]]
    t0 <- clock()
    f()
    times[r, e] <- clock() - t0
  }
}
load_end <- readLines("/proc/loadavg")
med <- apply(times, 2, stats::median) * 1e6  # microseconds
diffs <- apply(times - times[, "direct op()"], 2, stats::median) * 1e6
overhead <- diffs[["lazy, rebuilt"]]
stats <- kernops:::lazy_cache_stats()

rows <- data.frame(
  expression = names(med),
  median_us = sprintf("%.0f", med),
  vs_direct_us = sprintf("%+.0f", diffs),
  stringsAsFactors = FALSE
)
rows$vs_direct_us[rows$expression == "direct op()"] <- ""
table <- c(
  "| expression | median (us) | median of (it - direct op()) per round (us) |",
  "|---|---:|---:|",
  sprintf("| %s | %s | %s |", rows$expression, rows$median_us, rows$vs_direct_us)
)
summary_line <- sprintf(
  "Per-call overhead of the LazyTensor layer (rebuild the expression + reduce, cache hit) at N = M = %d: %.0f us (%.2f ms) over a precompiled kernel_op() call (median of the per-round differences); target < 1 ms: %s.",
  N, overhead, overhead / 1000, if (overhead < 1000) "met" else "NOT met")
cat(table, "", summary_line, sprintf("plan cache: %d hits, %d misses", stats$hits, stats$misses), sep = "\n")

if (append) {
  path <- file.path("bench", "RESULTS.md")
  if (!file.exists(path)) writeLines("# Benchmark results", path)
  git <- tryCatch(system("git rev-parse --short HEAD 2>/dev/null", intern = TRUE), error = function(e) "?")
  dirty <- tryCatch(length(system("git status --porcelain -- src R 2>/dev/null", intern = TRUE)) > 0,
                    error = function(e) FALSE)
  cpu <- tryCatch(sub(".*: ", "", grep("model name", readLines("/proc/cpuinfo"), value = TRUE)[1]),
                  error = function(e) "?")
  section <- c(
    "",
    sprintf("## LazyTensor per-call overhead -- %s", format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC")),
    "",
    sprintf("- machine: nproc %s, CPU %s, %s", parallel::detectCores(), cpu, R.version.string),
    sprintf("- kernops %s (installed; working tree git %s%s), kernops_threads() = %d",
            utils::packageVersion("kernops"), paste(git, collapse = ""),
            if (dirty) ", uncommitted changes in src/ or R/" else "", threads),
    sprintf("- timer: bench::hires_time(), %d interleaved rounds (each expression once per round), medians; load average at start %s, at end %s",
            rounds,
            paste(strsplit(load_start, " ")[[1]][1:3], collapse = " "),
            paste(strsplit(load_end, " ")[[1]][1:3], collapse = " ")),
    sprintf("- command: `Rscript bench/lazytensor_overhead.R --n %d --threads %d --rounds %d --append`", N, threads, rounds),
    "- workload: `sum(exp(-sqdist(Vi(x), Vj(y)) * s) * Vj(b), index = \"j\")`, x, y: N x 3, b: N x 1, s = 2.5",
    "",
    table,
    "",
    summary_line,
    ""
  )
  cat(section, file = path, sep = "\n", append = TRUE)
  cat("appended to", path, "\n")
}

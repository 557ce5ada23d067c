#!/usr/bin/env Rscript
# bench/w4_mmd.R -- workload W4 (mmd) of /work/shared/WORKLOADS.md: X ~ N(0, I_10),
# Y ~ N(0.1 * 1, I_10), Gaussian kernel sigma = sqrt(10), unbiased MMD^2, float64.
#   1. mmd() at n = m = --n (default 1e5): one timed call (three reductions of n^2 pairs), and
#      the peak RSS (VmHWM) of a fresh Rscript that does only that (targets: < 30 s, < 200 MB);
#   2. mmd() at n = m = --n-kmmd (default 1e4) against kernlab::kmmd in the same run, with the
#      same kernel (rbfdot(sigma = 1 / (2 * 10))) and asymptotic = FALSE (its three dense kernel
#      matrices: 2.4 GB at 1e4); both statistics compared (target: >= 30x faster);
#   3. mmd_test() at n = m = --n-test (default 5e3) with --n-perm (default 1000) permutations
#      (target: < 10 s).
# Usage: Rscript bench/w4_mmd.R [--n 1e5] [--n-kmmd 1e4] [--n-test 5e3] [--n-perm 1000] [--append]
# Internal: `--child n` is the fresh-process mode of part 1.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
D <- 10L
SIGMA <- sqrt(10)
gen <- function(n, seed) {
  set.seed(seed)
  list(x = matrix(rnorm(n * D), n, D), y = matrix(rnorm(n * D, mean = 0.1), n, D))
}

if (length(argv) >= 1 && argv[1] == "--child") {
  n <- as.numeric(argv[2])
  d <- gen(n, 4L)
  before <- proc_status_kb("VmHWM")
  t0 <- now()
  v <- mmd(d$x, d$y, sigma = SIGMA)
  t1 <- now() - t0
  cat(sprintf("W4CHILD time=%.4f value=%.10g hwm_before_kb=%.0f hwm_kb=%.0f\n", t1, v, before, proc_status_kb("VmHWM")))
  quit(save = "no")
}

n_large <- as.numeric(bench_arg(argv, "--n", "1e5"))
n_kmmd <- as.numeric(bench_arg(argv, "--n-kmmd", "1e4"))
n_test <- as.numeric(bench_arg(argv, "--n-test", "5e3"))
n_perm <- as.integer(bench_arg(argv, "--n-perm", "1000"))
script <- normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
load_start <- loadavg()
rows <- list()

# 1. the large MMD^2, in a fresh process (time and peak memory)
cat(sprintf("1. mmd() at n = m = %g in a fresh process ...\n", n_large))
ch <- run_child(script, "W4CHILD", format(n_large, scientific = FALSE))
if (!is.null(ch))
  rows[[1]] <- data.frame(task = sprintf("mmd() unbiased, n = m = %g, fresh process", n_large),
                          `kernops (s)` = ch$time, `peer (s)` = NA, `speedup` = NA,
                          `peak RSS (MB)` = ch$hwm_kb / 1024, `RSS before (MB)` = ch$hwm_before_kb / 1024,
                          check = sprintf("MMD^2 = %.4g", ch$value), check.names = FALSE)

# 2. against kernlab::kmmd
cat(sprintf("2. mmd() and kernlab::kmmd at n = m = %g ...\n", n_kmmd))
d <- gen(n_kmmd, 5L)
v <- NULL
t_k <- median_time(function() v <<- mmd(d$x, d$y, sigma = SIGMA, unbiased = FALSE), 3L)
t_u <- median_time(function() mmd(d$x, d$y, sigma = SIGMA), 3L)
t_kl <- NA; check <- "kernlab not installed"
if (requireNamespace("kernlab", quietly = TRUE)) {
  km <- NULL
  t_kl <- median_time(function() km <<- kernlab::kmmd(d$x, d$y, kernel = "rbfdot",
                                                     kpar = list(sigma = 1 / (2 * SIGMA^2))), 1L, warmup = FALSE)
  check <- sprintf("sqrt(V-stat) rel. diff. vs kmmd %.1e", abs(sqrt(v) - kernlab::mmdstats(km)[1]) / kernlab::mmdstats(km)[1])
  rm(km); invisible(gc())
}
rows[[length(rows) + 1]] <- data.frame(task = sprintf("mmd() biased vs kernlab::kmmd, n = m = %g", n_kmmd),
                                       `kernops (s)` = t_k, `peer (s)` = t_kl, speedup = t_kl / t_k,
                                       `peak RSS (MB)` = NA, `RSS before (MB)` = NA, check = check, check.names = FALSE)
rows[[length(rows) + 1]] <- data.frame(task = sprintf("mmd() unbiased, n = m = %g", n_kmmd),
                                       `kernops (s)` = t_u, `peer (s)` = t_kl, speedup = t_kl / t_u,
                                       `peak RSS (MB)` = NA, `RSS before (MB)` = NA, check = "", check.names = FALSE)

# 3. the permutation test
cat(sprintf("3. mmd_test() at n = m = %g with %d permutations ...\n", n_test, n_perm))
d <- gen(n_test, 6L)
tt <- NULL
t_test <- median_time(function() { set.seed(1); tt <<- mmd_test(d$x, d$y, sigma = SIGMA, n_perm = n_perm) }, 1L, warmup = FALSE)
rows[[length(rows) + 1]] <- data.frame(task = sprintf("mmd_test(), n = m = %g, %d permutations", n_test, n_perm),
                                       `kernops (s)` = t_test, `peer (s)` = NA, speedup = NA,
                                       `peak RSS (MB)` = NA, `RSS before (MB)` = NA,
                                       check = sprintf("p = %.3g", tt$p.value), check.names = FALSE)

report("W4 mmd", bench_command("bench/w4_mmd.R", argv), do.call(rbind, rows),
       notes = c(sprintf("- %d-D float64, Gaussian sigma = sqrt(10) (kernlab rbfdot(sigma = 0.05)), kernops_threads() = %d",
                         D, kernops_threads()),
                 "- row 1: one call in a fresh Rscript (no warm-up); RSS = VmHWM before / after the call",
                 "- rows 2-3: median of 3 calls after a warm-up; kernlab::kmmd (asymptotic = FALSE) timed once",
                 "- row 4: one call (set.seed(1)), the permutations in blocks of columns of one reduction"),
       append = "--append" %in% argv, load_start = load_start)

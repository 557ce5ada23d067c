#!/usr/bin/env Rscript
# bench/w5_sinkhorn.R -- workload W5 (Sinkhorn) at n = m = 5000 on the reference data
# ../shared/data/w5_5000.csv (uniform cloud vs Gaussian blob in 2-D; GeomLoss values in its
# README): sinkhorn(), blur 0.1, debiased, scaling 0.5, in float64 and float32, for several
# tolerances on the marginal error. Target (issue 19): within 1e-3 relative of GeomLoss'
# converged value 0.0360068 in under 1 s.
# Usage: Rscript bench/w5_sinkhorn.R [--data ../shared/data/w5_5000.csv] [--append]
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
path <- bench_arg(argv, "--data", file.path("..", "shared", "data", "w5_5000.csv"))
REF <- 0.0360067826388   # GeomLoss 0.3.1, scaling 0.99 (converged), blur 0.1, debiased
d <- read.csv(path)
x <- as.matrix(d[d$set == "x", 2:3]); y <- as.matrix(d[d$set == "y", 2:3])
load_start <- loadavg()
rows <- list()
for (dtype in c("float64", "float32")) for (tol in c(1e-2, 1e-3, 1e-4)) {
  ot <- NULL
  t <- median_time(function() ot <<- sinkhorn(x, y, blur = 0.1, tol = tol, dtype = dtype), 3L)
  rows[[length(rows) + 1]] <- data.frame(dtype = dtype, tol = tol, `time (s)` = t,
    `schedule steps` = length(ot$eps_schedule), `iterations after` = ot$iterations,
    `marginal error` = ot$marginal_error, value = sprintf("%.8f", ot$value),
    `rel. error vs GeomLoss` = ot$value / REF - 1, check.names = FALSE)
}
report("W5 sinkhorn (n = m = 5000, blur 0.1, debiased)", bench_command("bench/w5_sinkhorn.R", argv),
       do.call(rbind, rows),
       notes = c("- median of 3 calls after a warm-up (the reductions are compiled once per session)",
                 "- each schedule step and each iteration after it: 4 LogSumExp reductions of 2.5e7 pairs (f, g, and the two symmetric problems)"),
       append = "--append" %in% argv, load_start = load_start)

#!/usr/bin/env Rscript
# bench/w7_knn.R -- workload W7 (knn): the K = 10 nearest neighbours of each of N queries
# among M references, uniform [0,1]^D, with ArgKMin_Reduction(SqDist(x,y), 10, 0).
# Usage: Rscript bench/w7_knn.R [--n 1e5] [--dims 3,32] [--dtypes float32,float64] [--append]
# Peers: FNN::get.knnx (kd-tree) and RANN::nn2 (ANN kd-tree), when installed. The
# neighbour sets are checked against FNN (fraction of identical index sets).
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])), "common.R"))
argv <- commandArgs(trailingOnly = TRUE)
n <- as.numeric(bench_arg(argv, "--n", "1e5"))
dims <- as.integer(strsplit(bench_arg(argv, "--dims", "3,32"), ",")[[1]])
dtypes <- strsplit(bench_arg(argv, "--dtypes", "float32,float64"), ",")[[1]]
K <- 10L
load_start <- loadavg()
rows <- list()
for (D in dims) {
  set.seed(D)
  x <- matrix(runif(n * D), n, D); y <- matrix(runif(n * D), n, D)
  ref <- NULL
  t_fnn <- NA; t_rann <- NA
  # kd-trees degenerate in high dimension (FNN's kd_tree did not finish in 15 min at D = 32,
  # N = 1e5): there FNN runs its brute-force algorithm, as in TOOLCHAIN.md, and RANN is skipped.
  algo <- if (D >= 16) "brute" else "kd_tree"
  if (requireNamespace("FNN", quietly = TRUE)) {
    t_fnn <- median_time(function() ref <<- FNN::get.knnx(y, x, k = K, algorithm = algo)$nn.index, 1L, warmup = FALSE)
  }
  if (requireNamespace("RANN", quietly = TRUE) && D < 16)
    t_rann <- median_time(function() RANN::nn2(y, x, k = K), 1L, warmup = FALSE)
  for (dtype in dtypes) {
    op <- kernel_op(sprintf("ArgKMin_Reduction(SqDist(x,y), %d, 0)", K), c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D)),
                    dtype = dtype)
    idx <- NULL
    t_k <- median_time(function() idx <<- op(x, y), 1L, warmup = FALSE)
    agree <- if (is.null(ref)) NA else mean(vapply(seq_len(n), function(i) setequal(idx[i, ], ref[i, ]), logical(1)))
    rows[[length(rows) + 1]] <- data.frame(`N = M` = format(n), D = D, dtype = dtype, `kernops (s)` = t_k,
                                           `pairs/s` = n * n / t_k, `FNN::get.knnx (s)` = t_fnn, `FNN algorithm` = algo,
                                           `RANN::nn2 (s)` = t_rann, `same sets as FNN` = agree, check.names = FALSE)
    cat(".")
  }
}
cat("\n")
report("W7 knn", bench_command("bench/w7_knn.R", argv), do.call(rbind, rows),
       notes = "- one timed run each (no warm-up); float32 ties may order equal distances differently",
       append = "--append" %in% argv, load_start = load_start)

# test-future.R -- reductions sharded over future workers (R/future.R): identical to the
# local results under plan(sequential), plan(multisession) and plan(cluster); failures
# and interrupts in a worker; the default (no option) unchanged. Worker sessions take
# seconds to start: one multisession and one cluster plan serve the whole file.

skip_if_not_installed("future")
skip_if_not_installed("parallelly")

fut_w1 <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)",
                    c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"))
fut_w1_j <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*a, 1)",
                      c("x = Vi(3)", "y = Vj(3)", "a = Vi(6)", "s = Pm(1)"))
fut_knn <- kernel_op("ArgKMin_Reduction(SqDist(x,y), 5, 0)", c("x = Vi(3)", "y = Vj(3)"))
fut_knn_j <- kernel_op("KMin_ArgKMin_Reduction(SqDist(x,y), 3, 1)", c("x = Vi(3)", "y = Vj(3)"))
fut_lse <- kernel_op("LogSumExp_Reduction(-s*SqDist(x,y), 0, b)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
fut_lse_j <- kernel_op("LogSumExp_Reduction(-s*SqDist(x,y), 1)", c("x = Vi(3)", "y = Vj(3)", "s = Pm(1)"))

set.seed(22)
fut_make <- function(n, m) {
  list(x = runif_mat(n, 3), y = runif_mat(m, 3), bj = matrix(rnorm(m * 6), m, 6), ai = matrix(rnorm(n * 6), n, 6),
       w = runif_mat(m, 1, 0.5, 1))
}
fut_small <- fut_make(150, 170)     # 4 shards of 48 rows and fewer, both axes
fut_large <- fut_make(1500, 1200)   # enough rows that two local threads keep each row's j range whole

# Every case: a function of the data computing one reduction.
fut_cases <- list(
  w1 = function(d) fut_w1(d$x, d$y, d$bj, 10),
  w1_axis1 = function(d) fut_w1_j(d$x, d$y, d$ai, 10),
  argkmin = function(d) fut_knn(d$x, d$y),
  kmin_argkmin_axis1 = function(d) fut_knn_j(d$x, d$y),
  logsumexp = function(d) fut_lse(d$x, d$y, d$w, 10),
  logsumexp_axis1 = function(d) fut_lse_j(d$x, d$y, 10),
  lazy_min_argmin = function(d) min_argmin(sqdist(Vi(d$x), Vj(d$y)), index = "j"),
  grad = function(d) kernel_value_and_grad(fut_w1, x = d$x, y = d$y, b = d$bj, s = 10, wrt = c("x", "y"))
)

fut_run <- function(d, ...) {
  old <- options(kernops.future = TRUE, ...)
  on.exit(options(old))
  lapply(fut_cases, function(f) f(d))
}

# Local references: one thread (never splits a row's reduced range), and the default two.
fut_ref <- local({
  old <- kernops_threads(1)
  on.exit(kernops_threads(old))
  list(small = lapply(fut_cases, function(f) f(fut_small)), large = lapply(fut_cases, function(f) f(fut_large)))
})
fut_ref2 <- list(small = lapply(fut_cases, function(f) f(fut_small)), large = lapply(fut_cases, function(f) f(fut_large)))

expect_same_results <- function(got, want, label) {
  for (nm in names(want)) expect_identical(got[[nm]], want[[nm]], label = paste(label, nm))
}

test_that("without the option nothing is sharded, whatever the plan", {
  old_opts <- options(kernops.debug_shard_error = 1L, kernops.future = NULL)  # the hook fails shard 1
  on.exit(options(old_opts), add = TRUE)
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  expect_identical(fut_cases$w1(fut_large), fut_ref2$large$w1)
  options(kernops.future = FALSE)  # restored with the others
  expect_identical(fut_cases$argkmin(fut_small), fut_ref2$small$argkmin)
})

test_that("the shards are whole groups of 48 rows, as even as possible", {
  expect_identical(kernops:::shard_bounds(1000L, 2L), c(0L, 528L, 1000L))
  expect_identical(kernops:::shard_bounds(150L, 8L), c(0L, 48L, 96L, 144L, 150L))
  expect_identical(kernops:::shard_bounds(30L, 4L), c(0L, 30L))
  b <- kernops:::shard_bounds(12345L, 7L)
  expect_true(all(diff(b) > 0) && all(head(b, -1) %% 48 == 0) && tail(b, 1) == 12345L)
})

test_that("plan(sequential): sharded results are identical to local ones", {
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  # in-process "workers" take the session's kernops.threads (2): each shard keeps its
  # rows' reduced ranges whole all the same
  expect_same_results(fut_run(fut_small, kernops.future_shards = 4), fut_ref$small, "sequential small")
  expect_same_results(fut_run(fut_large, kernops.future_shards = 3), fut_ref$large, "sequential large")
  # the default two threads keep every row's j range whole at this size
  expect_same_results(fut_run(fut_large, kernops.future_shards = 2), fut_ref2$large, "sequential large, 2 threads")
  # with few rows per thread the local call splits j ranges: equal to rounding only
  got <- fut_run(fut_small, kernops.future_shards = 2)
  for (nm in names(got)) expect_equal(got[[nm]], fut_ref2$small[[nm]], tolerance = 1e-12, label = nm)
})

test_that("data errors are reported as without sharding", {
  old_opts <- options(kernops.future = TRUE)
  on.exit(options(old_opts), add = TRUE)
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  x <- fut_large$x
  x[1234, 2] <- NA
  sharded <- tryCatch(fut_w1(x, fut_large$y, fut_large$bj, 10), error = function(e) e)
  options(kernops.future = FALSE)  # restored on exit
  local <- tryCatch(fut_w1(x, fut_large$y, fut_large$bj, 10), error = function(e) e)
  expect_s3_class(sharded, "kernops_error_input")
  expect_identical(conditionMessage(sharded), conditionMessage(local))
  expect_match(conditionMessage(sharded), "row 1234")
})

test_that("a failing shard fails the call with a classed error and no partial result", {
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  old_opts <- options(kernops.future = TRUE, kernops.future_shards = 3, kernops.debug_shard_error = 2L)
  on.exit(options(old_opts), add = TRUE)
  res <- NULL
  err <- expect_error(res <- fut_w1(fut_large$x, fut_large$y, fut_large$bj, 10), class = "kernops_error_future")
  expect_null(res)
  expect_match(conditionMessage(err), "shard 2 of 3 \\(result rows 529 to 1056\\)")
  expect_match(conditionMessage(err$parent), "kernops.debug_shard_error")
  expect_identical(err$shard, 2L)
})

test_that("a future that cannot be created fails the call with a classed error", {
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  old_opts <- options(kernops.future = TRUE, kernops.future_shards = 2, future.globals.maxSize = 1000)
  on.exit(options(old_opts), add = TRUE)
  err <- expect_error(fut_w1(fut_large$x, fut_large$y, fut_large$bj, 10), class = "kernops_error_future")
  expect_match(conditionMessage(err), "shard 1 of 2")
  expect_s3_class(err$parent, "error")
})

test_that("an interrupt in a worker is a kernops_error_interrupt", {
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  old_opts <- options(kernops.future = TRUE, kernops.future_shards = 2, kernops.debug_interrupt_after = 0L)
  on.exit(options(old_opts), add = TRUE)
  res <- NULL
  cnd <- tryCatch(res <- fut_w1(fut_large$x, fut_large$y, fut_large$bj, 10), interrupt = function(e) e)
  expect_null(res)
  expect_s3_class(cnd, "kernops_error_interrupt")
  expect_match(conditionMessage(cnd), "shard 1 of 2")
})

test_that("option kernops.future_shards is checked", {
  old_opts <- options(kernops.future = TRUE, kernops.future_shards = "two")
  on.exit(options(old_opts), add = TRUE)
  expect_error(fut_cases$w1(fut_small), class = "kernops_error_input", regexp = "kernops.future_shards")
})

test_that("each shard is one progressr step; not inside functions reporting their own", {
  skip_if_not_installed("progressr")
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  # (progressr signals nothing in a non-interactive session unless enabled)
  old_opts <- options(kernops.future = TRUE, kernops.future_shards = 3, progressr.enable = TRUE)
  on.exit(options(old_opts), add = TRUE)
  steps <- 0
  count <- function(c) if (identical(c$type, "update")) steps <<- steps + c$amount
  withCallingHandlers(fut_cases$w1(fut_large), progression = count)
  expect_equal(steps, 3)
  expect_false(kernops:::inside_progress_owner())
  # inside sinkhorn(): its own steps only, one per eps of the schedule and the last
  steps <- 0
  set.seed(1)
  withCallingHandlers(ot <- sinkhorn(runif_mat(60, 2), runif_mat(50, 2), blur = 0.5, scaling = 0.5), progression = count)
  expect_equal(steps, length(ot$eps_schedule) + 1)
})

test_that("plan(multisession) and plan(cluster) give identical results", {
  skip_on_cran()
  oplan <- future::plan(future::multisession, workers = 2)
  on.exit(future::plan(oplan), add = TRUE)
  # the workers see this session's library (R CMD check's too) and get one thread each
  info <- future::value(future::future(list(threads = kernops:::shard_threads(), pid = Sys.getpid())))
  expect_identical(info$threads, 1L)
  expect_false(info$pid == Sys.getpid())
  expect_same_results(fut_run(fut_small, kernops.future_shards = 3), fut_ref$small, "multisession small")
  got <- fut_run(fut_large)
  expect_same_results(got, fut_ref$large, "multisession large")
  expect_same_results(got, fut_ref2$large, "multisession large, 2 local threads")
  # a statistic built on reductions: the Sinkhorn loop (a LogSumExp per iteration)
  set.seed(3)
  a <- runif_mat(200, 2)
  b <- runif_mat(150, 2)
  old <- kernops_threads(1)
  local_ot <- sinkhorn(a, b, blur = 0.3)
  kernops_threads(old)
  old_opts <- options(kernops.future = TRUE)
  sharded_ot <- sinkhorn(a, b, blur = 0.3)
  options(old_opts)
  expect_identical(sharded_ot$cost, local_ot$cost)
  expect_identical(sharded_ot$f, local_ot$f)
  # errors in a worker process
  old_opts <- options(kernops.future = TRUE, kernops.debug_shard_error = 1L)
  expect_error(fut_cases$w1(fut_small), class = "kernops_error_future", regexp = "shard 1 of")
  options(old_opts)

  future::plan(future::cluster, workers = c("localhost", "localhost"))
  expect_same_results(fut_run(fut_small, kernops.future_shards = 4), fut_ref$small, "cluster small")
  expect_same_results(fut_run(fut_large), fut_ref$large, "cluster large")
})

test_that("a worker without kernops is named in a kernops_error_future", {
  skip_on_cran()
  empty <- tempfile("emptylib")
  dir.create(empty)
  on.exit(unlink(empty, recursive = TRUE), add = TRUE)
  cl <- parallelly::makeClusterPSOCK(1L, rscript_envs = c(R_LIBS = empty, R_LIBS_USER = empty, R_LIBS_SITE = ""),
                                     rscript_libs = empty)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  oplan <- future::plan(future::cluster, workers = cl)
  on.exit(future::plan(oplan), add = TRUE)
  has <- future::value(future::future(requireNamespace("kernops", quietly = TRUE), packages = character()))
  skip_if(has, "the worker finds kernops in a site library")
  old_opts <- options(kernops.future = TRUE)
  on.exit(options(old_opts), add = TRUE)
  err <- expect_error(fut_cases$w1(fut_small), class = "kernops_error_future")
  expect_match(conditionMessage(err), "kernops is not installed on worker")
  expect_match(conditionMessage(err), empty, fixed = TRUE)
})

test_that("the tests above left no option set and the plan as it was", {
  expect_true(inherits(future::plan(), "sequential"))
  expect_null(getOption("kernops.future"))
  expect_null(getOption("kernops.future_shards"))
  expect_null(getOption("kernops.debug_shard_error"))
})

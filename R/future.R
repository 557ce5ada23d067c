# future.R -- reductions sharded over R's `future` framework (opt-in), with progress
# through `progressr`. Every reduction reaches the core through run_kernel_op()
# (kernel_op.R): kernel_op() calls, LazyTensor reductions (compiled by lazy_entry() into a
# kernel_op) and kernel_grad() (whose gradient reductions are kernel_ops), and so every
# statistics function. With options(kernops.future = TRUE) run_kernel_op() hands the
# call to run_sharded() below instead of the core.
#
# A shard is a block of output rows: the arguments indexed like the result (the Vi of an
# axis-0 reduction, the Vj of an axis-1 one) are cut to the block's rows, every other
# argument travels whole, and the worker reduces the block against the whole reduced
# side. Nothing compiled crosses processes: the worker compiles the formula from its
# canonical source and declarations (kept per worker session in shard_plans) and runs it.
# Argmin-type indices are over the reduced side, which no shard cuts: they stay global
# and 1-based. The blocks are bound in order.
#
# Bitwise identity (tests/testthat/test-future.R, tests/cpp/test_engine.cpp): a row's
# result depends on the row's place in the engine's groups of rows (tiles.h: rows go in
# fours or sixes from the start of the data) and, with few rows per thread, on how the
# engine splits the reduced range across threads. So shards start on multiples of
# shard_row_unit rows, and workers run with the reduced range whole
# (RunConfig::split_reduced = false). A sharded result is then identical to the local one
# whenever the local call does not split the reduced range either: always with one
# thread, and with T threads once there are about 4 T blocks of rows (e.g. W1 with two
# threads from N ~ 300); below that the two agree to rounding.

#' Sharding reductions over `future` workers
#'
#' With `options(kernops.future = TRUE)`, every reduction, that is every call of an
#' operation made by [kernel_op()], every LazyTensor reduction, every gradient of
#' [kernel_grad()], and therefore every statistics function built on them ([kde()],
#' [mmd()], [sinkhorn()], ...), splits its result rows into blocks (shards) and computes
#' each block as a future on the plan the user has set with [future::plan()]: local
#' background R sessions (`plan(multisession)`), other machines (`plan(cluster, workers =
#' hosts)`), or a job scheduler through `future.batchtools`. Without the option, nothing
#' changes: reductions run in the calling process, on [kernops_threads()] threads.
#'
#' @section How a reduction is sharded:
#' The arguments indexed like the result (`Vi` of an `axis = 0` reduction, `Vj` of an
#' `axis = 1` one) are cut into blocks of rows; the reduced side and the parameters go
#' whole to every worker, which compiles the formula from its text (compiled plans are
#' never sent: they are pointers into one process's memory; each worker keeps the plans it
#' compiled for later calls) and reduces its block against the whole reduced side. The
#' blocks are bound in order. `ArgMin`-type indices are indices into the reduced side, so
#' they stay global and 1-based.
#'
#' The result is bitwise identical to the local one whenever the local call keeps each
#' row's reduced range whole, which it does with one thread, and with T threads once
#' there are at least about 4 T blocks of rows (for W1, from N of a few hundred with
#' 2 threads). With fewer rows per thread the local engine also splits the reduced range
#' across its threads and the two agree to rounding (a few ulps). Shards start on multiples
#' of 48 rows, so that rows meet the engine's groups of rows as in the local call.
#'
#' @section Options:
#' * `kernops.future`: `TRUE` to shard; default `FALSE`.
#' * `kernops.future_shards`: the number of shards per reduction, default
#'   [future::nbrOfWorkers()] (one per worker). More shards than workers balance uneven
#'   workers at the cost of sending the reduced side more often. Results with fewer than
#'   48 rows per shard use fewer shards.
#'
#' @section Workers:
#' Each worker needs kernops installed (the same version as the calling session:
#' otherwise a `kernops_error_future` names the worker, its host and its library paths).
#' A worker uses the threads that `parallelly::availableCores()` grants it (1 in the
#' background sessions of `plan(multisession)`, so 2 workers on 2 cores do not
#' oversubscribe them; on a cluster node, the cores of its allocation), capped by option
#' `kernops.threads` when that is set in the worker's session.
#'
#' When a worker fails (an error, a crashed worker session), the reduction raises a
#' `kernops_error_future` condition naming the shard and the worker, with the original
#' condition in `$parent`; an interrupt in a worker is a `kernops_error_interrupt`, as for
#' a local call. No partial result is returned. Errors in the data (NA, row counts) are
#' reported exactly as without sharding.
#'
#' @section Cost of the transfers:
#' Every reduction sends the reduced side to every shard's worker and the result back.
#' Iterative statistics pay it at every call ([sinkhorn()] per iteration, [mmd_test()] per
#' block of permutations). kernops does not keep data on the workers between calls:
#' `future` has no worker affinity (a future may run on any worker, and under a batch
#' scheduler each future is a fresh job), and in these loops the reduced side changes
#' anyway (Sinkhorn's dual potentials, the permuted weights). See
#' `vignette("scaling-out")` and bench/RESULTS.md for the measured overhead.
#'
#' @section Progress:
#' A sharded reduction signals one [progressr][progressr::progressor] step per shard
#' (shown inside `progressr::with_progress()` or with global handlers), except inside
#' kernops functions that report their own progress ([sinkhorn()], the permutations of
#' [mmd_test()], the cross-validation searches of [kde_bandwidth()]), which signal per
#' iteration. The engine's own progress line on stderr (option `kernops.progress`)
#' remains for local calls only; workers never print it.
#'
#' @section GPUs:
#' Shards compute on the workers' CPUs. An op made with `backend = "cuda"` is not sharded: it
#' runs on this process's GPU. Sharding over several GPUs (one worker per device) is not
#' implemented yet: the CUDA runtime holds one device (device 0) per process.
#'
#' @name kernops_future
#' @examples
#' if (requireNamespace("future", quietly = TRUE)) {
#'   op <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)",
#'                   c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"))
#'   x <- matrix(runif(600), 200, 3)
#'   y <- matrix(runif(300), 100, 3)
#'   b <- matrix(rnorm(200), 100, 2)
#'   local <- op(x, y, b, 10)
#'   old_plan <- future::plan("sequential")  # or multisession, cluster, batchtools ...
#'   old <- options(kernops.future = TRUE, kernops.future_shards = 3)
#'   sharded <- op(x, y, b, 10)
#'   options(old)
#'   future::plan(old_plan)
#'   all.equal(sharded, local)
#' }
NULL

# Shards start on multiples of this many rows: the engine's groups of rows (4 or 6 rows,
# tiles.h) then line up in a shard as in the whole call. 48 is a multiple of every group
# size it uses (1, 2, 4, 6) and of 8, 12, 16 should that change.
shard_row_unit <- 48L

run_sharded <- function(state, data, call, max_bytes) {
  if (!requireNamespace("future", quietly = TRUE))
    abort_kernops(c("options(kernops.future = TRUE) shards reductions over the `future` package, which is not installed.",
                    "Install it, or set options(kernops.future = FALSE)."), "kernops_error_future", call = call)
  vars <- state$vars
  out_side <- which(vars$index == if (state$axis == 0) "i" else "j")
  rows <- unique(vapply(data[out_side], NROW, 0))
  # Data the core would reject is reported by the core, as without sharding (with row
  # numbers of the whole data, not of a shard): a local call fails at its checks.
  if (length(rows) != 1 || rows < 1 || !all(vapply(data, function(x) all(is.finite(x)), NA)))
    return(run_local(state, data, call, max_bytes))
  t0 <- proc.time()[["elapsed"]]
  bounds <- shard_bounds(rows, shard_count(call))
  n <- length(bounds) - 1L
  base <- list(source = state$source, args = state$args, dtype = state$dtype, max_bytes = max_bytes,
               interrupt_after = debug_interrupt_after(call), isa = cpu_isa_level(),
               version = as.character(utils::packageVersion("kernops")),
               fail_shard = getOption("kernops.debug_shard_error", 0L),
               device = NULL)  # a device index, for a multi-GPU backend (not yet used)
  futures <- lapply(seq_len(n), function(k) {
    idx <- (bounds[k] + 1):bounds[k + 1]
    task <- base
    task$shard <- k
    task$data <- data
    task$data[out_side] <- lapply(data[out_side], function(x) if (is.matrix(x)) x[idx, , drop = FALSE] else x[idx])
    # (creating a future can fail too: future.globals.maxSize, a plan that cannot start)
    tryCatch(future::future(shard_expr, substitute = FALSE, globals = list(task = task), packages = character(),
                            seed = NULL,  # no random numbers (loading a package may draw one)
                            label = sprintf("kernops shard %d/%d", k, n)),
             error = function(e) e)
  })
  progress <- if (n > 1 && requireNamespace("progressr", quietly = TRUE) && !inside_progress_owner()) {
    progressr::progressor(steps = n)
  } else {
    function(...) NULL
  }
  # Every future is collected, also after a failure, so that no worker is left busy with
  # a shard whose result nobody reads; then the first failure is raised. Ctrl-C while
  # waiting stops at once, as a kernops_error_interrupt (future cannot cancel the shards
  # still running: their workers finish them and future discards the results).
  parts <- vector("list", n)
  for (k in seq_len(n)) {
    parts[[k]] <- if (inherits(futures[[k]], "condition")) futures[[k]] else withCallingHandlers(
      tryCatch(future::value(futures[[k]]), error = function(e) e),
      interrupt = function(e) signal_interrupt(sprintf("Interrupted while waiting for shard %d of %d.", k, n), call))
    progress(sprintf("kernops: shard %d of %d", k, n))
  }
  for (k in seq_len(n)) check_shard(parts[[k]], k, n, bounds, base$version, call)
  shard_stats$calls <- shard_stats$calls + 1
  shard_stats$shards <- shard_stats$shards + n
  shard_stats$wall <- shard_stats$wall + (proc.time()[["elapsed"]] - t0)
  shard_stats$worker_max <- shard_stats$worker_max + max(vapply(parts, `[[`, 0, "seconds"))
  list(values = do.call(rbind, lapply(parts, `[[`, "values")),
       indices = do.call(rbind, lapply(parts, `[[`, "indices")))
}

# What a worker evaluates: base R only until kernops is found, so that a worker without
# it reports so (as data, with where it looked) instead of failing to attach it.
shard_expr <- quote(
  if (!requireNamespace("kernops", quietly = TRUE)) {
    list(kernops_missing = TRUE, node = Sys.info()[["nodename"]], pid = Sys.getpid(), libs = .libPaths())
  } else {
    get("shard_worker", envir = asNamespace("kernops"))(task)
  }
)

# The plans a worker session compiled, by dtype, formula and declarations.
shard_plans <- new.env(parent = emptyenv())

# Runs one shard (in the worker). Core errors come back as data, raised in the caller.
shard_worker <- function(task) {
  where <- list(node = Sys.info()[["nodename"]], pid = Sys.getpid())
  mine <- as.character(utils::packageVersion("kernops"))
  if (!identical(mine, task$version))
    return(c(list(kernops_version = mine, libs = .libPaths()), where))
  if (identical(as.integer(task$fail_shard), as.integer(task$shard)))
    stop(sprintf("test failure in shard %d (option kernops.debug_shard_error)", task$shard))
  key <- paste(c(task$dtype, task$source, task$args), collapse = "\n")
  ptr <- shard_plans[[key]]
  if (is.null(ptr) || !cpp_plan_valid(ptr)) {
    compiled <- cpp_compile(task$source, task$args)
    if (inherits(compiled, "kernops_core_error"))
      return(structure(c(unclass(compiled), where), class = class(compiled)))
    ptr <- compiled$ptr
    if (length(ls(shard_plans)) >= 64) rm(list = ls(shard_plans), envir = shard_plans)
    assign(key, ptr, envir = shard_plans)
  }
  t0 <- proc.time()[["elapsed"]]
  res <- cpp_run(ptr, task$data, task$dtype, shard_threads(), task$max_bytes, task$interrupt_after,
                 task$isa, FALSE, split_reduced = FALSE)
  where$seconds <- proc.time()[["elapsed"]] - t0
  if (inherits(res, "kernops_core_error")) return(structure(c(unclass(res), where), class = class(res)))
  c(res, where)
}

# Threads in a worker: what parallelly::availableCores() grants this session (1 in a
# multisession worker: future's nested-parallelism protection), capped by option
# kernops.threads when set here. Not KERNOPS_THREADS: child sessions inherit it.
shard_threads <- function() {
  n <- if (requireNamespace("parallelly", quietly = TRUE)) parallelly::availableCores() else detected_cores()
  opt <- getOption("kernops.threads")
  if (!is.null(opt)) n <- min(n, check_threads(opt, "Option `kernops.threads`"))
  max(1L, min(as.integer(n), max_threads))
}

# Raises the condition for a failed shard, or returns silently.
check_shard <- function(part, k, n, bounds, version, call) {
  shard <- sprintf("shard %d of %d (result rows %d to %d)", k, n, bounds[k] + 1, bounds[k + 1])
  worker <- function(p) sprintf("worker %s (pid %s)", p$node, p$pid)
  fail <- function(msg, parent = NULL)
    abort_kernops(msg, "kernops_error_future", shard = k, parent = parent, call = call)
  if (inherits(part, "condition")) {
    fail(c(sprintf("The future of %s failed: %s", shard, conditionMessage(part)),
           "No partial result is returned."), parent = part)
  }
  if (isTRUE(part$kernops_missing))
    fail(c(sprintf("kernops is not installed on %s, which was to compute %s.", worker(part), shard),
           sprintf("Its library paths: %s.", paste(part$libs, collapse = ", ")),
           "Install kernops there (the same version as here) or point R_LIBS at a library that has it."))
  if (!is.null(part$kernops_version))
    fail(c(sprintf("%s has kernops %s, this session %s (%s).", worker(part), part$kernops_version, version, shard),
           sprintf("Its library paths: %s. Install the same version on every worker.", paste(part$libs, collapse = ", "))))
  if (inherits(part, "kernops_core_error")) {
    if (identical(part$kind, "interrupt"))
      signal_interrupt(sprintf("%s (%s of a sharded reduction, on %s)", part$message, shard, worker(part)), call)
    part$message <- sprintf("%s (in %s, on %s)", part$message, shard, worker(part))
    raise_core_error(part, call = call)
  }
  invisible(NULL)
}

# Internal counters for bench/w1_future.R: sharded calls, shards, their wall time in this
# session and the time of their slowest shard's reduction in its worker (the rest of the
# wall time is the cost of sharding: transfers, futures, binding).
shard_stats <- new.env(parent = emptyenv())
shard_stats_reset <- function() {
  for (nm in c("calls", "shards", "wall", "worker_max")) assign(nm, 0, envir = shard_stats)
  invisible(NULL)
}
shard_stats_reset()

# Where each shard's rows start, then `rows`: whole units of shard_row_unit rows, as
# even as they can be.
shard_bounds <- function(rows, shards) {
  units <- ceiling(rows / shard_row_unit)
  shards <- max(1L, min(shards, units))
  per <- ceiling(units / shards)
  b <- pmin(rows, seq(0, by = per * shard_row_unit, length.out = ceiling(units / per) + 1L))
  as.integer(b)
}

# Option kernops.future_shards, else one shard per worker of the current plan.
shard_count <- function(call) {
  v <- getOption("kernops.future_shards")
  if (is.null(v)) return(max(1L, as.integer(future::nbrOfWorkers())))
  if (!is.numeric(v) || length(v) != 1 || is.na(v) || v < 1 || v != round(v) || v > .Machine$integer.max)
    abort_kernops("Option `kernops.future_shards` must be a single whole number of shards, 1 or more.",
                  "kernops_error_input", call = call)
  as.integer(v)
}

# kernops functions that report progress per iteration themselves: reductions inside
# them signal no per-shard steps (a second progressor would garble the user's bar).
progress_owners <- c("sinkhorn", "permutation_null", "cv_search")

inside_progress_owner <- function() {
  ns <- asNamespace("kernops")
  owners <- mget(progress_owners, envir = ns, ifnotfound = list(NULL))
  for (k in seq_len(sys.nframe())) {
    f <- sys.function(k)
    for (o in owners) if (identical(f, o)) return(TRUE)
  }
  FALSE
}

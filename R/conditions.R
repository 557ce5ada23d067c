# conditions.R -- every error kernops raises is a classed condition:
# c("kernops_error_<what>", "kernops_error", "error", "condition").

#' Conditions raised by kernops
#'
#' Every error raised by kernops has class `"kernops_error"` plus one specific class, so
#' code can react to a kind of failure without matching message text (an interrupt is
#' not an error; see `kernops_error_interrupt`):
#'
#' * `kernops_error_parse`: a malformed formula or declaration. The condition carries
#'   `pos` (1-based character position), `token` and `source`; the message shows a caret
#'   under the offending token. A formula nested more deeply than the language allows
#'   also carries `subtype = "nesting"`.
#' * `kernops_error_dimension`: shapes that do not fit, inside a formula (`x - y` with
#'   dimensions 3 and 2) or between a declaration and the data given for it.
#' * `kernops_error_input`: bad data: non-numeric input, NA/NaN/Inf, zero rows,
#'   inconsistent row counts, a missing argument.
#' * `kernops_error_memory`: a result too large to allocate, or that R could not allocate (see option
#'   `kernops.max_output_bytes`); with `subtype = "device"`, the GPU's memory was too small
#'   (use smaller chunks, option `kernops.cuda_chunk_rows`, or `backend = "cpu"`).
#' * `kernops_error_unsupported`: a request kernops does not implement, e.g. the gradient of
#'   an ArgMin or K-min reduction, or one nested more deeply than formulas may be, or of
#'   a formula too large to write out (shared subexpressions repeated in full).
#' * `kernops_error_backend`: a backend that is not available, with the reason (`backend =
#'   "cuda"` where there is no driver, no GPU or no NVRTC; see [backend_info()]), or a GPU that
#'   failed during a computation.
#' * `kernops_error_future`: a reduction sharded over `future` workers failed in a worker
#'   (or a worker lacks kernops); it carries `shard` and the worker's condition in `parent`
#'   (see [kernops_future]).
#' * `kernops_error_interrupt`: the user interrupted a long computation (Ctrl-C). Unlike
#'   the others, this condition is not an error: like R's own interrupt it has class
#'   `c("kernops_error_interrupt", "interrupt", "condition")`, so `try()` and
#'   `tryCatch(error = )` let it through and a loop that catches errors still stops.
#'   Catch it with `tryCatch(interrupt = )` (or `kernops_error_interrupt = `); uncaught,
#'   it returns to the top level as Ctrl-C does.
#' * `kernops_error_internal`: a bug in kernops; please report it.
#'
#' Two warnings are classed alike (with `"kernops_warning"`, `"warning"`):
#' `kernops_warning_convergence`, when an iterative solver stops at `max_iter` before its
#' tolerance (it carries the error reached: `marginal_error` for [sinkhorn()], the relative
#' residual `residual` for [kernel_solve()] and [kernel_spline()]); and
#' `kernops_warning_backend`, when `backend = "auto"` chose the GPU, the GPU failed, and the
#' reduction was computed on the CPU instead.
#'
#' @name kernops_conditions
#' @examples
#' res <- tryCatch(
#'   kernel_op("Sum_Reduction(Exp(-x, 0)", "x = Vi(1)"),
#'   kernops_error_parse = function(e) conditionMessage(e)
#' )
#' cat(res)
NULL

abort_kernops <- function(message, class, ..., call = NULL) {
  cnd <- structure(
    class = c(class, "kernops_error", "error", "condition"),
    list(message = paste(message, collapse = "\n"), call = call, ...)
  )
  stop(cnd)
}

# Ctrl-C seen during a computation (the core stopped and returned "interrupt"). Signalled
# as R signals its own interrupt, a condition of class "interrupt" that is not an error:
# as an error, a try() or tryCatch(error = ) loop swallowed Ctrl-C and went on. When no
# handler exits, the abort restart returns to the top level, as R does after Ctrl-C.
signal_interrupt <- function(message, call = NULL) {
  cnd <- structure(class = c("kernops_error_interrupt", "interrupt", "condition"),
                   list(message = message, call = call))
  signalCondition(cnd)
  invokeRestart("abort")
}

# Raises the R condition for an error the core returned as data (see src/r_kernops.cpp).
raise_core_error <- function(err, call = NULL) {
  if (identical(err$kind, "interrupt")) signal_interrupt(err$message, call)
  msg <- err$message
  extra <- list()
  if (identical(err$kind, "parse") && !is.null(err$pos) && err$pos >= 0 && !is.null(err$source)) {
    msg <- c(msg, caret_lines(err$source, err$pos))
    extra <- list(pos = err$pos + 1, token = err$token, source = err$source)
  } else if (identical(err$kind, "dimension") && !is.null(err$pos) && err$pos >= 0 && !is.null(err$source)) {
    msg <- c(msg, caret_lines(err$source, err$pos))
  }
  if (!is.null(err$subtype)) extra$subtype <- err$subtype
  do.call(abort_kernops, c(list(msg, paste0("kernops_error_", err$kind), call = call), extra), quote = TRUE)
}

# "  Exp(-x, 0"
# "        ^"
caret_lines <- function(source, pos0) {
  c(paste0("  ", source), paste0("  ", strrep(" ", pos0), "^"))
}

# Calls a cpp_* function and raises its error, if any, as a classed condition.
core_call <- function(result, call = NULL, source = NULL) {
  if (inherits(result, "kernops_core_error")) {
    if (is.null(result$source) && !is.null(source)) result$source <- source
    raise_core_error(result, call = call)
  }
  result
}

`%||%` <- function(a, b) if (is.null(a)) b else a

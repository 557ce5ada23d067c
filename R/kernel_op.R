# kernel_op.R -- the entry point: compile a formula with its reduction once, call it on
# data many times.

#' Compile a kernel reduction
#'
#' `kernel_op()` parses and plans a formula once and returns a function that computes
#' the reduction on data, tile by tile, without ever storing the N x M kernel matrix.
#'
#' @section Formula syntax:
#' The formula is a KeOps string *with* its reduction, e.g.
#' `"Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)"`. Variables are declared in `args` as
#' `"x = Vi(3)"` (indexed by i, 3 columns), `"y = Vj(3)"` (indexed by j) or
#' `"s = Pm(1)"` (a parameter vector); `Vi(pos, dim)` with an explicit position also works,
#' and variables may be written inline in the formula as `Vi(0,3)`.
#'
#' Operations: `+ - * /`, unary minus, `x^n` and `Pow(x,n)` (integer n; `x^0.5` is
#' `Powf(x,0.5)`), `Square`, `Sqrt`, `Rsqrt`, `Exp`, `Log`, `Log1p` (`log(1+x)`, accurate
#' for tiny x), `Expm1` (`exp(x)-1`, likewise), `Inv`, `Abs`, `Sign`,
#' `Sin`, `Cos`, `Step` (1 for x >= 0), `ReLU`, `Clamp(x,a,b)`, `Min(a,b)`, `Max(a,b)`,
#' `IfElse(c,a,b)` (a where c >= 0); vector operations `SqNorm2`, `Norm2`, `Normalize`,
#' `Sum`, `SqDist(x,y)`, `(x|y)` (scalar product), `Elem(x,k)` and `Extract(x,start,len)`
#' (0-based), `Concat(a,b)`, `MatVecMult(A,v)`, `VecMatMult(v,A)` (matrices stored
#' row-major in a vector variable), `TensorProd(a,b)`; kernels `GaussKernel(g,x,y,b)`,
#' `LaplaceKernel`, `CauchyKernel`, `InverseMultiquadricKernel`, `Matern32Kernel`,
#' `Matern52Kernel` (with `g = 1/sigma^2`, see `vignette("kernops")`); gradients
#' `Grad(F,v,e)`. A dimension-1 value broadcasts against a vector.
#'
#' Reductions: `Sum_Reduction(F, axis)`, `Min_`, `Max_`, `ArgMin_`, `ArgMax_`,
#' `Min_ArgMin_`, `Max_ArgMax_Reduction(F, axis)`, `KMin_`, `ArgKMin_`,
#' `KMin_ArgKMin_Reduction(F, K, axis)`, `LogSumExp_Reduction(F, axis)` or
#' `LogSumExp_Reduction(F, axis, W)` (`log sum_j exp(F_ij) W_ij`), and
#' `SumSoftMaxWeight_Reduction(F, axis, V)` (`sum_j exp(F_ij) V_ij / sum_j exp(F_ij)`).
#'
#' @section The axis:
#' The axis follows the KeOps convention, which is easy to get backwards when N = M:
#' **`axis = 0` means the result is indexed by i** (one row per row of the `Vi`
#' arguments) and the sum runs over j; **`axis = 1` means the result is indexed by j**
#' and the sum runs over i.
#'
#' @section Fast paths:
#' The planner recognises common shapes and evaluates them with specialised code, chosen
#' automatically and giving the generic evaluator's results (to the last bits): radial
#' kernels `phi(s * |x - y|^2)` (the six named kernels and the usual hand-written
#' spellings such as `Exp(-s*SqNorm2(x-y))` or `Exp(-SqDist(x,y)/(s*s))`) are computed in
#' one fused pass, and squared distances in dimension 16 or more are computed for groups
#' of rows at once (register-blocked, exact difference form). `print(op)` lists the fast
#' paths an operation takes.
#'
#' @section Floating point:
#' Results agree with base R's to a few units in the last place (the tests compare them
#' with dense R references), not to the bit: `Exp`, `Log`, `Sin`, `Cos` are kernops' own
#' vectorised functions (within 1-2 ulps of the C library's), sums run in another order,
#' and FMA instructions are used where the processor has them. Like a compiler's
#' fast-math mode, the planner also regroups products of scalar factors so that those
#' depending only on i, only on j or on parameters are multiplied once (`x*y*s` as
#' `y*(x*s)`), and turns a division by a parameter `c` into a multiplication by `1/c`.
#' That changes results by an ulp or two, except where an intermediate result overflows
#' or underflows: with factors beyond about 1e150 or below 1e-150, or a `c` below 1e-308,
#' a formula that R evaluates to a finite number can give `Inf` or 0 here; rescale such
#' data first. As in KeOps, `0 * f` is simplified to 0 when the formula is compiled,
#' even where `f` would be infinite or NaN.
#'
#' Subnormal numbers are flushed to zero while a reduction runs: any intermediate result
#' below the smallest normal number (about 2.2e-308 in float64, 1.2e-38 in float32)
#' becomes 0, so contributions that small are dropped from a sum and the rest of the
#' result is unchanged (a LogSumExp, whose terms are scaled by the largest, not at all).
#' `exp(-s*SqDist(x,y))` at a small bandwidth is then as fast as at a large one: on Intel
#' processors each subnormal operation costs about a hundred cycles, and made such
#' reductions 6-22 times slower. Subnormal input data is used as given on x86 (on ARM64 it
#' reads as 0). R's own arithmetic is not affected: the calling thread's floating-point
#' state is restored after every call, also when it fails or is interrupted.
#'
#' @section NaN and Inf:
#' Data must be finite (an `NA`, `NaN` or `Inf` argument is a `kernops_error_input`), but
#' a formula can make them: `Log(x)` for x < 0, `0/0`, `Inv(x - y)` where x = y. They
#' follow R's rules:
#' * Elementwise operations give NaN for a NaN argument, as R's `sign(NaN)`,
#'   `NaN >= 0`, `ifelse(NaN, a, b)` and `pmin(1, NaN)` do: `Sign(NaN)`, `Step(NaN)`,
#'   `ReLU(NaN)`, `IfElse(NaN, a, b)` and `Clamp` with any NaN argument are NaN, and
#'   `Min(a, b)` / `Max(a, b)` are NaN when either argument is, in either order.
#' * Powers: `x^n` and `Pow(x, n)` with a whole n, and `Powf(x, y)` with a negative x and
#'   a whole y, are R's `x^n` (`(-2)^3 = -8`, `(-1)^1000001 = -1`); a negative x with a
#'   fractional y gives NaN, like `(-2)^0.5`. `x^0 = 1` for every x. Powers with
#'   |n| > 2048 are computed as `exp(n log|x|)` (relative error about 1e-13, where
#'   repeated squaring would lose 1e-10 at n = 1e6).
#' * `Rsqrt(0) = Inf` and `Inv(0) = Inf` (R's `1/sqrt(0)`), so `Normalize(0)` is NaN.
#' * `Sum_Reduction`, `LogSumExp_Reduction` and `SumSoftMaxWeight_Reduction` propagate
#'   NaN: one NaN term makes the result NaN, as `sum()` does.
#' * `Min_`, `Max_`, `ArgMin_`, `ArgMax_`, `KMin_` and `ArgKMin_Reduction` skip NaN
#'   terms, like `min(x, na.rm = TRUE)` (R's `min(c(1, NaN))` is NaN; here it is 1): a
#'   nearest-neighbour search keeps its valid neighbours when some pairs give NaN, as in
#'   KeOps. A row whose terms are all NaN gives `NaN` (and index `NA`), never `Inf`; a
#'   K-min row with fewer than K non-NaN terms is padded with `NaN` / `NA`.
#' * float32 sums accumulate in double: a block whose float32 partial sum would overflow
#'   is summed again in double, so `3e38` summed over 100 points is `3e40`, as in
#'   float64. A formula whose own values overflow float32 (`x*y` beyond 3.4e38) is `Inf`.
#'
#' @section Differences from KeOps:
#' Formulas are KeOps' and give KeOps' results to rounding (237 formulas, every operation
#' and reduction, were run through KeOps 2.3 and kernops on the same data), except in
#' these cases, which a user moving from KeOps or rkeops would otherwise trip over
#' silently:
#' * **`Rsqrt(0)` is `Inf` here, 0 in KeOps.** A self-interaction kernel such as
#'   `Sum_Reduction(Rsqrt(SqDist(x,y))*b, 0)` with `y = x` silently drops the i = j term
#'   in KeOps and gives `Inf` here; `Normalize(x - y)` at x = y is NaN here, 0 there. We
#'   keep IEEE's (and R's) `1/sqrt(0) = Inf` so that a singular term is never dropped
#'   without the user saying so; write it explicitly:
#'   `IfElse(-SqDist(x,y), 0, Rsqrt(SqDist(x,y)))*b` (0 where the points coincide).
#'   Gradients of `Sqrt(SqDist(x,y))` (Laplace, Matern kernels) are 0 where x = y, as in
#'   KeOps.
#' * **`f - f` is computed, not simplified.** KeOps simplifies `f - f` to 0 when it
#'   builds a formula; here it is evaluated, so it is NaN where `f` is `Inf` or NaN
#'   (`Inv(x-y) - Inv(x-y)` at x = y).
#' * **All-NaN rows** of `Min_` / `ArgMin_` (and `Max`) give `NaN` / `NA` here, `+Inf` /
#'   index 0 in KeOps. K-min rows with fewer than K non-NaN terms are padded with
#'   `NaN` / `NA` here, `+Inf` / 0 there; `K` larger than the number of points reduced
#'   over is an error here (`kernops_error_input`), padded there.
#' * **NaN in elementwise operations** propagates (section "NaN and Inf"). In KeOps (and
#'   earlier kernops) a comparison with NaN picks a branch: `Step(NaN)` is 1, `Sign(NaN)`
#'   is 0, `IfElse(NaN, a, b)` is `b`, and `Min` / `Max` depend on the argument order.
#' * **K-min columns** follow KeOps: for a formula of dimension D, `KMin_Reduction(F, K,
#'   axis)` returns K*D columns in K-major order, column `q*D + k` (0-based) holding the
#'   (q+1)-th smallest value of component k+1: the D components' smallest first, then
#'   their second smallest, and so on (earlier kernops versions were component-major).
#' * Indices are 1-based (`ArgMin` of the first point is 1), as everywhere in R; KeOps'
#'   Python API is 0-based.
#'
#' @param formula A single string: the formula with its reduction. Or a one-sided R
#'   formula `~ expr` written with the LazyTensor functions (see [kernel_formula]).
#' @param args A character vector of variable declarations, e.g.
#'   `c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)")`. Their order is the order
#'   of the arguments of the returned function (with explicit positions, `"x = Vi(0, 3)"`,
#'   the positions' order).
#' @param dtype `"float64"` (default) or `"float32"`: the precision of the computation
#'   (inputs are converted, sums accumulate block-wise in double, results are doubles).
#' @param backend `"auto"` (default), `"cpu"` or `"cuda"`. `"auto"` follows option
#'   `kernops.backend` when it is set (to `"cpu"`, `"cuda"` or `"auto"`); otherwise each
#'   call runs on the GPU when CUDA is usable and the problem has at least
#'   `getOption("kernops.cuda_min_pairs", 1e7)` pairs (N x M), else on the CPU. That
#'   threshold is a guess, not a measured crossover. `"cuda"` raises a
#'   `kernops_error_backend` condition saying why when CUDA is not usable (no driver, no GPU,
#'   no NVRTC); see [backend_info()].
#' @return A function of class `kernops_op` whose arguments are the declared variables,
#'   called by name or position with numeric matrices (rows = points) or vectors (one
#'   column for `Vi`/`Vj`, the values of a `Pm`). It returns a numeric matrix with one
#'   row per output point; `ArgMin`-type reductions return 1-based integer indices, and
#'   `Min_ArgMin`-type reductions a list with `values` and `indices`.
#' @seealso [kernops_conditions] for the errors, [kernops_threads()] for threads.
#' @export
#' @examples
#' # The Gaussian convolution gamma_i = sum_j exp(-s |x_i - y_j|^2) b_j
#' op <- kernel_op(
#'   "Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)",
#'   c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)")
#' )
#' op
#' x <- matrix(runif(300), 100, 3)
#' y <- matrix(runif(600), 200, 3)
#' b <- matrix(rnorm(1200), 200, 6)
#' gamma <- op(x = x, y = y, b = b, s = 10)
#' dim(gamma)
#' # the same with the dense kernel matrix, only possible for small sizes
#' K <- exp(-10 * (outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)))
#' all.equal(gamma, K %*% b)
#'
#' # Differences from KeOps: Rsqrt(0) = Inf, and how to drop the i = j term
#' x <- matrix(c(0, 1, 3), 3, 1)
#' b <- matrix(1, 3, 1)
#' rs <- kernel_op("Sum_Reduction(Rsqrt(SqDist(x,y))*b, 0)", c("x = Vi(1)", "y = Vj(1)", "b = Vj(1)"))
#' rs(x, x, b)  # Inf: the i = j terms
#' rs0 <- kernel_op("Sum_Reduction(IfElse(-SqDist(x,y), 0, Rsqrt(SqDist(x,y)))*b, 0)",
#'                  c("x = Vi(1)", "y = Vj(1)", "b = Vj(1)"))
#' rs0(x, x, b)  # what KeOps returns for the first formula
#' # NaN rules: Min_Reduction skips NaN terms
#' mn <- kernel_op("Min_ArgMin_Reduction(Log(x - y - 0.5), 0)", c("x = Vi(1)", "y = Vj(1)"))
#' mn(x, x)  # Log of a negative number is NaN, skipped; row 1 has nothing else: NaN, NA
#' # K-min of a vector formula: K-major columns, as in KeOps
#' km <- kernel_op("KMin_Reduction(y - x, 2, 0)", c("x = Vi(2)", "y = Vj(2)"))
#' km(matrix(0, 1, 2), matrix(c(1, 2, 3, 30, 20, 10), 3, 2))  # 1 10 2 20
kernel_op <- function(formula, args, dtype = c("float64", "float32"),
                      backend = c("auto", "cpu", "cuda")) {
  call <- sys.call()
  # [LazyTensor issue] R formulas `~ expr` (and quoted calls) -> a KeOps string; see lazy_formula.R.
  if (inherits(formula, "formula") || is.call(formula) || is.expression(formula))
    formula <- lazy_formula_string(formula, args, parent.frame(), call)
  check_string(formula, "formula", call)
  if (!is.character(args) || anyNA(args))
    abort_kernops("`args` must be a character vector of declarations such as \"x = Vi(3)\".",
                  "kernops_error_input", call = call)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)

  state <- new.env(parent = emptyenv())
  state$source <- formula
  state$args <- unname(args)
  state$dtype <- dtype
  state$backend <- backend
  compile_state(state, call)
  new_kernel_op(state, call)
}

compile_state <- function(state, call = NULL) {
  res <- core_call(cpp_compile(state$source, state$args), call = call, source = state$source)
  for (nm in names(res)) assign(nm, res[[nm]], envir = state)
  invisible(state)
}

new_kernel_op <- function(state, call = NULL) {
  function_of_args(state$vars$name, quote(run_kernel_op(.kernops_state, environment())),
                   list(.kernops_state = state), "kernops_op", call)
}

# A function whose (required) arguments are `arg_names`, then `...`, and whose body is
# `body`, evaluated with `payload` (a named list) in scope: the shape shared by compiled
# operations and their gradients, so that users call them like any R function and read
# their arguments with formals(). The `...` takes what R would reject with an unclassed
# "unused argument" error, which check_args() raises as a kernops_error_input instead.
function_of_args <- function(arg_names, body, payload, class, call = NULL) {
  long <- arg_names[nchar(arg_names, type = "bytes") > 10000L]
  if (length(long))
    abort_kernops(sprintf("The variable name `%s...` is longer than R's limit for argument names (10000 bytes).",
                          substr(long[1], 1, 20)), "kernops_error_input", call = call)
  f <- function() NULL
  formals(f) <- stats::setNames(rep(list(quote(expr = )), length(arg_names) + 1L), c(arg_names, "..."))
  body(f) <- body
  env <- list2env(payload, parent = asNamespace("kernops"))
  environment(f) <- env
  structure(f, class = c(class, "function"))
}

# Raises kernops_error_input for an argument given beyond `arg_names` (in the `...` of
# `env`), then for the first of `arg_names` missing in `env`.
check_args <- function(arg_names, env, call, describe = function(nm) "") {
  if (eval(quote(...length()), env) > 0L) {
    extra <- eval(quote(as.list(substitute(list(...)))[-1L]), env)
    tags <- names(extra) %||% rep("", length(extra))
    shown <- vapply(seq_along(extra), function(k) {
      value <- extra[[k]]
      text <- if (is.language(value) || (is.atomic(value) && length(value) == 1)) {
        paste(deparse(value, width.cutoff = 60L, nlines = 1L), collapse = "")
      } else {
        sprintf("<%s>", describe_type(value))
      }
      if (nzchar(tags[k])) paste(tags[k], "=", text) else text
    }, "")
    named <- nzchar(tags)
    hint <- if (any(named)) sprintf("`%s` is not one of them", tags[named][1]) else sprintf("it takes %d", length(arg_names))
    abort_kernops(sprintf("Unused argument%s %s: this function's arguments are %s (%s).",
                          if (length(extra) > 1) "s" else "", paste0("`", shown, "`", collapse = ", "),
                          paste0("`", arg_names, "`", collapse = ", "), hint),
                  "kernops_error_input", call = call)
  }
  for (nm in arg_names)
    if (eval(call("missing", as.name(nm)), env))
      abort_kernops(sprintf("Argument `%s` is missing%s.", nm, describe(nm)), "kernops_error_input", call = call)
}

run_kernel_op <- function(state, env) {
  call <- sys.call(-1)
  vars <- state$vars
  check_args(vars$name, env, call,
             function(nm) sprintf(" (declared as %s)", state$decls[match(nm, vars$name)]))
  max_bytes <- max_output_bytes(call)
  data <- lapply(vars$name, function(nm) as_kernel_data(get(nm, envir = env), nm, call, max_bytes))
  # Opt-in: shards over the user's future::plan() (future.R), computed on the workers' CPUs;
  # an op made with backend = "cuda" stays on this process's GPU.
  res <- if (isTRUE(getOption("kernops.future")) && state$backend != "cuda") run_sharded(state, data, call, max_bytes) else
    run_local(state, data, call, max_bytes)
  shape_result(res, state$reduction)
}

run_local <- function(state, data, call, max_bytes) {
  # The compiled plan lives in C++ memory: after saveRDS()/readRDS() it is rebuilt.
  if (!cpp_plan_valid(state$ptr)) compile_state(state, call)
  backend <- run_backend(state, data, call)
  run <- function(backend) {
    core_call(cpp_run(state$ptr, data, state$dtype, kernops_threads(), max_bytes,
                      debug_interrupt_after(call),
                      cpu_isa_level(), isTRUE(getOption("kernops.progress", interactive())),
                      backend, if (backend == "cuda") cuda_chunk_rows(call) else 0),
              call = call)
  }
  if (backend == "cuda" && state$backend == "auto") {
    # "auto" chose the GPU: if it fails, say so once and compute on the CPU, which shares
    # nothing with it. A failed device is marked unusable for the session (cpp_cuda_why()
    # says why), so later calls go straight to the CPU; a formula the GPU cannot serve (its
    # values too wide for a thread, say) leaves the device usable and is remembered by this
    # op, which then stays on the CPU without a warning per call (run_backend()).
    tryCatch(run("cuda"), kernops_error_backend = function(e) {
      if (!nzchar(cpp_cuda_why())) state$cuda_refused <- conditionMessage(e)
      warn_backend_fallback(conditionMessage(e), call)
      run("cpu")
    })
  } else {
    run(backend)
  }
}

# Option kernops.max_output_bytes (default 2^34, 16 GiB), checked: a string or a vector
# there used to surface as an Rcpp conversion error.
max_output_bytes <- function(call) {
  v <- getOption("kernops.max_output_bytes", 2^34)
  if (!is.numeric(v) || length(v) != 1 || is.na(v) || v <= 0)
    abort_kernops("Option `kernops.max_output_bytes` must be a single positive number of bytes.",
                  "kernops_error_input", call = call)
  as.double(v)
}

# Test hook (option kernops.debug_interrupt_after): the glue reports an interrupt after
# this many polls; -1, the default, never. Checked: a vector there reached Rcpp's
# unclassed "Expecting a single value".
debug_interrupt_after <- function(call) {
  v <- getOption("kernops.debug_interrupt_after")
  if (is.null(v)) return(-1L)
  if (!is.numeric(v) || length(v) != 1 || is.na(v) || v != round(v) || v < -1 || v > .Machine$integer.max)
    abort_kernops("Option `kernops.debug_interrupt_after` must be a single whole number, -1 (never) or more.",
                  "kernops_error_input", call = call)
  as.integer(v)
}

# Converts one argument to a double matrix or vector, or raises kernops_error_input.
as_kernel_data <- function(x, name, call, max_bytes = Inf) {
  if (is.data.frame(x)) {
    if (!all(vapply(x, is.numeric, logical(1))))
      abort_kernops(sprintf("Argument `%s` is a data frame with non-numeric columns.", name),
                    "kernops_error_input", call = call)
    x <- as.matrix(x)
  }
  if (inherits(x, "kernops_lazy"))
    abort_kernops(sprintf("Argument `%s` is a symbolic LazyTensor; pass its data (a numeric matrix).", name),
                  "kernops_error_input", call = call)
  if (!(is.double(x) || is.integer(x)) || is.factor(x))
    abort_kernops(sprintf("Argument `%s` must be a numeric matrix or vector, not %s%s.", name, describe_type(x),
                          if (is.logical(x)) " (for 0/1 values, pass +x or x * 1)" else ""),
                  "kernops_error_input", call = call)
  d <- dim(x)
  if (!is.null(d) && length(d) > 2)
    abort_kernops(sprintf("Argument `%s` must be a matrix or a vector, not a %d-dimensional array.", name, length(d)),
                  "kernops_error_input", call = call)
  if (is.double(x) && length(x) < 1e6) return(x)  # the common case, without as_double_data()'s checks
  as_double_data(x, sprintf("Argument `%s`", name), call, max_bytes)
}

# Numeric data as doubles in memory, the engine's input. Converting integers, or writing
# out a compact sequence (1:3e9 takes no memory until its values are read), allocates
# 8 bytes a value: bounded by option kernops.max_output_bytes, and R's failure to
# allocate is classed. Before, the 24 GB of 1:3e9 were allocated unchecked (when the
# engine read them), and R either failed unclassed or was killed by the system.
as_double_data <- function(x, what, call, max_bytes = max_output_bytes(call)) {
  # (the ALTREP test only for large vectors: writing out a small one costs nothing)
  if (is.double(x) && (length(x) < 1e6 || !cpp_unmaterialised(x))) return(x)
  bytes <- 8 * length(x)
  too_large <- function() {
    abort_kernops(sprintf("%s (%.0f values) would need %s in memory as doubles, %s.", what, as.double(length(x)),
                          format_bytes(bytes), if (bytes > max_bytes) {
                            sprintf("more than the limit of %s (option kernops.max_output_bytes)", format_bytes(max_bytes))
                          } else "which R could not allocate"),
                  "kernops_error_memory", call = call)
  }
  if (bytes > max_bytes) too_large()
  tryCatch(if (is.double(x)) x * 1 else {
    storage.mode(x) <- "double"
    x
  }, error = function(e) if (grepl("allocate", conditionMessage(e))) too_large() else stop(e))
}

# "96 bytes", "1.5 MB", "24 GB" (decimal units, as the memory errors of the glue).
format_bytes <- function(bytes) {
  if (bytes < 1e3) return(sprintf("%.0f bytes", bytes))
  units <- c(kB = 1e3, MB = 1e6, GB = 1e9, TB = 1e12)
  u <- units[max(which(bytes >= units))]
  sprintf("%.3g %s", bytes / u, names(u))
}

# The indices arrive 1-based, as an integer matrix with NA for none (cpp_run).
shape_result <- function(res, reduction) {
  switch(reduction,
    ArgMin_Reduction = , ArgMax_Reduction = , ArgKMin_Reduction = res$indices,
    Min_ArgMin_Reduction = , Max_ArgMax_Reduction = , KMin_ArgKMin_Reduction =
      list(values = res$values, indices = res$indices),
    res$values
  )
}

#' @export
print.kernops_op <- function(x, ...) {
  s <- environment(x)$.kernops_state
  red <- sub("_Reduction$", "", s$reduction)
  over <- if (s$axis == 0) "j (result indexed by i)" else "i (result indexed by j)"
  cat("<kernops_op> ", red, " reduction over ", over, "\n", sep = "")
  formula <- if (is.na(s$formula)) "(too large to write out: it repeats shared subexpressions in full)" else s$formula
  cat("  formula: ", formula, "\n", sep = "")
  v <- s$vars
  cat("  variables:\n")
  kind <- c(i = "Vi", j = "Vj", parameter = "Pm")[v$index]
  width <- max(nchar(v$name))
  for (k in seq_along(v$name))
    cat(sprintf("    %-*s  %s  dim %d  (argument %d)\n", width, v$name[k], kind[k], v$dim[k], v$pos[k] + 1))
  rows <- if (s$axis == 0) c("N", "N = rows of the Vi arguments") else c("M", "M = rows of the Vj arguments")
  cat(sprintf("  output: %s x %d matrix (%s)\n", rows[1], s$out_dim, rows[2]))
  cat(sprintf("  dtype: %s, backend: %s\n", s$dtype, s$backend))
  if (length(s$fast_paths)) cat("  fast paths: ", paste(s$fast_paths, collapse = "; "), "\n", sep = "")
  invisible(x)
}

#' @export
as.character.kernops_op <- function(x, ...) environment(x)$.kernops_state$formula

#' @export
format.kernops_op <- function(x, ...) as.character.kernops_op(x)

# grad.R -- gradients of reductions, built from the symbolic Grad(F, v, e) of the core.
#
# For out = Red_j F(x_i, y_j) (axis 0; axis 1 swaps the roles), and a direction E with
# out's shape, kernel_grad() computes the gradient of <E, out> with respect to one
# argument v:
#   Sum:        d/dv sum_j F_ij        = sum_j Grad(F, v, e_i)
#   LogSumExp:  d/dv log sum_j e^F W  = sum_j Grad(Exp(F - L) * W, v, e_i), L = out held fixed
#   SoftMax:    d/dv sum_j e^F V / sum_j e^F = sum_j Grad(Exp(F - L) * (V - O), v, e_i),
#               L = LogSumExp of F, O = out, both held fixed
#   Min / Max:  d/dv F(x_i, y_j*(i)) with j*(i) the selected index: the reduced-side
#               arguments are gathered at j* in R, Grad(F, v, e_i) is evaluated on those
#               pairs, and gradients of reduced-side arguments are scattered back (rowsum)
# The sum runs over j when v is indexed like the result (one row per output point), over
# i when v is on the reduced side (one row per reduced point), and over both for a
# parameter (the i-indexed rows are then added up in R). The stable forms reuse the
# forward result, so no exp(F) ever overflows.

differentiable_reductions <- c("Sum_Reduction", "LogSumExp_Reduction", "SumSoftMaxWeight_Reduction",
                               "Min_Reduction", "Max_Reduction")

#' Gradients of a kernel reduction
#'
#' `kernel_grad()` differentiates a compiled reduction symbolically and returns a new
#' function computing the gradient of `<direction, op(...)>` with respect to one or
#' more arguments: the vector-Jacobian product that backpropagation needs.
#' `kernel_value_and_grad()` is the common special case of the gradient of
#' `sum(op(...))`, a scalar objective.
#'
#' Differentiable reductions: `Sum_Reduction`, `LogSumExp_Reduction` (with or without
#' weight; the gradient uses the softmax weights, computed stably from the forward
#' result), `SumSoftMaxWeight_Reduction`, and `Min_Reduction` / `Max_Reduction` of a
#' dimension-1 formula (the gradient flows through the selected pair; ties go to the
#' first index). ArgMin/ArgMax (piecewise constant), `Min_ArgMin`-type and the K-min
#' family raise a `kernops_error_unsupported` condition. At kinks
#' (`Abs`, `ReLU`, `Step`, `Clamp`, `Min`/`Max`, `IfElse`) the usual subgradient is used.
#'
#' Each gradient is the sum over the other index: for an argument indexed like the
#' result (e.g. a `Vi` of an axis-0 reduction) one row per output point; for an argument
#' on the reduced side one row per reduced point; for a parameter a vector summed over
#' all pairs. An argument that appears with both roles of a symmetric formula (such as
#' `q` in the Hamiltonian example) is passed twice, once per role, and its gradient is the
#' sum of the two.
#'
#' @param op A `kernops_op` from [kernel_op()].
#' @param wrt Names of the arguments to differentiate with respect to.
#' @param direction Name of the direction argument of the returned function (it must
#'   not clash with the names of `op`'s arguments).
#' @param backend `NULL` (default: `op`'s backend) or `"auto"`, `"cpu"`, `"cuda"`: where
#'   the gradient's reductions run (see [kernel_op()]).
#' @return `kernel_grad()`: a function of class `kernops_grad_op` taking `op`'s arguments
#'   plus `direction` (a matrix shaped like `op`'s result) and returning the gradient: a
#'   matrix (or a vector for a parameter), or a named list of them when `wrt` has several
#'   names.
#' @seealso [kernel_op()]
#' @export
#' @examples
#' # H(q, p) = 1/2 sum_ij exp(-|q_i - q_j|^2 / s^2) <p_i, p_j>
#' H <- kernel_op("Sum_Reduction(Exp(-SqDist(qi,qj)/(s*s)) * (pi|pj), 0)",
#'                c("qi = Vi(3)", "qj = Vj(3)", "pi = Vi(3)", "pj = Vj(3)", "s = Pm(1)"))
#' q <- matrix(rnorm(300), 100, 3)
#' p <- matrix(rnorm(300), 100, 3)
#' vg <- kernel_value_and_grad(H, qi = q, qj = q, pi = p, pj = p, s = 0.5, wrt = c("qi", "pi"))
#' value <- vg$value / 2
#' # by symmetry, the gradients with respect to both roles are equal:
#' dH_dq <- vg$gradient$qi
#' dH_dp <- vg$gradient$pi
kernel_grad <- function(op, wrt, direction = "direction", backend = NULL) {
  call <- sys.call()
  state <- op_state(op, call)
  if (!is.null(backend)) {
    # the gradient's own reductions on another backend: a copy of the op's state, so that
    # the op itself keeps its backend
    backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
    state <- list2env(mget(ls(state, all.names = TRUE), envir = state), parent = emptyenv())
    state$backend <- backend
  }
  check_wrt_given(missing(wrt), state, call)
  if (!(state$reduction %in% differentiable_reductions))
    abort_kernops(sprintf("%s is not differentiable in this version (differentiable: %s).",
                          state$reduction, paste(differentiable_reductions, collapse = ", ")),
                  "kernops_error_unsupported", call = call)
  groups <- grad_groups(state, wrt, call)
  wrt <- unique(wrt)
  check_string(direction, "direction", call)
  if (is.null(valid_name(direction)))
    abort_kernops(sprintf("`direction` must be a variable name (a letter, then letters, digits, _ or .) that is not a function of the formula language, not \"%s\".",
                          direction), "kernops_error_input", call = call)
  if (direction %in% state$vars$name)
    abort_kernops(sprintf("The direction name `%s` is already an argument of the operation; choose another `direction`.",
                          direction), "kernops_error_input", call = call)
  groups <- groups[lengths(groups) > 0]
  grad_state <- list(op = op, state = state, wrt = wrt, direction = direction)
  if (state$reduction %in% c("Min_Reduction", "Max_Reduction")) {
    if (state$formula_dim != 1)
      abort_kernops(sprintf("Gradients of %s are implemented for a formula of dimension 1, not %d.",
                            state$reduction, state$formula_dim), "kernops_error_unsupported", call = call)
    grad_state$select <- generated_formulas(build_select_grad(state, wrt, direction), call)
  } else {
    grad_state$plans <- generated_formulas(lapply(names(groups), function(g)
      build_grad_op(state, groups[[g]], direction, reduced_side = g == "red")), call)
  }
  new_grad_op(grad_state, call)
}

# The names of `wrt`, checked and de-duplicated, by side: one compiled reduction per side,
# the output side (and parameters) and the reduced side.
grad_groups <- function(state, wrt, call) {
  vars <- state$vars
  if (!is.character(wrt) || length(wrt) == 0 || anyNA(wrt))
    abort_kernops("`wrt` must name one or more arguments of the operation.", "kernops_error_input", call = call)
  unknown <- setdiff(wrt, vars$name)
  if (length(unknown))
    abort_kernops(sprintf("Cannot differentiate with respect to %s: the operation's arguments are %s.",
                          paste0("`", unknown, "`", collapse = ", "), paste0("`", vars$name, "`", collapse = ", ")),
                  "kernops_error_input", call = call)
  wrt <- unique(wrt)
  red_index <- if (state$axis == 0) "j" else "i"
  idx <- vars$index[match(wrt, vars$name)]
  list(out = wrt[idx != red_index], red = wrt[idx == red_index])
}

# Min/Max: Grad(F, v, e) evaluated on the selected pairs (i, j*(i)). Every argument of
# the reduced side is redeclared on the output side (its rows gathered at j* in R), and a
# one-row dummy stands for the reduced side, so the "reduction" has a single term.
build_select_grad <- function(state, wrt, direction) {
  vars <- state$vars
  out_cat <- if (state$axis == 0) "Vi" else "Vj"
  red_cat <- if (state$axis == 0) "Vj" else "Vi"
  red_index <- if (state$axis == 0) "j" else "i"
  decls <- ifelse(vars$index == red_index, sprintf("%s = %s(%d,%d)", vars$name, out_cat, vars$pos, vars$dim),
                  state$decls)
  npos <- length(vars$name)
  dummy <- unique_name("selected_pair", c(vars$name, direction))
  decls <- c(decls, sprintf("%s = %s(%d,1)", dummy, red_cat, npos), sprintf("%s = %s(%d,1)", direction, out_cat, npos + 1L))
  grads <- vapply(wrt, function(v) sprintf("Grad(%s,%s,%s)", state$f, v, direction), "")
  body <- Reduce(function(a, b) sprintf("Concat(%s,%s)", a, b), grads)
  which_op <- sub("_Reduction$", "", state$reduction)
  list(op = kernel_op(sprintf("Sum_Reduction(%s,%d)", body, state$axis), decls, dtype = state$dtype, backend = state$backend),
       arg_op = kernel_op(sprintf("Arg%s_Reduction(%s,%d)", which_op, state$f, state$axis), state$decls,
                          dtype = state$dtype, backend = state$backend),
       red_index = red_index)
}

run_select_grad <- function(g, args, direction, call) {
  s <- g$select
  vars <- g$state$vars
  sel <- as.vector(do.call(s$arg_op, args))
  # checked here, before it is indexed by `none` (the Sum gradients leave it to the core)
  direction <- as.matrix(as_kernel_data(direction, g$direction, call))
  if (!identical(dim(direction), c(length(sel), 1L)))
    abort_kernops(sprintf("Argument `%s` must have one row per row of the result (%d) and one column, not %d x %d.",
                          g$direction, length(sel), nrow(direction), ncol(direction)),
                  "kernops_error_dimension", call = call)
  none <- is.na(sel)  # every value was NaN: no selected pair, no gradient (zeroed below)
  sel[none] <- 1L
  direction[none, ] <- 0
  red <- vars$index == s$red_index
  m <- NA_integer_
  gathered <- args
  for (k in which(red)) {
    a <- as.matrix(args[[k]])
    m <- nrow(a)
    gathered[[k]] <- a[sel, , drop = FALSE]
  }
  res <- do.call(s$op, unname(c(gathered, list(0, direction))))
  res[none, ] <- 0  # the stand-in pair's gradient may be NaN itself (0 * NaN)
  out <- list()
  col <- 0L
  for (v in g$wrt) {
    k <- match(v, vars$name)
    val <- res[, col + seq_len(vars$dim[k]), drop = FALSE]
    col <- col + vars$dim[k]
    out[[v]] <- if (vars$index[k] == "parameter") {
      colSums(val)
    } else if (red[k]) {  # scatter the per-output-point contributions back to j* (or i*)
      full <- matrix(0, m, vars$dim[k])
      agg <- rowsum(val, sel)
      full[as.integer(rownames(agg)), ] <- agg
      full
    } else {
      val
    }
  }
  if (length(out) == 1) out[[1]] else out
}

# Builds the compiled reduction for the gradients with respect to `names`, all on the
# same side, stacked with Concat so that shared subexpressions are computed once.
# The gradient reduction of one side. `direction` names the direction argument; NULL
# means a direction of ones written into the formula (kernel_value_and_grad), and then
# `with_value` also puts F itself first in the Concat, so that value and gradients come
# from one pass that computes the kernel once.
build_grad_op <- function(state, names, direction, reduced_side, with_value = FALSE) {
  vars <- state$vars
  taken <- c(vars$name, direction)
  fresh <- function(base) {  # a declaration name clashing with no argument nor earlier fresh name
    nm <- unique_name(base, taken)
    taken <<- c(taken, nm)
    nm
  }
  out_cat <- if (state$axis == 0) "Vi" else "Vj"
  npos <- length(vars$name)
  decls <- state$decls
  add_decl <- function(name, dim) {
    decls <<- c(decls, sprintf("%s = %s(%d,%d)", name, out_cat, npos, dim))
    npos <<- npos + 1L
  }
  if (is.null(direction)) {
    direction <- if (state$out_dim == 1) "1" else sprintf("SumT(1,%d)", state$out_dim)
  } else {
    add_decl(direction, state$out_dim)
  }
  inner <- state$f
  fixed <- character()
  if (state$reduction == "LogSumExp_Reduction") {
    lse <- fresh("forward_result")
    add_decl(lse, state$out_dim)
    weight <- if (nzchar(state$f2)) sprintf("(%s)", state$f2) else "1"
    inner <- sprintf("Exp(%s-%s)*%s", paren(state$f), lse, weight)
    fixed <- c(forward = lse)
  } else if (state$reduction == "SumSoftMaxWeight_Reduction") {
    lse <- fresh("forward_lse")
    out <- fresh("forward_result")
    add_decl(lse, 1L)
    add_decl(out, state$out_dim)
    inner <- sprintf("Exp(%s-%s)*(%s-%s)", paren(state$f), lse, paren(state$f2), out)
    fixed <- c(lse = lse, forward = out)
  }
  grads <- vapply(names, function(v) sprintf("Grad(%s,%s,%s)", inner, v, direction), "")
  if (with_value) grads <- c(state$f, grads)
  body <- if (length(grads) == 1) grads else Reduce(function(a, b) sprintf("Concat(%s,%s)", a, b), grads)
  axis <- if (reduced_side) 1L - state$axis else state$axis
  formula <- sprintf("Sum_Reduction(%s,%d)", body, axis)
  op <- kernel_op(formula, decls, dtype = state$dtype, backend = state$backend)
  list(op = op, names = names, dims = state$vars$dim[match(names, state$vars$name)],
       params = state$vars$index[match(names, state$vars$name)] == "parameter", fixed = fixed,
       value_dim = if (with_value) state$out_dim else 0L)
}

# Adds the gradients held in the columns of `res` (after p$value_dim value columns) to
# the named list `out`.
split_grad_columns <- function(res, p, out) {
  col <- p$value_dim
  for (k in seq_along(p$names)) {
    cols <- col + seq_len(p$dims[k])
    val <- res[, cols, drop = FALSE]
    out[[p$names[k]]] <- if (p$params[k]) colSums(val) else val
    col <- col + p$dims[k]
  }
  out
}

paren <- function(s) sprintf("(%s)", s)

new_grad_op <- function(g, call = NULL) {
  function_of_args(c(g$state$vars$name, g$direction), quote(run_grad_op(.kernops_grad, environment())),
                   list(.kernops_grad = g), "kernops_grad_op", call)
}

run_grad_op <- function(g, env) {
  call <- sys.call(-1)
  check_args(c(g$state$vars$name, g$direction), env, call)
  args <- mget(g$state$vars$name, envir = env)
  direction <- get(g$direction, envir = env)
  if (!is.null(g$select)) return(run_select_grad(g, args, direction, call))
  # Forward quantities held fixed in the stable LogSumExp / SoftMax gradients.
  forward <- NULL
  lse <- NULL
  red <- g$state$reduction
  if (red == "LogSumExp_Reduction") {
    forward <- check_forward(do.call(g$op, args), g$state, call)
  } else if (red == "SumSoftMaxWeight_Reduction") {
    lse_op <- lse_companion(g)
    lse <- check_forward(do.call(lse_op, args), g$state, call)
    forward <- check_forward(do.call(g$op, args), g$state, call)
  }
  out <- list()
  for (p in g$plans) {
    extra <- list(direction)
    if (!is.null(p$fixed) && length(p$fixed)) {
      if ("lse" %in% names(p$fixed)) extra <- c(extra, list(lse))
      extra <- c(extra, list(forward))
    }
    out <- split_grad_columns(do.call(p$op, unname(c(args, extra))), p, out)
  }
  out <- out[g$wrt]
  if (length(out) == 1) out[[1]] else out
}

# The forward quantities that the LogSumExp / SoftMax gradients hold fixed must be finite:
# passed on as they were, an Inf there was reported as bad data in `forward_result`, an
# argument the user never gave.
check_forward <- function(value, state, call) {
  bad <- which(!is.finite(value))
  if (length(bad)) {
    row <- (bad[1] - 1L) %% NROW(value) + 1L
    rows <- unique((bad - 1L) %% NROW(value) + 1L)
    zero_weights <- state$reduction == "LogSumExp_Reduction" && nzchar(state$f2)
    others <- length(rows) - 1L
    abort_kernops(sprintf(paste("The gradient of this %s reduction is not defined where the reduction is not",
                                "finite: it is %s in row %d of the result%s, where the formula's values overflow%s."),
                          sub("_Reduction$", "", state$reduction), format(value[bad[1]]), row,
                          if (others > 0) sprintf(" (and %d other row%s)", others, if (others > 1) "s" else "") else "",
                          if (zero_weights) " or the weights are all 0" else ""),
                  "kernops_error_input", call = call)
  }
  value
}

# The LogSumExp of F on the same axis, needed by the SoftMax gradient; compiled once.
lse_companion <- function(g) {
  if (is.null(g$state$lse_op)) {
    s <- g$state
    g$state$lse_op <- kernel_op(sprintf("LogSumExp_Reduction(%s,%d)", s$f, s$axis), s$decls,
                                dtype = s$dtype, backend = s$backend)
  }
  g$state$lse_op
}

#' @rdname kernel_grad
#' @param ... Arguments of `op`, by name or position. In `kernel_value_and_grad()` the
#'   operation itself comes first, unnamed (`kernel_value_and_grad(op, x, y, wrt = "x")`),
#'   or as `op = `: it is declared after `...` so that no argument of the operation (such
#'   as `o = `) can be taken for a partial `op`.
#' @return `kernel_value_and_grad()`: a list with `value`, `sum(op(...))`, and
#'   `gradient`, a named list with the gradient of that sum for each name in `wrt`.
#' @export
kernel_value_and_grad <- function(..., op, wrt) {
  # `op` comes after `...` so that an argument of the operation is never partially matched
  # to it (`o = ` went to `op`); given by position, it is the first unnamed argument.
  call <- sys.call()
  args <- list(...)
  if (missing(op)) {
    first <- which(!nzchar(names(args) %||% rep("", length(args))))[1]
    if (is.na(first))
      abort_kernops("Argument `op` is missing: pass the operation made by kernel_op() first.",
                    "kernops_error_input", call = call)
    op <- args[[first]]
    args <- args[-first]
  }
  state <- op_state(op, call)
  check_wrt_given(missing(wrt), state, call)
  with_call(value_and_grad(op, state, args, wrt, call), call)
}

value_and_grad <- function(op, state, args, wrt, call) {
  if (state$reduction == "Sum_Reduction") return(value_and_grad_sum(op, state, args, wrt, call))
  value <- do.call(op, args)
  key <- paste(wrt, collapse = "\r")
  if (is.null(state$grad_cache)) state$grad_cache <- list()
  gop <- state$grad_cache[[key]]
  if (is.null(gop)) {
    gop <- kernel_grad(op, wrt, direction = unique_name("direction", state$vars$name))
    state$grad_cache[[key]] <- gop
  }
  ones <- matrix(1, nrow(value), ncol(value))
  grad <- do.call(gop, c(args, list(ones)))
  if (length(unique(wrt)) == 1) grad <- stats::setNames(list(grad), unique(wrt))
  list(value = sum(value), gradient = grad)
}

# A Sum reduction: the direction is ones, written into the formulas, and the value is
# computed in the same pass as the gradients of the output side (Concat(F, Grad...)),
# so the kernel is evaluated once for all of them. The reductions are compiled once per
# `wrt` and kept with the operation.
value_and_grad_sum <- function(op, state, args, wrt, call) {
  key <- paste(c("value", wrt), collapse = "\r")
  if (is.null(state$grad_cache)) state$grad_cache <- list()
  plans <- state$grad_cache[[key]]
  if (is.null(plans)) {
    groups <- grad_groups(state, wrt, call)
    plans <- generated_formulas({
      p <- list(build_grad_op(state, groups$out, NULL, reduced_side = FALSE, with_value = TRUE))
      if (length(groups$red)) p <- c(p, list(build_grad_op(state, groups$red, NULL, reduced_side = TRUE)))
      p
    }, call)
    state$grad_cache[[key]] <- plans
  }
  out <- list()
  value <- NULL
  for (p in plans) {
    res <- do.call(p$op, args)
    if (p$value_dim > 0) value <- sum(res[, seq_len(p$value_dim)])
    out <- split_grad_columns(res, p, out)
  }
  list(value = value, gradient = out[unique(wrt)])
}

# Evaluates `expr`, which compiles gradient formulas kernops wrote itself: the formula
# language's nesting limit reached there is the derivative's, not a parse error in
# anything the user wrote (the operation itself compiled).
generated_formulas <- function(expr, call) {
  tryCatch(expr, kernops_error_parse = function(e) {
    if (!identical(e$subtype, "nesting")) stop(e)
    abort_kernops(c("The gradient of this formula is nested more deeply than the formula language allows.",
                    sprintf("The limit: %s.", strsplit(conditionMessage(e), "\n", fixed = TRUE)[[1]][1])),
                  "kernops_error_unsupported", call = call)
  })
}

check_wrt_given <- function(is_missing, state, call) {
  if (is_missing)
    abort_kernops(sprintf("Argument `wrt` is missing: name the variables to differentiate with respect to, among %s.",
                          paste0("`", state$vars$name, "`", collapse = ", ")),
                  "kernops_error_input", call = call)
}

unique_name <- function(base, taken) {
  while (base %in% taken) base <- paste0(base, "_")
  base
}

op_state <- function(op, call = NULL) {
  if (!inherits(op, "kernops_op"))
    abort_kernops("`op` must be a kernel operation made by kernel_op().", "kernops_error_input", call = call)
  state <- environment(op)$.kernops_state
  # Gradient formulas are written from the text of F, which is NA when F is too large to
  # write out (shared subexpressions repeated in full; see cpp_compile).
  if (is.na(state$f) || is.na(state$f2))
    abort_kernops(c("The gradient of this operation needs its formula written out, and it is too large for that:",
                    "it repeats shared subexpressions in full (e.g. deeply nested Normalize() or Grad())."),
                  "kernops_error_unsupported", call = call)
  state
}

#' @export
print.kernops_grad_op <- function(x, ...) {
  g <- environment(x)$.kernops_grad
  cat("<kernops_grad_op> gradient of <", g$direction, ", op(...)> with respect to ",
      paste(g$wrt, collapse = ", "), "\n", sep = "")
  cat("  op: ", g$state$formula, "\n", sep = "")
  for (p in g$plans) cat("  computed by: ", as.character(p$op), "\n", sep = "")
  if (!is.null(g$select))
    cat("  computed on the pairs selected by: ", as.character(g$select$arg_op), "\n",
        "  as: ", as.character(g$select$op), "\n", sep = "")
  invisible(x)
}

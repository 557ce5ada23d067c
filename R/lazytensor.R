# lazytensor.R -- R-native formula building: LazyTensor objects (class "kernops_lazy"),
# their constructors, node building, the Ops/Math group generics and printing. The formula
# helpers are in lazy_ops.R, reductions (which compute) in lazy_reduce.R, `~` formulas for
# kernel_op() in lazy_formula.R.
#
# Representation. A LazyTensor is a list:
#   f        the KeOps formula, built bottom-up as a string, in which every variable is a
#            token "@<id>@" (ids are unique per session, so expressions built separately
#            can be combined without renumbering);
#   prec     precedence of the top of `f` (1 = + -, 2 = * /, 3 = unary minus or a negative
#            number, 4 = atom), to print only the parentheses that are needed;
#   dim      the formula's dimension (number of values per (i, j) pair);
#   leaves   the variables, a list named by token; each leaf holds its data, category
#            ("i", "j" or "p"), dim, rows, name and whether it is an automatic parameter;
#   ni, nj   the number of rows of the i (j) variables, NA when there are none;
#   symbolic TRUE for variables without data (inside a `~` formula given to kernel_op()),
#            FALSE for data, NA for pure constants;
#   logical  TRUE for the 0/1 result of a comparison; `test` and `neg` then record it as
#            "test >= 0" (neg = FALSE) or "test < 0" (neg = TRUE) so that if_else() can use
#            IfElse(test, a, b) directly;
#   leaf     TRUE for a variable itself (what grad() differentiates with respect to).
# `logical`, `test`, `neg` and `leaf` are absent (NULL) unless set: read them with isTRUE().
# At reduction time the tokens are numbered in order of first appearance and named, so
# the same structure built again with new data gives the same formula string: the key of
# the plan cache (see lazy_reduce.R).

lazy_state <- new.env(parent = emptyenv())
lazy_state$counter <- 0L
lazy_state$names <- new.env(hash = TRUE, parent = emptyenv())

# KeOps names the parser reserves: never used as variable names.
lazy_reserved <- c(
  "Vi", "Vj", "Pm", "Norm2", "Normalize", "SqDist", "IntCst", "Zero", "Grad", "Diff",
  "GaussKernel", "LaplaceKernel", "CauchyKernel", "InverseMultiquadricKernel",
  "Matern32Kernel", "Matern52Kernel", "Exp", "Log", "Sqrt", "Rsqrt", "Inv", "Abs", "Sign",
  "Sin", "Cos", "Step", "ReLU", "Square", "Log1p", "Expm1", "Pow", "Min", "Max", "Powf", "IfElse", "Clamp",
  "Sum", "SumT", "SqNorm2", "Elem", "ElemT", "Extract", "ExtractT", "Concat", "MatVecMult",
  "VecMatMult", "TensorProd"
)

# ---- constructors ------------------------------------------------------------------

#' LazyTensors: write kernel formulas in R
#'
#' `Vi()`, `Vj()` and `Pm()` wrap data into symbolic *LazyTensor* objects. Arithmetic,
#' maths functions and the helpers listed below combine them into a kernel formula
#' \eqn{F(x_i, y_j)} that is never evaluated as an N x M matrix: a reduction such as
#' `sum(K, index = "j")` compiles it (once per formula structure, see *Caching*) and
#' computes \eqn{\sum_j F(x_i, y_j)} tile by tile with [kernel_op()]. The result is an
#' ordinary R matrix.
#'
#' * `Vi(x)`: the rows of `x` (a numeric matrix, data frame or vector, N rows) are the
#'   points \eqn{x_i}; a vector is one column.
#' * `Vj(y)`: the rows of `y` are the points \eqn{y_j}.
#' * `Pm(s)`: a parameter vector, the same for every pair (i, j).
#'
#' A LazyTensor has a *dimension* (the number of columns of its data, or of the values of
#' the formula for each pair (i, j)). Operations follow the KeOps rules: elementwise
#' operations need equal dimensions or one of them 1 (which broadcasts).
#'
#' @section Operations:
#' * Arithmetic `+ - * /` and unary minus; `x^p` (`x^2` is `Square`, `x^0.5` `Sqrt`,
#'   `x^-0.5` `Rsqrt`, other whole `p` `Pow(x, p)`, anything else `Powf`).
#' * Maths ([Math] group): `exp`, `log` (also `log(x, base)`), `log2`, `log10`, `log1p`,
#'   `expm1`, `sqrt`, `abs`, `sign`, `sin`, `cos`.
#' * Vector operations: [sqnorm2()], [norm2()], [normalize()], [sqdist()],
#'   [scalprod()] or `a | b` (scalar product), [concat()], [elem()] and `x[k]`,
#'   [extract()] and `x[k1:k2]`, and `sum(x)` without `index` (the sum of the coordinates,
#'   KeOps `Sum`).
#' * Elementwise functions: [relu()], [heaviside()], [clamp()], [minimum()], [maximum()],
#'   [if_else()].
#' * Kernels: [gaussian_kernel()] and friends.
#' * Comparisons `>=`, `>`, `<=`, `<`, `==`, `!=` return 0/1 LazyTensors (KeOps has no
#'   boolean type: `a >= b` is `Step(a-b)`, `a > b` is `1-Step(b-a)`, `a == b` is
#'   `Step(-Abs(a-b))`), usable as numbers (`(d < r) * b` counts neighbours) or as the
#'   condition of [if_else()]. `!`, `&` and `|` combine such conditions (`|` between two
#'   conditions is a logical OR; between two numeric LazyTensors it is the scalar
#'   product).
#' * Gradients: [grad()] inside a formula, [reduction_grad()] of a reduction.
#'
#' @section Numbers and vectors:
#' A plain number mixed with a LazyTensor is a constant of the formula when it is a whole
#' number up to 1e6 in absolute value (`2 * x`, `x^2`, `1 - x`) and otherwise a parameter:
#' `exp(-d / 0.37)` passes 0.37 as a `Pm(1)` argument rather than writing it into the
#' formula, so a loop in which such a number changes (a step size) reuses the same
#' compiled formula. Write a number that may be whole in some iterations as `Pm(s)`. The
#' kernels' `sigma` is always a parameter, so a loop over bandwidths compiles once. A
#' numeric vector of length d is a `Pm(d)` parameter (the same vector for every pair: for
#' one value per point use `Vi()` or `Vj()`). Wrap a number in `Pm()` to make it a
#' parameter explicitly. R matrices cannot be mixed with LazyTensors: wrap them with
#' `Vi()` or `Vj()`.
#'
#' @section Reductions and the index:
#' The verbs `sum()`, `min()`, `max()`, [argmin()], [argmax()], [min_argmin()],
#' [max_argmax()], [kmin()], [argkmin()], [kmin_argkmin()], [logsumexp()] and
#' [sumsoftmaxweight()] all take `index`, the index that is reduced over:
#' `index = "j"` computes \eqn{\sum_j F(x_i, y_j)}, one row per `Vi` point (KeOps
#' `axis = 0`); `index = "i"` computes \eqn{\sum_i F(x_i, y_j)}, one row per `Vj` point
#' (KeOps `axis = 1`). `index` has no default, as the two are easy to confuse. `sum(x)`
#' without `index` is not a reduction but the sum of the coordinates of `x`, as for an R
#' vector.
#'
#' @section Caching:
#' Each reduction builds the KeOps formula and its declarations, and compiles them with
#' [kernel_op()] only the first time that (formula, declarations, dtype) is seen: the
#' compiled operation is kept in a cache of at most `getOption("kernops.lazy_cache_size",
#' 256)` formulas (the oldest is dropped first; 0 turns the cache off). Variables are named after the R symbol
#' passed to `Vi()`/`Vj()`/`Pm()` (or `name`), otherwise `v1, v2, ...` (`p1, p2, ...`
#' for numbers turned into parameters), so rebuilding the same expression with new data,
#' as in an optimisation loop, reuses the compiled plan.
#'
#' @param x For `Vi()`/`Vj()`: a numeric matrix (rows = points), data frame or vector
#'   (one column). For `Pm()`: a numeric vector (its length is the dimension).
#' @param name Optional name of the variable in the printed formula; by default the R
#'   symbol passed as `x`, if any.
#' @return A LazyTensor (an object of class `kernops_lazy`).
#' @seealso [kernel_op()] for formulas written as KeOps strings, which it also accepts as
#'   R formulas `~ ...` written with these functions; `vignette("lazytensor")`.
#' @name lazytensor
#' @aliases LazyTensor
#' @examples
#' x <- matrix(runif(300), 100, 3)
#' y <- matrix(runif(600), 200, 3)
#' b <- matrix(rnorm(200), 200, 1)
#' x_i <- Vi(x)
#' y_j <- Vj(y)
#' K <- exp(-sqdist(x_i, y_j) / 0.5) * Vj(b)
#' K
#' gamma <- sum(K, index = "j")   # sum over j: one row per x_i
#' dim(gamma)
#' # the same with the dense kernel matrix
#' D <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
#' all.equal(gamma, exp(-D / 0.5) %*% b)
#' # nearest neighbour of each x_i among the y_j
#' nn <- argmin(sqdist(x_i, y_j), index = "j")
#' head(nn)
NULL

#' @rdname lazytensor
#' @export
Vi <- function(x, name = NULL) {
  if (!is.null(name)) check_string(name, "name", sys.call())
  new_data_leaf(x, "i", name %||% symbol_name(substitute(x)), sys.call())
}

#' @rdname lazytensor
#' @export
Vj <- function(x, name = NULL) {
  if (!is.null(name)) check_string(name, "name", sys.call())
  new_data_leaf(x, "j", name %||% symbol_name(substitute(x)), sys.call())
}

#' @rdname lazytensor
#' @export
Pm <- function(x, name = NULL) {
  if (!is.null(name)) check_string(name, "name", sys.call())
  new_data_leaf(x, "p", name %||% symbol_name(substitute(x)), sys.call())
}

#' @rdname lazytensor
#' @param x An object.
#' @return `is_lazy()`: `TRUE` for a LazyTensor.
#' @export
is_lazy <- function(x) inherits(x, "kernops_lazy")

symbol_name <- function(expr) if (is.name(expr)) as.character(expr) else NULL

# Tokens carry an id of this R process as well as a counter: a LazyTensor saved with
# saveRDS() and read back in another session must never share a token with one made
# there (they would be taken for the same variable). The id does not touch the user's
# random number stream: process id, start time and the address of an environment.
new_token <- function() {
  id <- lazy_state$counter + 1L
  lazy_state$counter <- id
  if (is.null(lazy_state$session)) {
    addr <- sub("^.*(0x[0-9a-fA-F]+).*$", "\\1", format(lazy_state))
    lazy_state$session <- paste(Sys.getpid(), format(unclass(Sys.time()), digits = 16), addr, sep = "_")
  }
  paste0("@", lazy_state$session, "_", id, "@")
}

kind_fn <- c(i = "Vi", j = "Vj", p = "Pm")

new_data_leaf <- function(x, cat, name, call) {
  if (cat != "p" && is.double(x) && is.matrix(x) && !is.object(x) && nrow(x) > 0 && ncol(x) > 0)
    return(leaf_lazy(cat, ncol(x), nrow(x), x, valid_name(name), auto = FALSE))  # the common case
  fn <- kind_fn[[cat]]
  if (inherits(x, "kernops_lazy"))
    abort_kernops(sprintf("%s() wraps numeric data, but its argument is already a LazyTensor.", fn),
                  "kernops_error_input", call = call)
  if (is.data.frame(x)) {
    if (!all(vapply(x, is.numeric, logical(1))))
      abort_kernops(sprintf("%s(): the data frame has non-numeric columns.", fn),
                    "kernops_error_input", call = call)
    x <- as.matrix(x)
  }
  if (!(is.double(x) || is.integer(x)) || is.factor(x))
    abort_kernops(sprintf("%s() needs a numeric %s, not %s.", fn,
                          if (cat == "p") "vector" else "matrix or vector", describe_type(x)),
                  "kernops_error_input", call = call)
  d <- dim(x)
  if (cat == "p") {
    if (!is.null(d) && (length(d) != 2 || min(d) != 1))
      abort_kernops(c("Pm() takes a vector (one value per coordinate), not a matrix.",
                      "For one row per point use Vi() or Vj()."),
                    "kernops_error_input", call = call)
    x <- as.double(x)
    if (length(x) == 0)
      abort_kernops("Pm() needs at least one value.", "kernops_error_input", call = call)
    rows <- 1L
    dim <- length(x)
  } else {
    if (!is.null(d) && length(d) > 2)
      abort_kernops(sprintf("%s() takes a matrix or a vector, not a %d-dimensional array.", fn, length(d)),
                    "kernops_error_input", call = call)
    if (is.null(d)) {
      rows <- length(x)
      dim <- 1L
    } else {
      rows <- d[1]
      dim <- d[2]
    }
    if (rows == 0 || dim == 0)
      abort_kernops(sprintf("%s(): the data has %d rows and %d columns; it needs at least one of each.",
                            fn, rows, dim), "kernops_error_input", call = call)
    x <- as_double_data(x, sprintf("The data of %s()", fn), call)
  }
  leaf_lazy(cat, dim, rows, x, valid_name(name), auto = FALSE)
}

# A variable without data: the declared variables of a `~` formula (lazy_formula.R).
symbolic_leaf <- function(cat, dim, name) {
  leaf_lazy(cat, dim, NA_integer_, NULL, name, auto = FALSE, symbolic = TRUE)
}

leaf_lazy <- function(cat, dim, rows, data, name, auto, symbolic = FALSE) {
  tok <- new_token()
  dim <- as.integer(dim)
  leaf <- list(token = tok, cat = cat, dim = dim, rows = as.integer(rows),
               data = data, name = name, auto = auto)
  leaves <- list(leaf)
  names(leaves) <- tok
  new_lazy(tok, 4L, dim, leaves,
           ni = if (cat == "i") as.integer(rows) else NA_integer_,
           nj = if (cat == "j") as.integer(rows) else NA_integer_,
           symbolic = symbolic, leaf = TRUE)
}

valid_name <- function(name) {
  if (is.null(name) || length(name) != 1 || is.na(name) || !nzchar(name)) return(NULL)
  ok <- lazy_state$names[[name]]  # memoised: this runs for every Vi()/Vj()/Pm()
  if (is.null(ok)) {
    ok <- grepl("^[A-Za-z][A-Za-z0-9_.]*$", name) && !(name %in% lazy_reserved) &&
      !grepl("_Reduction$", name)
    if (length(lazy_state$names) < 10000) assign(name, ok, envir = lazy_state$names)
  }
  if (ok) name else NULL
}

new_lazy <- function(f, prec, dim, leaves, ni = NA_integer_, nj = NA_integer_, symbolic = NA,
                     logical = FALSE, test = NULL, neg = FALSE, leaf = FALSE) {
  x <- list(f = f, prec = prec, dim = dim, leaves = leaves, ni = ni, nj = nj, symbolic = symbolic)
  # rarely set fields are left out (NULL) otherwise: this runs for every operation
  if (logical) {
    x$logical <- TRUE
    x$test <- test
    x$neg <- neg
  }
  if (leaf) x$leaf <- TRUE
  class(x) <- "kernops_lazy"
  x
}

# A number that is part of the formula's structure (always a constant).
lazy_const <- function(v) {
  s <- sprintf("%.17g", v)
  for (digits in 15:16) {  # the shortest of these that reads back exactly
    t <- sprintf(paste0("%.", digits, "g"), v)
    if (as.numeric(t) == v) {
      s <- t
      break
    }
  }
  new_lazy(s, if (v < 0) 3L else 4L, 1L, list())
}

# Converts an operand (a number, a numeric vector or a LazyTensor) to a LazyTensor.
# `like` is the LazyTensor it is combined with, which decides whether we are building
# data (a non-whole number becomes a parameter) or a `~` formula (always a constant).
as_lazy <- function(v, like = NULL, call = NULL) {
  if (inherits(v, "kernops_lazy")) return(v)
  if (is.double(v) && length(v) == 1L && is.null(attributes(v)) && is.finite(v)) {
    # the common case: a plain number
    if ((v == round(v) && abs(v) <= 1e6) || isTRUE(.subset2(like, "symbolic"))) return(lazy_const(v))
    return(leaf_lazy("p", 1L, 1L, v, NULL, auto = TRUE))
  }
  if (inherits(v, "kernops_lazy_reduction"))
    abort_kernops("A reduction cannot be used inside a formula: reductions come last.",
                  "kernops_error_input", call = call)
  if (is.logical(v) && !is.object(v)) storage.mode(v) <- "double"
  if (!(is.double(v) || is.integer(v)) || is.object(v) && !inherits(v, "AsIs"))
    abort_kernops(sprintf("Cannot combine a LazyTensor with %s.", describe_type(v)),
                  "kernops_error_input", call = call)
  d <- dim(v)
  # A matrix with several rows is per-point data, even with one column: only a vector (or
  # a one-row matrix) is a parameter.
  if (!is.null(d) && (sum(d > 1) > 1 || length(d) >= 2 && d[1] > 1))
    abort_kernops(c(sprintf("Cannot combine a LazyTensor with a %s matrix.", paste(d, collapse = " x ")),
                    "Wrap per-point data with Vi() (rows indexed by i) or Vj() (rows indexed by j)."),
                  "kernops_error_input", call = call)
  v <- as.double(v)
  if (length(v) == 0)
    abort_kernops("Cannot combine a LazyTensor with an empty vector.", "kernops_error_input", call = call)
  if (anyNA(v) || any(!is.finite(v)))
    abort_kernops("Numbers in a LazyTensor formula must be finite (no NA, NaN or Inf).",
                  "kernops_error_input", call = call)
  symbolic <- isTRUE(like$symbolic)
  if (length(v) == 1 && (symbolic || (v == round(v) && abs(v) <= 1e6))) return(lazy_const(v))
  if (symbolic)
    abort_kernops(c(sprintf("A numeric vector of length %d cannot be written into a formula.", length(v)),
                    "Declare it as a parameter, e.g. \"w = Pm(3)\", and pass it when calling the operation."),
                  "kernops_error_input", call = call)
  leaf_lazy("p", length(v), 1L, v, NULL, auto = TRUE)
}

# ---- building nodes ----------------------------------------------------------------

# Parenthesises `x` unless its precedence is at least `need`; a right operand that starts
# with a minus sign is always parenthesised (a-(-b), a*(-b)).
par <- function(x, need) {
  p <- .subset2(x, "prec")
  if (p >= need) .subset2(x, "f") else paste0("(", .subset2(x, "f"), ")")
}
par_right <- function(x, need) {
  p <- .subset2(x, "prec")
  if (p >= need && p != 3L) .subset2(x, "f") else paste0("(", .subset2(x, "f"), ")")
}

# A new node over the LazyTensors `args`: merges their variables and checks row counts.
# (This runs for every operation: fields are read with .subset2(), which skips the S3
# dispatch that `$` tries on a classed object.)
lazy_node <- function(args, f, prec, dim, call = NULL, logical = FALSE, test = NULL, neg = FALSE) {
  a <- .subset2(args, 1L)
  leaves <- .subset2(a, "leaves")
  ni <- .subset2(a, "ni")
  nj <- .subset2(a, "nj")
  sym <- .subset2(a, "symbolic")
  n <- length(args)
  if (n > 1L) for (k in 2:n) {
    b <- .subset2(args, k)
    bl <- .subset2(b, "leaves")
    if (length(bl)) {
      if (!length(leaves)) {
        leaves <- bl
      } else {
        new <- !(names(bl) %in% names(leaves))
        if (any(new)) leaves <- c(leaves, bl[new])
      }
    }
    bi <- .subset2(b, "ni")
    if (!is.na(bi)) {
      if (is.na(ni)) ni <- bi else if (ni != bi) row_mismatch("i", leaves, call)
    }
    bj <- .subset2(b, "nj")
    if (!is.na(bj)) {
      if (is.na(nj)) nj <- bj else if (nj != bj) row_mismatch("j", leaves, call)
    }
    bs <- .subset2(b, "symbolic")
    if (!is.na(bs)) {
      if (is.na(sym)) sym <- bs
      else if (sym != bs)
        abort_kernops(c("A formula given to kernel_op() cannot contain data (Vi(), Vj() or Pm() of a matrix):",
                        "use the declared variables and pass the data when calling the operation."),
                      "kernops_error_input", call = call)
    }
  }
  new_lazy(f, prec, dim, leaves, ni, nj, sym, logical, test, neg)
}

row_mismatch <- function(cat, leaves, call) {
  lv <- Filter(function(l) l$cat == cat, leaves)
  nm <- leaf_labels(leaves)[names(lv)]
  rows <- vapply(lv, function(l) l$rows, integer(1))
  k <- which(rows != rows[1])[1]
  fn <- kind_fn[[cat]]
  abort_kernops(c(sprintf("All %s() variables must have the same number of rows, but `%s` has %d and `%s` has %d.",
                          fn, nm[1], rows[1], nm[k], rows[k]),
                  sprintf("(%s() data are the points %s; the kernel pairs each of them with every %s point.)",
                          fn, cat, if (cat == "i") "j" else "i")),
                "kernops_error_input", call = call)
}

# Dimension of an elementwise operation: equal dimensions, or 1 (broadcast).
bcast_dim <- function(dims, what, call) {
  out <- 1L
  for (d in dims) {
    if (d == 1L) next
    if (out != 1L && d != out)
      abort_kernops(sprintf("%s: the dimensions must be equal or 1, got %s.", what, paste(dims, collapse = " and ")),
                    "kernops_error_dimension", call = call)
    out <- d
  }
  out
}

# Function-call node Name(args..., params...) for an elementwise op.
lazy_call <- function(name, args, call = NULL, params = NULL, dim = NULL, what = name) {
  n <- length(args)
  fs <- character(n)
  dims <- integer(n)
  for (k in seq_len(n)) {
    a <- .subset2(args, k)
    fs[k] <- .subset2(a, "f")
    dims[k] <- .subset2(a, "dim")
  }
  if (is.null(dim)) dim <- bcast_dim(dims, what, call)
  lazy_node(args, paste0(name, "(", paste(c(fs, params), collapse = ","), ")"), 4L, dim, call)
}

# Numeric value of a logical (0/1) LazyTensor's mask: Step(t) or 1-Step(t).
mask_from_test <- function(test, neg) {
  s <- paste0("Step(", test, ")")
  if (neg) list(f = paste0("1-", s), prec = 1L) else list(f = s, prec = 4L)
}

lazy_logical <- function(args, test, neg, dim, call) {
  m <- mask_from_test(test, neg)
  lazy_node(args, m$f, m$prec, dim, call, logical = TRUE, test = test, neg = neg)
}

# A LazyTensor as a condition: comparisons keep their test, other values are TRUE where
# they are non-zero (x != 0 is the test -Abs(x) < 0).
as_condition <- function(x, call) {
  if (isTRUE(x$logical)) return(x)
  lazy_logical(list(x), paste0("-Abs(", x$f, ")"), TRUE, x$dim, call)
}

# `e1 + e2` for error messages, without deparsing data.
op_call <- function(generic, sc) {
  args <- as.list(sc)[-1]
  args <- lapply(args, function(a) if (is.language(a) || (is.atomic(a) && length(a) <= 1)) a else quote(...))
  as.call(c(as.name(generic), args))
}

# ---- Ops group generic -------------------------------------------------------------

#' @rdname lazytensor
#' @param e1,e2 Operands: LazyTensors, numbers or numeric vectors.
#' @export
Ops.kernops_lazy <- function(e1, e2) {
  sc <- sys.call()
  delayedAssign("call", op_call(.Generic, sc))  # built only for an error message
  if (nargs() == 1L) {
    return(switch(.Generic,
      "+" = e1,
      "-" = lazy_node(list(e1), paste0("-", par(e1, 4L)), 3L, e1$dim, call),
      "!" = lazy_not(e1, call),
      abort_kernops(sprintf("Unary `%s` is not defined for LazyTensors.", .Generic),
                    "kernops_error_input", call = call)
    ))
  }
  like <- if (inherits(e1, "kernops_lazy")) e1 else e2
  a <- as_lazy(e1, like, call)
  b <- as_lazy(e2, like, call)
  g <- .Generic
  what <- sprintf("`%s`", g)
  switch(g,
    "+" = , "-" = lazy_node(list(a, b), paste0(par(a, 1L), g, par_right(b, 2L)), 1L,
                            bcast_dim(c(a$dim, b$dim), what, call), call),
    "*" = , "/" = lazy_node(list(a, b), paste0(par(a, 2L), g, par_right(b, 3L)), 2L,
                            bcast_dim(c(a$dim, b$dim), what, call), call),
    "^" = lazy_pow(a, b, e2, call),
    ">=" = , ">" = , "<=" = , "<" = , "==" = , "!=" = lazy_compare(a, b, g, call),
    "&" = {
      ca <- as_condition(a, call)
      cb <- as_condition(b, call)
      lazy_node(list(ca, cb), paste0(par(ca, 2L), "*", par_right(cb, 3L)), 2L,
                bcast_dim(c(a$dim, b$dim), what, call), call, logical = TRUE)
    },
    "|" = {
      if (isTRUE(a$logical) && isTRUE(b$logical)) {
        lazy_node(list(a, b), paste0("Max(", a$f, ",", b$f, ")"), 4L,
                  bcast_dim(c(a$dim, b$dim), what, call), call, logical = TRUE)
      } else if (!isTRUE(a$logical) && !isTRUE(b$logical)) {
        scalprod(a, b)
      } else {
        abort_kernops(c("`|` between a condition and a number is ambiguous for LazyTensors:",
                        "it is the logical OR of two conditions (comparisons), and the scalar product of two numeric LazyTensors."),
                      "kernops_error_input", call = call)
      }
    },
    abort_kernops(sprintf("`%s` is not defined for LazyTensors.", g), "kernops_error_input", call = call)
  )
}

# R >= 4.3 lets a package take part in two more dispatches, which older versions of R
# resolve before any kernops code runs (so there these calls keep R's unclassed errors):
# `%*%` dispatches to the matrixOps group generic ("requires numeric/complex matrix/vector
# arguments" before), and chooseOpsMethod() picks Ops.kernops_lazy over another class's Ops
# method (a LazyTensor and a factor gave "Incompatible methods", then R's error).
#' @rawNamespace if (getRversion() >= "4.3.0") S3method(matrixOps, kernops_lazy)
matrixOps.kernops_lazy <- function(x, y) {
  abort_kernops(c(sprintf("`%s` is not defined for LazyTensors: they are symbolic, with no matrix to multiply.", .Generic),
                  "For sum_j K_ij b_j, write sum(K * b_j, index = \"j\") with b_j <- Vj(b)."),
                "kernops_error_input", call = sys.call())
}

#' @rawNamespace if (getRversion() >= "4.3.0") S3method(chooseOpsMethod, kernops_lazy)
chooseOpsMethod.kernops_lazy <- function(x, y, mx, my, cl, reverse) TRUE

lazy_pow <- function(a, b, e2, call) {
  if (is.numeric(e2) && length(e2) == 1 && !inherits(e2, "kernops_lazy")) {
    p <- as.double(e2)
    if (p == round(p) && abs(p) <= 1e6) {
      if (p == 1) return(a)
      if (p == 2) return(lazy_call("Square", list(a), call))
      return(lazy_call("Pow", list(a), call, params = sprintf("%d", as.integer(p))))
    }
    if (p == 0.5) return(lazy_call("Sqrt", list(a), call))
    if (p == -0.5) return(lazy_call("Rsqrt", list(a), call))
  }
  lazy_call("Powf", list(a, b), call, what = "`^`")
}

lazy_compare <- function(a, b, g, call) {
  dim <- bcast_dim(c(a$dim, b$dim), sprintf("`%s`", g), call)
  diff <- function(u, v) if (identical(u$f, "0")) paste0("-", par(v, 4L)) else paste0(par(u, 1L), "-", par_right(v, 2L))
  switch(g,
    ">=" = lazy_logical(list(a, b), diff(a, b), FALSE, dim, call),  # a-b >= 0
    "<=" = lazy_logical(list(a, b), diff(b, a), FALSE, dim, call),
    ">"  = lazy_logical(list(a, b), diff(b, a), TRUE, dim, call),   # not (b-a >= 0)
    "<"  = lazy_logical(list(a, b), diff(a, b), TRUE, dim, call),
    "==" = lazy_logical(list(a, b), paste0("-Abs(", diff(a, b), ")"), FALSE, dim, call),
    "!=" = lazy_logical(list(a, b), paste0("-Abs(", diff(a, b), ")"), TRUE, dim, call)
  )
}

lazy_not <- function(x, call) {
  cond <- as_condition(x, call)
  if (!is.null(cond$test)) return(lazy_logical(list(cond), cond$test, !isTRUE(cond$neg), cond$dim, call))
  lazy_node(list(cond), paste0("1-", par_right(cond, 2L)), 1L, cond$dim, call, logical = TRUE)
}

# ---- Math group generic ------------------------------------------------------------

#' @rdname lazytensor
#' @param ... For the Math methods, `base` of `log()`.
#' @export
Math.kernops_lazy <- function(x, ...) {
  call <- as.call(list(as.name(.Generic), quote(x)))
  unary <- function(name) lazy_call(name, list(x), call)
  switch(.Generic,
    exp = unary("Exp"),
    log = {
      extra <- list(...)
      if (length(extra) == 0) return(unary("Log"))
      base <- extra[[1]]
      if (!is.numeric(base) || length(base) != 1 || !is.finite(base) || base <= 0 || base == 1)
        abort_kernops("log(x, base): `base` must be a single positive number other than 1.",
                      "kernops_error_input", call = call)
      unary("Log") / lazy_const(log(base))
    },
    log2 = unary("Log") / lazy_const(log(2)),
    log10 = unary("Log") / lazy_const(log(10)),
    log1p = unary("Log1p"),
    expm1 = unary("Expm1"),
    sqrt = unary("Sqrt"),
    abs = unary("Abs"),
    sign = unary("Sign"),
    sin = unary("Sin"),
    cos = unary("Cos"),
    abort_kernops(c(sprintf("`%s()` is not available for LazyTensors.", .Generic),
                    "Available: exp, log, log2, log10, log1p, expm1, sqrt, abs, sign, sin, cos (see ?lazytensor)."),
                  "kernops_error_input", call = call)
  )
}

# ---- printing and coercion ---------------------------------------------------------

# Names of the variables (by token): the R name when it is usable and unique, else
# v1, v2, ... (p1, p2, ... for numbers turned into parameters), numbered in order.
leaf_labels <- function(leaves) {
  n <- length(leaves)
  if (n == 0) return(character())
  nm <- character(n)
  auto <- 0L
  data <- 0L
  for (k in seq_len(n)) {
    l <- leaves[[k]]
    if (!is.null(l$name)) {
      nm[k] <- l$name
    } else if (isTRUE(l$auto)) {
      auto <- auto + 1L
      nm[k] <- paste0("p", auto)
    } else {
      data <- data + 1L
      nm[k] <- paste0("v", data)
    }
  }
  if (anyDuplicated(nm)) {
    # the same R object wrapped twice, e.g. Vi(x) and Vj(x): x_i and x_j
    dup <- nm %in% nm[duplicated(nm)]
    cats <- vapply(leaves, function(l) l$cat, "")
    nm[dup] <- paste0(nm[dup], "_", cats[dup])
    nm <- make.unique(nm, sep = "")
  }
  stats::setNames(nm, names(leaves))
}

# Splits a formula at its variable tokens "@<id>@" ("@" appears nowhere else): the even
# pieces are the ids. Faster than regular expressions, which matters per call.
split_tokens <- function(f) {
  parts <- strsplit(f, "@", fixed = TRUE)[[1]]
  idx <- if (length(parts) >= 2L) seq.int(2L, length(parts), by = 2L) else integer()
  list(parts = parts, idx = idx, toks = paste0("@", parts[idx], "@"))
}

# Replaces the tokens of `f` by `labels` (named by token).
name_tokens <- function(f, labels) {
  sp <- split_tokens(f)
  if (!length(sp$idx)) return(f)
  sp$parts[sp$idx] <- labels[sp$toks]
  paste(sp$parts, collapse = "")
}

# The leaves in order of first appearance in `f`.
ordered_leaves <- function(f, leaves) leaves[unique(split_tokens(f)$toks)]

#' @export
as.character.kernops_lazy <- function(x, ...) {
  lv <- ordered_leaves(x$f, x$leaves)
  name_tokens(x$f, leaf_labels(lv))
}

#' @export
format.kernops_lazy <- function(x, ...) as.character.kernops_lazy(x)

#' @export
print.kernops_lazy <- function(x, ...) {
  lv <- ordered_leaves(x$f, x$leaves)
  labels <- leaf_labels(lv)
  cats <- vapply(lv, function(l) l$cat, "")
  over <- c(if ("i" %in% cats) "i", if ("j" %in% cats) "j")
  cat(sprintf("<LazyTensor> dimension %d%s%s\n", x$dim,
              if (length(over)) paste0(", indexed by ", paste(over, collapse = " and ")) else "",
              if (isTRUE(x$logical)) " (a 0/1 condition)" else ""))
  cat("  formula: ", name_tokens(x$f, labels), "\n", sep = "")
  if (length(lv)) {
    cat("  variables:\n")
    w <- max(nchar(labels))
    for (k in seq_along(lv)) {
      l <- lv[[k]]
      shape <- if (isTRUE(x$symbolic)) sprintf("dim %d", l$dim)
               else if (l$cat == "p") sprintf("%d value%s: %s", l$dim, if (l$dim > 1) "s" else "",
                                             paste(format(utils::head(l$data, 4), digits = 4), collapse = " "))
               else sprintf("%d x %d", l$rows, l$dim)
      if (l$cat == "p" && l$dim > 4 && !isTRUE(x$symbolic)) shape <- paste(shape, "...")
      cat(sprintf("    %-*s  %s  %s\n", w, labels[[k]], kind_fn[[l$cat]], shape))
    }
  }
  if (!isTRUE(x$symbolic) && !is.na(x$ni) && !is.na(x$nj)) {
    cat(sprintf("  reduce: sum(., index = \"j\") -> %d rows (one per i); index = \"i\" -> %d rows (one per j)\n",
                x$ni, x$nj))
  }
  invisible(x)
}

not_a_matrix <- function(what) {
  force(what)
  function(x, ...) {
    abort_kernops(c(sprintf("A LazyTensor is symbolic and cannot be used with %s().", what),
                    "Reduce it first, e.g. sum(K, index = \"j\"), which returns a matrix."),
                  "kernops_error_input", call = NULL)
  }
}

#' @export
as.matrix.kernops_lazy <- not_a_matrix("as.matrix")
#' @export
as.vector.kernops_lazy <- not_a_matrix("as.vector")
#' @export
as.double.kernops_lazy <- not_a_matrix("as.double")
#' @export
as.array.kernops_lazy <- not_a_matrix("as.array")
# as.logical() is what ifelse() calls on a LazyTensor condition: without this method,
# ifelse(x > y, a, b) returned a list of fragments of the LazyTensor.
# is.na() is what pmax() and pmin() call: with a number, pmax(d, 1) failed on the lengths
# of the LazyTensor's internal list ("dimensions must be equal or 1, got 7 and 10").
#' @export
is.na.kernops_lazy <- function(x) {
  abort_kernops(c("A LazyTensor is symbolic: is.na(), which pmax() and pmin() call, does not apply to it.",
                  "Write maximum(x, y) or minimum(x, y) for an elementwise maximum or minimum."),
                "kernops_error_input", call = NULL)
}
#' @export
as.logical.kernops_lazy <- function(x, ...) {
  abort_kernops(c("A LazyTensor is symbolic and has no logical value, which ifelse() needs.",
                  "Write if_else(condition, a, b) for an elementwise choice inside the formula."),
                "kernops_error_input", call = NULL)
}
#' @export
as.data.frame.kernops_lazy <- not_a_matrix("as.data.frame")
#' @export
mean.kernops_lazy <- not_a_matrix("mean")
# Base generics that would otherwise work on the list a LazyTensor is made of (t(), rep(),
# unique() returned its pieces) or fail with misleading or unclassed errors (rev(), sort(),
# median() through `[`; as.integer(), dim<-).
#' @rawNamespace S3method(stats::median, kernops_lazy)
median.kernops_lazy <- function(x, na.rm = FALSE, ...) not_a_matrix("median")(x)
#' @export
rev.kernops_lazy <- not_a_matrix("rev")
#' @export
sort.kernops_lazy <- not_a_matrix("sort")
#' @export
t.kernops_lazy <- not_a_matrix("t")
#' @export
unique.kernops_lazy <- not_a_matrix("unique")
#' @export
rep.kernops_lazy <- not_a_matrix("rep")
#' @export
as.integer.kernops_lazy <- not_a_matrix("as.integer")
#' @export
as.complex.kernops_lazy <- not_a_matrix("as.complex")
#' @export
`dim<-.kernops_lazy` <- function(x, value) not_a_matrix("dim<-")(x)
#' @export
c.kernops_lazy <- function(...) {
  abort_kernops("c() does not combine LazyTensors: use concat(a, b) to concatenate their coordinates.",
                "kernops_error_input", call = NULL)
}

# lazytensor.R -- R-native formula building: LazyTensor objects (class "kernops_lazy"),
# their constructors, printing, the Ops/Math group generics and the formula helpers.
# Reductions (which compute) are in lazy_reduce.R; `~` formulas for kernel_op() in
# lazy_formula.R.
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
  "Sin", "Cos", "Step", "ReLU", "Square", "Pow", "Min", "Max", "Powf", "IfElse", "Clamp",
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
#' * Elementwise functions: [relu()], [step()], [clamp()], [minimum()], [maximum()],
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
#' number (`2 * x`, `x^2`, `1 - x`) and otherwise a parameter: `exp(-d / 0.37)` passes
#' 0.37 as a `Pm(1)` argument rather than writing it into the formula, so a loop in which
#' such a number changes (a step size, a bandwidth) reuses the same compiled formula. A
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
  new_data_leaf(x, "i", name %||% symbol_name(substitute(x)), sys.call())
}

#' @rdname lazytensor
#' @export
Vj <- function(x, name = NULL) {
  new_data_leaf(x, "j", name %||% symbol_name(substitute(x)), sys.call())
}

#' @rdname lazytensor
#' @export
Pm <- function(x, name = NULL) {
  new_data_leaf(x, "p", name %||% symbol_name(substitute(x)), sys.call())
}

#' @rdname lazytensor
#' @param x An object.
#' @return `is_lazy()`: `TRUE` for a LazyTensor.
#' @export
is_lazy <- function(x) inherits(x, "kernops_lazy")

symbol_name <- function(expr) if (is.name(expr)) as.character(expr) else NULL

new_token <- function() {
  id <- lazy_state$counter + 1L
  lazy_state$counter <- id
  paste0("@", id, "@")
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
    if (!is.double(x)) storage.mode(x) <- "double"
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
  if (is.null(name) || length(name) != 1 || is.na(name)) return(NULL)
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
  if (!is.null(d) && sum(d > 1) > 1)
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
      if (length(extra) == 0) unary("Log") else unary("Log") / lazy_const(log(extra[[1]]))
    },
    log2 = unary("Log") / lazy_const(log(2)),
    log10 = unary("Log") / lazy_const(log(10)),
    log1p = lazy_call("Log", list(lazy_const(1) + x), call),
    expm1 = unary("Exp") - 1,
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

# ---- helpers -----------------------------------------------------------------------

check_lazy <- function(x, fn, arg = "x", call = NULL) {
  if (!inherits(x, "kernops_lazy"))
    abort_kernops(sprintf("%s(): `%s` must be a LazyTensor (made with Vi(), Vj() or Pm()), not %s.",
                          fn, arg, describe_type(x)), "kernops_error_input", call = call)
  x
}

#' Vector operations on LazyTensors
#'
#' Operations on the vector (of dimension d) that a LazyTensor holds for each pair
#' (i, j). They build formulas; nothing is computed until a reduction (see
#' [lazytensor]).
#'
#' * `sqnorm2(x)`: \eqn{|x|^2} (KeOps `SqNorm2`), dimension 1.
#' * `norm2(x)`: \eqn{|x|} (`Norm2`), dimension 1.
#' * `normalize(x)`: \eqn{x / |x|} (`Normalize`).
#' * `sqdist(x, y)`: \eqn{|x - y|^2} (`SqDist`), dimension 1.
#' * `scalprod(x, y)`, also written `x | y`: the scalar product \eqn{\langle x, y \rangle}
#'   (`(x|y)`), dimension 1.
#' * `concat(...)`: the coordinates of the arguments one after another (`Concat`).
#' * `elem(x, k)`, also `x[k]`: coordinate `k` of `x`, **1-based** as in R (`Elem(x, k-1)`).
#' * `extract(x, start, length)`, also `x[start:end]`: coordinates `start` (1-based) to
#'   `start + length - 1` (`Extract(x, start-1, length)`).
#'
#' @param x,y LazyTensors (or numbers/vectors, combined with a LazyTensor).
#' @param ... LazyTensors to concatenate.
#' @param k,start Coordinate index, from 1.
#' @param length Number of coordinates.
#' @return A LazyTensor.
#' @seealso [lazytensor], [elementwise] for elementwise functions.
#' @name vector_ops
#' @examples
#' x_i <- Vi(matrix(runif(30), 10, 3))
#' y_j <- Vj(matrix(runif(60), 20, 3))
#' sqdist(x_i, y_j)
#' x_i | y_j
#' concat(x_i, sqnorm2(x_i))
#' elem(x_i, 2)
#' extract(x_i, 2, 2)
#' sum(normalize(x_i) * y_j, index = "j")
NULL

#' @rdname vector_ops
#' @export
sqnorm2 <- function(x) {
  lazy_call("SqNorm2", list(check_lazy(x, "sqnorm2")), sys.call(), dim = 1L)
}

#' @rdname vector_ops
#' @export
norm2 <- function(x) {
  lazy_call("Norm2", list(check_lazy(x, "norm2")), sys.call(), dim = 1L)
}

#' @rdname vector_ops
#' @export
normalize <- function(x) {
  x <- check_lazy(x, "normalize")
  lazy_call("Normalize", list(x), sys.call(), dim = x$dim)
}

two_lazy <- function(x, y, fn, call) {
  if (!inherits(x, "kernops_lazy") && !inherits(y, "kernops_lazy"))
    abort_kernops(sprintf("%s(): at least one argument must be a LazyTensor.", fn),
                  "kernops_error_input", call = call)
  like <- if (inherits(x, "kernops_lazy")) x else y
  list(as_lazy(x, like, call), as_lazy(y, like, call))
}

#' @rdname vector_ops
#' @export
sqdist <- function(x, y) {
  call <- sys.call()
  a <- two_lazy(x, y, "sqdist", call)
  bcast_dim(c(a[[1]]$dim, a[[2]]$dim), "sqdist()", call)
  lazy_call("SqDist", a, call, dim = 1L)
}

#' @rdname vector_ops
#' @export
scalprod <- function(x, y) {
  call <- sys.call()
  a <- two_lazy(x, y, "scalprod", call)
  if (a[[1]]$dim != a[[2]]$dim)
    abort_kernops(sprintf("Scalar product: the dimensions must be equal, got %d and %d.",
                          a[[1]]$dim, a[[2]]$dim), "kernops_error_dimension", call = call)
  lazy_node(a, paste0("(", a[[1]]$f, "|", a[[2]]$f, ")"), 4L, 1L, call)
}

#' @rdname vector_ops
#' @export
concat <- function(...) {
  call <- sys.call()
  args <- list(...)
  if (length(args) < 2)
    abort_kernops("concat() needs at least two arguments.", "kernops_error_input", call = call)
  like <- Find(function(a) inherits(a, "kernops_lazy"), args)
  if (is.null(like))
    abort_kernops("concat(): at least one argument must be a LazyTensor.", "kernops_error_input", call = call)
  args <- lapply(args, as_lazy, like = like, call = call)
  out <- args[[1]]
  for (b in args[-1])
    out <- lazy_call("Concat", list(out, b), call, dim = out$dim + b$dim)
  out
}

check_index <- function(k, what, call) {
  if (!is.numeric(k) || length(k) != 1 || is.na(k) || k != round(k))
    abort_kernops(sprintf("`%s` must be a single whole number.", what), "kernops_error_input", call = call)
  as.integer(k)
}

#' @rdname vector_ops
#' @export
elem <- function(x, k) {
  call <- sys.call()
  x <- check_lazy(x, "elem")
  k <- check_index(k, "k", call)
  if (k < 1 || k > x$dim)
    abort_kernops(sprintf("elem(): k = %d is out of range: the LazyTensor has dimension %d (coordinates 1 to %d).",
                          k, x$dim, x$dim), "kernops_error_dimension", call = call)
  lazy_call("Elem", list(x), call, params = k - 1L, dim = 1L)
}

#' @rdname vector_ops
#' @export
extract <- function(x, start, length) {
  call <- sys.call()
  x <- check_lazy(x, "extract")
  start <- check_index(start, "start", call)
  length <- check_index(length, "length", call)
  if (start < 1 || length < 1 || start + length - 1 > x$dim)
    abort_kernops(sprintf("extract(): coordinates %d to %d do not fit in dimension %d.",
                          start, start + length - 1, x$dim), "kernops_error_dimension", call = call)
  lazy_call("Extract", list(x), call, params = c(start - 1L, length), dim = length)
}

#' @export
`[.kernops_lazy` <- function(x, i) {
  call <- sys.call()
  if (missing(i)) return(x)
  if (!is.numeric(i) || length(i) == 0 || anyNA(i) || any(i != round(i)) || any(i < 1))
    abort_kernops("Index a LazyTensor with positive whole numbers (its coordinates, from 1).",
                  "kernops_error_input", call = call)
  i <- as.integer(i)
  if (length(i) == 1) return(elem(x, i))
  if (all(diff(i) == 1L)) return(extract(x, i[1], length(i)))
  do.call(concat, lapply(i, function(k) elem(x, k)))
}

#' Elementwise functions of LazyTensors
#'
#' Elementwise functions (applied to each coordinate; a dimension-1 argument broadcasts):
#'
#' * `relu(x)`: \eqn{\max(x, 0)} (`ReLU`).
#' * `step(x)`: 1 where \eqn{x \ge 0}, else 0 (`Step`). For any other object, `step()`
#'   calls [stats::step()], which it masks.
#' * `clamp(x, lower, upper)`: `x` limited to `[lower, upper]` (`Clamp`).
#' * `minimum(x, y)`, `maximum(x, y)`: the elementwise minimum and maximum (`Min`, `Max`);
#'   `min()`/`max()` of a LazyTensor are reductions.
#' * `if_else(condition, true, false)`: `true` where `condition` holds, else `false`. The
#'   condition is usually a comparison such as `x >= y` (then `IfElse(x-y, true, false)`);
#'   any other LazyTensor counts as TRUE where it is non-zero, as in R. (KeOps' own
#'   `IfElse(c, a, b)` tests `c >= 0`: write `if_else(c >= 0, a, b)`.)
#'
#' @param x,y,object,condition,true,false,lower,upper LazyTensors, or numbers combined
#'   with a LazyTensor.
#' @param ... Passed to [stats::step()] for objects that are not LazyTensors.
#' @return A LazyTensor.
#' @name elementwise
#' @seealso [lazytensor], [vector_ops]
#' @examples
#' x_i <- Vi(matrix(rnorm(10), 10, 1))
#' y_j <- Vj(matrix(rnorm(20), 20, 1))
#' relu(x_i - y_j)
#' clamp(x_i - y_j, -1, 1)
#' if_else(x_i > y_j, x_i, y_j)
#' # number of y_j within distance 0.5 of each x_i
#' sum(abs(x_i - y_j) < 0.5, index = "j")
NULL

#' @rdname elementwise
#' @export
relu <- function(x) lazy_call("ReLU", list(check_lazy(x, "relu")), sys.call())

#' @rdname elementwise
#' @export
step <- function(object, ...) UseMethod("step")

#' @rdname elementwise
#' @export
step.default <- function(object, ...) stats::step(object, ...)

#' @rdname elementwise
#' @export
step.kernops_lazy <- function(object, ...) lazy_call("Step", list(object), sys.call())

#' @rdname elementwise
#' @export
clamp <- function(x, lower, upper) {
  call <- sys.call()
  x <- check_lazy(x, "clamp")
  lazy_call("Clamp", list(x, as_lazy(lower, x, call), as_lazy(upper, x, call)), call, what = "clamp()")
}

#' @rdname elementwise
#' @export
minimum <- function(x, y) {
  call <- sys.call()
  lazy_call("Min", two_lazy(x, y, "minimum", call), call, what = "minimum()")
}

#' @rdname elementwise
#' @export
maximum <- function(x, y) {
  call <- sys.call()
  lazy_call("Max", two_lazy(x, y, "maximum", call), call, what = "maximum()")
}

#' @rdname elementwise
#' @export
if_else <- function(condition, true, false) {
  call <- sys.call()
  cond <- check_lazy(condition, "if_else", "condition")
  a <- as_lazy(true, cond, call)
  b <- as_lazy(false, cond, call)
  cond <- as_condition(cond, call)
  dim <- bcast_dim(c(cond$dim, a$dim, b$dim), "if_else()", call)
  if (is.null(cond$test)) {
    # a combination of conditions: a 0/1 mask, TRUE where non-zero
    cond <- lazy_logical(list(cond), paste0("-Abs(", cond$f, ")"), TRUE, cond$dim, call)
  }
  yes_no <- if (isTRUE(cond$neg)) list(b, a) else list(a, b)
  inner <- paste0("IfElse(", cond$test, ",", yes_no[[1]]$f, ",", yes_no[[2]]$f, ")")
  lazy_node(list(cond, a, b), inner, 4L, dim, call)
}

#' Radial kernels as LazyTensors
#'
#' Kernels \eqn{k(x_i, y_j)} of the distance \eqn{r = |x_i - y_j|} with bandwidth
#' \eqn{\sigma}, written with the KeOps kernel functions (with \eqn{g = 1/\sigma^2}):
#'
#' * `gaussian_kernel`: \eqn{\exp(-r^2/\sigma^2)} (`GaussKernel`);
#' * `laplace_kernel`: \eqn{\exp(-r/\sigma)} (`LaplaceKernel`);
#' * `cauchy_kernel`: \eqn{1/(1 + r^2/\sigma^2)} (`CauchyKernel`);
#' * `inverse_multiquadric_kernel`: \eqn{1/\sqrt{1 + r^2/\sigma^2}}
#'   (`InverseMultiquadricKernel`);
#' * `matern32_kernel`: \eqn{(1 + u)\exp(-u)} with \eqn{u = \sqrt{3} r/\sigma}
#'   (`Matern32Kernel`);
#' * `matern52_kernel`: \eqn{(1 + u + u^2/3)\exp(-u)} with \eqn{u = \sqrt{5} r/\sigma}
#'   (`Matern52Kernel`).
#'
#' Note the Gaussian convention: no factor 1/2 (for \eqn{\exp(-r^2/(2s^2))} use
#' `sigma = sqrt(2) * s`).
#'
#' @param x,y LazyTensors of the same dimension (typically `Vi(x)` and `Vj(y)`).
#' @param sigma The bandwidth: a positive number, or a LazyTensor of dimension 1 (e.g.
#'   `Pm(s)`).
#' @return A LazyTensor of dimension 1.
#' @name kernels
#' @seealso [lazytensor]
#' @examples
#' x <- matrix(runif(200), 100, 2)
#' b <- rnorm(100)
#' # Gaussian kernel matrix-vector product K %*% b, without storing K
#' Kb <- sum(gaussian_kernel(Vi(x), Vj(x), sigma = 0.2) * Vj(b), index = "j")
#' K <- exp(-as.matrix(dist(x))^2 / 0.2^2)
#' all.equal(Kb, K %*% b)
NULL

radial_kernel <- function(name, x, y, sigma, call) {
  xy <- two_lazy(x, y, sub("Kernel$", "_kernel", name), call)
  like <- xy[[1]]
  if (inherits(sigma, "kernops_lazy")) {
    if (sigma$dim != 1)
      abort_kernops(sprintf("`sigma` must have dimension 1, got %d.", sigma$dim),
                    "kernops_error_dimension", call = call)
    g <- 1 / sigma^2
  } else {
    if (!is.numeric(sigma) || length(sigma) != 1 || is.na(sigma) || !is.finite(sigma) || sigma <= 0)
      abort_kernops("`sigma` must be a single positive number (or a LazyTensor such as Pm(s)).",
                    "kernops_error_input", call = call)
    g <- as_lazy(1 / sigma^2, like, call)
  }
  bcast_dim(c(xy[[1]]$dim, xy[[2]]$dim), sprintf("%s()", sub("Kernel$", "_kernel", name)), call)
  lazy_call(name, list(g, xy[[1]], xy[[2]], lazy_const(1)), call, dim = 1L)
}

#' @rdname kernels
#' @export
gaussian_kernel <- function(x, y, sigma = 1) radial_kernel("GaussKernel", x, y, sigma, sys.call())

#' @rdname kernels
#' @export
laplace_kernel <- function(x, y, sigma = 1) radial_kernel("LaplaceKernel", x, y, sigma, sys.call())

#' @rdname kernels
#' @export
cauchy_kernel <- function(x, y, sigma = 1) radial_kernel("CauchyKernel", x, y, sigma, sys.call())

#' @rdname kernels
#' @export
inverse_multiquadric_kernel <- function(x, y, sigma = 1) {
  radial_kernel("InverseMultiquadricKernel", x, y, sigma, sys.call())
}

#' @rdname kernels
#' @export
matern32_kernel <- function(x, y, sigma = 1) radial_kernel("Matern32Kernel", x, y, sigma, sys.call())

#' @rdname kernels
#' @export
matern52_kernel <- function(x, y, sigma = 1) radial_kernel("Matern52Kernel", x, y, sigma, sys.call())

#' Gradient of a LazyTensor formula
#'
#' `grad(f, wrt, e)` is the LazyTensor \eqn{\nabla_v \langle e, F \rangle}: the gradient
#' of the formula `f` with respect to the variable `wrt` (a LazyTensor made by `Vi()`,
#' `Vj()` or `Pm()`), contracted with `e` (KeOps `Grad(F, v, e)`). It has the dimension of
#' `wrt`. Reduce it like any LazyTensor: `sum(grad(K, x_i, e_i), index = "j")` is the
#' gradient with respect to \eqn{x_i} of \eqn{\sum_j \langle e_i, K(x_i, y_j) \rangle}.
#'
#' @param f A LazyTensor.
#' @param wrt The variable to differentiate with respect to: a LazyTensor returned by
#'   `Vi()`, `Vj()` or `Pm()` (not an expression).
#' @param e The direction, of the dimension of `f`: a LazyTensor, a number or a vector.
#'   May be left out when `f` has dimension 1 (then `e = 1`).
#' @return A LazyTensor of the dimension of `wrt`.
#' @seealso [reduction_grad()] to differentiate a whole reduction (also LogSumExp and
#'   SumSoftMaxWeight) with [kernel_grad()]; [lazytensor]
#' @export
#' @examples
#' x <- matrix(runif(20), 10, 2)
#' y <- matrix(runif(30), 15, 2)
#' x_i <- Vi(x)
#' K <- exp(-sqdist(x_i, Vj(y)))
#' # d/dx_i sum_j exp(-|x_i - y_j|^2) = sum_j -2 (x_i - y_j) exp(-|x_i - y_j|^2)
#' g <- sum(grad(K, x_i), index = "j")
#' g_dense <- t(sapply(1:10, function(i) {
#'   d <- -sweep(y, 2, x[i, ])           # x_i - y_j
#'   colSums(-2 * d * exp(-rowSums(d^2)))
#' }))
#' all.equal(g, g_dense)
grad <- function(f, wrt, e = NULL) {
  call <- sys.call()
  f <- check_lazy(f, "grad", "f")
  if (!inherits(wrt, "kernops_lazy") || !isTRUE(wrt$leaf))
    abort_kernops("grad(): `wrt` must be a variable: a LazyTensor returned by Vi(), Vj() or Pm(), not an expression.",
                  "kernops_error_input", call = call)
  if (is.null(e)) {
    if (f$dim != 1)
      abort_kernops(sprintf("grad(): `f` has dimension %d: give the direction `e` (of dimension %d).", f$dim, f$dim),
                    "kernops_error_dimension", call = call)
    e <- lazy_const(1)
  }
  e <- as_lazy(e, f, call)
  if (e$dim != f$dim)
    abort_kernops(sprintf("grad(): the direction `e` has dimension %d but `f` has dimension %d.", e$dim, f$dim),
                  "kernops_error_dimension", call = call)
  lazy_node(list(f, wrt, e), paste0("Grad(", f$f, ",", wrt$f, ",", e$f, ")"), 4L, wrt$dim, call)
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
    abort_kernops(c(sprintf("A LazyTensor is symbolic and cannot be converted with %s().", what),
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
#' @export
as.data.frame.kernops_lazy <- not_a_matrix("as.data.frame")
#' @export
mean.kernops_lazy <- not_a_matrix("mean")
#' @export
c.kernops_lazy <- function(...) {
  abort_kernops("c() does not combine LazyTensors: use concat(a, b) to concatenate their coordinates.",
                "kernops_error_input", call = NULL)
}

# lazy_ops.R -- the vector and elementwise helpers of LazyTensors, the named kernels and
# grad(). Each builds a new LazyTensor node (lazy_node / lazy_call in lazytensor.R);
# nothing is computed here.

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
  # finite and within integer range, like `k` of the K-min reductions (Inf or 1e10 used to
  # become NA with a coercion warning)
  if (!is.numeric(k) || length(k) != 1 || !is.finite(k) || k != round(k) || abs(k) > .Machine$integer.max)
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
`[.kernops_lazy` <- function(x, i, j, ..., drop) {
  call <- sys.call()
  if (!missing(j) || ...length() > 0)
    abort_kernops(paste("A LazyTensor takes one index, its coordinates (x[k], x[k1:k2]):",
                        "its rows are the i or j axis of the formula, which only a reduction removes."),
                  "kernops_error_input", call = call)
  if (missing(i)) return(x)
  if (is_lazy(i) || is.logical(i))
    abort_kernops(paste("A LazyTensor cannot be indexed by a condition, as pmax(), pmin() and",
                        "ifelse() do: write maximum(x, y), minimum(x, y) or if_else(condition, a, b)."),
                  "kernops_error_input", call = call)
  if (!is.numeric(i) || length(i) == 0 || anyNA(i) || any(i != round(i)) || any(i < 1) ||
      any(i > .Machine$integer.max))
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
#' * `heaviside(x)`: the step function, 1 where \eqn{x \ge 0}, else 0 (KeOps `Step`;
#'   not named `step()`, which would mask [stats::step()]).
#' * `clamp(x, lower, upper)`: `x` limited to `[lower, upper]` (`Clamp`).
#' * `minimum(x, y)`, `maximum(x, y)`: the elementwise minimum and maximum (`Min`, `Max`);
#'   `min()`/`max()` of a LazyTensor are reductions.
#' * `if_else(condition, true, false)`: `true` where `condition` holds, else `false`. The
#'   condition is usually a comparison such as `x >= y` (then `IfElse(x-y, true, false)`);
#'   any other LazyTensor counts as TRUE where it is non-zero, as in R. (KeOps' own
#'   `IfElse(c, a, b)` tests `c >= 0`: write `if_else(c >= 0, a, b)`.)
#'
#' @param x,y,condition,true,false,lower,upper LazyTensors, or numbers combined
#'   with a LazyTensor.
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
heaviside <- function(x) lazy_call("Step", list(check_lazy(x, "heaviside")), sys.call())

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
#' all.equal(Kb, unname(K %*% b))
NULL

kernel_fn_names <- c(GaussKernel = "gaussian_kernel", LaplaceKernel = "laplace_kernel",
                     CauchyKernel = "cauchy_kernel", InverseMultiquadricKernel = "inverse_multiquadric_kernel",
                     Matern32Kernel = "matern32_kernel", Matern52Kernel = "matern52_kernel")

radial_kernel <- function(name, x, y, sigma, call) {
  fn <- kernel_fn_names[[name]]
  xy <- two_lazy(x, y, fn, call)
  # inside a `~` formula when either point is symbolic (the other may be a number)
  symbolic <- isTRUE(xy[[1]]$symbolic) || isTRUE(xy[[2]]$symbolic)
  if (inherits(sigma, "kernops_lazy")) {
    if (sigma$dim != 1)
      abort_kernops(sprintf("`sigma` must have dimension 1, got %d.", sigma$dim),
                    "kernops_error_dimension", call = call)
    g <- 1 / sigma^2
  } else {
    if (!is.numeric(sigma) || length(sigma) != 1 || is.na(sigma) || !is.finite(sigma) || sigma <= 0 ||
        !is.finite(1 / sigma^2))
      abort_kernops("`sigma` must be a single positive number whose 1/sigma^2 is finite (or a LazyTensor such as Pm(s)).",
                    "kernops_error_input", call = call)
    # always a parameter in a formula on data (a constant only in a `~` formula), whole
    # or not, so that a loop over bandwidths compiles the formula once (as_lazy() would
    # write 1/0.5^2 = 4 into the formula as a constant)
    g <- if (symbolic) lazy_const(1 / sigma^2) else leaf_lazy("p", 1L, 1L, 1 / sigma^2, NULL, auto = TRUE)
  }
  bcast_dim(c(xy[[1]]$dim, xy[[2]]$dim), sprintf("%s()", fn), call)
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

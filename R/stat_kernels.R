# stat_kernels.R -- the kernels of the statistics functions (kde(), kernel_norm(), mmd(),
# kernel_solve(), kernel_spline()), in one bandwidth convention, and the checks of their
# arguments.

#' Kernels of the statistics functions
#'
#' Every statistics function of kernops (kernel density estimation, kernel norms and MMD,
#' kernel solves and splines) names its kernel with `kernel =` and its scale with `sigma`
#' (or a bandwidth matrix `H` for `kde()`), in one convention: \eqn{\sigma} is in the
#' units of the data and, for the Gaussian, is the standard deviation,
#' \deqn{k(x, y) = \exp(-|x - y|^2 / (2\sigma^2)),}
#' as in `ks` (\eqn{H = \sigma^2 I}) and in the MMD literature. With \eqn{r = |x - y|}:
#'
#' * `"gaussian"`: \eqn{\exp(-r^2 / (2\sigma^2))};
#' * `"laplace"`: \eqn{\exp(-r / \sigma)};
#' * `"cauchy"`: \eqn{1 / (1 + r^2 / \sigma^2)};
#' * `"epanechnikov"`: \eqn{\max(0, 1 - r^2 / \sigma^2)} (compact support: only for `kde()`);
#' * `"matern32"`: \eqn{(1 + u) \exp(-u)} with \eqn{u = \sqrt 3\, r / \sigma} (Matern,
#'   \eqn{\nu = 3/2}, length scale \eqn{\sigma});
#' * `"matern52"`: \eqn{(1 + u + u^2 / 3) \exp(-u)} with \eqn{u = \sqrt 5\, r / \sigma}
#'   (Matern, \eqn{\nu = 5/2});
#' * `"imq"`: \eqn{1 / \sqrt{1 + r^2 / \sigma^2}} (inverse multiquadric).
#'
#' [kde()] takes the first four, [kernel_norm()] and [mmd()] the positive definite
#' `"gaussian"`, `"laplace"` and `"cauchy"`, and [kernel_solve()] and [kernel_spline()] the
#' positive definite ones: all but `"epanechnikov"`.
#'
#' The same Gaussian in the other places users meet it: the LazyTensor
#' [gaussian_kernel()] (the engine's `GaussKernel`) has no factor 1/2,
#' \eqn{\exp(-r^2/s^2)}, so it is `gaussian_kernel(x, y, sigma = sqrt(2) * sigma)`;
#' kernlab's `rbfdot(sigma = g)` is \eqn{\exp(-g r^2)}, so it is `rbfdot(sigma = 1 / (2 *
#' sigma^2))`. Density estimates multiply the kernel by the constant that makes it
#' integrate to 1 (see [kde()]); kernel norms and MMD use it as written here.
#' @name stat_kernels
#' @seealso [kernels] for the LazyTensor kernels; [kernel_norm()], [mmd()] and
#'   [mmd_test()] for kernel norms and MMD tests in this convention; [kernel_solve()] and
#'   [kernel_spline()] for kernel systems and splines.
#' @examples
#' x <- matrix(rnorm(20), 10, 2)
#' sigma <- 0.7
#' K <- exp(-as.matrix(dist(x))^2 / (2 * sigma^2))   # the "gaussian" of this page
#' Kb <- sum(gaussian_kernel(Vi(x), Vj(x), sigma = sqrt(2) * sigma) * Vj(rep(1, 10)), index = "j")
#' all.equal(as.vector(Kb), unname(rowSums(K)))
NULL

# Per kernel: the engine's formula of k(x, y) with the parameter g (so that a new sigma never
# recompiles: g is a Pm), and g as a function of sigma. The Gaussian, Laplace and Cauchy
# (and Matern, IMQ) spellings are the engine's named kernels, which take its fused radial path.
stat_kernel_table <- list(
  gaussian = list(formula = "GaussKernel(g,x,y,1)", g = function(sigma) 1 / (2 * sigma^2)),
  laplace = list(formula = "LaplaceKernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  cauchy = list(formula = "CauchyKernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  epanechnikov = list(formula = "ReLU(1-g*SqDist(x,y))", g = function(sigma) 1 / sigma^2),
  matern32 = list(formula = "Matern32Kernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  matern52 = list(formula = "Matern52Kernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  imq = list(formula = "InverseMultiquadricKernel(g,x,y,1)", g = function(sigma) 1 / sigma^2)
)

# The kernel's entry, or a kernops_error_input naming the argument and the choices.
stat_kernel <- function(kernel, allowed = names(stat_kernel_table), arg = "kernel", call = NULL) {
  if (!is.character(kernel) || length(kernel) != 1 || is.na(kernel) || !kernel %in% allowed)
    abort_kernops(sprintf("`%s` must be one of %s, not %s.", arg, paste0('"', allowed, '"', collapse = ", "),
                          if (is.character(kernel) && length(kernel) == 1) paste0('"', kernel, '"') else describe_type(kernel)),
                  "kernops_error_input", call = call)
  c(stat_kernel_table[[kernel]], name = kernel)
}

# A positive, finite scale (sigma, h) whose g is finite too, or a kernops_error_input.
check_bandwidth <- function(sigma, arg = "sigma", call = NULL) {
  if (!is.numeric(sigma) || length(sigma) != 1 || is.na(sigma) || !is.finite(sigma) || sigma <= 0 ||
      !is.finite(1 / sigma^2))
    abort_kernops(sprintf("`%s` must be a single positive finite number (got %s).", arg,
                          if (is.numeric(sigma) && length(sigma) == 1) format(sigma) else describe_type(sigma)),
                  "kernops_error_input", call = call)
  invisible(sigma)
}

# Compiled reductions, cached for the session by formula, declarations, dtype and backend:
# the statistics functions (kde, bandwidth selectors, mmd) call them in loops with new data
# and bandwidths (a Pm), never recompiling.
stat_op_cache <- new.env(parent = emptyenv())
stat_op <- function(formula, args, dtype, backend) {
  key <- paste(formula, paste(args, collapse = ";"), dtype, backend, sep = "|")
  op <- stat_op_cache[[key]]
  if (is.null(op)) {
    op <- kernel_op(formula, args, dtype = dtype, backend = backend)
    assign(key, op, envir = stat_op_cache)
  }
  op
}

# The gradient of a cached op with respect to `wrt` (direction argument `e`), cached alike:
# predict(deriv = 1) is called in loops (mean shift), and so are MMD gradient flows.
stat_grad_op <- function(formula, args, dtype, backend, wrt) {
  key <- paste("grad", wrt, formula, paste(args, collapse = ";"), dtype, backend, sep = "|")
  gop <- stat_op_cache[[key]]
  if (is.null(gop)) {
    gop <- kernel_grad(stat_op(formula, args, dtype, backend), wrt = wrt, direction = "e")
    assign(key, gop, envir = stat_op_cache)
  }
  gop
}

# kde.R -- exact kernel density estimation: kde(), the kernops_kde class and its methods.
#
# A bandwidth matrix H = R'R (Cholesky) is handled by whitening: z = x R^{-1}, so that
# (x - y)' H^{-1} (x - y) = |z_x - z_y|^2 and every kernel is radial in z with sigma = 1.
# The engine then runs its fused radial path (GaussKernel & co.) with the fixed g of the
# kernel table; only data changes between calls, so the compiled ops are reused.

#' Kernel density estimation
#'
#' `kde()` computes the exact kernel density estimate (no binning) of a sample in any
#' dimension at chosen points, with the arguments and meanings of `ks::kde()`, so that
#' code can switch between the two. The sums over the sample are kernops reductions:
#' no n x m matrix is ever stored.
#'
#' @section Bandwidth and kernels:
#' The bandwidth follows the convention of [stat_kernels]: `H` is a symmetric positive
#' definite matrix in the units of the data squared, `h` a scale (`H = h^2` in 1-D,
#' `H = h^2 I` in d dimensions). With \eqn{u = (x - X_j)' H^{-1} (x - X_j)} and
#' \eqn{r = \sqrt{u}}, the estimate is
#' \deqn{\hat f(x) = \frac{1}{\sum_j w_j} \sum_j w_j\, c_d\, |H|^{-1/2} k(r),}
#' with these kernels and normalising constants \eqn{c_d} in dimension d:
#' * `"gaussian"`: \eqn{k = \exp(-r^2/2)}, \eqn{c_d = (2\pi)^{-d/2}}: for the Gaussian,
#'   `H` is the covariance matrix of the kernel and `h` its standard deviation, as in
#'   `ks::kde()` and `density(bw = h)`;
#' * `"epanechnikov"`: \eqn{k = \max(0, 1 - r^2)}, \eqn{c_d = (d + 2) / (2 V_d)} with
#'   \eqn{V_d = \pi^{d/2} / \Gamma(d/2 + 1)} the volume of the unit ball (3/4 in 1-D);
#'   `h` is the radius of its support, not its standard deviation (which is \eqn{h/\sqrt 5}
#'   in 1-D);
#' * `"laplace"`: \eqn{k = \exp(-r)}, \eqn{c_d = \Gamma(d/2) / (2 \pi^{d/2} \Gamma(d))}
#'   (1/2 in 1-D);
#' * `"cauchy"`: \eqn{k = 1/(1 + r^2)}, \eqn{c_1 = 1/\pi}; only in 1-D, where it is
#'   integrable.
#'
#' @section Bandwidth selection:
#' A missing `H` (and `h`) selects the bandwidth with [kde_bandwidth()]: the plug-in
#' selector, as `ks::kde()`: in 1-D that of `ks::hpi()`, in 2-D the full (unconstrained)
#' plug-in `H` of `ks::Hpi()` (equal to `ks::Hpi(binned = FALSE)` to about 1e-13; the
#' diagonal one of `ks::Hpi.diag()` is `H = "pi_diag"`), in d = 3 and 4 that of
#' `ks::Hpi()` with its "dscalar" pilot (equal to `ks::Hpi(binned = FALSE)` to 5e-13); in
#' d > 4, where the plug-in's set-up takes tens of seconds, the normal-scale selector
#' (pass `H = "pi"` for ks' default). `H` (or `h`) may also be the name of a selector,
#' e.g. `H = "lscv"`.
#' Selectors assume the Gaussian kernel and use the weights (see [kde_bandwidth()]); ks'
#' selectors ignore them.
#'
#' @param x The sample: a numeric vector (d = 1), or a matrix or data frame with one row
#'   per point (d columns). At least 2 rows, all finite.
#' @param H The bandwidth matrix (d x d, symmetric positive definite; a positive number in
#'   1-D), or a selector name for [kde_bandwidth()]: `"pi"`, `"pi_diag"`, `"ns"`, `"silverman"`,
#'   `"lscv"`, `"lcv"`.
#' @param h A scale for `H = h^2 I` (the usual argument in 1-D); give `H` or `h`, not both.
#' @param eval.points Where to evaluate: a vector (d = 1) or a matrix / data frame with d
#'   columns. Missing: at the sample points themselves.
#' @param weights Non-negative weights of the sample points (not all zero), normalised to
#'   sum to 1; ks' `w = ` is accepted too.
#' @param kernel The kernel: `"gaussian"`, `"epanechnikov"`, `"laplace"` or `"cauchy"`.
#' @param dtype `"float64"` or `"float32"`, the precision of the reductions (see [kernel_op()]).
#' @param backend The backend of the reductions (see [kernel_op()]).
#' @param ... `binned = FALSE` is accepted (for code written for `ks::kde()`); any other
#'   argument is an error.
#' @return An object of class `kernops_kde`, a list with the fields of `ks::kde()`: `x`
#'   (a matrix), `eval.points` (a matrix), `estimate`, `h` (1-D and scalar `h` only,
#'   else `NULL`), `H`, `gridded = FALSE`, `binned = FALSE`, `names`, `w` (the weights,
#'   summing to 1), and `kernel`, `selector` (the selector name, or `NULL`), `dtype`,
#'   `backend`, `call`, `whitening` (the Cholesky whitening of `H`, kept for [predict()][predict.kernops_kde]; a changed `H` needs a new fit). Methods: `print`, `summary`, [predict()][predict.kernops_kde]
#'   (density, log-density or gradient at new points), [plot()][plot.kernops_kde].
#' @seealso [kde_bandwidth()] for the selectors, [stat_kernels] for the bandwidth convention.
#' @export
#' @examples
#' set.seed(1)
#' x <- c(rnorm(100), rnorm(50, 4))
#' fit <- kde(x, h = 0.5, eval.points = seq(-3, 7, length.out = 5))
#' fit
#' fit$estimate
#' # the same as the dense formula
#' sapply(fit$eval.points, function(e) mean(dnorm(e, x, 0.5)))
#' # 2-D, with a full bandwidth matrix, evaluated at the sample points
#' y <- cbind(rnorm(200), rnorm(200))
#' y[, 2] <- y[, 2] + y[, 1]
#' fit2 <- kde(y, H = matrix(c(0.1, 0.05, 0.05, 0.2), 2, 2))
#' summary(fit2)
#' predict(fit2, newdata = rbind(c(0, 0), c(1, 1)))
kde <- function(x, H, h, eval.points, weights = NULL,
                kernel = c("gaussian", "epanechnikov", "laplace", "cauchy"),
                dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda"), ...) {
  call <- match.call()
  ecall <- sys.call()
  dots <- list(...)
  # ks' binned = FALSE (exact sums) is what kernops computes, so code written for ks runs
  if (!is.null(dots$binned)) {
    if (!identical(dots$binned, FALSE))
      abort_kernops("kde() computes exact sums: `binned` can only be FALSE.", "kernops_error_unsupported", call = ecall)
    dots$binned <- NULL
  }
  check_no_dots(dots, ecall)
  kernel <- if (identical(kernel, eval(formals(kde)$kernel))) "gaussian" else kernel
  kern <- stat_kernel(kernel, allowed = c("gaussian", "epanechnikov", "laplace", "cauchy"), call = ecall)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", ecall)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", ecall), ecall)
  X <- stat_points(x, "x", min_n = 2L, call = ecall)
  d <- ncol(X)
  if (kern$name == "cauchy" && d > 1)
    abort_kernops(sprintf("The \"cauchy\" kernel 1/(1+r^2) is not integrable in %d dimensions; use it for d = 1 only.", d),
                  "kernops_error_input", call = ecall)
  w <- kde_weights(weights, nrow(X), ecall)
  selector <- NULL
  hval <- NULL
  if (!missing(H) && !missing(h))
    abort_kernops("Give the bandwidth as `H` or as `h`, not both.", "kernops_error_input", call = ecall)
  if (!missing(h) && is.character(h)) { H <- h; h <- NULL }
  # ks::kde's default selector in every dimension is the plug-in; beyond d = 4 its set-up
  # here (the normal-scale 8th-order functionals) costs too much for a default
  if (missing(H) && (missing(h) || is.null(h))) H <- if (d <= 4) "pi" else "ns"
  if (!missing(H) && is.character(H)) {
    selector <- match_choice(H, c("pi", "pi_diag", "ns", "silverman", "lscv", "lcv"), if (missing(h)) "H" else "h", ecall)
    H <- kde_bandwidth(X, method = H, weights = w, dtype = dtype, backend = backend)
    if (d == 1) hval <- sqrt(H[1, 1])
  } else if (!missing(h) && !is.null(h)) {
    check_bandwidth(h, "h", call = ecall)
    hval <- h
    H <- diag(h^2, d)
  } else {
    H <- check_H(H, d, ecall)
    if (d == 1) hval <- sqrt(H[1, 1])
  }
  E <- if (missing(eval.points)) X else stat_points(eval.points, "eval.points", d, call = ecall)
  fit <- structure(list(x = X, eval.points = E, estimate = NULL, h = hval, H = H,
                        gridded = FALSE, binned = FALSE, names = colnames(X), w = w,
                        kernel = kern$name, selector = selector, dtype = dtype,
                        backend = backend, call = call),
                   class = "kernops_kde")
  fit$whitening <- kde_whitening(fit)
  fit$estimate <- kde_eval(fit, E, log = FALSE, call = ecall)
  fit
}

# An unknown argument (a typo, or a ks argument kernops has no use for) is an error, not ignored.
check_no_dots <- function(dots, call = NULL) {
  if (length(dots)) {
    nm <- names(dots) %||% rep("", length(dots))
    abort_kernops(sprintf("Unused argument%s %s.", if (length(dots) > 1) "s" else "",
                          paste0("`", ifelse(nzchar(nm), nm, "<unnamed>"), "`", collapse = ", ")),
                  "kernops_error_input", call = call)
  }
}

# Weights normalised to sum to 1 (NULL: uniform).
kde_weights <- function(weights, n, call = NULL) {
  normalise_weights(check_weights(weights, n, "weights", call), "weights", call)
}

# A d x d symmetric positive definite bandwidth matrix (a number in 1-D), or an error.
check_H <- function(H, d, call = NULL) {
  if (!is.numeric(H) || anyNA(H) || any(!is.finite(H)))
    abort_kernops(sprintf("`H` must be a finite numeric matrix (or a selector name), not %s.", describe_type(H)),
                  "kernops_error_input", call = call)
  if (d == 1 && length(H) == 1) H <- matrix(H, 1, 1)
  if (!is.matrix(H) || any(dim(H) != d))
    abort_kernops(sprintf("`H` must be a %d x %d matrix (the dimension of `x`), not %s.", d, d,
                          if (is.matrix(H)) paste(dim(H), collapse = " x ") else sprintf("of length %d", length(H))),
                  "kernops_error_dimension", call = call)
  storage.mode(H) <- "double"
  if (!isTRUE(all.equal(H, t(H), tolerance = 1e-12, check.attributes = FALSE)))
    abort_kernops("`H` must be symmetric.", "kernops_error_input", call = call)
  H <- (H + t(H)) / 2
  ev <- eigen(H, symmetric = TRUE, only.values = TRUE)$values
  if (min(ev) <= 0 || min(ev) <= 1e-14 * max(ev) || !all(is.finite(1 / ev)))
    abort_kernops(sprintf("`H` must be positive definite (its smallest eigenvalue is %s).", format(min(ev))),
                  "kernops_error_input", call = call)
  dimnames(H) <- NULL
  H
}

# log(c_d |H|^{-1/2}): the normalising constant of the kernel in the whitened coordinates.
kde_log_const <- function(kernel, d, H) {
  logc <- switch(kernel,
    gaussian = -d / 2 * log(2 * pi),
    epanechnikov = log((d + 2) / 2) - (d / 2 * log(pi) - lgamma(d / 2 + 1)),
    laplace = lgamma(d / 2) - log(2) - d / 2 * log(pi) - lgamma(d),
    cauchy = -log(pi))
  logc - 0.5 * as.numeric(determinant(H, logarithm = TRUE)$modulus)
}

# The whitening of a fit, computed once by kde() and kept in the fit (predict() is called
# in loops, e.g. mean shift): A = R^{-1} with H = R'R, so that z = x %*% A; the log of the
# normalising constant; and the whitened sample z = x A.
kde_whitening <- function(fit) {
  A <- backsolve(chol(fit$H), diag(nrow(fit$H)))
  list(A = A, log_const = kde_log_const(fit$kernel, ncol(fit$x), fit$H), z = fit$x %*% A)
}

# g of the whitened kernel (sigma = 1).
kde_g <- function(kernel) stat_kernel_table[[kernel]]$g(1)

# The density (or its log) of `fit` at the rows of E.
kde_eval <- function(fit, E, log = FALSE, call = NULL) {
  d <- ncol(fit$x)
  wh <- fit$whitening %||% kde_whitening(fit)
  ZE <- E %*% wh$A
  if (log && fit$kernel == "gaussian") {
    # log sum_j w_j exp(-|z - z_j|^2 / 2), stable far from the sample (no underflow to -Inf)
    op <- stat_op("LogSumExp_Reduction(-g*SqDist(x,y), 0, b)", stat_sum_args(d), fit$dtype, fit$backend)
    return(as.vector(op(x = ZE, y = wh$z, b = fit$w, g = kde_g("gaussian"))) + wh$log_const)
  }
  op <- stat_op(stat_sum_formula(stat_kernel_table[[fit$kernel]]$formula), stat_sum_args(d), fit$dtype, fit$backend)
  s <- as.vector(op(x = ZE, y = wh$z, b = fit$w, g = kde_g(fit$kernel)))
  if (log) log(s) + wh$log_const else s * exp(wh$log_const)
}

# The gradient of the density at the rows of E (one row per point).
kde_gradient <- function(fit, E) {
  d <- ncol(fit$x)
  wh <- fit$whitening %||% kde_whitening(fit)
  gop <- stat_grad_op(stat_sum_formula(stat_kernel_table[[fit$kernel]]$formula), stat_sum_args(d), fit$dtype, fit$backend, "x")
  gz <- gop(x = E %*% wh$A, y = wh$z, b = fit$w, g = kde_g(fit$kernel), e = matrix(1, nrow(E), 1))
  # f(x) = F(x A): grad_x f = grad_z F A'
  (gz %*% t(wh$A)) * exp(wh$log_const)
}

#' Predict a kernel density estimate at new points
#'
#' @param object A `kernops_kde` from [kde()].
#' @param newdata Where to evaluate: a vector (d = 1) or a matrix / data frame with d
#'   columns. Missing: the sample points. `x = ` (the name ks uses) is accepted too.
#' @param log `TRUE` for the log-density; for the Gaussian kernel it is computed as a
#'   LogSumExp, so it stays finite far from the sample where the density underflows to 0.
#' @param deriv `0` for the density, `1` for its gradient (a matrix with one row per point
#'   and d columns), computed with [kernel_grad()].
#' @param ... Unused.
#' @return A vector of densities (or log-densities), or the gradient matrix for `deriv = 1`.
#' @seealso [kde()]
#' @importFrom stats predict
#' @export
#' @examples
#' set.seed(2)
#' x <- cbind(c(rnorm(100), rnorm(100, 3)), rnorm(200))
#' fit <- kde(x, H = diag(0.3, 2))
#' predict(fit, rbind(c(0, 0), c(3, 0), c(20, 20)))
#' predict(fit, rbind(c(20, 20)), log = TRUE)   # finite, where the density underflows
#' # mean shift: for the Gaussian, x + H grad f / f moves uphill to a mode
#' p <- rbind(c(0.5, 0.5), c(2.5, -0.5))
#' for (it in 1:50) p <- p + predict(fit, p, deriv = 1) %*% fit$H / predict(fit, p)
#' p
predict.kernops_kde <- function(object, newdata, log = FALSE, deriv = 0, ...) {
  call <- sys.call()
  dots <- list(...)
  if (missing(newdata) && "x" %in% names(dots)) { newdata <- dots$x; dots$x <- NULL }
  check_no_dots(dots, call)
  d <- ncol(object$x)
  E <- if (missing(newdata)) object$x else stat_points(newdata, "newdata", d, call = call)
  if (!identical(deriv, 0) && !identical(deriv, 1) && !identical(deriv, 0L) && !identical(deriv, 1L))
    abort_kernops("`deriv` must be 0 (density) or 1 (gradient).", "kernops_error_input", call = call)
  if (!is.logical(log) || length(log) != 1 || is.na(log))
    abort_kernops("`log` must be TRUE or FALSE.", "kernops_error_input", call = call)
  if (deriv == 1) {
    if (log) abort_kernops("`log = TRUE` is for deriv = 0 only.", "kernops_error_input", call = call)
    return(kde_gradient(object, E))
  }
  kde_eval(object, E, log = log, call = call)
}

kde_bandwidth_text <- function(x) {
  if (!is.null(x$h)) return(sprintf("h = %s", format(signif(x$h, 4))))
  if (ncol(x$H) == 1) return(sprintf("H = %s", format(signif(x$H[1, 1], 4))))
  paste0("H = ", paste(apply(format(signif(x$H, 4)), 1, paste, collapse = " "), collapse = " | "))
}

#' @export
print.kernops_kde <- function(x, ...) {
  cat("Kernel density estimate (kernops, exact)\n")
  cat("Call: ", paste(deparse(x$call, width.cutoff = 70L), collapse = "\n"), "\n", sep = "")
  cat(sprintf("n = %d points in %d dimension%s, %s kernel, %s%s\n", nrow(x$x), ncol(x$x),
              if (ncol(x$x) > 1) "s" else "", x$kernel, kde_bandwidth_text(x),
              if (!is.null(x$selector)) sprintf(" (selector \"%s\")", x$selector) else ""))
  cat(sprintf("estimate at %d points: range %s to %s\n", nrow(x$eval.points),
              format(signif(min(x$estimate), 4)), format(signif(max(x$estimate), 4))))
  invisible(x)
}

#' @export
summary.kernops_kde <- function(object, ...) {
  w <- object$w
  structure(list(n = nrow(object$x), d = ncol(object$x), kernel = object$kernel, H = object$H,
                 h = object$h, selector = object$selector, n_eff = 1 / sum(w^2),
                 dtype = object$dtype, m = nrow(object$eval.points),
                 estimate = summary(object$estimate), call = object$call),
            class = "summary.kernops_kde")
}

#' @export
print.summary.kernops_kde <- function(x, ...) {
  cat("Kernel density estimate (kernops, exact)\n")
  cat("Call: ", paste(deparse(x$call, width.cutoff = 70L), collapse = "\n"), "\n", sep = "")
  cat(sprintf("n = %d (effective sample size of the weights: %.1f), d = %d, %s kernel, %s\n",
              x$n, x$n_eff, x$d, x$kernel, x$dtype))
  cat("Bandwidth", if (!is.null(x$selector)) sprintf("(selector \"%s\")", x$selector), "H:\n")
  print(x$H)
  cat(sprintf("Estimate at %d points:\n", x$m))
  print(x$estimate)
  invisible(x)
}

#' Plot a kernel density estimate
#'
#' In 1-D, the density curve with a rug of the sample; in 2-D, filled contours of the
#' density with the sample points. Base graphics; the density is evaluated exactly on a
#' grid with [predict()][predict.kernops_kde].
#'
#' @param x A `kernops_kde` from [kde()] of dimension 1 or 2.
#' @param gridsize Grid points per dimension.
#' @param points Whether to draw the sample (rug or points).
#' @param ... Further arguments to [graphics::plot()] (1-D) or [graphics::filled.contour()] (2-D).
#' @return `x`, invisibly.
#' @importFrom graphics plot
#' @export
#' @examples
#' set.seed(3)
#' plot(kde(c(rnorm(100), rnorm(50, 3)), h = 0.4))
#' y <- cbind(rnorm(150), rnorm(150))
#' plot(kde(y, H = diag(0.2, 2)), gridsize = 41)
plot.kernops_kde <- function(x, gridsize = if (ncol(x$x) == 1) 401L else 81L, points = TRUE, ...) {
  d <- ncol(x$x)
  if (d > 2)
    abort_kernops(sprintf("plot() shows kernel density estimates of dimension 1 or 2, not %d.", d),
                  "kernops_error_unsupported", call = sys.call())
  ext <- 3 * sqrt(diag(x$H))
  grid1 <- function(k) seq(min(x$x[, k]) - ext[k], max(x$x[, k]) + ext[k], length.out = gridsize)
  lab <- x$names %||% paste0("x", seq_len(d))
  if (d == 1) {
    g <- grid1(1)
    graphics::plot(g, predict(x, g), type = "l", xlab = lab[1], ylab = "density", ...)
    if (points) graphics::rug(x$x[, 1])
  } else {
    g1 <- grid1(1); g2 <- grid1(2)
    z <- matrix(predict(x, as.matrix(expand.grid(g1, g2))), gridsize, gridsize)
    pts <- x$x
    graphics::filled.contour(g1, g2, z, xlab = lab[1], ylab = lab[2],
                             plot.axes = { graphics::axis(1); graphics::axis(2)
                                           if (points) graphics::points(pts, pch = 20, cex = 0.4) }, ...)
  }
  invisible(x)
}

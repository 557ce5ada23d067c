# spline.R -- kernel splines and kernel ridge regression: kernel_spline(), the kernops_spline
# class and its methods. The fit solves (K + lambda I) a = y with kernel_solve()'s CG
# (R/solve.R); lambda chosen by GCV reuses the same multi-right-hand-side CG for the
# Hutchinson probes of the trace, and prediction is one reduction.

#' Kernel splines and kernel ridge regression
#'
#' `kernel_spline()` fits \eqn{f(x) = \sum_i a_i k(x, x_i)} to data \eqn{(x_i, y_i)},
#' the minimiser of \eqn{\sum_i (y_i - f(x_i))^2 + \lambda \|f\|^2_{\mathcal H}} in the
#' reproducing kernel Hilbert space of the kernel \eqn{k}: \eqn{(K + \lambda I) a = y}
#' with \eqn{K = [k(x_i, x_j)]}. With \eqn{\lambda = 0} it is the interpolating spline
#' (\eqn{f(x_i) = y_i}, the minimum-norm interpolant); with \eqn{\lambda > 0}, kernel
#' ridge regression, also the posterior mean of a Gaussian process with covariance
#' \eqn{k} and noise variance \eqn{\lambda} (for a kernel with \eqn{k(x, x) = 1}). The
#' system is solved by [kernel_solve()] (Nystrom-preconditioned conjugate gradients whose
#' products with \eqn{K} are reductions), so \eqn{n = 10^5} points fit in memory and in
#' minutes; prediction is one reduction.
#'
#' @section Kernels:
#' The kernels and the meaning of `sigma` are those of [stat_kernels]. A missing `sigma`
#' is set from the data by the median heuristic (as in [mmd()]): half the median of the
#' distances between the points (on a random subsample of 1000 points for larger
#' samples): half, because the median distance spans the whole cloud, and a kernel that
#' wide cannot follow a function that turns within it. Pass `sigma` to control the
#' smoothness.
#'
#' `"polyharmonic"` is the thin-plate (polyharmonic) spline, \eqn{r^2 \log r} in 2-D and
#' \eqn{r^3} otherwise, with an affine polynomial part (field `poly`); it has no `sigma`.
#' Its radial basis carries the constants of Duchon and Wahba (\eqn{1/(8\pi)} in 2-D,
#' \eqn{1/12} in 1-D), so \eqn{\|f\|^2} is the usual bending energy and `lambda` is the
#' `lambda` of `fields::Tps(x, y, lambda = lambda, scale.type = "unscaled")`: the two give
#' the same fit (Tps rescales each column of x to \[0, 1\] by default; kernops does not).
#' The saddle-point system \eqn{[K + \lambda I, P; P^T, 0]} is solved by conjugate gradients
#' projected on \eqn{P^T a = 0} (P = \[1, x\]), preconditioned by a Nystrom approximation.
#'
#' @section Choosing lambda:
#' `lambda = "gcv"` (the default) minimises the generalised cross-validation criterion
#' \deqn{GCV(\lambda) = \frac{n \|y - \hat y\|^2}{\mathrm{tr}(I - A_\lambda)^2} =
#' \frac{n \|a\|^2}{\mathrm{tr}((K + \lambda I)^{-1})^2},\qquad A_\lambda = K (K + \lambda
#' I)^{-1},}
#' with the trace estimated by Hutchinson's estimator
#' \eqn{\mathrm{tr}(B) \approx \frac1p \sum_{l} z_l^T B z_l} over `probes` random sign
#' vectors \eqn{z_l}, whose \eqn{B z_l} are extra right-hand sides of the same CG run as
#' \eqn{a}: one reduction per iteration serves the fit and the trace. The probes are drawn
#' once (they follow `set.seed()`), so GCV is a smooth function of \eqn{\lambda}; its
#' relative error is about \eqn{\sqrt{2/(p\, n)}} here, as \eqn{\lambda (K + \lambda
#' I)^{-1}} has most of its eigenvalues near 1. GCV is the default because it costs one
#' solve per value of \eqn{\lambda}, whereas k-fold cross-validation (`lambda = "cv"`,
#' `folds` folds, the mean squared prediction error on the held-out points) costs `folds`
#' solves and preconditioners per value. Either criterion is minimised over
#' \eqn{\log_{10} \lambda}: from \eqn{\lambda = 1} down by factors of 10 while it
#' decreases (to \eqn{10^{-10}} at most), then by golden-section search within a factor
#' of 10 of the best value; each solve starts from the previous solution.
#'
#' @param x The points: a numeric vector (d = 1), matrix (one row per point) or numeric
#'   data frame; finite values.
#' @param y The responses: a vector of length `nrow(x)`, or a matrix with `nrow(x)` rows
#'   (several responses fitted together, with one `lambda`).
#' @param kernel The kernel: `"gaussian"` (default), `"matern32"`, `"matern52"`,
#'   `"laplace"`, `"cauchy"`, `"imq"` (see [stat_kernels]) or `"polyharmonic"`.
#' @param sigma The kernel's scale (see [stat_kernels]); missing: set from the data (see
#'   "Kernels").
#' @param lambda `0` (interpolation; the points must be distinct), a positive number, or
#'   `"gcv"` or `"cv"` to choose it from the data (see "Choosing lambda").
#' @param ... Unused; the arguments after it must be named.
#' @param tol,max_iter Tolerance on the relative residual and maximum number of
#'   iterations of each CG solve (see [kernel_solve()]).
#' @param m The number of Nystrom centres of the preconditioner (see [kernel_solve()]).
#' @param probes The number of Hutchinson probes for `lambda = "gcv"`.
#' @param folds The number of folds for `lambda = "cv"`.
#' @param dtype `"float64"` (default) or `"float32"`, the precision of the reductions.
#' @param backend `"auto"`, `"cpu"` or `"cuda"`, passed to the reductions.
#' @return An object of class `kernops_spline`, a list with `x` (a matrix), `y` (a vector
#'   or a matrix), `kernel`, `sigma` (`NULL` for `"polyharmonic"`), `lambda`,
#'   `coefficients` (\eqn{a}: a vector, or a matrix for a matrix `y`), `poly` (`NULL`, or
#'   for `"polyharmonic"` the d + 1 coefficients of the affine part: intercept, then
#'   slopes), `fitted.values`, `residuals`, `iterations` (CG iterations, all solves),
#'   `converged`, `residual` (the final relative residual), `lambda_method` (`"fixed"`,
#'   `"gcv"` or `"cv"`), `criterion` (a data frame of the values of \eqn{\lambda} tried and
#'   their GCV or CV score, else `NULL`), `dtype`, `backend`, `call`. Methods: `print`,
#'   `summary`, `fitted`, `residuals`, [predict()][predict.kernops_spline],
#'   [plot()][plot.kernops_spline]. A CG solve that stops before `tol` gives a warning of
#'   class `kernops_warning_convergence` with the relative residual reached.
#' @seealso [kernel_solve()], [stat_kernels]; `fields::Tps()` and `mgcv::gam()` for
#'   thin-plate and penalised regression splines.
#' @export
#' @examples
#' set.seed(1)
#' x <- runif(200)
#' y <- sin(6 * x) + rnorm(200, sd = 0.1)
#' fit <- kernel_spline(x, y, sigma = 0.2)          # lambda by GCV
#' fit
#' predict(fit, c(0.25, 0.5))
#' plot(fit)
#' # 2-D, interpolation of exact values at a given scale
#' x2 <- matrix(runif(300), 150, 2)
#' f2 <- kernel_spline(x2, x2[, 1] * x2[, 2], kernel = "matern52", sigma = 0.3, lambda = 0,
#'                     tol = 1e-10)
#' max(abs(fitted(f2) - x2[, 1] * x2[, 2]))
kernel_spline <- function(x, y, kernel = c("gaussian", "matern32", "matern52", "laplace", "cauchy", "imq", "polyharmonic"),
                          sigma, lambda = "gcv", ..., tol = if (identical(dtype, "float32")) 1e-5 else 1e-6,
                          max_iter = 500L, m = NULL, probes = 8L, folds = 5L, dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- match.call()
  ecall <- sys.call()
  check_no_dots(list(...), ecall)
  kernel <- match_choice(kernel, eval(formals(kernel_spline)$kernel), "kernel", ecall)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", ecall)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", ecall), ecall)
  X <- check_sample(x, "x", 2L, ecall)
  Y <- solve_rhs(y, nrow(X), "y", ecall)
  check_positive_number(tol, "tol", ecall)
  check_count(max_iter, "max_iter", ecall)
  check_count(probes, "probes", ecall)
  check_count(folds, "folds", ecall, min = 2)
  method <- if (is.character(lambda) && length(lambda) == 1 && !is.na(lambda)) {
    match_choice(lambda, c("gcv", "cv"), "lambda", ecall)
  } else {
    check_lambda(lambda, X, ecall)
    "fixed"
  }
  if (method == "cv" && folds > nrow(X))
    abort_kernops(sprintf("`folds` (%d) must not exceed the number of points (%d).", folds, nrow(X)),
                  "kernops_error_input", call = ecall)
  multi <- is.matrix(y) || is.data.frame(y)
  base <- list(x = X, y = if (multi) Y else as.vector(Y), kernel = kernel)
  if (kernel == "polyharmonic") {
    if (!missing(sigma))
      abort_kernops("The \"polyharmonic\" kernel has no scale: leave `sigma` out.", "kernops_error_input", call = ecall)
    if (method == "cv")
      abort_kernops("`lambda = \"cv\"` is not available for the \"polyharmonic\" kernel; use \"gcv\" or a number.",
                    "kernops_error_unsupported", call = ecall)
    if (multi && ncol(Y) > 1)
      abort_kernops("The \"polyharmonic\" kernel fits one response: give `y` as a vector.", "kernops_error_unsupported", call = ecall)
    r <- polyharmonic_fit(x = X, y = as.vector(Y), lambda = if (method == "fixed") lambda else method, tol = tol,
                          max_iter = max_iter, dtype = dtype, backend = backend, call = ecall)
    fit <- c(base, list(sigma = NULL, lambda = r$lambda, coefficients = r$coefficients, poly = r$poly,
                        iterations = r$iterations, converged = r$converged, residual = r$residual,
                        lambda_method = method, criterion = NULL))
  } else {
    if (missing(sigma)) sigma <- spline_sigma(X)
    ks <- solve_kernel(kernel, sigma, list(), dtype, backend, ecall)
    m <- nystrom_m(m, nrow(X), ecall)
    progress <- if (requireNamespace("progressr", quietly = TRUE)) progressr::progressor(steps = if (method == "fixed") 1L else 16L) else function(...) NULL
    r <- switch(method,
      fixed = spline_solve(ks, X, Y, lambda, tol, max_iter, m, ecall),
      gcv = spline_gcv(ks, X, Y, tol, max_iter, m, probes, ecall, progress),
      cv = spline_cv(ks, X, Y, tol, max_iter, m, folds, ecall, progress))
    progress(sprintf("kernel_spline: lambda = %.3g", r$lambda), amount = 0)
    cg_warning(r, tol, "nystrom", ecall, "kernel_spline")
    coef <- if (multi) r$a else as.vector(r$a)
    fitted <- if (multi) r$Ka else as.vector(r$Ka)  # K a, tracked by CG: no extra product
    fit <- c(base, list(sigma = sigma, lambda = r$lambda, coefficients = coef, poly = NULL,
                        iterations = r$iterations, converged = r$converged, residual = max(r$residual),
                        lambda_method = method, criterion = r$criterion))
  }
  fit <- structure(c(fit, list(dtype = dtype, backend = backend, call = call)), class = "kernops_spline")
  fit$fitted.values <- if (kernel == "polyharmonic") spline_eval(fit, X) else fitted
  fit$residuals <- fit$y - fit$fitted.values
  structure(unclass(fit)[c("x", "y", "kernel", "sigma", "lambda", "coefficients", "poly", "fitted.values",
                           "residuals", "iterations", "converged", "residual", "lambda_method", "criterion",
                           "dtype", "backend", "call")], class = "kernops_spline")
}

# Half the median pairwise distance (see ?kernel_spline, "Kernels").
spline_sigma <- function(X) {
  Z <- if (nrow(X) > 1000L) X[sort(sample.int(nrow(X), 1000L)), , drop = FALSE] else X
  s <- stats::median(stats::dist(Z)) / 2
  if (!(s > 0)) s <- max(stats::dist(Z)) / 2
  if (!(s > 0))
    abort_kernops("All points of `x` are equal: there is nothing to fit.", "kernops_error_input", call = NULL)
  s
}

# One solve at a given lambda.
spline_solve <- function(ks, X, Y, lambda, tol, max_iter, m, call) {
  r <- solve_cg(ks, X, Y, lambda, tol, max_iter, NULL, nystrom_setup(ks, X, m, call), call)
  c(r, list(lambda = lambda, criterion = NULL))
}

# Minimises `score(log10 lambda)` (a list with `value` and the run's other fields): down
# from lambda = 1 by decades while the score decreases, then golden-section search within
# a decade of the best. Returns the best run, with the table of values tried.
spline_search <- function(score, progress, lo = -10) {
  tried <- list()
  eval_at <- function(l) {
    r <- score(l)
    tried[[length(tried) + 1L]] <<- r
    progress(sprintf("kernel_spline: lambda = %.3g, score %.5g", 10^l, r$value))
    r$value
  }
  ls <- 0
  vals <- eval_at(0)
  while (ls[length(ls)] > lo) {
    ls <- c(ls, ls[length(ls)] - 1)
    vals <- c(vals, eval_at(ls[length(ls)]))
    if (vals[length(vals)] > vals[length(vals) - 1]) break
  }
  b <- which.min(vals)
  a <- ls[b] + 1
  c <- max(ls[b] - 1, lo)
  gr <- (sqrt(5) - 1) / 2
  x1 <- c + gr * (a - c); x2 <- a - gr * (a - c)   # x1 > x2; the bracket is [c, a]
  f1 <- eval_at(x1); f2 <- eval_at(x2)
  for (it in 1:4) {
    if (f1 < f2) { c <- x2; x2 <- x1; f2 <- f1; x1 <- c + gr * (a - c); f1 <- eval_at(x1) }
    else { a <- x1; x1 <- x2; f1 <- f2; x2 <- a - gr * (a - c); f2 <- eval_at(x2) }
  }
  values <- vapply(tried, function(r) r$value, 0)
  best <- tried[[which.min(values)]]
  best$criterion <- data.frame(lambda = vapply(tried, function(r) r$lambda, 0), score = values)
  best$iterations <- sum(vapply(tried, function(r) r$iterations, 0L))
  best
}

# GCV with Hutchinson probes as extra right-hand sides (see ?kernel_spline).
spline_gcv <- function(ks, X, Y, tol, max_iter, m, probes, call, progress) {
  n <- nrow(X)
  k <- ncol(Y)
  Z <- matrix(sample(c(-1, 1), n * probes, replace = TRUE), n, probes)
  B <- cbind(Y, Z)
  pre <- nystrom_setup(ks, X, m, call)
  warm <- NULL
  score <- function(l) {
    lambda <- 10^l
    # warm start from the previous lambda's solution and its K a (tracked by CG): no product
    r <- suppressWarnings(solve_cg(ks, X, B, lambda, tol, max_iter, warm$a, pre, call, KX0 = warm$Ka, verify = FALSE))
    warm <<- r
    trB <- sum(Z * r$a[, k + seq_len(probes)]) / probes
    r$value <- n * sum(r$a[, seq_len(k)]^2) / trB^2
    r$a <- r$a[, seq_len(k), drop = FALSE]
    r$Ka <- r$Ka[, seq_len(k), drop = FALSE]
    r$residual <- r$residual[seq_len(k)]
    r$lambda <- lambda
    r
  }
  spline_search(score, progress)
}

# k-fold cross-validation: the mean squared error on the held-out points; then one fit of
# all the points at the best lambda.
spline_cv <- function(ks, X, Y, tol, max_iter, m, folds, call, progress) {
  n <- nrow(X)
  fold <- sample(rep_len(seq_len(folds), n))
  parts <- lapply(seq_len(folds), function(f) {
    tr <- which(fold != f)
    list(tr = tr, te = which(fold == f), pre = nystrom_setup(ks, X[tr, , drop = FALSE], min(m, length(tr)), call),
         warm = NULL)
  })
  score <- function(l) {
    lambda <- 10^l
    sse <- 0
    iters <- 0L
    for (f in seq_len(folds)) {
      p <- parts[[f]]
      r <- suppressWarnings(solve_cg(ks, X[p$tr, , drop = FALSE], Y[p$tr, , drop = FALSE], lambda, tol, max_iter,
                                     p$warm$a, p$pre, call, KX0 = p$warm$Ka, verify = FALSE))
      parts[[f]]$warm <<- r
      iters <- iters + r$iterations
      sse <- sse + sum((Y[p$te, , drop = FALSE] - ks$prod(X[p$te, , drop = FALSE], X[p$tr, , drop = FALSE], r$a))^2)
    }
    list(value = sse / n, lambda = lambda, iterations = iters)
  }
  best <- spline_search(score, progress)
  r <- spline_solve(ks, X, Y, best$lambda, tol, max_iter, m, call)
  r$iterations <- r$iterations + best$iterations
  r$criterion <- best$criterion
  r
}

# ---- evaluation -------------------------------------------------------------------------------

# The fit at the rows of E (a vector, or a matrix for several responses).
spline_eval <- function(fit, E) {
  A <- as.matrix(fit$coefficients)
  d <- ncol(fit$x)
  out <- spline_kernel_op(fit, ncol(A))(E, fit$x, A)
  if (!is.null(fit$poly)) out <- out + cbind(1, E) %*% fit$poly
  if (is.matrix(fit$coefficients)) out else as.vector(out)
}

# (E, X, A) -> K(E, X) A: a reduction of the fit's kernel (cached by stat_op()).
spline_kernel_op <- function(fit, k) {
  d <- ncol(fit$x)
  if (fit$kernel == "polyharmonic") {
    formula <- sprintf("Sum_Reduction((%s)*b, 0)", polyharmonic_formula(d))
    op <- stat_op(formula, spline_args(d, k, FALSE), fit$dtype, fit$backend)
    return(function(E, X, A) op(x = E, y = X, b = A))
  }
  ks <- solve_kernel(fit$kernel, fit$sigma, list(), fit$dtype, fit$backend, NULL)
  ks$prod
}

spline_args <- function(d, k, with_g = TRUE)
  c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), sprintf("b = Vj(%d)", k), if (with_g) "g = Pm(1)")

# The gradient of the fit at the rows of E, from the formula differentiator: one row per
# point (an array [point, dimension, response] for several responses).
spline_gradient <- function(fit, E) {
  A <- as.matrix(fit$coefficients)
  d <- ncol(fit$x)
  k <- ncol(A)
  if (fit$kernel == "polyharmonic") {
    gop <- stat_grad_op(sprintf("Sum_Reduction((%s)*b, 0)", polyharmonic_formula(d)), spline_args(d, k, FALSE),
                        fit$dtype, fit$backend, "x")
    run <- function(e) gop(x = E, y = fit$x, b = A, e = e)
  } else {
    kern <- stat_kernel_table[[fit$kernel]]
    gop <- stat_grad_op(sprintf("Sum_Reduction(%s, 0)", sub(",1)$", ",b)", kern$formula)), spline_args(d, k),
                        fit$dtype, fit$backend, "x")
    g <- kern$g(fit$sigma)
    run <- function(e) gop(x = E, y = fit$x, b = A, g = g, e = e)
  }
  out <- array(0, c(nrow(E), d, k))
  for (c in seq_len(k)) {
    e <- matrix(0, nrow(E), k)
    e[, c] <- 1
    G <- run(e)
    if (!is.null(fit$poly)) G <- G + rep(fit$poly[-1], each = nrow(E))
    out[, , c] <- G
  }
  if (is.matrix(fit$coefficients)) out else out[, , 1]
}

#' Predict a kernel spline at new points
#'
#' @param object A `kernops_spline` from [kernel_spline()].
#' @param newdata Where to predict: a vector (d = 1) or a matrix / data frame with d
#'   columns. Missing: the data points.
#' @param deriv `0` for the fit, `1` for its gradient, computed by the formula
#'   differentiator ([kernel_grad()]): a matrix with one row per point and d columns (an
#'   array point x dimension x response for several responses).
#' @param ... Unused.
#' @return The predictions (a vector, or a matrix for several responses), or the gradient.
#' @seealso [kernel_spline()]
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(runif(400), 200, 2)
#' fit <- kernel_spline(x, sin(4 * x[, 1]) * cos(3 * x[, 2]), sigma = 0.3, lambda = 1e-6)
#' p <- rbind(c(0.2, 0.3), c(0.5, 0.5))
#' predict(fit, p)
#' sin(4 * p[, 1]) * cos(3 * p[, 2])
#' predict(fit, p, deriv = 1)   # close to the true gradient:
#' cbind(4 * cos(4 * p[, 1]) * cos(3 * p[, 2]), -3 * sin(4 * p[, 1]) * sin(3 * p[, 2]))
predict.kernops_spline <- function(object, newdata, deriv = 0, ...) {
  call <- sys.call()
  check_no_dots(list(...), call)
  d <- ncol(object$x)
  E <- if (missing(newdata)) object$x else stat_points(newdata, "newdata", d, call = call)
  if (!(identical(deriv, 0) || identical(deriv, 1) || identical(deriv, 0L) || identical(deriv, 1L)))
    abort_kernops("`deriv` must be 0 (the fit) or 1 (its gradient).", "kernops_error_input", call = call)
  if (deriv == 1) spline_gradient(object, E) else spline_eval(object, E)
}

spline_kernel_text <- function(x) {
  if (is.null(x$sigma)) return(sprintf("%s kernel", x$kernel))
  sprintf("%s kernel, sigma = %s", x$kernel, format(signif(x$sigma, 4)))
}

#' @export
print.kernops_spline <- function(x, ...) {
  cat(if (x$lambda == 0) "Kernel interpolating spline (kernops)\n" else "Kernel smoothing spline / kernel ridge regression (kernops)\n")
  cat("Call: ", paste(deparse(x$call, width.cutoff = 70L), collapse = "\n"), "\n", sep = "")
  cat(sprintf("n = %d points in %d dimension%s, %s\n", nrow(x$x), ncol(x$x), if (ncol(x$x) > 1) "s" else "",
              spline_kernel_text(x)))
  cat(sprintf("lambda = %s%s; %d CG iterations%s; residual RMS %s\n", format(signif(x$lambda, 4)),
              if (x$lambda_method != "fixed") sprintf(" (chosen by %s)", toupper(x$lambda_method)) else "",
              x$iterations, if (x$converged) "" else " (NOT converged)",
              format(signif(sqrt(mean(as.matrix(x$residuals)^2)), 4))))
  invisible(x)
}

#' @export
summary.kernops_spline <- function(object, ...) {
  structure(list(n = nrow(object$x), d = ncol(object$x), kernel = spline_kernel_text(object),
                 lambda = object$lambda, lambda_method = object$lambda_method, criterion = object$criterion,
                 iterations = object$iterations, converged = object$converged, residual = object$residual,
                 residuals = summary(as.vector(as.matrix(object$residuals))),
                 rms = sqrt(mean(as.matrix(object$residuals)^2)), poly = object$poly,
                 dtype = object$dtype, call = object$call),
            class = "summary.kernops_spline")
}

#' @export
print.summary.kernops_spline <- function(x, ...) {
  cat("Kernel spline (kernops)\n")
  cat("Call: ", paste(deparse(x$call, width.cutoff = 70L), collapse = "\n"), "\n", sep = "")
  cat(sprintf("n = %d, d = %d, %s, %s\n", x$n, x$d, x$kernel, x$dtype))
  cat(sprintf("lambda = %s (%s)\n", format(signif(x$lambda, 4)),
              if (x$lambda_method == "fixed") "given" else paste("chosen by", toupper(x$lambda_method))))
  if (!is.null(x$criterion)) {
    cat("Criterion at the values of lambda tried:\n")
    print(x$criterion[order(x$criterion$lambda), ], row.names = FALSE, digits = 4)
  }
  if (!is.null(x$poly)) cat("Affine part (intercept, slopes):", format(signif(x$poly, 4)), "\n")
  cat(sprintf("CG: %d iterations, relative residual %.3g (%s)\n", x$iterations, x$residual,
              if (x$converged) "converged" else "NOT converged"))
  cat(sprintf("Residuals (RMS %s):\n", format(signif(x$rms, 4))))
  print(x$residuals)
  invisible(x)
}

#' Plot a kernel spline
#'
#' In 1-D, the fitted curve over the data; in 2-D, an image of the fit with its contours
#' and the data points. Base graphics; the fit is evaluated on a grid with
#' [predict()][predict.kernops_spline]. For several responses, the first is shown.
#'
#' @param x A `kernops_spline` from [kernel_spline()] of dimension 1 or 2.
#' @param gridsize Grid points per dimension.
#' @param points Whether to draw the data.
#' @param ... Further arguments to [graphics::plot()] (1-D) or [graphics::image()] (2-D).
#' @return `x`, invisibly.
#' @export
#' @examples
#' set.seed(2)
#' x <- matrix(runif(300), 150, 2)
#' fit <- kernel_spline(x, x[, 1]^2 - x[, 2] + rnorm(150, sd = 0.05), sigma = 0.4, lambda = 1e-2)
#' plot(fit, gridsize = 41)
plot.kernops_spline <- function(x, gridsize = if (ncol(x$x) == 1) 401L else 81L, points = TRUE, ...) {
  d <- ncol(x$x)
  if (d > 2)
    abort_kernops(sprintf("plot() shows splines of dimension 1 or 2, not %d.", d), "kernops_error_unsupported",
                  call = sys.call())
  y1 <- as.matrix(x$y)[, 1]
  first <- function(v) as.matrix(v)[, 1]
  if (d == 1) {
    g <- seq(min(x$x), max(x$x), length.out = gridsize)
    graphics::plot(x$x[, 1], y1, type = if (points) "p" else "n", pch = 20, col = "grey50",
                   xlab = "x", ylab = "y", ...)
    graphics::lines(g, first(predict(x, g)), lwd = 2)
  } else {
    g1 <- seq(min(x$x[, 1]), max(x$x[, 1]), length.out = gridsize)
    g2 <- seq(min(x$x[, 2]), max(x$x[, 2]), length.out = gridsize)
    z <- matrix(first(predict(x, as.matrix(expand.grid(g1, g2)))), gridsize, gridsize)
    graphics::image(g1, g2, z, xlab = "x1", ylab = "x2", ...)
    graphics::contour(g1, g2, z, add = TRUE)
    if (points) graphics::points(x$x, pch = 20, cex = 0.4)
  }
  invisible(x)
}

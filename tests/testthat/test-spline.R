# kernel_spline(): fits, predictions and gradients against dense base-R computations.

gauss_K <- function(x, y, sigma) exp(-pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0) / (2 * sigma^2))

set.seed(21)
xs <- matrix(runif(600), 300, 2)
fs <- function(x) sin(4 * x[, 1]) * cos(3 * x[, 2])
ys <- fs(xs) + rnorm(300, sd = 0.05)
newp <- matrix(runif(40), 20, 2)

test_that("interpolation (lambda = 0) reproduces the data", {
  x <- matrix(runif(200), 100, 2)
  y <- fs(x)
  fit <- kernel_spline(x, y, kernel = "matern52", sigma = 0.1, lambda = 0, tol = 1e-12)
  expect_true(fit$converged)
  expect_equal(fit$lambda, 0)
  expect_lt(max(abs(fitted(fit) - y)), 1e-8)
  expect_lt(max(abs(residuals(fit))), 1e-8)
  x1 <- seq(0, 1, length.out = 60)   # 1-D
  fit1 <- kernel_spline(x1, sin(6 * x1), sigma = 0.02, lambda = 0, tol = 1e-12)
  expect_lt(max(abs(fitted(fit1) - sin(6 * x1))), 1e-8)
})

test_that("a fixed lambda gives the dense solution, and predict() the dense evaluation", {
  fit <- kernel_spline(xs, ys, sigma = 0.3, lambda = 1e-3, tol = 1e-12)
  K <- gauss_K(xs, xs, 0.3)
  a <- solve(K + 1e-3 * diag(300), ys)
  expect_equal(fit$coefficients, as.vector(a), tolerance = 1e-7)
  expect_equal(fit$fitted.values, as.vector(K %*% a), tolerance = 1e-8)
  expect_equal(predict(fit, newp), as.vector(gauss_K(newp, xs, 0.3) %*% a), tolerance = 1e-8)
  expect_equal(predict(fit), fitted(fit))
  expect_equal(predict(fit, as.data.frame(newp)), predict(fit, newp))
  expect_named(fit, c("x", "y", "kernel", "sigma", "lambda", "coefficients", "poly", "fitted.values", "residuals",
                      "iterations", "converged", "residual", "lambda_method", "criterion", "dtype", "backend", "call"))
  expect_null(fit$poly)
  # several responses share the solve
  Y <- cbind(ys, ys^2)
  fit2 <- kernel_spline(xs, Y, sigma = 0.3, lambda = 1e-3, tol = 1e-12)
  expect_equal(dim(fit2$coefficients), c(300L, 2L))
  expect_equal(predict(fit2, newp), gauss_K(newp, xs, 0.3) %*% solve(K + 1e-3 * diag(300), Y),
               tolerance = 1e-7, ignore_attr = TRUE)
})

test_that("predict(deriv = 1) matches finite differences", {
  for (kn in c("gaussian", "matern52", "cauchy")) {
    fit <- kernel_spline(xs, ys, kernel = kn, sigma = 0.3, lambda = 1e-2, tol = 1e-10)
    g <- predict(fit, newp, deriv = 1)
    expect_equal(dim(g), c(20L, 2L))
    h <- 1e-6
    fd <- sapply(1:2, function(k) {
      e <- matrix(0, 20, 2); e[, k] <- h
      (predict(fit, newp + e) - predict(fit, newp - e)) / (2 * h)
    })
    expect_equal(g, fd, tolerance = 1e-6, label = kn)
  }
  fit2 <- kernel_spline(xs, cbind(ys, -ys), sigma = 0.3, lambda = 1e-2)
  g2 <- predict(fit2, newp, deriv = 1)
  expect_equal(dim(g2), c(20L, 2L, 2L))
  expect_equal(g2[, , 2], -g2[, , 1])
})

test_that("GCV's Hutchinson trace follows the dense GCV criterion, and its lambda is near the dense optimum", {
  fit <- kernel_spline(xs, ys, sigma = 0.3, tol = 1e-10, probes = 16)
  expect_equal(fit$lambda_method, "gcv")
  crit <- fit$criterion
  expect_true(fit$lambda %in% crit$lambda)
  K <- gauss_K(xs, xs, 0.3)
  e <- eigen(K, symmetric = TRUE)
  uy <- crossprod(e$vectors, ys)
  gcv <- function(l) 300 * sum((l / (e$values + l) * uy)^2) / sum(l / (e$values + l))^2
  dense <- vapply(crit$lambda, gcv, 0)
  expect_lt(max(abs(crit$score / dense - 1)), 0.03)
  best <- stats::optimize(function(ll) gcv(10^ll), c(-8, 0))$minimum
  expect_lt(abs(log10(fit$lambda) - best), 0.5)
  expect_lt(gcv(fit$lambda), 1.01 * gcv(10^best))
})

test_that("lambda = \"cv\" chooses lambda by k-fold cross-validation", {
  fit <- kernel_spline(xs[1:150, ], ys[1:150], sigma = 0.3, lambda = "cv", folds = 3)
  expect_equal(fit$lambda_method, "cv")
  expect_equal(fit$lambda, fit$criterion$lambda[which.min(fit$criterion$score)])
  expect_true(fit$lambda > 1e-6 && fit$lambda < 1)
  expect_lt(sqrt(mean((predict(fit, newp) - fs(newp))^2)), 0.05)
})

test_that("a missing sigma is half the median distance between the points", {
  fit <- kernel_spline(xs, ys, lambda = 1e-2)
  expect_equal(fit$sigma, stats::median(stats::dist(xs)) / 2)
})

test_that("kernel_spline() raises classed errors naming the argument at fault", {
  expect_error(kernel_spline(rbind(xs, xs[5, ]), c(ys, 0), sigma = 0.3, lambda = 0),
               class = "kernops_error_input", regexp = "Point 301 .*singular")
  xna <- xs; xna[3, 1] <- NA
  expect_error(kernel_spline(xna, ys, sigma = 0.3, lambda = 0.1), class = "kernops_error_input", regexp = "`x`")
  yna <- ys; yna[9] <- NA
  expect_error(kernel_spline(xs, yna, sigma = 0.3, lambda = 0.1), class = "kernops_error_input", regexp = "`y`.*row 9")
  expect_error(kernel_spline(xs, ys[-1], sigma = 0.3, lambda = 0.1), class = "kernops_error_dimension", regexp = "`y`")
  expect_error(kernel_spline(xs, ys, sigma = 0, lambda = 0.1), class = "kernops_error_input", regexp = "`sigma`")
  expect_error(kernel_spline(xs, ys, sigma = -2, lambda = 0.1), class = "kernops_error_input", regexp = "`sigma`")
  expect_error(kernel_spline(xs, ys, sigma = 0.3, lambda = -1), class = "kernops_error_input", regexp = "`lambda`")
  expect_error(kernel_spline(xs, ys, sigma = 0.3, lambda = "aic"), class = "kernops_error_input", regexp = "`lambda`")
  expect_error(kernel_spline(xs, ys, sigma = 0.3, lambda = c(1, 2)), class = "kernops_error_input", regexp = "`lambda`")
  expect_error(kernel_spline(xs, ys, kernel = "epanechnikov", sigma = 0.3), class = "kernops_error_input", regexp = "`kernel`")
  expect_error(kernel_spline(xs, ys, sigma = 0.3, lamda = 1), class = "kernops_error_input", regexp = "lamda")
  fit <- kernel_spline(xs, ys, sigma = 0.3, lambda = 0.1)
  expect_error(predict(fit, newp[, 1]), class = "kernops_error_dimension", regexp = "`newdata`")
  expect_error(predict(fit, newp, deriv = 2), class = "kernops_error_input", regexp = "`deriv`")
})

test_that("a CG solve that stops early warns with the relative residual", {
  w <- NULL
  fit <- withCallingHandlers(
    kernel_spline(xs, ys, sigma = 0.3, lambda = 1e-8, max_iter = 2, m = 5),
    kernops_warning_convergence = function(cnd) { w <<- cnd; invokeRestart("muffleWarning") })
  expect_s3_class(w, "kernops_warning_convergence")
  expect_false(fit$converged)
  expect_equal(w$residual, fit$residual)
  expect_gt(w$residual, 1e-6)
})

test_that("kernel_spline() reports progress through progressr: each lambda tried", {
  skip_if_not_installed("progressr")
  old <- options(progressr.enable = TRUE)
  on.exit(options(old))
  messages <- character()
  fit <- withCallingHandlers(kernel_spline(xs, ys, sigma = 0.3),
    progression = function(cnd) if (identical(cnd$type, "update")) messages[[length(messages) + 1]] <<- cnd$message)
  expect_length(messages, nrow(fit$criterion) + 1L)
  expect_match(messages[1], "kernel_spline: lambda = 1, score")
})

test_that("print, summary and plot describe the fit", {
  fit <- kernel_spline(xs, ys, sigma = 0.3)
  expect_output(print(fit), "chosen by GCV")
  expect_output(print(summary(fit)), "Criterion at the values of lambda tried")
  pdf(NULL)
  on.exit(dev.off())
  expect_identical(plot(fit, gridsize = 11), fit)
  f1 <- kernel_spline(xs[, 1], ys, sigma = 0.2, lambda = 0.1)
  expect_identical(plot(f1, gridsize = 11), f1)
  expect_error(plot(kernel_spline(cbind(xs, xs[, 1]^2), ys, sigma = 0.3, lambda = 0.1)), class = "kernops_error_unsupported")
})

test_that("kernel = \"polyharmonic\" is fields::Tps at the same lambda: fit, predict and gradient", {
  skip_if_not_installed("fields")
  set.seed(21)
  n <- 150
  x <- matrix(runif(2 * n), n, 2)
  y <- sin(3 * x[, 1]) * x[, 2] + rnorm(n, sd = 0.05)
  fit <- kernel_spline(x, y, kernel = "polyharmonic", lambda = 1e-3, tol = 1e-10)
  tps <- fields::Tps(x, y, lambda = 1e-3, scale.type = "unscaled")
  expect_s3_class(fit, "kernops_spline")
  expect_equal(fit$lambda, 1e-3)
  expect_length(fit$poly, 3)
  expect_equal(as.vector(fitted(fit)), as.vector(tps$fitted.values), tolerance = 1e-6)
  expect_equal(as.vector(residuals(fit)), y - as.vector(tps$fitted.values), tolerance = 1e-5)
  new <- matrix(runif(40), 20, 2)
  expect_equal(as.vector(predict(fit, new)), as.vector(predict(tps, new)), tolerance = 1e-6)
  # the gradient of the fit against central differences of predict()
  g <- predict(fit, new, deriv = 1)
  h <- 1e-5
  for (k in 1:2) {
    e <- matrix(0, 1, 2)
    e[k] <- h
    fd <- (predict(fit, sweep(new, 2, e, "+")) - predict(fit, sweep(new, 2, e, "-"))) / (2 * h)
    expect_equal(as.vector(g[, k]), as.vector(fd), tolerance = 1e-6)
  }
  # at lambda = 0 it interpolates
  f0 <- kernel_spline(x, y, kernel = "polyharmonic", lambda = 0, tol = 1e-11)
  expect_equal(as.vector(fitted(f0)), y, tolerance = 1e-8)
  expect_error(kernel_spline(x, y, kernel = "polyharmonic", sigma = 1), class = "kernops_error_input")
})

# test-kde.R -- kde() and kde_bandwidth() against a dense base-R reference, ks::kde
# (binned = FALSE), the ks selectors and stats::bw.SJ; the kernops_kde methods; the
# classed errors.

# Dense reference: f(e) = sum_j w_j c_d |H|^-1/2 k(sqrt((e - x_j)' H^-1 (e - x_j))).
kde_dense <- function(x, E, H, w = rep(1 / nrow(x), nrow(x)), kernel = "gaussian") {
  x <- as.matrix(x); E <- as.matrix(E); d <- ncol(x); Hi <- solve(H)
  k <- switch(kernel, gaussian = function(u) exp(-u / 2), epanechnikov = function(u) pmax(0, 1 - u),
              laplace = function(u) exp(-sqrt(u)), cauchy = function(u) 1 / (1 + u))
  cd <- switch(kernel, gaussian = (2 * pi)^(-d / 2),
               epanechnikov = (d + 2) / (2 * pi^(d / 2) / gamma(d / 2 + 1)),
               laplace = gamma(d / 2) / (2 * pi^(d / 2) * gamma(d)), cauchy = 1 / pi)
  w <- w / sum(w)
  apply(E, 1, function(e) {
    D <- sweep(x, 2, e)
    sum(w * k(rowSums((D %*% Hi) * D)))
  }) * cd / sqrt(det(H))
}

set.seed(101)
kx1 <- c(rnorm(60), rnorm(40, 3, 0.7))
kx2 <- cbind(rnorm(80), rnorm(80))
kx2[, 2] <- kx2[, 2] + 0.5 * kx2[, 1]
kH2 <- matrix(c(0.3, 0.1, 0.1, 0.5), 2, 2)
kE2 <- matrix(rnorm(30, sd = 1.5), 15, 2)

test_that("1-D and 2-D Gaussian estimates match the dense reference, with weights", {
  e <- seq(-3, 6, length.out = 11)
  fit <- kde(kx1, h = 0.4, eval.points = e)
  expect_s3_class(fit, "kernops_kde")
  expect_equal(fit$estimate, kde_dense(matrix(kx1), matrix(e), matrix(0.16)), tolerance = 1e-12)
  w <- runif(80)
  fit2 <- kde(kx2, H = kH2, eval.points = kE2, weights = w)
  expect_equal(fit2$estimate, kde_dense(kx2, kE2, kH2, w), tolerance = 1e-12)
  # ks' name w = works too, and a data frame is a matrix
  fit3 <- kde(as.data.frame(kx2), H = kH2, eval.points = kE2, w = w)
  expect_equal(fit3$estimate, fit2$estimate)
  # missing eval.points: the sample points themselves
  expect_equal(kde(kx2, H = kH2)$estimate, kde_dense(kx2, kx2, kH2), tolerance = 1e-12)
  # h in d dimensions is H = h^2 I
  expect_equal(kde(kx2, h = 0.5, eval.points = kE2)$estimate, kde_dense(kx2, kE2, diag(0.25, 2)), tolerance = 1e-12)
})

test_that("the other kernels match the dense reference and integrate to 1", {
  e <- seq(-3, 6, length.out = 9)
  for (kn in c("epanechnikov", "laplace", "cauchy")) {
    fit <- kde(kx1, h = 0.6, eval.points = e, kernel = kn)
    expect_equal(fit$estimate, kde_dense(matrix(kx1), matrix(e), matrix(0.36), kernel = kn), tolerance = 1e-12, info = kn)
  }
  for (kn in c("epanechnikov", "laplace")) {
    fit <- kde(kx2, H = kH2, eval.points = kE2, kernel = kn)
    expect_equal(fit$estimate, kde_dense(kx2, kE2, kH2, kernel = kn), tolerance = 1e-12, info = kn)
  }
  g <- seq(-6, 6, length.out = 121)
  G <- as.matrix(expand.grid(g, g))
  small <- kx2[1:5, ] / 4
  for (kn in c("gaussian", "epanechnikov", "laplace")) {
    mass <- sum(kde(small, H = diag(0.2, 2), eval.points = G, kernel = kn)$estimate) * (g[2] - g[1])^2
    expect_equal(mass, 1, tolerance = 2e-3, info = kn)
  }
})

test_that("kde agrees with ks::kde(binned = FALSE) to 1e-10", {
  skip_if_not_installed("ks")
  e <- seq(-3, 6, length.out = 11)
  expect_equal(kde(kx1, h = 0.4, eval.points = e, binned = FALSE)$estimate,
               ks::kde(kx1, h = 0.4, eval.points = e, binned = FALSE)$estimate, tolerance = 1e-10)
  w <- runif(80)
  expect_equal(kde(kx2, H = kH2, eval.points = kE2, w = w)$estimate,
               ks::kde(kx2, H = kH2, eval.points = kE2, binned = FALSE, w = w * 80 / sum(w))$estimate,
               tolerance = 1e-10)
})

test_that("float32 is close to float64", {
  f64 <- kde(kx2, H = kH2, eval.points = kE2)
  f32 <- kde(kx2, H = kH2, eval.points = kE2, dtype = "float32")
  expect_equal(f32$dtype, "float32")
  expect_equal(f32$estimate, f64$estimate, tolerance = 1e-5)
})

test_that("predict gives the density, a stable log-density and the gradient", {
  fit <- kde(kx2, H = kH2)
  expect_equal(predict(fit, kE2), kde_dense(kx2, kE2, kH2), tolerance = 1e-12)
  expect_equal(predict(fit), fit$estimate)
  expect_equal(predict(fit, x = kE2), predict(fit, kE2))
  expect_equal(predict(fit, kE2, log = TRUE), log(kde_dense(kx2, kE2, kH2)), tolerance = 1e-12)
  far <- rbind(c(60, 60))
  expect_equal(predict(fit, far), 0)
  expect_true(is.finite(predict(fit, far, log = TRUE)))
  expect_lt(predict(fit, far, log = TRUE), -1000)
  for (kn in c("gaussian", "epanechnikov", "laplace")) {
    f <- kde(kx2, H = kH2, kernel = kn)
    P <- kE2[1:4, ]
    g <- predict(f, P, deriv = 1)
    eps <- 1e-6
    num <- sapply(1:2, function(k) {
      dk <- replace(c(0, 0), k, eps)
      (predict(f, sweep(P, 2, dk, "+")) - predict(f, sweep(P, 2, dk, "-"))) / (2 * eps)
    })
    expect_equal(g, num, tolerance = 1e-5, info = kn)
  }
})

test_that("the fit keeps its whitening (A A' = H^-1), which predict() uses", {
  fit <- kde(kx2, H = kH2, eval.points = kE2)
  expect_equal(fit$whitening$A %*% t(fit$whitening$A), solve(kH2), tolerance = 1e-12)
  expect_equal(fit$whitening$z, kx2 %*% fit$whitening$A)
  expect_equal(predict(fit, kE2), kde_dense(kx2, kE2, kH2), tolerance = 1e-12)
  fit$whitening$log_const <- fit$whitening$log_const + log(2)   # the stored constant is the one used
  expect_equal(predict(fit, kE2), 2 * kde_dense(kx2, kE2, kH2), tolerance = 1e-12)
  fit$whitening <- NULL                                          # an older fit without it
  expect_equal(predict(fit, kE2, log = TRUE), log(kde_dense(kx2, kE2, kH2)), tolerance = 1e-12)
})

test_that("mean shift with the gradient finds the modes of a two-bump sample", {
  set.seed(5)
  x <- rbind(matrix(rnorm(100, sd = 0.3), 50, 2), matrix(rnorm(100, 3, 0.3), 50, 2))
  fit <- kde(x, H = diag(0.1, 2))
  p <- rbind(c(0.4, 0.2), c(2.6, 2.8))
  for (it in 1:100) p <- p + predict(fit, p, deriv = 1) %*% fit$H / predict(fit, p)
  expect_lt(max(abs(predict(fit, p, deriv = 1))), 1e-6)
  expect_lt(max(abs(p[1, ])), 0.3)
  expect_lt(max(abs(p[2, ] - 3)), 0.3)
})

test_that("print, summary and plot work", {
  fit <- kde(kx1, h = 0.4)
  expect_output(print(fit), "h = 0.4")
  expect_output(print(summary(fit)), "effective sample size")
  fit2 <- kde(kx2, H = kH2)
  pdf(NULL)
  on.exit(grDevices::dev.off())
  expect_invisible(plot(fit, gridsize = 51))
  expect_invisible(plot(fit2, gridsize = 21))
  expect_error(plot(kde(cbind(kx2, 1:80), H = diag(3))), class = "kernops_error_unsupported")
})

test_that("selectors: normal scale, plug-in, LSCV, LCV against ks and stats", {
  expect_equal(sqrt(kde_bandwidth(kx1, "silverman"))[1, 1], stats::bw.nrd0(kx1))
  # the plug-in is the 2-stage direct plug-in of bw.SJ(method = "dpi"), unbinned
  expect_equal(sqrt(kde_bandwidth(kx1, "pi"))[1, 1], stats::bw.SJ(kx1, method = "dpi"), tolerance = 0.02)
  expect_equal(kde(kx1)$selector, "pi")
  expect_equal(kde(kx2)$selector, "pi")
  expect_equal(kde(cbind(kx2, kx2[, 1] + rnorm(80)))$selector, "pi")
  expect_equal(kde(cbind(kx2, matrix(rnorm(240), 80)))$selector, "ns")   # d > 4
  h_lcv <- sqrt(kde_bandwidth(kx1, "lcv"))[1, 1]
  # the LCV criterion, densely: h_lcv maximises it
  lcv <- function(h) sum(log(sapply(seq_along(kx1), function(i) mean(dnorm(kx1[i], kx1[-i], h)))))
  expect_gt(lcv(h_lcv), lcv(h_lcv * 1.02))
  expect_gt(lcv(h_lcv), lcv(h_lcv / 1.02))
  expect_equal(kde(kx1, H = "lscv")$selector, "lscv")
  # dtype reaches the selectors' reductions
  expect_equal(kde_bandwidth(kx1, "lscv", dtype = "float32"), kde_bandwidth(kx1, "lscv"), tolerance = 1e-3)
  skip_if_not_installed("ks")
  expect_equal(sqrt(kde_bandwidth(kx1, "ns"))[1, 1], ks::hns(kx1))
  expect_equal(kde_bandwidth(kx2, "ns"), unname(ks::Hns(kx2)))
  expect_equal(sqrt(kde_bandwidth(kx1, "pi"))[1, 1], ks::hpi(kx1), tolerance = 0.02)
  expect_equal(sqrt(kde_bandwidth(kx1, "lscv"))[1, 1], ks::hlscv(kx1, binned = FALSE, bw.ucv = FALSE), tolerance = 1e-4)
  expect_equal(kde_bandwidth(kx2, "lscv"), unname(ks::Hlscv.diag(kx2)), tolerance = 0.05)
})

test_that("the 2-D plug-in's functionals are the dense sums; H equals ks::Hpi.diag(binned = FALSE)", {
  # psi_r = n^-2 sum_{i,j} D^r phi_{g^2 I}(X_i - X_j), densely with the Hermite polynomials
  he <- list(function(t) 1, function(t) t, function(t) t^2 - 1, function(t) t^3 - 3 * t,
             function(t) t^4 - 6 * t^2 + 3, function(t) t^5 - 10 * t^3 + 15 * t,
             function(t) t^6 - 15 * t^4 + 45 * t^2 - 15)
  g <- 0.4
  t1 <- outer(kx2[, 1], kx2[, 1], "-") / g
  t2 <- outer(kx2[, 2], kx2[, 2], "-") / g
  dense <- function(r) sum(he[[r[1] + 1]](t1) * he[[r[2] + 1]](t2) * exp(-(t1^2 + t2^2) / 2)) /
    (nrow(kx2)^2 * g^(sum(r) + 2) * 2 * pi)
  rs <- list(c(6, 0), c(5, 1), c(4, 2), c(2, 2))
  expect_equal(kernops:::hermite_functionals(kx2, rep(1 / nrow(kx2), nrow(kx2)), rs, g, "float64", "cpu"), sapply(rs, dense), tolerance = 1e-12)
  # D^r phi_Sigma(0) by Isserlis' theorem: (4,0) of N(0, I) is 3 phi(0); (2,2) of a
  # correlated normal is phi(0) (A11 A22 + 2 A12^2), A = Sigma^-1
  expect_equal(kernops:::normal_deriv0(c(4, 0), diag(2)), 3 / (2 * pi))
  S <- matrix(c(1, 0.5, 0.5, 2), 2)
  A <- solve(S)
  expect_equal(kernops:::normal_deriv0(c(2, 2), S), (A[1, 1] * A[2, 2] + 2 * A[1, 2]^2) / (2 * pi * sqrt(det(S))))
  y <- cbind(kx1, kx1 + rnorm(100))
  expect_equal(kde(y, eval.points = y[1:3, ])$H, kde_bandwidth(y, "pi"))
  expect_equal(kde(y, H = "pi_diag", eval.points = y[1:3, ])$H, kde_bandwidth(y, "pi_diag"))
  expect_equal(kde_bandwidth(kx1, "pi_diag"), kde_bandwidth(kx1, "pi"))
  skip_if_not_installed("ks")
  expect_equal(kde_bandwidth(y, "pi_diag"), unname(ks::Hpi.diag(y, binned = FALSE)), tolerance = 1e-10)
  expect_equal(kde_bandwidth(kx2, "pi_diag"), unname(ks::Hpi.diag(kx2, binned = FALSE)), tolerance = 1e-10)
  expect_equal(kde_bandwidth(kx2, "pi_diag", dtype = "float32"), kde_bandwidth(kx2, "pi_diag"), tolerance = 1e-4)
})

test_that("the full 2-D plug-in H (kde's default) equals ks::Hpi(binned = FALSE)", {
  # the odd functionals psi_31, psi_13 are the dense sums too
  g <- 0.4
  t1 <- outer(kx2[, 1], kx2[, 1], "-") / g
  t2 <- outer(kx2[, 2], kx2[, 2], "-") / g
  expect_equal(kernops:::hermite_functionals(kx2, rep(1 / 80, 80), list(c(1, 3)), g, "float64", "cpu"),
               sum(t1 * (t2^3 - 3 * t2) * exp(-(t1^2 + t2^2) / 2)) / (80^2 * g^6 * 2 * pi), tolerance = 1e-12)
  y <- cbind(kx1, kx1 + rnorm(100))
  H <- kde_bandwidth(y, "pi")
  expect_true(H[1, 2] != 0)   # unconstrained: the correlation shows
  expect_equal(kde(y, eval.points = y[1:3, ])$H, H)
  expect_equal(kde_bandwidth(kx2, "pi", dtype = "float32"), kde_bandwidth(kx2, "pi"), tolerance = 1e-4)
  skip_if_not_installed("ks")
  expect_equal(H, unname(ks::Hpi(y, binned = FALSE)), tolerance = 1e-10)
  expect_equal(kde_bandwidth(kx2, "pi"), unname(ks::Hpi(kx2, binned = FALSE)), tolerance = 1e-10)
  two <- rbind(kx2, kx2 + 3)
  expect_equal(kde_bandwidth(two, "pi"), unname(ks::Hpi(two, binned = FALSE)), tolerance = 1e-10)
})

test_that("the plug-in in d > 2 (ks' dscalar pilot) equals ks::Hpi / ks::Hpi.diag (binned = FALSE)", {
  x3 <- cbind(kx2, 0.3 * kx2[, 2] + rnorm(80))
  w <- rep(1 / 80, 80)
  # the multi-indices and the triple-Laplacian functional, densely
  expect_length(kernops:::multi_indices(4L, 3L), choose(6, 2))
  g <- 0.8
  D2 <- as.matrix(dist(x3))^2 / g^2
  dense_eta <- sum(exp(-D2 / 2) * (D2^3 - 21 * D2^2 + 105 * D2 - 105)) / (80^2 * g^9 * (2 * pi)^1.5)
  expect_equal(kernops:::laplacian3_functional(x3, w, g, "float64", "cpu"), dense_eta, tolerance = 1e-12)
  expect_equal(kde(x3, eval.points = x3[1:2, ])$H, kde_bandwidth(x3, "pi"))
  expect_equal(kde(x3, eval.points = x3[1:2, ])$selector, "pi")
  skip_if_not_installed("ks")
  expect_equal(dense_eta, ks:::Qr(x = x3, deriv.order = 6, Sigma = g^2 * diag(3), inc = 1), tolerance = 1e-12)
  expect_equal(kde_bandwidth(x3, "pi"), unname(ks::Hpi(x3, binned = FALSE)), tolerance = 1e-10)
  expect_equal(kde_bandwidth(x3, "pi_diag"), unname(ks::Hpi.diag(x3, binned = FALSE)), tolerance = 1e-10)
})

test_that("cross-validation reports progress through progressr", {
  skip_if_not_installed("progressr")
  n <- 0
  progressr::with_progress(
    withCallingHandlers(kde_bandwidth(kx1[1:30], "lscv"), progression = function(c) n <<- n + 1),
    handlers = progressr::handler_void(), enable = TRUE)
  expect_gt(n, 5)
})

test_that("the blocked pair sums are the dense weighted sums over i != j (or all i, j)", {
  x <- matrix(rnorm(60), 30, 2)
  K <- exp(-0.3 * as.matrix(dist(x))^2)
  K0 <- K; diag(K0) <- 0
  P <- cbind(runif(30), rbinom(30, 1, 0.5)); Q <- cbind(runif(30), runif(30))
  for (block in c(7L, 30L, 2048L)) {  # 4, 1 and 1 blocks
    for (diagonal in c(FALSE, TRUE)) {
      Kd <- if (diagonal) K else K0
      ps <- kernops:::stat_pair_sum("GaussKernel(g,x,y,1)", 2L, 1L, "float64", "auto", diagonal = diagonal,
                                    params = "g = Pm(1)", block = block)
      expect_equal(as.vector(ps(x, rep(1, 30), par = list(g = 0.3))), sum(Kd), tolerance = 1e-13, info = block)
      expect_equal(as.vector(ps(x, P, par = list(g = 0.3))), colSums(P * Kd %*% P), tolerance = 1e-13, info = block)
      expect_equal(as.vector(ps(x, P, Q, par = list(g = 0.3))), colSums(P * Kd %*% Q), tolerance = 1e-13, info = block)
    }
  }
  # a vector body with two weight columns (TensorProd): a dim x p matrix
  D1 <- outer(x[, 1], x[, 1], "-")^2; D2 <- outer(x[, 2], x[, 2], "-")^2
  ps <- kernops:::stat_pair_sum("Concat(Exp(-0.5*SqDist(x,y)),Square(x-y))", 2L, 3L, "float64", "auto", block = 7L)
  E <- exp(-0.5 * (D1 + D2)); diag(E) <- 0
  expect_equal(ps(x, P, Q), rbind(colSums(P * E %*% Q), colSums(P * D1 %*% Q), colSums(P * D2 %*% Q)), tolerance = 1e-13)
})

test_that("weighted selectors: the dense weighted objectives, moments and functionals", {
  set.seed(7)
  x <- cbind(kx1, kx1 + rnorm(100))
  w <- runif(100); w <- w / sum(w)
  # LSCV with the weighted leave-one-out estimate f_-i = sum_{j != i} w_j K_H(. - X_j) / (1 - w_i)
  dense_lscv <- function(s, X, w) {
    Z <- sweep(X, 2, s, "/"); D2 <- as.matrix(dist(Z))^2; d <- ncol(X)
    int <- sum(outer(w, w) * exp(-D2 / 4)) * (4 * pi)^(-d / 2) / prod(s)
    Kh <- exp(-D2 / 2) * (2 * pi)^(-d / 2) / prod(s); diag(Kh) <- 0
    int - 2 * sum(w * (Kh %*% w) / (1 - w))
  }
  dense_lcv <- function(s, X, w) {
    Z <- sweep(X, 2, s, "/"); D2 <- as.matrix(dist(Z))^2
    Kh <- exp(-D2 / 2) * (2 * pi)^(-ncol(X) / 2) / prod(s); diag(Kh) <- 0
    -sum(w * log((Kh %*% w) / (1 - w)))
  }
  s <- c(0.4, 0.7)
  obj <- kernops:::lscv_objective(x, w, "float64", "cpu")
  grad <- kernops:::lscv_gradient(x, w, "float64", "cpu")
  expect_equal(obj(s), dense_lscv(s, x, w), tolerance = 1e-12)
  expect_equal(as.numeric(grad(s)), dense_lscv(s, x, w), tolerance = 1e-12)
  num <- sapply(1:2, function(k) { t <- c(0, 0); t[k] <- 1e-5; (dense_lscv(s * exp(t), x, w) - dense_lscv(s * exp(-t), x, w)) / 2e-5 })
  expect_equal(attr(grad(s), "gradient"), num, tolerance = 1e-6)
  expect_equal(kernops:::lcv_objective(x, w, "float64", "cpu")(s), dense_lcv(s, x, w), tolerance = 1e-12)
  expect_equal(kernops:::lscv_objective(matrix(kx1), w, "float64", "cpu")(0.3), dense_lscv(0.3, matrix(kx1), w), tolerance = 1e-12)
  # the selected weighted H minimises the dense weighted objective (it is a stationary point)
  s_hat <- sqrt(diag(kde_bandwidth(x, "lscv", weights = w)))
  num <- sapply(1:2, function(k) { t <- c(0, 0); t[k] <- 1e-4; (dense_lscv(s_hat * exp(t), x, w) - dense_lscv(s_hat * exp(-t), x, w)) / 2e-4 })
  expect_lt(max(abs(num)), 1e-4 * abs(dense_lscv(s_hat, x, w)))
  h_lcv <- sqrt(kde_bandwidth(kx1, "lcv", weights = w))[1, 1]
  expect_equal(h_lcv, optimise(function(h) dense_lcv(h, matrix(kx1), w), c(0.01, 3), tol = 1e-8)$minimum, tolerance = 1e-4)
  # normal scale: the weighted covariance (cov.wt's unbiased one) and n_eff = 1 / sum(w^2)
  n_eff <- 1 / sum(w^2)
  Sw <- stats::cov.wt(x, w)$cov
  expect_equal(kde_bandwidth(x, "ns", weights = w), unname((4 / (n_eff * 4))^(2 / 6) * Sw), tolerance = 1e-12)
  # Silverman in 1-D: bw.nrd0 with weighted sd and IQR; the weighted quantiles are type 7's
  # for equal weights, and a point of weight 0 is as good as absent
  expect_equal(kernops:::weighted_quantile(kx1, rep(0.01, 100) + c(1e-17, rep(0, 99)), c(0.25, 0.75)),
               unname(quantile(kx1, c(0.25, 0.75))), tolerance = 1e-12)
  wq <- kernops:::weighted_quantile(kx1, w, c(0.25, 0.75))
  h_s <- 0.9 * min(sqrt(stats::cov.wt(matrix(kx1), w)$cov[1, 1]), diff(wq) / 1.34) * n_eff^(-0.2)
  expect_equal(sqrt(kde_bandwidth(kx1, "silverman", weights = w))[1, 1], h_s, tolerance = 1e-12)
  for (m in c("ns", "silverman", "pi", "pi_diag", "lscv"))
    expect_equal(kde_bandwidth(c(kx1, 50, -50), m, weights = c(w, 0, 0)), kde_bandwidth(kx1, m, weights = w), info = m)
  # uniform weights are the unweighted selectors
  for (m in c("ns", "silverman", "pi", "pi_diag", "lscv", "lcv"))
    expect_equal(kde_bandwidth(x, m, weights = rep(3, 100)), kde_bandwidth(x, m), tolerance = 1e-12, info = m)
  # the plug-in's functionals: psi_r = sum_{i,j} w_i w_j phi_a^(r)(x_i - x_j)
  a <- 0.3
  t <- outer(kx1, kx1, "-") / a
  expect_equal(kernops:::psi_functional(kx1, w, 4L, a, "float64", "cpu"),
               sum(outer(w, w) * (t^4 - 6 * t^2 + 3) * dnorm(t)) / a^5, tolerance = 1e-12)
  expect_equal(kernops:::psi_functional(kx1, w, 6L, a, "float64", "cpu"),
               sum(outer(w, w) * (t^6 - 15 * t^4 + 45 * t^2 - 15) * dnorm(t)) / a^7, tolerance = 1e-12)
  g <- 0.4
  t1 <- outer(x[, 1], x[, 1], "-") / g; t2 <- outer(x[, 2], x[, 2], "-") / g
  expect_equal(kernops:::hermite_functionals(x, w, list(c(3, 1), c(2, 2)), g, "float64", "cpu"),
               c(sum(outer(w, w) * (t1^3 - 3 * t1) * t2 * exp(-(t1^2 + t2^2) / 2)),
                 sum(outer(w, w) * (t1^2 - 1) * (t2^2 - 1) * exp(-(t1^2 + t2^2) / 2))) / (g^6 * 2 * pi),
               tolerance = 1e-12)
  # kde() passes its weights to the selector
  expect_equal(kde(x, weights = w, eval.points = x[1:2, ])$H, kde_bandwidth(x, "pi", weights = w))
  expect_error(kde_bandwidth(x, "ns", weights = -w), class = "kernops_error_input", regexp = "`weights`")
  expect_error(kde_bandwidth(x, "ns", weights = c(1, rep(0, 99))), class = "kernops_error_input", regexp = "positive weight")
})

test_that("the LSCV gradient (one pass with the value) is the derivative in log s; BFGS reaches the minimum", {
  x <- cbind(kx1, kx1 + rnorm(100))
  obj <- kernops:::lscv_objective(x, rep(0.01, 100), "float64", "auto")
  grad <- kernops:::lscv_gradient(x, rep(0.01, 100), "float64", "auto")
  s <- c(0.4, 0.7)
  v <- grad(s)
  expect_equal(as.numeric(v), obj(s), tolerance = 1e-13)
  num <- sapply(1:2, function(k) { t <- c(0, 0); t[k] <- 1e-5; (obj(s * exp(t)) - obj(s * exp(-t))) / 2e-5 })
  expect_equal(attr(v, "gradient"), num, tolerance = 1e-6)
  # the selected H is a minimum: its gradient is ~0 next to the objective's scale (Nelder-Mead
  # stopped at 4e-4 here)
  s_hat <- sqrt(diag(kde_bandwidth(x, "lscv")))
  expect_lt(max(abs(attr(grad(s_hat), "gradient"))), 1e-4 * abs(obj(s_hat)))
})

test_that("the LSCV Hessian (one pass) is the derivative of the gradient; Newton stops at the minimum", {
  x <- cbind(kx1, 0.5 * kx1 + rnorm(100))
  for (w in list(rep(0.01, 100), runif(100) / 50)) {
    w <- w / sum(w)
    grad <- kernops:::lscv_gradient(x, w, "float64", "cpu")
    hess <- kernops:::lscv_hessian(x, w, "float64", "cpu")
    s <- c(0.4, 0.7)
    v <- hess(s)
    expect_equal(as.numeric(v), as.numeric(grad(s)), tolerance = 1e-13)
    expect_equal(attr(v, "gradient"), attr(grad(s), "gradient"), tolerance = 1e-12)
    num <- sapply(1:2, function(l) { t <- c(0, 0); t[l] <- 1e-5
      (attr(grad(s * exp(t)), "gradient") - attr(grad(s * exp(-t)), "gradient")) / 2e-5 })
    expect_equal(attr(v, "hessian"), num, tolerance = 1e-6)
    # Newton from the normal-scale H: the gradient vanishes at its H, relative to the objective
    s_hat <- kernops:::newton_search(sqrt(diag(kde_bandwidth(x, "ns", weights = w))), hess, 1e-12)
    expect_lt(max(abs(attr(grad(s_hat), "gradient"))), 1e-7 * abs(as.numeric(grad(s_hat))))
  }
  # the stopping tolerance scales as 1/n (the objective's noise level; see lscv_reltol)
  expect_equal(kernops:::lscv_reltol(2e4) / kernops:::lscv_reltol(1e5), 5)
})

test_that("leave-one-out sums exclude i = j inside the reduction (an isolated point)", {
  # a far point's leave-one-out density is ~exp(-500): subtracting the diagonal would give 0
  x <- c(seq(0, 1, length.out = 20), 30)
  obj <- kernops:::lcv_objective(matrix(x), rep(1 / 21, 21), "float64", "auto")
  ref <- -mean(log(sapply(seq_along(x), function(i) mean(dnorm(x[i], x[-i], 2)))))
  expect_equal(obj(2), ref, tolerance = 1e-12)
})

test_that("bad input gives classed errors naming the argument", {
  expect_error(kde(c(1, NA, 3), h = 1), class = "kernops_error_input", regexp = "`x`")
  expect_error(kde(c(1, Inf, 3), h = 1), class = "kernops_error_input", regexp = "`x`")
  expect_error(kde(1, h = 1), class = "kernops_error_input", regexp = "at least 2")
  expect_error(kde(kx1, h = 0), class = "kernops_error_input", regexp = "`h`")
  expect_error(kde(kx1, h = -1), class = "kernops_error_input", regexp = "`h`")
  expect_error(kde(kx1, h = Inf), class = "kernops_error_input", regexp = "`h`")
  expect_error(kde(kx1, H = 1, h = 1), class = "kernops_error_input", regexp = "not both")
  expect_error(kde(kx2, H = matrix(c(1, 0.5, 0, 1), 2, 2)), class = "kernops_error_input", regexp = "symmetric")
  expect_error(kde(kx2, H = matrix(c(1, 2, 2, 1), 2, 2)), class = "kernops_error_input", regexp = "positive definite")
  expect_error(kde(kx2, H = diag(3)), class = "kernops_error_dimension", regexp = "`H`")
  expect_error(kde(kx2, H = "nonsense"), class = "kernops_error_input", regexp = "`H`")
  expect_error(kde(kx1, h = 1, weights = c(-1, rep(1, 99))), class = "kernops_error_input", regexp = "`weights`")
  expect_error(kde(kx1, h = 1, weights = 1:3), class = "kernops_error_input", regexp = "`weights`")
  expect_error(kde(kx1, h = 1, kernel = "box"), class = "kernops_error_input", regexp = "`kernel`")
  expect_error(kde(kx2, H = kH2, kernel = "cauchy"), class = "kernops_error_input", regexp = "cauchy")
  expect_error(kde(kx2, H = kH2, eval.points = matrix(1, 2, 3)), class = "kernops_error_dimension",
               regexp = "`eval.points`")
  expect_error(kde(kx2, H = kH2, eval.points = rbind(c(1, NaN))), class = "kernops_error_input",
               regexp = "`eval.points`")
  expect_error(kde(kx1, h = 1, binned = TRUE), class = "kernops_error_unsupported", regexp = "binned")
  expect_error(kde(kx1, h = 1, gridsize = 100), class = "kernops_error_input", regexp = "gridsize")
  fit <- kde(kx2, H = kH2)
  expect_error(predict(fit, matrix(1, 2, 3)), class = "kernops_error_dimension", regexp = "`newdata`")
  expect_error(predict(fit, kE2, deriv = 2), class = "kernops_error_input", regexp = "`deriv`")
  expect_error(predict(fit, kE2, type = "link"), class = "kernops_error_input", regexp = "`type`")
  expect_error(kde_bandwidth(kx1, "bogus"), class = "kernops_error_input", regexp = "`method`")
})

test_that("backend = \"cuda\" is a backend error reported against the user's call", {
  e <- expect_error(kde(rnorm(20), h = 1, backend = "cuda"), class = "kernops_error_backend")
  expect_match(deparse(conditionCall(e))[1], "^kde\\(")
  e <- expect_error(kde_bandwidth(rnorm(20), "ns", backend = "cuda"), class = "kernops_error_backend")
  expect_match(deparse(conditionCall(e))[1], "^kde_bandwidth\\(")
})

test_that("a compact sequence longer than memory is a memory error, not R's unclassed one", {
  expect_error(kde(1:3e9, h = 1), class = "kernops_error_memory")
})

# test-mmd.R -- kernel_norm(), mmd(), mmd_test() against dense base-R references and
# kernlab::kmmd.

# Dense kernel matrix of the statistics convention (?stat_kernels).
dense_k <- function(x, y, kernel = "gaussian", sigma = 1) {
  r2 <- pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)
  switch(kernel,
         gaussian = exp(-r2 / (2 * sigma^2)),
         laplace = exp(-sqrt(r2) / sigma),
         cauchy = 1 / (1 + r2 / sigma^2))
}

dense_norm <- function(x, a, y, b, kernel = "gaussian", sigma = 1) {
  sum(a * dense_k(x, x, kernel, sigma) %*% a) - 2 * sum(a * dense_k(x, y, kernel, sigma) %*% b) +
    sum(b * dense_k(y, y, kernel, sigma) %*% b)
}

dense_mmd_u <- function(x, y, kernel = "gaussian", sigma = 1) {
  n <- nrow(x); m <- nrow(y)
  kxx <- dense_k(x, x, kernel, sigma); kyy <- dense_k(y, y, kernel, sigma)
  (sum(kxx) - sum(diag(kxx))) / (n * (n - 1)) + (sum(kyy) - sum(diag(kyy))) / (m * (m - 1)) -
    2 * mean(dense_k(x, y, kernel, sigma))
}

set.seed(11)
x <- matrix(rnorm(60), 30, 2)
y <- matrix(rnorm(50, mean = 0.4), 25, 2)

test_that("kernel_norm() agrees with the dense three-term formula, every kernel, given weights", {
  a <- runif(30); b <- runif(25)
  for (k in c("gaussian", "laplace", "cauchy")) {
    expect_equal(as.vector(kernel_norm(x, a, y, b, kernel = k, sigma = 0.8)),
                 dense_norm(x, a, y, b, k, 0.8), tolerance = 1e-12)
  }
  # uniform by default: the biased MMD^2
  expect_equal(as.vector(kernel_norm(x, y = y, sigma = 1.3)),
               dense_norm(x, rep(1 / 30, 30), y, rep(1 / 25, 25), sigma = 1.3), tolerance = 1e-12)
  # float32 within float32 accuracy of the double reference
  expect_equal(as.vector(kernel_norm(x, a, y, b, sigma = 0.8, dtype = "float32")),
               dense_norm(x, a, y, b, sigma = 0.8), tolerance = 1e-5)
})

test_that("the symmetric terms a' K a, reduced by blocks, agree with dense R", {
  st <- list(kernel = kernops:::stat_kernel("gaussian"), d = 2L, dtype = "float64", backend = "cpu", g = 0.5)
  xx <- rbind(x, y[1:23, ])
  for (block in c(3L, 7L, 10L, 100L)) {  # 16, 8, 6 and 1 blocks of the 53 points
    pairs <- kernops:::stat_pair_sum("GaussKernel(g,x,y,1)", 2L, 1L, "float64", "cpu", diagonal = TRUE,
                                     params = "g = Pm(1)", block = block)
    a <- runif(53)
    expect_equal(as.vector(pairs(xx, a, par = list(g = 0.5))), sum(a * dense_k(xx, xx, sigma = 1) %*% a), tolerance = 1e-12)
    # several weight columns in one reduction (the permutation test's labellings)
    A <- matrix(rbinom(53 * 3, 1, 0.5), 53, 3)
    expect_equal(as.vector(pairs(xx, A, par = list(g = 0.5))), colSums(A * dense_k(xx, xx, sigma = 1) %*% A), tolerance = 1e-12)
  }
  expect_equal(kernops:::self_quad(st, xx, a), sum(a * dense_k(xx, xx, sigma = 1) %*% a), tolerance = 1e-12)
  # k(x_i, y_i) of the paired points, from the kernel table's formulas
  for (k in c("gaussian", "laplace", "cauchy")) {
    sk <- list(kernel = kernops:::stat_kernel(k), d = 2L, dtype = "float64", backend = "cpu", g = kernops:::stat_kernel(k)$g(0.7),
               x = x[1:25, ], y = y)
    expect_equal(kernops:::kernel_pairs(sk), sapply(1:25, function(i) dense_k(x[i, , drop = FALSE], y[i, , drop = FALSE], k, 0.7)),
                 tolerance = 1e-13, info = k)
  }
})

test_that("mmd() gives the U- and V-statistics of dense R, weighted and not", {
  for (k in c("gaussian", "laplace", "cauchy")) {
    expect_equal(as.vector(mmd(x, y, kernel = k, sigma = 0.7)), dense_mmd_u(x, y, k, 0.7), tolerance = 1e-12)
    expect_equal(as.vector(mmd(x, y, kernel = k, sigma = 0.7, unbiased = FALSE)),
                 dense_norm(x, rep(1 / 30, 30), y, rep(1 / 25, 25), k, 0.7), tolerance = 1e-12)
  }
  v <- mmd(x, y, sigma = 0.7)
  expect_named(v, "MMD^2")
  expect_equal(attr(v, "sigma"), 0.7)
  # weights: normalised; the U-statistic drops the diagonal and divides by 1 - sum(a^2)
  a <- runif(30); b <- runif(25)
  an <- a / sum(a); bn <- b / sum(b)
  expect_equal(as.vector(mmd(x, y, sigma = 0.7, unbiased = FALSE, weights = list(a, b))),
               dense_norm(x, an, y, bn, sigma = 0.7), tolerance = 1e-12)
  kxx <- dense_k(x, x, sigma = 0.7); kyy <- dense_k(y, y, sigma = 0.7)
  offdiag <- function(k, w) (sum(w * k %*% w) - sum(w^2 * diag(k))) / (1 - sum(w^2))
  ref_u <- offdiag(kxx, an) + offdiag(kyy, bn) - 2 * sum(an * dense_k(x, y, sigma = 0.7) %*% bn)
  expect_equal(as.vector(mmd(x, y, sigma = 0.7, weights = list(a, b))), ref_u, tolerance = 1e-12)
  # integer weights 2 = duplicating points
  w <- rep(c(1, 2), 15)
  expect_equal(as.vector(mmd(x, y, sigma = 0.7, unbiased = FALSE, weights = list(w, NULL))),
               as.vector(mmd(x[rep(1:30, w), ], y, sigma = 0.7, unbiased = FALSE)), tolerance = 1e-12)
})

test_that("the median heuristic is the median pairwise distance, on a subsample of 1000 points", {
  expect_equal(attr(mmd(x, y), "sigma"), median(dist(rbind(x, y))))
  big_x <- matrix(rnorm(1400), 700, 2)
  big_y <- matrix(rnorm(1000), 500, 2)
  set.seed(3); s1 <- attr(mmd(big_x, big_y, unbiased = FALSE), "sigma")
  set.seed(3); s2 <- attr(mmd(big_x, big_y, unbiased = FALSE), "sigma")
  set.seed(3); idx <- sort(sample.int(1200, 1000))
  expect_identical(s1, s2)
  expect_equal(s1, median(dist(rbind(big_x, big_y)[idx, ])))
})

test_that("mmd() agrees with kernlab::kmmd (kernlab's sigma = 1 / (2 sigma^2))", {
  skip_if_not_installed("kernlab")
  sigma <- 0.9
  xx <- matrix(rnorm(80), 40, 2)
  yy <- matrix(rnorm(80, 0.3), 40, 2)
  km <- suppressMessages(kernlab::kmmd(xx, yy, kernel = "rbfdot", kpar = list(sigma = 1 / (2 * sigma^2))))
  st <- kernlab::mmdstats(km)
  # mmdstats[1]: the square root of the V-statistic
  expect_equal(as.vector(sqrt(mmd(xx, yy, sigma = sigma, unbiased = FALSE))), st[1], tolerance = 1e-12)
  # mmdstats[2]: the U-statistic without the (x_i, y_i) cross pairs (n = m)
  n <- 40
  kxy_diag <- exp(-rowSums((xx - yy)^2) / (2 * sigma^2))
  kxy_sum <- sum(dense_k(xx, yy, sigma = sigma))
  ours <- as.vector(mmd(xx, yy, sigma = sigma))
  expect_equal(ours + 2 * kxy_sum / n^2 - 2 * (kxy_sum - sum(kxy_diag)) / (n * (n - 1)), st[2], tolerance = 1e-12)
  # the Laplace kernel: kernlab's laplacedot(sigma = 1/sigma), exp(-r/sigma); kernlab takes r
  # as the root of |x|^2 + |y|^2 - 2 <x, y>, which loses digits near r = 0 (hence 1e-9)
  km <- kernlab::kmmd(xx, yy, kernel = "laplacedot", kpar = list(sigma = 1 / sigma))
  expect_equal(as.vector(sqrt(mmd(xx, yy, kernel = "laplace", sigma = sigma, unbiased = FALSE))),
               kernlab::mmdstats(km)[1], tolerance = 1e-9)
})

test_that("grad = TRUE gives the gradient with respect to x (finite differences)", {
  fd <- function(f, x, h = 1e-6) {
    g <- x
    for (k in seq_along(x)) {
      xp <- x; xm <- x
      xp[k] <- xp[k] + h; xm[k] <- xm[k] - h
      g[k] <- (f(xp) - f(xm)) / (2 * h)
    }
    g
  }
  a <- runif(30); b <- runif(25)
  for (k in c("gaussian", "cauchy")) {
    res <- kernel_norm(x, a, y, b, kernel = k, sigma = 0.8, grad = TRUE)
    expect_equal(as.vector(res$value), dense_norm(x, a, y, b, k, 0.8), tolerance = 1e-12)
    expect_equal(res$gradient, fd(function(u) dense_norm(u, a, y, b, k, 0.8), x), tolerance = 1e-6)
    for (u in c(TRUE, FALSE)) {
      res <- mmd(x, y, kernel = k, sigma = 0.8, unbiased = u, grad = TRUE, weights = list(a, NULL))
      expect_equal(res$value, mmd(x, y, kernel = k, sigma = 0.8, unbiased = u, weights = list(a, NULL)))
      expect_equal(res$gradient, fd(function(v) as.vector(mmd(v, y, kernel = k, sigma = 0.8, unbiased = u,
                                                           weights = list(a, NULL))), x), tolerance = 1e-6)
    }
  }
})

test_that("mmd_test() returns an htest; permutation p-values are reproducible and match a direct count", {
  set.seed(5)
  t1 <- mmd_test(x, y, sigma = 0.7, n_perm = 99)
  expect_s3_class(t1, "htest")
  expect_equal(as.vector(t1$statistic), as.vector(mmd(x, y, sigma = 0.7)), tolerance = 1e-12)
  expect_named(t1$statistic, "MMD^2")
  expect_equal(t1$parameter, c(sigma = 0.7))
  expect_equal(t1$null.value, c("MMD^2" = 0))
  expect_identical(t1$alternative, "greater")
  expect_identical(t1$data.name, "x and y")
  expect_identical(t1$replicates, 99L)
  set.seed(5)
  expect_identical(mmd_test(x, y, sigma = 0.7, n_perm = 99)$p.value, t1$p.value)
  expect_output(print(t1), "MMD\\^2 = ")
  # the same permutations drawn by hand, each statistic computed by mmd()
  set.seed(5)
  z <- rbind(x, y)
  null <- replicate(99, { i <- sample.int(55, 30); as.vector(mmd(z[i, ], z[-i, ], sigma = 0.7)) })
  expect_equal(t1$p.value, (1 + sum(null >= t1$statistic - 1e-12)) / 100)
  # the V-statistic
  set.seed(5)
  tv <- mmd_test(x, y, sigma = 0.7, unbiased = FALSE, n_perm = 20)
  set.seed(5)
  nullv <- replicate(20, { i <- sample.int(55, 30); as.vector(mmd(z[i, ], z[-i, ], sigma = 0.7, unbiased = FALSE)) })
  expect_equal(tv$p.value, (1 + sum(nullv >= tv$statistic - 1e-12)) / 21)
  # blocks of 3 columns (forced: a sample of 55 points fits 1000s of columns in one block)
  s <- kernops:::stat_setup(x, y, "gaussian", 0.7, "float64", "auto", 2L, NULL)
  set.seed(5)
  blocks <- kernops:::permutation_null(s, unbiased = FALSE, n_perm = 20L, block_values = 55 * 3)
  expect_equal(blocks$statistic, as.vector(tv$statistic), tolerance = 1e-12)
  expect_equal(blocks$null, nullv, tolerance = 1e-12)
  # 4000 pooled points: two blocks of rows in each quadratic form
  xl <- matrix(rnorm(4000), 2000, 2)
  yl <- matrix(rnorm(4000), 2000, 2)
  set.seed(6)
  tl <- mmd_test(xl, yl, sigma = 1, n_perm = 4)
  set.seed(6)
  zl <- rbind(xl, yl)
  nulll <- replicate(4, { i <- sample.int(4000, 2000); as.vector(mmd(zl[i, ], zl[-i, ], sigma = 1)) })
  expect_equal(as.vector(tl$statistic), as.vector(mmd(xl, yl, sigma = 1)), tolerance = 1e-10)
  expect_equal(tl$p.value, (1 + sum(nulll >= as.vector(tl$statistic))) / 5)
  # a clear difference is detected
  expect_lt(mmd_test(x, y + 2, n_perm = 50)$p.value, 0.05)
})

test_that("mmd_test() reports progress through progressr, one step per block", {
  skip_if_not_installed("progressr")
  old <- options(progressr.enable = TRUE)  # progressr signals nothing in batch mode otherwise
  on.exit(options(old), add = TRUE)
  s <- kernops:::stat_setup(x, y, "gaussian", 0.7, "float64", "auto", 2L, NULL)
  steps <- 0
  withCallingHandlers(kernops:::permutation_null(s, TRUE, 10L, block_values = 55 * 3),
                      progression = function(cnd) if (identical(cnd$type, "update")) steps <<- steps + 1)
  expect_equal(steps, 4)  # 11 columns (the observed labelling and 10 permutations) in blocks of 3
})

test_that("float32 runs through mmd_test() and the gradient", {
  set.seed(5)
  t32 <- mmd_test(x, y, sigma = 0.7, n_perm = 50, dtype = "float32")
  set.seed(5)
  t64 <- mmd_test(x, y, sigma = 0.7, n_perm = 50)
  expect_equal(unname(t32$statistic), unname(t64$statistic), tolerance = 1e-5)
  g32 <- mmd(x, y, sigma = 0.7, grad = TRUE, dtype = "float32")$gradient
  expect_equal(g32, mmd(x, y, sigma = 0.7, grad = TRUE)$gradient, tolerance = 1e-5)
})

test_that("permutation p-values are calibrated under H0 (KS test over 200 replicates)", {
  set.seed(2024)
  p <- replicate(200, mmd_test(matrix(rnorm(20), 10, 2), matrix(rnorm(24), 12, 2), n_perm = 99)$p.value)
  expect_gt(suppressWarnings(ks.test(p, "punif"))$p.value, 0.001)
  expect_true(all(p > 0 & p <= 1))
})

test_that("the gamma approximation follows Gretton et al. (2009)", {
  xx <- x[1:25, ]
  tg <- mmd_test(xx, y, sigma = 0.7, method = "gamma")
  n <- 25
  kxx <- dense_k(xx, xx, sigma = 0.7); kyy <- dense_k(y, y, sigma = 0.7); kxy <- dense_k(xx, y, sigma = 0.7)
  stat <- mean(kxx) + mean(kyy) - 2 * mean(kxy)
  h <- kxx + kyy - kxy - t(kxy)
  diag(h) <- 0
  mean0 <- 2 / n * (1 - mean(diag(kxy)))
  var0 <- 2 / (n * (n - 1))^2 * sum(h^2)
  expect_equal(as.vector(tg$statistic), stat, tolerance = 1e-12)
  expect_equal(tg$p.value, pgamma(n * stat, mean0^2 / var0, scale = n * var0 / mean0, lower.tail = FALSE),
               tolerance = 1e-10)
  expect_null(tg$replicates)
  expect_error(mmd_test(x, y, method = "gamma"), class = "kernops_error_unsupported")
})

test_that("bad input raises classed errors naming the argument", {
  bad <- x; bad[4, 2] <- NA
  expect_error(mmd(bad, y), class = "kernops_error_input", regexp = "`x`.*row 4")
  bad[4, 2] <- Inf
  expect_error(kernel_norm(x, y = bad, sigma = 1), class = "kernops_error_input", regexp = "`y`.*row 4")
  expect_error(mmd(x, cbind(y, 1)), class = "kernops_error_dimension", regexp = "`x` has 2, `y` has 3")
  expect_error(mmd(x[1, , drop = FALSE], y), class = "kernops_error_input", regexp = "`x` must have at least 2")
  expect_error(mmd(x, y, sigma = 0), class = "kernops_error_input", regexp = "sigma")
  expect_error(mmd(x, y, sigma = -1), class = "kernops_error_input", regexp = "sigma")
  expect_error(mmd(x, y, sigma = Inf), class = "kernops_error_input", regexp = "sigma")
  expect_error(mmd(x, y, sigma = "mean"), class = "kernops_error_input", regexp = "sigma")
  expect_error(kernel_norm(x, y = y), class = "kernops_error_input", regexp = "sigma")
  expect_error(mmd(x, y, kernel = "epanechnikov"), class = "kernops_error_input", regexp = "positive definite")
  expect_error(mmd(x, y, kernel = "gauss"), class = "kernops_error_input", regexp = "`kernel`")
  expect_error(kernel_norm(x, a = -runif(30), y = y, sigma = 1), class = "kernops_error_input", regexp = "`a`")
  expect_error(kernel_norm(x, y = y, b = 1:3, sigma = 1), class = "kernops_error_input", regexp = "`b`")
  expect_error(mmd(x, y, weights = list(rep(0, 30), NULL)), class = "kernops_error_input", regexp = "weights\\[\\[1\\]\\]")
  expect_error(mmd(x, y, weights = runif(30)), class = "kernops_error_input", regexp = "`weights`")
  expect_error(mmd(x, y, weights = list(c(1, rep(0, 29)), NULL)), class = "kernops_error_input", regexp = "U-statistic")
  expect_error(mmd(x, y, dtype = "float16"), class = "kernops_error_input", regexp = "dtype")
  expect_error(mmd(x, y, backend = "cuda"), class = "kernops_error_backend")
  expect_error(mmd(x, y, unbiased = NA), class = "kernops_error_input", regexp = "unbiased")
  expect_error(mmd(matrix(0, 5, 2), matrix(0, 5, 2)), class = "kernops_error_input", regexp = "median")
  expect_error(mmd_test(x, y, n_perm = 0), class = "kernops_error_input", regexp = "n_perm")
  expect_error(mmd_test(x, y, method = "exact"), class = "kernops_error_input", regexp = "method")
  expect_error(mmd(x, letters), class = "kernops_error_input", regexp = "`y`")
})

test_that("a compact sequence longer than memory is a memory error, not R's unclassed one", {
  # 1:3e9 takes no memory until written out as doubles: checked against
  # kernops.max_output_bytes first (the statistics share the ops' data conversion)
  expect_error(mmd(1:3e9, 1:10), class = "kernops_error_memory")
  expect_error(kernel_norm(1:10, y = 1:3e9, sigma = 1), class = "kernops_error_memory")
})

# Sinkhorn: checked against a dense log-domain Sinkhorn in base R (float64), the exact 1-D
# W2 from sorted samples, the properties of the divergence and GeomLoss' values (W5 data).

dense_cost <- function(x, y, p) {
  D2 <- pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)
  if (p == 2) D2 / 2 else sqrt(D2)
}
# f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps), stabilised by the row maximum.
dense_softmin <- function(C, w, h, eps) {
  M <- sweep(-C, 2, h, "+") / eps
  mx <- apply(M, 1, max)
  -eps * (mx + log(as.vector(exp(M - mx) %*% w)))
}
# Plain alternating Sinkhorn at eps (symmetric problems: averaged updates), to convergence.
# (costf: a custom cost, function(x, y) giving the n x m matrix C(x_i, y_j))
dense_ot <- function(x, y, a, b, eps, p, debias, iters = 5000, costf = function(x, y) dense_cost(x, y, p)) {
  Cxy <- costf(x, y)
  f <- numeric(nrow(x)); g <- numeric(nrow(y))
  for (k in seq_len(iters)) {
    f_old <- f
    f <- dense_softmin(Cxy, b, g, eps)
    g <- dense_softmin(t(Cxy), a, f, eps)
    if (max(abs(f - f_old)) < 1e-14) break
  }
  cost <- sum(a * f) + sum(b * g)
  if (!debias) return(cost)
  sym <- function(z, w) {
    C <- costf(z, z); h <- numeric(nrow(z))
    for (k in seq_len(iters)) {
      h_new <- (h + dense_softmin(C, w, h, eps)) / 2
      if (max(abs(h_new - h)) < 1e-14) break
      h <- h_new
    }
    2 * sum(w * h_new)   # OT(w, w) = sum(w f) + sum(w g) with f = g
  }
  cost - sym(x, a) / 2 - sym(y, b) / 2
}

test_that("sinkhorn matches a dense log-domain Sinkhorn in float64 (p = 2 and 1, weights)", {
  set.seed(11)
  x <- matrix(rnorm(40), 20, 2)
  y <- matrix(rnorm(30, mean = 0.5), 15, 2)
  a <- runif(20); a <- a / sum(a)
  b <- runif(15); b <- b / sum(b)
  for (p in c(2, 1)) for (debias in c(TRUE, FALSE)) {
    ot <- sinkhorn(x, y, a, b, blur = 0.3, p = p, debias = debias, tol = 1e-13, max_iter = 5000)
    expect_true(ot$converged)
    ref <- dense_ot(x, y, a, b, eps = 0.3^p, p = p, debias = debias)
    expect_equal(ot$value, ref, tolerance = 1e-8)
  }
  ot <- sinkhorn(x, y, a, b, blur = 0.3, debias = FALSE, tol = 1e-13)
  P <- transport_plan(ot)
  expect_equal(rowSums(P), a, tolerance = 1e-10)
  expect_equal(colSums(P), b, tolerance = 1e-10)
  expect_equal(ot$cost, sum(P * dense_cost(x, y, 2)) + 0.3^2 * sum(P * log(P / outer(a, b))), tolerance = 1e-8)
  expect_equal(barycentric_map(ot), unname(P %*% y / rowSums(P)), tolerance = 1e-10)
})

test_that("a custom cost (string, ~ formula, function, LazyTensor) matches the dense Sinkhorn", {
  set.seed(21)
  x <- matrix(rnorm(30), 15, 2)
  y <- matrix(rnorm(24, mean = 0.5), 12, 2)
  a <- runif(15); a <- a / sum(a)
  b <- runif(12); b <- b / sum(b)
  # the default costs written out give the default values
  expect_equal(sinkhorn(x, y, a, b, blur = 0.4, cost = "SqDist(x,y)/2", tol = 1e-12)$value,
               sinkhorn(x, y, a, b, blur = 0.4, tol = 1e-12)$value, tolerance = 1e-10)
  expect_equal(sinkhorn(x, y, a, b, blur = 0.4, p = 1, cost = "Sqrt(SqDist(x,y))", tol = 1e-12)$value,
               sinkhorn(x, y, a, b, blur = 0.4, p = 1, tol = 1e-12)$value, tolerance = 1e-10)
  # a symmetric cost of its own, debiased, in its four forms
  hyp <- function(x, y) sqrt(dense_cost(x, y, 2) * 2 + 0.5)
  ref <- dense_ot(x, y, a, b, eps = 0.16, p = 2, debias = TRUE, costf = hyp)
  x0 <- x; y0 <- y
  for (cost in list("Sqrt(SqDist(x,y)+0.5)", ~ sqrt(sqdist(x, y) + 0.5), function(x, y) sqrt(sqdist(x, y) + 0.5),
                    sqrt(sqdist(Vi(x0), Vj(y0)) + 0.5))) {
    ot <- sinkhorn(x, y, a, b, blur = 0.4, cost = cost, tol = 1e-12)
    expect_true(ot$converged)
    expect_equal(ot$value, ref, tolerance = 1e-8)
  }
  expect_output(print(ot), "Sqrt\\(SqDist\\(x,y\\)\\+0.5\\)")
  # a cost that is not symmetric: OT_eps (the g update reduces over the first slot of C)
  skew <- function(x, y) dense_cost(x, 2 * y, 2)
  ot <- sinkhorn(x, y, a, b, blur = 1, cost = "SqDist(x,2*y)/2", debias = FALSE, tol = 1e-12)
  expect_equal(ot$value, dense_ot(x, y, a, b, eps = 1, p = 2, debias = FALSE, costf = skew), tolerance = 1e-8)
  P <- transport_plan(ot)
  expect_equal(rowSums(P), a, tolerance = 1e-9)
  expect_equal(colSums(P), b, tolerance = 1e-9)
  expect_equal(barycentric_map(ot), unname(P %*% y / rowSums(P)), tolerance = 1e-9)
  expect_error(sinkhorn(x, y, cost = "SqDist(x,2*y)/2"), class = "kernops_error_input", regexp = "symmetric")
  # errors name `cost`
  expect_error(sinkhorn(x, y, cost = "SqDist(x,z)"), class = "kernops_error_input", regexp = "`cost`.*unknown variable 'z'")
  expect_error(sinkhorn(x, y, cost = "x-y"), class = "kernops_error_dimension", regexp = "`cost`.*dimension 2")
  expect_error(sinkhorn(x, y, cost = ~ x - y), class = "kernops_error_dimension", regexp = "`cost`")
  expect_error(sinkhorn(x, y, cost = 2), class = "kernops_error_input", regexp = "`cost`")
  expect_error(sinkhorn(x, y, cost = ~ sqdist(x, z)), class = "kernops_error_input", regexp = "`cost`")
  expect_error(sinkhorn(x, y, cost = sqdist(Vi(x0), Vj(y0)) + Vi(x0)[1]), class = "kernops_error_input",
               regexp = "one Vi variable")
})

test_that("the gradient with a custom cost matches finite differences", {
  set.seed(22)
  x <- matrix(rnorm(12), 6, 2)
  y <- matrix(rnorm(14, mean = 0.5), 7, 2)
  for (debias in c(TRUE, FALSE)) {
    cost <- if (debias) "Sqrt(SqDist(x,y)+0.5)" else "SqDist(x,2*y)/2+Sum(x*y)"
    val <- function(z) sinkhorn(z, y, blur = 0.5, cost = cost, debias = debias, tol = 1e-13)$value
    gr <- sinkhorn(x, y, blur = 0.5, cost = cost, debias = debias, tol = 1e-13, grad = TRUE)$gradient
    num <- x
    for (k in seq_along(x)) {
      e <- x; e[k] <- e[k] + 1e-5
      e2 <- x; e2[k] <- e2[k] - 1e-5
      num[k] <- (val(e) - val(e2)) / 2e-5
    }
    expect_equal(gr, num, tolerance = 1e-6)
  }
})

# Unbalanced (KL-relaxed marginals, rho = reach^p): damped alternating updates to
# convergence, then GeomLoss' dual formulas; the plan for the primal check.
dense_uot <- function(x, y, a, b, eps, rho, p = 2, iters = 20000) {
  damp <- 1 / (1 + eps / rho)
  pot <- function(C, wa, wb) {
    f <- numeric(nrow(C)); g <- numeric(ncol(C))
    for (k in seq_len(iters)) {
      f_old <- f
      f <- damp * dense_softmin(C, wb, g, eps)
      g <- damp * dense_softmin(t(C), wa, f, eps)
      if (max(abs(f - f_old)) < 1e-14) break
    }
    list(f = f, g = g)
  }
  C <- dense_cost(x, y, p)
  ab <- pot(C, a, b)
  aa <- pot(dense_cost(x, x, p), a, a)   # f = g for the symmetric problems
  bb <- pot(dense_cost(y, y, p), b, b)
  w <- rho + eps / 2
  list(cost = w * (sum(a * (1 - exp(-ab$f / rho))) + sum(b * (1 - exp(-ab$g / rho)))),
       divergence = w * (sum(a * (exp(-aa$f / rho) - exp(-ab$f / rho))) + sum(b * (exp(-bb$g / rho) - exp(-ab$g / rho)))),
       f = ab$f, g = ab$g, P = outer(a, b) * exp((outer(ab$f, ab$g, "+") - C) / eps), C = C)
}
gen_kl <- function(p, q) sum(ifelse(p > 0, p * log(p / q), 0) - p + q)

test_that("unbalanced OT (reach) matches a dense unbalanced Sinkhorn, its primal value, and the balanced limit", {
  set.seed(31)
  x <- matrix(rnorm(36), 18, 2)
  y <- matrix(rnorm(28, mean = 0.8), 14, 2)
  a <- runif(18); a <- 1.3 * a / sum(a)        # unequal masses: 1.3 and 0.8
  b <- runif(14); b <- 0.8 * b / sum(b)
  eps <- 0.25; reach <- 0.7; rho <- reach^2
  ref <- dense_uot(x, y, a, b, eps, rho)
  ot <- sinkhorn(x, y, a, b, blur = 0.5, reach = reach, tol = 1e-13, max_iter = 5000)
  expect_true(ot$converged)
  expect_equal(ot$f, ref$f, tolerance = 1e-8)
  expect_equal(ot$g, ref$g, tolerance = 1e-8)
  expect_equal(ot$cost, ref$cost, tolerance = 1e-8)
  expect_equal(ot$value, ref$divergence, tolerance = 1e-8)
  # strong duality: the cost is the primal objective of the plan, plus GeomLoss' mass term
  # eps ((m(a) + m(b)) / 2 - m(a) m(b)) (0 for probability measures)
  P <- ref$P
  primal <- sum(P * ref$C) + eps * gen_kl(P, outer(a, b)) + rho * gen_kl(rowSums(P), a) + rho * gen_kl(colSums(P), b)
  expect_equal(ot$cost, primal + eps * ((1.3 + 0.8) / 2 - 1.3 * 0.8), tolerance = 1e-8)
  expect_equal(transport_plan(ot), P, tolerance = 1e-8)
  expect_output(print(ot), "unbalanced: reach 0.7")
  # S_eps >= 0 (with the term eps / 2 (m(a) - m(b))^2 included), 0 for equal measures
  expect_gt(ot$value, 0)
  expect_equal(sinkhorn(x, x, a, a, blur = 1, reach = reach, tol = 1e-12)$value, 0, tolerance = 1e-10)
  # reach -> Inf: the balanced value (equal masses)
  b1 <- b / sum(b)
  a1 <- a / sum(a)
  bal <- sinkhorn(x, y, a1, b1, blur = 0.5, tol = 1e-12)$value
  err <- vapply(c(3, 30, 1000), function(r) abs(sinkhorn(x, y, a1, b1, blur = 0.5, reach = r, tol = 1e-8)$value - bal), 0)
  expect_true(all(diff(err) < 0))
  expect_lt(err[3], 1e-5 * bal)
  # unequal masses without reach, or a bad reach: classed errors
  expect_error(sinkhorn(x, y, a, b), class = "kernops_error_input", regexp = "reach")
  expect_error(sinkhorn(x, y, a, b, reach = -1), class = "kernops_error_input", regexp = "`reach`")
  expect_error(sinkhorn(x, y, a, b * 0, reach = 1), class = "kernops_error_input", regexp = "`b`")
})

test_that("the unbalanced gradient with respect to x matches finite differences", {
  set.seed(32)
  x <- matrix(rnorm(12), 6, 2)
  y <- matrix(rnorm(16, mean = 0.5), 8, 2)
  for (debias in c(TRUE, FALSE)) {
    val <- function(z) sinkhorn(z, y, blur = 0.5, reach = 0.8, debias = debias, tol = 1e-13)$value
    gr <- sinkhorn(x, y, blur = 0.5, reach = 0.8, debias = debias, tol = 1e-13, grad = TRUE)$gradient
    num <- x
    for (k in seq_along(x)) {
      e <- x; e[k] <- e[k] + 1e-5
      e2 <- x; e2[k] <- e2[k] - 1e-5
      num[k] <- (val(e) - val(e2)) / 2e-5
    }
    expect_equal(gr, num, tolerance = 1e-6)
  }
})

test_that("the gradients with respect to the weights match finite differences", {
  set.seed(33)
  x <- matrix(rnorm(14), 7, 2)
  y <- matrix(rnorm(12, mean = 0.5), 6, 2)
  a <- runif(7) + 0.2; a <- a / sum(a)
  b <- runif(6) + 0.2; b <- b / sum(b)
  # balanced: directions that keep the mass; unbalanced (reach): any direction
  da <- rnorm(7); db <- rnorm(6)
  h <- 1e-6
  for (reach in list(NULL, 0.8)) for (debias in c(TRUE, FALSE)) {
    if (is.null(reach)) { da <- da - mean(da); db <- db - mean(db) }
    val <- function(a, b) sinkhorn(x, y, a, b, blur = 0.5, reach = reach, debias = debias, tol = 1e-13)$value
    ot <- sinkhorn(x, y, a, b, blur = 0.5, reach = reach, debias = debias, tol = 1e-13, grad = TRUE)
    expect_equal(sum(ot$gradient_a * da), (val(a + h * da, b) - val(a - h * da, b)) / (2 * h), tolerance = 1e-6)
    expect_equal(sum(ot$gradient_b * db), (val(a, b + h * db) - val(a, b - h * db)) / (2 * h), tolerance = 1e-6)
  }
  # GeomLoss' convention: f (debiased f - f_aa)
  ot <- sinkhorn(x, y, a, b, blur = 0.5, tol = 1e-13, grad = TRUE)
  expect_equal(ot$gradient_a, ot$f - ot$f_aa)
  expect_equal(ot$gradient_b, ot$g - ot$g_bb)
})

test_that("over-relaxation converges at small blur in a fraction of the iterations, to the same value", {
  set.seed(41)
  x <- matrix(runif(300), 150, 2)
  y <- matrix(rnorm(240, 0.5, 0.1), 120, 2)
  plain <- sinkhorn(x, y, blur = 0.02, tol = 1e-7, max_iter = 5000, overrelax = FALSE)
  sor <- sinkhorn(x, y, blur = 0.02, tol = 1e-7, max_iter = 5000)
  expect_true(plain$converged && sor$converged)
  expect_gt(sor$overrelax, 1.5)
  expect_lt(sor$iterations, plain$iterations / 3)
  expect_equal(sor$value, plain$value, tolerance = 1e-8)
  expect_equal(barycentric_map(sor), barycentric_map(plain), tolerance = 1e-6)  # (f, g) are up to a constant
  # a fixed factor, and unbalanced transport
  expect_equal(sinkhorn(x, y, blur = 0.02, tol = 1e-7, max_iter = 5000, overrelax = 1.5)$value, plain$value, tolerance = 1e-8)
  u1 <- sinkhorn(x, y, blur = 0.02, reach = 0.3, tol = 1e-8, max_iter = 5000, overrelax = FALSE)
  u2 <- sinkhorn(x, y, blur = 0.02, reach = 0.3, tol = 1e-8, max_iter = 5000)
  expect_lt(u2$iterations, u1$iterations)
  expect_equal(u2$value, u1$value, tolerance = 1e-8)
  expect_error(sinkhorn(x, y, overrelax = 2), class = "kernops_error_input", regexp = "`overrelax`")
})

test_that("zero weights, and eps given instead of blur", {
  set.seed(3)
  x <- matrix(rnorm(24), 12, 2); y <- matrix(rnorm(20, 0.5), 10, 2)
  a <- c(0, 0, runif(10)); a <- a / sum(a)
  b <- c(runif(9), 0); b <- b / sum(b)
  expect_equal(sinkhorn(x, y, a, b, blur = 0.5, tol = 1e-13)$value, dense_ot(x, y, a, b, 0.25, 2, TRUE),
               tolerance = 1e-8)
  expect_equal(sinkhorn(x, y, eps = 0.25)$value, sinkhorn(x, y, blur = 0.5)$value)
  expect_error(sinkhorn(x, y, blur = 0.5, eps = 0.25), class = "kernops_error_input", regexp = "`eps`")
})

test_that("S_eps(a, a) = 0, S_eps >= 0, symmetric, and W2 translation", {
  set.seed(12)
  x <- matrix(rnorm(60), 30, 2)
  y <- matrix(rnorm(50, mean = 1), 25, 2)
  # (at small blur, Sinkhorn between x and itself converges slowly: blur 1 keeps it fast)
  expect_equal(sinkhorn(x, x, blur = 1, tol = 1e-12)$value, 0, tolerance = 1e-10)
  s_xy <- sinkhorn(x, y, blur = 0.5, tol = 1e-10)$value
  s_yx <- sinkhorn(y, x, blur = 0.5, tol = 1e-10)$value
  expect_gt(s_xy, 0)
  expect_equal(s_xy, s_yx, tolerance = 1e-8)
  # a translation t of one cloud adds |t|^2 / 2 + t . (mean(y) - mean(x)) to S_eps (p = 2)
  tr <- c(0.3, -0.2)
  s_t <- sinkhorn(x, sweep(y, 2, tr, "+"), blur = 0.5, tol = 1e-10)$value
  expect_equal(s_t - s_xy, sum(tr^2) / 2 + sum(tr * (colMeans(y) - colMeans(x))), tolerance = 1e-7)
})

test_that("in 1-D, S_eps tends to W2^2 / 2 from the sorted samples as blur -> 0", {
  set.seed(13)
  x <- rnorm(100); y <- rnorm(100, mean = 1, sd = 0.5)
  w2 <- mean((sort(x) - sort(y))^2) / 2
  err <- vapply(c(0.4, 0.1), function(blur) abs(sinkhorn(x, y, blur = blur, tol = 1e-4)$value - w2), 0)
  expect_lt(err[2], err[1])
  expect_lt(err[2], 2e-3 * w2)
})

test_that("the gradient with respect to x matches finite differences", {
  set.seed(14)
  x <- matrix(rnorm(16), 8, 2)
  y <- matrix(rnorm(20, mean = 0.5), 10, 2)
  for (p in c(2, 1)) for (debias in c(TRUE, FALSE)) {
    val <- function(z) sinkhorn(z, y, blur = 0.5, p = p, debias = debias, tol = 1e-13)$value
    gr <- sinkhorn(x, y, blur = 0.5, p = p, debias = debias, tol = 1e-13, grad = TRUE)$gradient
    h <- 1e-5
    num <- x
    for (k in seq_along(x)) {
      e <- x; e[k] <- e[k] + h
      e2 <- x; e2[k] <- e2[k] - h
      num[k] <- (val(e) - val(e2)) / (2 * h)
    }
    expect_equal(gr, num, tolerance = 1e-6)
  }
})

test_that("print, summary, the convergence warning and the plan's size limit", {
  set.seed(15)
  x <- matrix(rnorm(20), 10, 2); y <- matrix(rnorm(20, 1), 10, 2)
  ot <- sinkhorn(x, y, blur = 0.5)
  expect_s3_class(ot, "kernops_ot")
  expect_output(print(ot), "Sinkhorn divergence")
  expect_output(print(summary(ot)), "marginal error")
  w <- expect_warning(sinkhorn(x, y, blur = 0.01, max_iter = 0, tol = 1e-14), class = "kernops_warning_convergence")
  expect_true(w$marginal_error > 1e-14)
  expect_error(transport_plan(ot, max_size = 50), class = "kernops_error_memory", regexp = "max_size")
})

test_that("bad input: classed errors naming the argument", {
  x <- matrix(rnorm(20), 10, 2); y <- matrix(rnorm(20), 10, 2)
  x_bad <- x; x_bad[3, 1] <- NaN
  expect_error(sinkhorn(x_bad, y), class = "kernops_error_input", regexp = "`x`")
  expect_error(sinkhorn(x, y, a = c(-1, rep(0.2, 9))), class = "kernops_error_input", regexp = "`a`")
  expect_error(sinkhorn(x, y, b = rep(1, 10)), class = "kernops_error_input", regexp = "total mass")
  expect_error(sinkhorn(x, y, blur = 0), class = "kernops_error_input", regexp = "`blur`")
  expect_error(sinkhorn(x, y, eps = -1), class = "kernops_error_input", regexp = "`eps`")
  expect_error(sinkhorn(x, matrix(0, 10, 3)), class = "kernops_error_dimension", regexp = "columns")
  expect_error(sinkhorn(x[0, , drop = FALSE], y), class = "kernops_error_input", regexp = "`x`")
  expect_error(sinkhorn(x, y, p = 3), class = "kernops_error_input", regexp = "`p`")
  expect_error(sinkhorn(x, y, scaling = 1), class = "kernops_error_input", regexp = "`scaling`")
  expect_error(barycentric_map(list()), class = "kernops_error_input", regexp = "`ot`")
})

test_that("GeomLoss' converged value on the W5 data (5000 + 5000 points, blur 0.1)", {
  path <- file.path(testthat::test_path(), "..", "..", "..", "shared", "data", "w5_5000.csv")
  skip_if_not(file.exists(path), "../shared/data/w5_5000.csv not found")
  d <- read.csv(path)
  x <- as.matrix(d[d$set == "x", 2:3]); y <- as.matrix(d[d$set == "y", 2:3])
  # float32 and tol = 1e-2 keep it near 1 s; the value is within ~1e-6 relative already
  # (its error is of second order in the marginal error).
  ot <- sinkhorn(x, y, blur = 0.1, tol = 1e-2, dtype = "float32")
  expect_true(ot$converged)
  expect_equal(ot$value, 0.0360067826388, tolerance = 1e-3)
})

test_that("sinkhorn() reports progress through progressr: the schedule, then each iteration", {
  skip_if_not_installed("progressr")
  old <- options(progressr.enable = TRUE)  # progressr signals nothing in batch mode otherwise
  on.exit(options(old), add = TRUE)
  set.seed(11)
  x <- matrix(runif(60), 30, 2)
  y <- matrix(runif(40), 20, 2)
  messages <- list()
  ot <- withCallingHandlers(sinkhorn(x, y, blur = 0.1),
                            progression = function(cnd) if (identical(cnd$type, "update")) messages[[length(messages) + 1]] <<- cnd$message)
  # one per eps of the schedule, one per iteration at the target eps (iterations + 1 of
  # them: the last one ends the loop), and the last step, without a message
  expect_length(messages, length(ot$eps_schedule) + ot$iterations + 1 + 1)
  expect_match(messages[[1]], "^Sinkhorn: eps = ")
  expect_match(messages[[length(ot$eps_schedule) + 1]], "marginal error")
})

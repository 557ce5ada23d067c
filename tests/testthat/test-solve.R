# kernel_solve(): CG against solve() on dense kernel matrices.

dense_kernel <- function(x, y, kernel, sigma) {
  r <- sqrt(pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0))
  switch(kernel,
         gaussian = exp(-r^2 / (2 * sigma^2)),
         laplace = exp(-r / sigma),
         cauchy = 1 / (1 + r^2 / sigma^2),
         matern32 = (1 + sqrt(3) * r / sigma) * exp(-sqrt(3) * r / sigma),
         matern52 = (1 + sqrt(5) * r / sigma + 5 * r^2 / (3 * sigma^2)) * exp(-sqrt(5) * r / sigma),
         imq = 1 / sqrt(1 + r^2 / sigma^2))
}

set.seed(11)
x500 <- matrix(runif(1000), 500, 2)
b500 <- cbind(sin(4 * x500[, 1]), cos(3 * x500[, 2]), rnorm(500))

test_that("kernel_solve() matches solve() on a dense K at n = 500, several right-hand sides, with and without preconditioner", {
  K <- dense_kernel(x500, x500, "gaussian", 0.3)
  exact <- solve(K + 1e-3 * diag(500), b500)
  for (pc in c("nystrom", "none")) {
    sol <- kernel_solve("gaussian", x500, b500, lambda = 1e-3, sigma = 0.3, tol = 1e-10, precond = pc, max_iter = 3000)
    expect_true(sol$converged)
    expect_equal(dim(sol$coefficients), c(500L, 3L))
    expect_lt(max(abs(sol$coefficients - exact)) / max(abs(exact)), 1e-8)
    expect_true(all(sol$residual <= 1e-10))
  }
  # a vector b gives a vector
  sol <- kernel_solve("gaussian", x500, b500[, 1], lambda = 1e-3, sigma = 0.3, tol = 1e-10)
  expect_null(dim(sol$coefficients))
  expect_lt(max(abs(sol$coefficients - exact[, 1])) / max(abs(exact[, 1])), 1e-8)
})

test_that("the Nystrom preconditioner cuts the iterations; every kernel of the table solves its system", {
  with_p <- kernel_solve("gaussian", x500, b500, lambda = 1e-4, sigma = 0.3, tol = 1e-8, m = 100)
  without <- kernel_solve("gaussian", x500, b500, lambda = 1e-4, sigma = 0.3, tol = 1e-8, precond = "none", max_iter = 3000)
  expect_lt(with_p$iterations * 5, without$iterations)
  expect_equal(with_p$m, 100L)
  x <- x500[1:200, ]
  for (kn in c("laplace", "cauchy", "matern32", "matern52", "imq")) {
    K <- dense_kernel(x, x, kn, 0.4)
    sol <- kernel_solve(kn, x, b500[1:200, 1:2], lambda = 1e-2, sigma = 0.4, tol = 1e-10, m = 50)
    exact <- solve(K + 1e-2 * diag(200), b500[1:200, 1:2])
    expect_lt(max(abs(sol$coefficients - exact)) / max(abs(exact)), 1e-8, label = kn)
  }
})

test_that("a warm start at the solution takes no iteration, and a nearby one few", {
  sol <- kernel_solve("gaussian", x500, b500, lambda = 1e-3, sigma = 0.3, tol = 1e-10, precond = "none", max_iter = 3000)
  again <- kernel_solve("gaussian", x500, b500, lambda = 1e-3, sigma = 0.3, tol = 1e-8, x0 = sol$coefficients, precond = "none")
  expect_equal(again$iterations, 0L)
  near <- kernel_solve("gaussian", x500, b500, lambda = 1.1e-3, sigma = 0.3, tol = 1e-10, x0 = sol$coefficients,
                       precond = "none", max_iter = 3000)
  cold <- kernel_solve("gaussian", x500, b500, lambda = 1.1e-3, sigma = 0.3, tol = 1e-10, precond = "none", max_iter = 3000)
  expect_lt(near$iterations, cold$iterations)
  expect_length(near$residual_history, near$iterations + 1L)
})

test_that("a kernel operation can be the kernel (plain CG)", {
  op <- kernel_op("Sum_Reduction(Exp(-gam*SqDist(x,y))*b, 0)", c("x = Vi(2)", "y = Vj(2)", "b = Vj(2)", "gam = Pm(1)"))
  K <- exp(-5 * as.matrix(dist(x500[1:200, ]))^2)
  sol <- kernel_solve(op, x500[1:200, ], b500[1:200, 1:2], lambda = 0.1, gam = 5, tol = 1e-10)
  expect_equal(sol$precond, "none")
  expect_equal(sol$coefficients, unname(solve(K + 0.1 * diag(200), b500[1:200, 1:2])), tolerance = 1e-9)
  expect_error(kernel_solve(op, x500[1:200, ], b500[1:200, ], lambda = 0.1, gam = 5), class = "kernops_error_dimension")
  expect_error(kernel_solve(op, x500[1:200, ], b500[1:200, 1:2], lambda = 0.1, gam = 5, precond = "nystrom"),
               class = "kernops_error_unsupported")
})

test_that("kernel_solve() raises classed errors naming the argument at fault", {
  x <- x500[1:50, ]
  b <- b500[1:50, 1]
  expect_error(kernel_solve("gaussian", rbind(x, x[3, ]), c(b, 1), lambda = 0, sigma = 0.3),
               class = "kernops_error_input", regexp = "Point 51 .* singular")
  expect_silent(kernel_solve("gaussian", rbind(x, x[3, ]), c(b, 1), lambda = 0.1, sigma = 0.3))
  xna <- x; xna[4, 2] <- NA
  expect_error(kernel_solve("gaussian", xna, b, lambda = 0.1, sigma = 0.3), class = "kernops_error_input", regexp = "`x`")
  bna <- b; bna[7] <- NaN
  expect_error(kernel_solve("gaussian", x, bna, lambda = 0.1, sigma = 0.3), class = "kernops_error_input", regexp = "`b`.*row 7")
  expect_error(kernel_solve("gaussian", x, b[-1], lambda = 0.1, sigma = 0.3), class = "kernops_error_dimension", regexp = "`b`")
  expect_error(kernel_solve("gaussian", x, b, lambda = 0.1, sigma = 0), class = "kernops_error_input", regexp = "`sigma`")
  expect_error(kernel_solve("gaussian", x, b, lambda = 0.1, sigma = -1), class = "kernops_error_input", regexp = "`sigma`")
  expect_error(kernel_solve("gaussian", x, b, lambda = 0.1), class = "kernops_error_input", regexp = "`sigma`")
  expect_error(kernel_solve("gaussian", x, b, lambda = -1, sigma = 1), class = "kernops_error_input", regexp = "`lambda`")
  expect_error(kernel_solve("gaussian", x, b, lambda = "gcv", sigma = 1), class = "kernops_error_input", regexp = "`lambda`")
  expect_error(kernel_solve("gaussian", x, b, sigma = 1), class = "kernops_error_input", regexp = "`lambda`")
  expect_error(kernel_solve("epanechnikov", x, b, lambda = 1, sigma = 1), class = "kernops_error_input", regexp = "positive definite")
  expect_error(kernel_solve("gauss", x, b, lambda = 1, sigma = 1), class = "kernops_error_input", regexp = "`kernel`")
  expect_error(kernel_solve("gaussian", x, b, lambda = 1, sigma = 1, tol = 0), class = "kernops_error_input", regexp = "`tol`")
  expect_error(kernel_solve("gaussian", x, b, lambda = 1, sigma = 1, x0 = 1:3), class = "kernops_error_dimension", regexp = "`x0`")
  expect_error(kernel_solve("gaussian", x, b, lambda = 1, sigma = 1, foo = 2), class = "kernops_error_input", regexp = "foo")
})

test_that("non-convergence is a classed warning carrying the relative residual", {
  w <- NULL
  sol <- withCallingHandlers(
    kernel_solve("gaussian", x500, b500, lambda = 1e-6, sigma = 0.3, precond = "none", max_iter = 5),
    kernops_warning_convergence = function(cnd) { w <<- cnd; invokeRestart("muffleWarning") })
  expect_s3_class(w, "kernops_warning_convergence")
  expect_false(sol$converged)
  expect_equal(sol$iterations, 5L)
  expect_equal(w$residual, max(sol$residual))
  expect_gt(w$residual, 1e-6)
  expect_match(conditionMessage(w), "relative residual")
})

test_that("kernel_solve() reports progress through progressr, one step per iteration", {
  skip_if_not_installed("progressr")
  old <- options(progressr.enable = TRUE)
  on.exit(options(old))
  messages <- character()
  progressr::with_progress(
    sol <- withCallingHandlers(
      kernel_solve("gaussian", x500, b500, lambda = 1e-3, sigma = 0.3, precond = "none", tol = 1e-6),
      progression = function(cnd) if (identical(cnd$type, "update")) messages[[length(messages) + 1]] <<- cnd$message),
    handlers = progressr::handler_void())
  expect_length(messages, sol$iterations)
  expect_match(messages[1], "kernel_solve: iteration 1, relative residual")
})

test_that("float32 products converge with the (float64) Nystrom preconditioner", {
  # the preconditioner built from float32 reductions was not positive definite: CG stalled
  K <- dense_kernel(x500, x500, "gaussian", 0.25)
  sol <- kernel_solve("gaussian", x500, b500[, 1], lambda = 1e-2, sigma = 0.25, dtype = "float32")
  expect_true(sol$converged)
  expect_equal(sol$tol, 1e-5)
  expect_lt(sol$iterations, 20)
  exact <- solve(K + 1e-2 * diag(500), b500[, 1])
  expect_lt(max(abs(sol$coefficients - exact)) / max(abs(exact)), 1e-3)
})

test_that("float32 reaches a float64 tolerance by iterative refinement (true residuals in float64)", {
  K <- dense_kernel(x500, x500, "gaussian", 0.25)
  exact <- solve(K + 1e-2 * diag(500), b500[, 1])
  sol <- kernel_solve("gaussian", x500, b500[, 1], lambda = 1e-2, sigma = 0.25, dtype = "float32", tol = 1e-10)
  expect_true(sol$converged)
  expect_lt(max(sol$residual), 1e-10)
  expect_lt(max(abs(sol$coefficients - exact)) / max(abs(exact)), 1e-8)
})

test_that("the Eigen helpers of the solvers agree with base R's algebra", {
  set.seed(11)
  A <- matrix(rnorm(300 * 7), 300, 7)
  B <- matrix(rnorm(300 * 4), 300, 4)
  S <- crossprod(matrix(rnorm(49), 7, 7)) + diag(7)
  expect_equal(kernops:::cpp_crossprod(A, B), crossprod(A, B), tolerance = 1e-13)
  expect_equal(kernops:::cpp_crossprod(A, A), crossprod(A), tolerance = 1e-13)   # the rank-update path
  expect_equal(kernops:::cpp_matmul(A, S), A %*% S, tolerance = 1e-13)
  w <- runif(7)
  expect_equal(kernops:::cpp_lowrank_apply(A, w, B), B + A %*% (crossprod(A, B) * w), tolerance = 1e-13)
  L <- kernops:::cpp_chol_lower(S)$L
  expect_equal(L %*% t(L), S, tolerance = 1e-13)
  expect_equal(kernops:::cpp_chol_solve(L, B[1:7, ]), solve(S, B[1:7, ]), tolerance = 1e-12)
})

# Fast paths chosen by the planner (fused radial kernels, blocked high-dimensional
# distances): reported by print(), and equal to dense base-R references on every
# instruction set and in both precisions.

dense_sqdist <- function(x, y) pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)
exact_sqdist <- function(x, y) {
  out <- matrix(0, nrow(x), nrow(y))
  for (k in seq_len(ncol(x))) out <- out + outer(x[, k], y[, k], "-")^2
  out
}

test_that("print() lists the fast paths an operation takes", {
  decl <- function(d) c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), "b = Vj(2)", "s = Pm(1)")
  expect_output(print(kernel_op("Sum_Reduction(GaussKernel(s,x,y,b),0)", decl(3))),
                "fast paths: fused Gauss kernel \\(dimension 3\\)")
  expect_output(print(kernel_op("Sum_Reduction(Exp(-SqDist(x,y)/(s*s))*b,0)", decl(2))), "fused Gauss kernel")
  expect_output(print(kernel_op("Sum_Reduction(Matern52Kernel(s,x,y,b),1)", decl(3))), "fused Matern52 kernel")
  expect_output(print(kernel_op("ArgKMin_Reduction(SqDist(x,y),5,0)", decl(32))),
                "fast paths: blocked squared distances \\(dimension 32\\)")
  out <- capture.output(print(kernel_op("Sum_Reduction(Exp(-SqNorm2(x))*b,0)", decl(3))))
  expect_false(any(grepl("fast paths", out)))
})

for (isa in test_isas()) {
  test_that(sprintf("radial kernels through the fused path match dense R (isa %s)", isa), {
    set.seed(3)
    x <- matrix(rnorm(3 * 40), 40, 3); y <- matrix(rnorm(3 * 70), 70, 3); b <- matrix(rnorm(140), 70, 2)
    s <- 0.8
    r2 <- exact_sqdist(x, y)
    kernels <- list(
      GaussKernel = exp(-s * r2), LaplaceKernel = exp(-sqrt(s * r2)), CauchyKernel = 1 / (1 + s * r2),
      InverseMultiquadricKernel = 1 / sqrt(1 + s * r2),
      Matern32Kernel = (1 + sqrt(3 * s * r2)) * exp(-sqrt(3 * s * r2)),
      Matern52Kernel = (1 + sqrt(5 * s * r2) + 5 * s * r2 / 3) * exp(-sqrt(5 * s * r2)))
    for (name in names(kernels)) for (dtype in c("float64", "float32")) {
      op <- kernel_op(sprintf("Sum_Reduction(%s(s,x,y,b),0)", name),
                      c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"), dtype = dtype)
      got <- with_isa(isa, op(x, y, b, s))
      want <- kernels[[name]] %*% b
      tol <- if (dtype == "float64") 1e-12 else 2e-5
      expect_lte(max(abs(got - want)) / max(abs(want)), tol, label = paste(name, dtype))
    }
  })

  test_that(sprintf("high-dimensional kernels and neighbours through blocked distances match dense R (isa %s)", isa), {
    set.seed(4)
    D <- 24
    x <- matrix(rnorm(D * 37), 37, D); y <- matrix(rnorm(D * 301), 301, D); b <- matrix(rnorm(301), 301, 1)
    r2 <- exact_sqdist(x, y)
    for (dtype in c("float64", "float32")) {
      op <- kernel_op("Sum_Reduction(Exp(-s*SqDist(x,y))*b,0)",
                      c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D), "b = Vj(1)", "s = Pm(1)"), dtype = dtype)
      got <- with_isa(isa, op(x, y, b, 0.05))
      want <- exp(-0.05 * r2) %*% b
      tol <- if (dtype == "float64") 1e-12 else 2e-5
      expect_lte(max(abs(got - want)) / max(abs(want)), tol, label = dtype)
      knn <- kernel_op("ArgKMin_Reduction(SqDist(x,y),6,0)", c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D)),
                       dtype = dtype)
      idx <- with_isa(isa, knn(x, y))
      want_idx <- t(apply(r2, 1, function(v) order(v)[1:6]))
      expect_identical(unname(idx), want_idx)
    }
  })
}

test_that("blocked distances stay exact far from the origin (no |x|^2 + |y|^2 - 2<x,y> cancellation)", {
  set.seed(5)
  D <- 20
  x <- matrix(1000 + rnorm(D * 9, sd = 1e-3), 9, D); y <- matrix(1000 + rnorm(D * 50, sd = 1e-3), 50, D)
  op <- kernel_op("Sum_Reduction(SqDist(x,y),0)", c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D)))
  want <- rowSums(exact_sqdist(x, y))
  expect_lte(max(abs(op(x, y) - want)) / max(want), 1e-9)
  # the GEMM identity would have lost every digit here
  expect_gt(max(abs(rowSums(dense_sqdist(x, y)) - want)) / max(want), 1e-6)
})

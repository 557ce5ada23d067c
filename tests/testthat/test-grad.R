# Gradients of reductions (kernel_grad / kernel_value_and_grad) against closed forms and
# central finite differences.

num_grad <- function(f, x, h = 1e-6) {
  g <- x * 0
  for (k in seq_along(x)) {
    xp <- x; xp[k] <- xp[k] + h
    xm <- x; xm[k] <- xm[k] - h
    g[k] <- (f(xp) - f(xm)) / (2 * h)
  }
  g
}

expect_rel <- function(got, want, tol = 1e-6) {
  got <- unname(as.vector(got)); want <- unname(as.vector(want))
  expect_lte(max(abs(got - want)) / max(1, max(abs(want))), tol)
}

test_that("the seed's Hamiltonian and its gradients match the closed form (N = 1000)", {
  set.seed(42)
  N <- 1000; s <- 0.5
  q <- matrix(rnorm(3 * N), N, 3); p <- matrix(rnorm(3 * N), N, 3)
  H <- kernel_op("Sum_Reduction(Exp(-SqDist(qi,qj)/(s*s)) * (pi|pj), 0)",
                 c("qi = Vi(3)", "qj = Vj(3)", "pi = Vi(3)", "pj = Vj(3)", "s = Pm(1)"))
  vg <- kernel_value_and_grad(H, qi = q, qj = q, pi = p, pj = p, s = s, wrt = c("qi", "qj", "pi", "pj"))
  sq <- rowSums(q^2)
  K <- exp(-pmax(outer(sq, sq, "+") - 2 * tcrossprod(q), 0) / s^2)
  A <- K * tcrossprod(p)
  expect_rel(vg$value / 2, sum(A) / 2, 1e-12)
  dH_dp <- K %*% p                                   # dH/dp_i = sum_j K_ij p_j
  dH_dq <- -2 / s^2 * (rowSums(A) * q - A %*% q)     # dH/dq_i = sum_j dK_ij/dq_i <p_i,p_j>
  expect_rel((vg$gradient$pi + vg$gradient$pj) / 2, dH_dp, 1e-12)
  expect_rel((vg$gradient$qi + vg$gradient$qj) / 2, dH_dq, 1e-10)
  # by symmetry, one role carries the whole gradient
  expect_rel(vg$gradient$qi, dH_dq, 1e-10)
})

test_that("gradients of a Sum reduction w.r.t. i, j and parameter variables match finite differences", {
  set.seed(1)
  op <- kernel_op("Sum_Reduction(Exp(-g*SqDist(x,y)) * b + Sin(x) * Log(1 + Square(y)), 0)",
                  c("x = Vi(2)", "y = Vj(2)", "b = Vj(2)", "g = Pm(1)"))
  x <- matrix(rnorm(14), 7, 2); y <- matrix(rnorm(22), 11, 2); b <- matrix(rnorm(22), 11, 2); g <- 0.7
  e <- matrix(rnorm(14), 7, 2)
  gr <- kernel_grad(op, c("x", "y", "b", "g"))
  G <- gr(x, y, b, g, e)
  obj <- function(x, y, b, g) sum(e * op(x, y, b, g))
  expect_rel(G$x, num_grad(function(v) obj(v, y, b, g), x))
  expect_rel(G$y, num_grad(function(v) obj(x, v, b, g), y))
  expect_rel(G$b, num_grad(function(v) obj(x, y, v, g), b))
  expect_rel(G$g, num_grad(function(v) obj(x, y, b, v), g))
  expect_equal(dim(G$y), dim(y))
  expect_length(G$g, 1)
})

# Issue 16, item 1: a Sum part that is a bare product and also a factor of another part
# (Concat(E*X, X), X = a*b) was never computed; gradients with respect to several
# variables are such Concats, so d/dx came out wrong with wrt = c("x", "c").
test_that("a Sum of parts sharing a bare product, and gradients in several variables at once, are right", {
  set.seed(16)
  x <- matrix(runif(5), 5, 1); y <- matrix(runif(8), 8, 1)
  op <- kernel_op("Sum_Reduction(Concat(Exp(x-y)*(x*y), x*y), 0)", c("x = Vi(1)", "y = Vj(1)"))
  P <- outer(x[, 1], y[, 1])
  expect_equal(op(x, y), cbind(rowSums(exp(outer(x[, 1], y[, 1], "-")) * P), rowSums(P)), tolerance = 1e-13)

  cube <- kernel_op("Sum_Reduction(Pow((x|y)+c,3)*b, 0)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "c = Pm(1)"))
  X <- matrix(runif(12), 4, 3); Y <- matrix(runif(18), 6, 3); B <- matrix(runif(6), 6, 1); c0 <- 0.3
  e <- matrix(runif(4), 4, 1)
  obj <- function(X, c0) sum(e * cube(X, Y, B, c0))
  for (wrt in list(c("x", "c"), c("c", "x"))) {
    G <- kernel_grad(cube, wrt)(X, Y, B, c0, e)
    expect_rel(G$x, num_grad(function(v) obj(v, c0), X))
    expect_rel(G$c, num_grad(function(v) obj(X, v), c0))
  }
  vg <- kernel_value_and_grad(cube, X, Y, B, c0, wrt = c("x", "c"))
  expect_rel(vg$gradient$x, num_grad(function(v) sum(cube(v, Y, B, c0)), X))
})

test_that("Laplace and Matern gradients are finite where points coincide (y = x)", {
  set.seed(3)
  X <- matrix(runif(10), 5, 2); b <- runif(5); e <- matrix(rnorm(5), 5, 1)
  for (k in c("LaplaceKernel", "Matern32Kernel", "Matern52Kernel")) {
    op <- kernel_op(sprintf("Sum_Reduction(%s(s,x,y,b),0)", k), c("x = Vi(2)", "y = Vj(2)", "s = Pm(1)", "b = Vj(1)"))
    G <- kernel_grad(op, c("x", "y"))(X, X, 2, b, e)
    obj <- function(x, y) sum(e * op(x, y, 2, b))
    expect_true(all(is.finite(G$x)) && all(is.finite(G$y)), label = k)
    # central differences see the coincident pair's kink (Laplace) or flat top (Matern) as 0
    expect_rel(G$x, num_grad(function(v) obj(v, X), X))
    expect_rel(G$y, num_grad(function(v) obj(X, v), X))
  }
})

test_that("kernel_value_and_grad of a Sum computes value and gradients in one pass, equal to kernel_grad", {
  set.seed(11)
  # output dimension 2 (the direction of ones is SumT(1,2) in the fused formula), both sides,
  # a parameter, and an argument named like the default direction
  op <- kernel_op("Sum_Reduction(Exp(-g*SqDist(x,y)) * direction + Sin(x) * (x|y), 0)",
                  c("x = Vi(2)", "y = Vj(2)", "direction = Vj(2)", "g = Pm(1)"))
  x <- matrix(rnorm(14), 7, 2); y <- matrix(rnorm(22), 11, 2); b <- matrix(rnorm(22), 11, 2); g <- 0.7
  for (wrt in list(c("x", "y", "g", "direction"), "y", c("g", "x"))) {
    vg <- kernel_value_and_grad(op, x, y, b, g, wrt = wrt)
    G <- kernel_grad(op, wrt, direction = "e")(x, y, b, g, matrix(1, 7, 2))
    if (length(wrt) == 1) G <- stats::setNames(list(G), wrt)
    expect_equal(names(vg$gradient), wrt)
    expect_rel(vg$value, sum(op(x, y, b, g)), 1e-13)
    for (v in wrt) expect_rel(vg$gradient[[v]], G[[v]], 1e-13)
  }
  # arguments by name, in another order
  vg <- kernel_value_and_grad(op, g = g, y = y, direction = b, x = x, wrt = "y")
  expect_rel(vg$gradient$y, kernel_grad(op, "y", direction = "e")(x, y, b, g, matrix(1, 7, 2)), 1e-13)
})

test_that("gradients of an axis-1 reduction are indexed the other way round", {
  set.seed(2)
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x,y)) * a, 1)", c("x = Vi(2)", "y = Vj(2)", "a = Vi(1)"))
  x <- matrix(rnorm(10), 5, 2); y <- matrix(rnorm(16), 8, 2); a <- rnorm(5)
  e <- matrix(rnorm(8), 8, 1)
  G <- kernel_grad(op, c("x", "y"))(x, y, a, e)
  obj <- function(x, y) sum(e * op(x, y, a))
  expect_rel(G$x, num_grad(function(v) obj(v, y), x))
  expect_rel(G$y, num_grad(function(v) obj(x, v), y))
})

test_that("LogSumExp gradients (with and without weight) are stable and correct", {
  set.seed(3)
  x <- matrix(rnorm(12), 6, 2); y <- matrix(rnorm(18), 9, 2); w <- runif(9) + 0.1
  for (f in c("LogSumExp_Reduction(1000 - g*SqDist(x,y), 0)", "LogSumExp_Reduction(1000 - g*SqDist(x,y), 0, w)")) {
    op <- kernel_op(f, c("x = Vi(2)", "y = Vj(2)", "g = Pm(1)", "w = Vj(1)"))
    e <- matrix(rnorm(6), 6, 1)
    G <- kernel_grad(op, c("x", "y", "g", "w"))(x, y, 2, w, e)
    obj <- function(x, y, g, w) sum(e * op(x, y, g, w))
    expect_rel(G$x, num_grad(function(v) obj(v, y, 2, w), x), 1e-5)
    expect_rel(G$y, num_grad(function(v) obj(x, v, 2, w), y), 1e-5)
    expect_rel(G$g, num_grad(function(v) obj(x, y, v, w), 2), 1e-5)
    expect_true(all(is.finite(unlist(G))))
    if (grepl(", w)", f)) expect_rel(G$w, num_grad(function(v) obj(x, y, 2, v), w), 1e-5)
  }
})

test_that("SumSoftMaxWeight gradients match finite differences", {
  set.seed(4)
  op <- kernel_op("SumSoftMaxWeight_Reduction(-SqDist(x,y)*g, 1, v)",
                  c("x = Vi(2)", "y = Vj(2)", "g = Pm(1)", "v = Vi(3)"))
  x <- matrix(rnorm(20), 10, 2); y <- matrix(rnorm(30), 15, 2); v <- matrix(rnorm(30), 10, 3)
  e <- matrix(rnorm(45), 15, 3)
  G <- kernel_grad(op, c("x", "y", "v"))(x, y, 2, v, e)
  obj <- function(x, y, v) sum(e * op(x, y, 2, v))
  expect_rel(G$x, num_grad(function(a) obj(a, y, v), x))
  expect_rel(G$y, num_grad(function(a) obj(x, a, v), y))
  expect_rel(G$v, num_grad(function(a) obj(x, y, a), v))
})

test_that("Grad of Grad inside a formula gives Hessian-vector products", {
  set.seed(5)
  # d/dx <u, grad_x exp(-|x-y|^2)>: a Hessian-vector product, checked by differences
  hv <- kernel_op("Sum_Reduction(Grad(Grad(Exp(-SqDist(x,y)), x, e), x, u), 0)",
                  c("x = Vi(2)", "y = Vj(2)", "e = Vi(1)", "u = Vi(2)"))
  g1 <- kernel_op("Sum_Reduction(Grad(Exp(-SqDist(x,y)), x, e), 0)", c("x = Vi(2)", "y = Vj(2)", "e = Vi(1)"))
  x <- matrix(rnorm(8), 4, 2); y <- matrix(rnorm(10), 5, 2); e <- rep(1, 4); u <- matrix(rnorm(8), 4, 2)
  h <- 1e-6
  fd <- (g1(x + h * u, y, e) - g1(x - h * u, y, e)) / (2 * h)
  expect_rel(hv(x, y, e, u), fd, 1e-6)
})

test_that("bad gradient requests raise classed errors", {
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x,y)), 0)", c("x = Vi(2)", "y = Vj(2)"))
  expect_error(kernel_grad(op, "z"), class = "kernops_error_input")
  expect_error(kernel_grad(op, "x", direction = "y"), class = "kernops_error_input")
  expect_error(kernel_grad(op), "`wrt` is missing", class = "kernops_error_input")
  expect_error(kernel_value_and_grad(op, matrix(1, 2, 2), matrix(1, 2, 2)), "`wrt` is missing",
               class = "kernops_error_input")
  # a direction named like a function of the language, or not a name (it failed inside
  # the generated declaration)
  # a formula near the nesting limit compiles, but its derivative is deeper than allowed:
  # that is the gradient's limit, not a parse error in what the user wrote
  deep <- kernel_op(paste0("Sum_Reduction(", strrep("Exp(", 1990), "x-y", strrep(")", 1990), ",0)"),
                    c("x = Vi(1)", "y = Vj(1)"))
  expect_error(kernel_grad(deep, "x"), "gradient of this formula is nested", class = "kernops_error_unsupported")
  expect_error(kernel_value_and_grad(deep, 1, 2, wrt = "x"), class = "kernops_error_unsupported")
  for (bad in c("Exp", "Sum_Reduction", "d 1", "1d", ""))
    expect_error(kernel_grad(op, "x", direction = bad), "`direction` must be a variable name",
                 class = "kernops_error_input")
  # a direction named like the internal forward-result variable still works
  lse <- kernel_op("LogSumExp_Reduction(-SqDist(x,y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  xx <- matrix(rnorm(6), 3, 2)
  expect_equal(kernel_grad(lse, "x", direction = "forward_result")(xx, xx, rep(1, 3)),
               kernel_grad(lse, "x")(xx, xx, rep(1, 3)))
  expect_error(kernel_grad(function(x) x, "x"), class = "kernops_error_input")
  mn <- kernel_op("KMin_Reduction(SqDist(x,y), 2, 0)", c("x = Vi(2)", "y = Vj(2)"))
  expect_error(kernel_grad(mn, "x"), class = "kernops_error_unsupported")
  mn2 <- kernel_op("Min_Reduction(x-y, 0)", c("x = Vi(2)", "y = Vj(2)"))
  expect_error(kernel_grad(mn2, "x"), class = "kernops_error_unsupported")  # dimension 2
  expect_error(kernel_op("Sum_Reduction(Grad(Exp(-SqDist(x,y)), x, e), 0)",
                         c("x = Vi(2)", "y = Vj(2)", "e = Vi(3)")), class = "kernops_error_dimension")
  expect_error(kernel_op("Sum_Reduction(Grad(Exp(-SqDist(x,y)), x+y, e), 0)",
                         c("x = Vi(2)", "y = Vj(2)", "e = Vi(1)")), class = "kernops_error_parse")
  g <- kernel_grad(op, "x")
  x <- matrix(rnorm(4), 2, 2)
  expect_error(g(x, x, matrix(1, 2, 2)), class = "kernops_error_dimension")   # direction has 2 columns
  expect_error(g(x, x), class = "kernops_error_input")                         # direction missing
})

test_that("kernel_value_and_grad of a Min reduction takes a repeated wrt like kernel_grad", {
  op <- kernel_op("Min_Reduction(Square(x-y),0)", c("x = Vi(1)", "y = Vj(1)"))
  vg <- kernel_value_and_grad(op, c(0.1, 0.5), c(1, 2, 3), wrt = c("x", "x"))
  expect_identical(names(vg$gradient), "x")
  expect_equal(vg$gradient$x, matrix(2 * (c(0.1, 0.5) - 1), 2, 1))
})

test_that("Min and Max gradients: rows without a selected pair give 0, bad directions classed errors", {
  # row 1 is NaN for every j (Sqrt of negatives): its stand-in pair's gradient is NaN too,
  # and 0 * NaN reached the result
  op <- kernel_op("Min_Reduction(Sqrt(x-y), 0)", c("x = Vi(1)", "y = Vj(1)"))
  expect_equal(kernel_grad(op, "y")(c(-5, 3), c(1, 2), c(0, 1)), matrix(c(0, -0.5), 2, 1))
  expect_equal(kernel_grad(op, "x")(c(-5, 3), c(1, 2), c(1, 1)), matrix(c(0, 0.5), 2, 1))
  mn <- kernel_op("Min_Reduction(SqDist(x,y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  g <- kernel_grad(mn, "x")
  x <- matrix(rnorm(10), 5)
  y <- matrix(rnorm(8), 4)
  for (bad in list(matrix(1, 4, 1), 1, matrix(1, 7, 1), matrix(1, 5, 2)))
    expect_error(g(x, y, bad), "one row per row of the result \\(5\\)", class = "kernops_error_dimension")
  expect_error(g(x, y, NULL), class = "kernops_error_input")
  expect_error(g(x, y, "a"), class = "kernops_error_input")
  expect_equal(dim(g(x, y, rep(1, 5))), c(5L, 2L))  # a vector is one column
})

test_that("Min and Max gradients flow through the selected pair (both axes, all kinds of variables)", {
  set.seed(6)
  x <- matrix(rnorm(16), 8, 2); y <- matrix(rnorm(22), 11, 2); w <- runif(11) + 0.5
  for (f in c("Min_Reduction(g*SqDist(x,y)*w, 0)", "Max_Reduction(Exp(-g*SqDist(x,y))*w, 1)")) {
    op <- kernel_op(f, c("x = Vi(2)", "y = Vj(2)", "g = Pm(1)", "w = Vj(1)"))
    e <- matrix(rnorm(nrow(op(x, y, 0.7, w))), ncol = 1)
    G <- kernel_grad(op, c("x", "y", "g", "w"))(x, y, 0.7, w, e)
    obj <- function(x, y, g, w) sum(e * op(x, y, g, w))
    expect_rel(G$x, num_grad(function(v) obj(v, y, 0.7, w), x))
    expect_rel(G$y, num_grad(function(v) obj(x, v, 0.7, w), y))
    expect_rel(G$g, num_grad(function(v) obj(x, y, v, w), 0.7))
    expect_rel(G$w, num_grad(function(v) obj(x, y, 0.7, v), w))
  }
})

test_that("kernel_value_and_grad() never takes an argument of the operation for `op`", {
  # kernel_value_and_grad(op, o = ...) matched `o` to `op` (partial matching), and the
  # operation went to `...`
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x, o)) * b, 0)", c("x = Vi(2)", "o = Vj(2)", "b = Vj(1)"))
  set.seed(3)
  x <- matrix(rnorm(10), 5, 2)
  o <- matrix(rnorm(8), 4, 2)
  b <- matrix(rnorm(4), 4, 1)
  want <- kernel_value_and_grad(op, x, o, b, wrt = c("x", "o"))
  expect_identical(kernel_value_and_grad(op, o = o, x = x, b = b, wrt = c("x", "o")), want)
  expect_identical(kernel_value_and_grad(o = o, op, x = x, b = b, wrt = c("x", "o")), want)
  expect_identical(kernel_value_and_grad(op = op, x, o, b, wrt = c("x", "o")), want)
  expect_equal(want$value, sum(op(x, o, b)))
  e <- expect_error(kernel_value_and_grad(x = x, o = o, b = b, wrt = "x"), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Argument `op` is missing")
})

test_that("arguments R cannot match are input errors, for gradient operations too", {
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)"))
  lop <- kernel_op("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  x <- matrix(1:10 / 10, 5, 2)
  y <- matrix(1:8 / 8, 4, 2)
  b <- matrix(1, 4, 1)
  gop <- kernel_grad(op, "x")
  e <- expect_error(gop(x, y, b, matrix(1, 5, 1), 7), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Unused argument `7`: .*`x`, `y`, `b`, `direction`")
  e <- expect_error(kernel_value_and_grad(op, x, y, b, wrt = "x", z = 2), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Unused argument `z = 2`")
  expect_identical(deparse(conditionCall(e)), 'kernel_value_and_grad(op, x, y, b, wrt = "x", z = 2)')
  e <- expect_error(kernel_value_and_grad(lop, x, y, 3, wrt = "x"), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Unused argument `3`")
  expect_identical(deparse(conditionCall(e)), 'kernel_value_and_grad(lop, x, y, 3, wrt = "x")')
})

test_that("LogSumExp and SoftMax gradients of a non-finite result say so, naming no internal argument", {
  # the forward result held fixed was reported as bad data in `forward_result`
  lop <- kernel_op("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  sop <- kernel_op("SumSoftMaxWeight_Reduction(-SqDist(x, y), 0, b)", c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)"))
  x <- matrix(1:10 / 10, 5, 2)
  x[2, 1] <- 1e300  # SqDist overflows: the LogSumExp of row 2 is -Inf
  y <- matrix(1:8 / 8, 4, 2)
  b <- matrix(1:4, 4, 1)
  for (e in list(expect_error(kernel_grad(lop, "x")(x, y, matrix(1, 5, 1)), class = "kernops_error_input"),
                 expect_error(kernel_value_and_grad(lop, x, y, wrt = "y"), class = "kernops_error_input"),
                 expect_error(kernel_grad(sop, "y")(x, y, b, matrix(1, 5, 1)), class = "kernops_error_input"))) {
    expect_match(conditionMessage(e), "gradient of this (LogSumExp|SumSoftMaxWeight) reduction is not defined")
    expect_match(conditionMessage(e), "-Inf in row 2 of the result")
    expect_no_match(conditionMessage(e), "forward")
  }
  # a weight of 0 everywhere in a row
  wop <- kernel_op("LogSumExp_Reduction(-SqDist(x, y), 0, w)", c("x = Vi(2)", "y = Vj(2)", "w = Vi(1)"))
  e <- expect_error(kernel_grad(wop, "x")(x * 0, y, c(1, 0, 1, 0, 1), matrix(1, 5, 1)), class = "kernops_error_input")
  expect_match(conditionMessage(e), "row 2 of the result \\(and 1 other row\\).*or the weights are all 0")
})

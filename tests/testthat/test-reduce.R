# test-reduce.R -- every reduction, on both axes and in both dtypes, against the dense
# base-R oracle; edge sizes (N = 1, M = 1); results larger than one tile; the j range
# split across threads (small N, large M) with partial states merged.

make_red_data <- function(N = 9, M = 14) {
  set.seed(7)
  list(
    x = runif_mat(N, 3, -1, 1), y = runif_mat(M, 3, -1, 1),
    a = runif_mat(N, 1, 0.5, 1.5), b = runif_mat(M, 1, 0.5, 1.5),
    u = runif_mat(M, 3, -1, 1), s = 1.5
  )
}
red_data <- make_red_data()
red_args <- c("x = Vi(3)", "y = Vj(3)", "a = Vi(1)", "b = Vj(1)", "u = Vj(3)", "s = Pm(1)")
red_decl <- function(vars) {
  all <- c(x = "x = Vi(3)", y = "y = Vj(3)", a = "a = Vi(1)", b = "b = Vj(1)",
           u = "u = Vj(3)", s = "s = Pm(1)")
  unname(all[vars])
}

# F of dimension 3 and of dimension 1, both depending on i and j.
F3 <- list(formula = "(x - y) * b + a * u", vars = c("x", "y", "a", "b", "u"),
           ref = function(i, j, d) (d$x[i, ] - d$y[j, ]) * d$b[j, ] + d$a[i, ] * d$u[j, ])
F1 <- list(formula = "s * SqDist(x, y) - a * b", vars = c("x", "y", "a", "b", "s"),
           ref = function(i, j, d) d$s * sum((d$x[i, ] - d$y[j, ])^2) - d$a[i, ] * d$b[j, ])

simple_reductions <- c("Sum", "Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax",
                       "LogSumExp")
k_reductions <- c("KMin", "ArgKMin", "KMin_ArgKMin")

for (isa in test_isas()) for (dtype in c("float64", "float32")) {
  for (axis in 0:1) {
    test_that(sprintf("Sum/Min/Max/ArgMin/ArgMax/Min_ArgMin/Max_ArgMax/LogSumExp match the oracle (%s, axis %d, isa %s)",
                      dtype, axis, isa), {
      old_isa <- options(kernops.cpu_isa = isa)
      on.exit(options(old_isa), add = TRUE)
      for (Fx in list(F1, F3)) {
        for (red in simple_reductions) {
          check_reduction(red, Fx$formula, red_decl(Fx$vars), red_data[Fx$vars], Fx$ref,
                          axis = axis, dtype = dtype)
        }
      }
    })

    test_that(sprintf("KMin/ArgKMin/KMin_ArgKMin match the oracle, sorted, K-major like KeOps (%s, axis %d, isa %s)",
                      dtype, axis, isa), {
      old_isa <- options(kernops.cpu_isa = isa)
      on.exit(options(old_isa), add = TRUE)
      for (Fx in list(F1, F3)) {
        for (red in k_reductions) {
          for (K in c(1, 3)) {
            check_reduction(red, Fx$formula, red_decl(Fx$vars), red_data[Fx$vars], Fx$ref,
                            axis = axis, dtype = dtype, K = K)
          }
        }
      }
      # K equal to the number of points reduced over: a full sort.
      Kfull <- if (axis == 0) nrow(red_data$y) else nrow(red_data$x)
      check_reduction("KMin_ArgKMin", F1$formula, red_decl(F1$vars), red_data[F1$vars], F1$ref,
                      axis = axis, dtype = dtype, K = Kfull)
    })

    test_that(sprintf("weighted LogSumExp is log sum exp(F) W (%s, axis %d, isa %s)", dtype, axis, isa), {
      old_isa <- options(kernops.cpu_isa = isa)
      on.exit(options(old_isa), add = TRUE)
      check_reduction("LogSumExp", F1$formula, red_decl(c(F1$vars, "u")), red_data[c(F1$vars, "u")],
                      F1$ref, axis = axis, dtype = dtype, G = "a * b + Square(x - u)",
                      gref = function(i, j, d) d$a[i, ] * d$b[j, ] + (d$x[i, ] - d$u[j, ])^2)
      check_reduction("LogSumExp", F1$formula, red_decl(F1$vars), red_data[F1$vars],
                      F1$ref, axis = axis, dtype = dtype, G = "a * b",
                      gref = function(i, j, d) d$a[i, ] * d$b[j, ])
    })

    test_that(sprintf("SumSoftMaxWeight is sum exp(F) V / sum exp(F) (%s, axis %d, isa %s)", dtype, axis, isa), {
      old_isa <- options(kernops.cpu_isa = isa)
      on.exit(options(old_isa), add = TRUE)
      check_reduction("SumSoftMaxWeight", F1$formula, red_decl(c(F1$vars, "u")),
                      red_data[c(F1$vars, "u")], F1$ref, axis = axis, dtype = dtype,
                      G = "x - u", gref = function(i, j, d) d$x[i, ] - d$u[j, ])
      check_reduction("SumSoftMaxWeight", F1$formula, red_decl(F1$vars), red_data[F1$vars],
                      F1$ref, axis = axis, dtype = dtype, G = "a * b",
                      gref = function(i, j, d) d$a[i, ] * d$b[j, ])
    })
  }
}

test_that("LogSumExp and SumSoftMaxWeight are stabilised against overflow and underflow", {
  vars <- c("x", "y", "a", "b", "u")
  args <- red_decl(vars)
  data <- red_data[vars]
  for (dtype in c("float64", "float32")) {
    for (axis in 0:1) {
      # exp(1000) overflows a double, exp(-1000) underflows to 0.
      check_reduction("LogSumExp", "1000 + (x | y)", args, data,
                      function(i, j, d) 1000 + sum(d$x[i, ] * d$y[j, ]), axis = axis, dtype = dtype)
      check_reduction("LogSumExp", "-1000 - (x | y)", args, data,
                      function(i, j, d) -1000 - sum(d$x[i, ] * d$y[j, ]), axis = axis, dtype = dtype)
      check_reduction("LogSumExp", "1000 + 50 * (x | y)", args, data,
                      function(i, j, d) 1000 + 50 * sum(d$x[i, ] * d$y[j, ]), axis = axis,
                      dtype = dtype, G = "a * b", gref = function(i, j, d) d$a[i, ] * d$b[j, ])
      check_reduction("SumSoftMaxWeight", "800 * (x | y)", args, data,
                      function(i, j, d) 800 * sum(d$x[i, ] * d$y[j, ]), axis = axis,
                      dtype = dtype, G = "u * a", gref = function(i, j, d) d$u[j, ] * d$a[i, ])
    }
  }
  op <- kernel_op("LogSumExp_Reduction(1000 + (x | y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  res <- op(red_data$x, red_data$y)
  expect_true(all(is.finite(res)))
  expect_true(all(res > 1000))
})

test_that("argmin/argmax indices are 1-based integers and ties go to the first index", {
  # Integer-valued data: many exactly equal values of F.
  set.seed(3)
  x <- matrix(sample(0:2, 8 * 2, TRUE), 8, 2)
  y <- matrix(sample(0:2, 15 * 2, TRUE), 15, 2)
  data <- list(x = x, y = y)
  args <- c("x = Vi(2)", "y = Vj(2)")
  ref1 <- function(i, j, d) sum((d$x[i, ] - d$y[j, ])^2)
  ref2 <- function(i, j, d) abs(d$x[i, ] - d$y[j, ])
  for (dtype in c("float64", "float32")) {
    for (axis in 0:1) {
      for (red in c("ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax")) {
        check_reduction(red, "SqDist(x, y)", args, data, ref1, axis = axis, dtype = dtype)
        check_reduction(red, "Abs(x - y)", args, data, ref2, axis = axis, dtype = dtype)
      }
      for (red in c("ArgKMin", "KMin_ArgKMin")) {
        check_reduction(red, "SqDist(x, y)", args, data, ref1, axis = axis, dtype = dtype, K = 4)
        check_reduction(red, "Abs(x - y)", args, data, ref2, axis = axis, dtype = dtype, K = 3)
      }
    }
  }
  op <- kernel_op("ArgMin_Reduction(SqDist(x, y), 0)", args)
  idx <- op(x, y)
  expect_type(idx, "integer")
  expect_identical(dim(idx), c(8L, 1L))
  expect_true(all(idx >= 1L & idx <= 15L))
  # Every value equal: index 1.
  op_const <- kernel_op("ArgMin_Reduction(Abs(x - x) + (y - y), 0)", args)
  expect_identical(op_const(x, y), matrix(1L, 8, 2))
  op_kc <- kernel_op("ArgKMin_Reduction(SqDist(x, x) + SqDist(y, y), 3, 0)", args)
  expect_identical(op_kc(x, y), matrix(rep(1:3, each = 8), 8, 3))
})

test_that("N = 1, M = 1 and N = M = 1 work for every reduction", {
  set.seed(11)
  vars <- c("x", "y", "a", "b", "u")
  for (NM in list(c(1, 12), c(12, 1), c(1, 1))) {
    data <- make_red_data(NM[1], NM[2])[vars]
    args <- red_decl(vars)
    for (axis in 0:1) {
      for (red in simple_reductions)
        check_reduction(red, F3$formula, args, data, F3$ref, axis = axis)
      for (red in k_reductions)
        check_reduction(red, F3$formula, args, data, F3$ref, axis = axis, K = 1)
      check_reduction("SumSoftMaxWeight", "-SqDist(x, y)", args, data,
                      function(i, j, d) -sum((d$x[i, ] - d$y[j, ])^2), axis = axis,
                      G = "u * a", gref = function(i, j, d) d$u[j, ] * d$a[i, ])
    }
  }
})

test_that("a formula of j only, of i only, or constant, is reduced over the other index", {
  set.seed(5)
  x <- runif_mat(6, 1, 0.5, 1.5)
  b <- runif_mat(10, 2, -1, 1)
  opj <- kernel_op("Sum_Reduction(b, 0)", c("x = Vi(1)", "b = Vj(2)"))
  expect_close(opj(x, b), matrix(colSums(b), 6, 2, byrow = TRUE))
  opi <- kernel_op("Sum_Reduction(Exp(x), 0)", c("x = Vi(1)", "b = Vj(2)"))
  expect_close(opi(x, b), matrix(10 * exp(x), 6, 1))
  opi1 <- kernel_op("Sum_Reduction(Exp(x), 1)", c("x = Vi(1)", "b = Vj(2)"))
  expect_close(opi1(x, b), matrix(sum(exp(x)), 10, 1))
  opc <- kernel_op("Sum_Reduction(IntCst(2), 0)", c("x = Vi(1)", "b = Vj(2)"))
  expect_close(opc(x, b), matrix(20, 6, 1))
  # min and argmin of a j-only formula do not depend on i
  opm <- kernel_op("Min_ArgMin_Reduction(Elem(b, 0), 0)", c("x = Vi(1)", "b = Vj(2)"))
  res <- opm(x, b)
  expect_close(res$values, matrix(min(b[, 1]), 6, 1))
  expect_identical(res$indices, matrix(which.min(b[, 1]), 6, 1))
  # argmin of an i-only formula: every j ties, index 1
  opa <- kernel_op("ArgMin_Reduction(x, 0)", c("x = Vi(1)", "b = Vj(2)"))
  expect_identical(opa(x, b), matrix(1L, 6, 1))
  opk <- kernel_op("KMin_ArgKMin_Reduction(Elem(b, 1), 2, 0)", c("x = Vi(1)", "b = Vj(2)"))
  res <- opk(x, b)
  o <- order(b[, 2])[1:2]
  expect_close(res$values, matrix(b[o, 2], 6, 2, byrow = TRUE))
  expect_identical(res$indices, matrix(o, 6, 2, byrow = TRUE))
  # LogSumExp of a j-only formula
  opl <- kernel_op("LogSumExp_Reduction(Elem(b, 0), 0)", c("x = Vi(1)", "b = Vj(2)"))
  expect_close(opl(x, b), matrix(log(sum(exp(b[, 1]))), 6, 1))
})

# ---- larger than one tile, vectorised references --------------------------------------

sqdist_matrix <- function(x, y) {
  D <- 0
  for (k in seq_len(ncol(x))) D <- D + outer(x[, k], y[, k], "-")^2
  D
}

with_threads <- function(n, expr) {
  old <- options(kernops.threads = n)
  on.exit(options(old))
  force(expr)
}

test_that("a result larger than one tile matches dense R, with 1 and 2 threads", {
  set.seed(21)
  N <- 1500
  M <- 1200
  x <- runif_mat(N, 3)
  y <- runif_mat(M, 3)
  b <- runif_mat(M, 2, -1, 1)
  args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)")
  D <- sqdist_matrix(x, y)
  K <- exp(-4 * D)
  op <- kernel_op("Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0)", args)
  r1 <- with_threads(1, op(x, y, b, 4))
  r2 <- with_threads(2, op(x, y, b, 4))
  expect_close(r1, K %*% b, scale = max(abs(K) %*% abs(b)))
  expect_close(r2, r1, tol = 1e-12)
  # axis 1: indexed by j, summed over i (b is then weighted by the i side)
  a <- runif_mat(N, 1, 0.5, 1.5)
  op1 <- kernel_op("Sum_Reduction(Exp(-s * SqDist(x, y)) * a, 1)",
                   c("x = Vi(3)", "y = Vj(3)", "a = Vi(1)", "s = Pm(1)"))
  r1 <- with_threads(1, op1(x, y, a, 4))
  r2 <- with_threads(2, op1(x, y, a, 4))
  expect_close(r1, crossprod(K, a))
  expect_close(r2, r1, tol = 1e-12)
  # nearest neighbours
  opm <- kernel_op("Min_ArgMin_Reduction(SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  m1 <- with_threads(1, opm(x, y))
  m2 <- with_threads(2, opm(x, y))
  expect_close(m1$values, matrix(apply(D, 1, min), N, 1))
  expect_identical(m1$indices, matrix(apply(D, 1, which.min), N, 1))
  expect_identical(m2, m1)
  opk <- kernel_op("KMin_ArgKMin_Reduction(SqDist(x, y), 3, 1)", c("x = Vi(3)", "y = Vj(3)"))
  k2 <- with_threads(2, opk(x, y))
  ord <- apply(D, 2, function(v) order(v)[1:3])
  expect_identical(k2$indices, t(ord))
  expect_close(k2$values, t(vapply(seq_len(M), function(j) D[ord[, j], j], numeric(3))))
  # float32 on the same data
  r32 <- with_threads(2, kernel_op("Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0)", args,
                                   dtype = "float32")(x, y, b, 4))
  expect_close(r32, K %*% b, "float32", scale = max(abs(K) %*% abs(b)))
})

test_that("small N with large M: the j range split across threads merges correctly", {
  set.seed(33)
  N <- 2
  M <- 20000
  x <- runif_mat(N, 2)
  y <- runif_mat(M, 2)
  b <- runif_mat(M, 1, 0.5, 1.5)
  args <- c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
  D <- sqdist_matrix(x, y)  # N x M
  F <- -10 * D + 5  # LogSumExp argument
  checks <- function(threads, axis) {
    # axis 1 swaps the roles: the 2 points are the Vj argument, the 20000 the Vi one.
    if (axis == 0) {
      run <- function(op) with_threads(threads, op(x, y, b))
      decl <- args
    } else {
      run <- function(op) with_threads(threads, op(y, x, b))
      decl <- c("y = Vi(2)", "x = Vj(2)", "b = Vi(1)")
    }
    mk <- function(s) kernel_op(sprintf(s, axis), decl)
    s <- run(mk("Sum_Reduction(Exp(-10 * SqDist(x, y)) * b, %d)"))
    expect_close(s, exp(-10 * D) %*% b)
    ma <- run(mk("Min_ArgMin_Reduction(SqDist(x, y), %d)"))
    expect_close(ma$values, matrix(apply(D, 1, min), N, 1))
    expect_identical(ma$indices, matrix(apply(D, 1, which.min), N, 1))
    mx <- run(mk("Max_ArgMax_Reduction(SqDist(x, y), %d)"))
    expect_identical(mx$indices, matrix(apply(D, 1, which.max), N, 1))
    km <- run(kernel_op(sprintf("KMin_ArgKMin_Reduction(SqDist(x, y), 5, %d)", axis), decl))
    ord <- t(apply(D, 1, function(v) order(v)[1:5]))
    expect_identical(km$indices, ord)
    expect_close(km$values, t(vapply(1:N, function(i) D[i, ord[i, ]], numeric(5))))
    l <- run(mk("LogSumExp_Reduction(-10 * SqDist(x, y) + 5, %d)"))
    expect_close(l, matrix(apply(F, 1, lse), N, 1))
    lw <- run(mk("LogSumExp_Reduction(-10 * SqDist(x, y) + 5, %d, b)"))
    expect_close(lw, matrix(apply(F, 1, function(v) max(v) + log(sum(exp(v - max(v)) * b))), N, 1))
    sm <- run(mk("SumSoftMaxWeight_Reduction(-10 * SqDist(x, y), %d, b)"))
    E <- exp(-10 * D)
    expect_close(sm, (E %*% b) / rowSums(E))
    list(s, ma, km, l, lw, sm)
  }
  for (isa in test_isas()) for (axis in 0:1) {
    old_isa <- options(kernops.cpu_isa = isa)
    r1 <- checks(1, axis)
    r2 <- checks(2, axis)
    options(old_isa)
    for (k in seq_along(r1)) {
      if (is.list(r1[[k]])) {
        expect_close(r2[[k]]$values, r1[[k]]$values, tol = 1e-12)
        expect_identical(r2[[k]]$indices, r1[[k]]$indices)
      } else {
        expect_close(r2[[k]], r1[[k]], tol = 1e-12)
      }
    }
  }
})

test_that("ties across a split j range keep the first index", {
  # Values from a small set: every partial state of the split sees the same minimum.
  set.seed(34)
  N <- 2
  M <- 20000
  x <- matrix(c(0, 1), N, 1)
  y <- matrix(sample(0:3, M, TRUE), M, 1)
  D <- outer(x[, 1], y[, 1], "-")^2
  args <- c("x = Vi(1)", "y = Vj(1)")
  for (threads in 1:2) {
    ma <- with_threads(threads, kernel_op("Min_ArgMin_Reduction(SqDist(x, y), 0)", args)(x, y))
    expect_identical(ma$indices, matrix(apply(D, 1, which.min), N, 1))
    mx <- with_threads(threads, kernel_op("ArgMax_Reduction(SqDist(x, y), 0)", args)(x, y))
    expect_identical(mx, matrix(apply(D, 1, which.max), N, 1))
    km <- with_threads(threads, kernel_op("ArgKMin_Reduction(SqDist(x, y), 4, 0)", args)(x, y))
    expect_identical(km, t(apply(D, 1, function(v) order(v, seq_along(v))[1:4])))
  }
})

test_that("the number of threads does not change a float32 result beyond rounding", {
  set.seed(35)
  x <- runif_mat(3, 3)
  y <- runif_mat(30000, 3)
  b <- runif_mat(30000, 1, 0.5, 1.5)
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
                  c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"), dtype = "float32")
  r1 <- with_threads(1, op(x, y, b))
  r2 <- with_threads(2, op(x, y, b))
  expect_close(r2, r1, "float32")
  expect_close(r1, exp(-sqdist_matrix(x, y)) %*% b, "float32")
})

test_that("a NaN value of F makes LogSumExp and SumSoftMaxWeight NaN wherever it occurs", {
  # Log(x - y) is NaN where y > x. Sum propagates NaN; so must the stabilised reductions,
  # whether the NaNs fill whole runs of j (here the first 1024 points) or are interleaved.
  a <- c("x = Vi(1)", "y = Vj(1)")
  x <- matrix(1, 1, 1)
  y_block <- matrix(c(rep(2, 1024), rep(0.5, 976)), ncol = 1)
  y_mixed <- matrix(rep(c(2, 0.5), 1000), ncol = 1)
  ops <- list(
    sum = kernel_op("Sum_Reduction(Log(x - y), 0)", a),
    lse = kernel_op("LogSumExp_Reduction(Log(x - y), 0)", a),
    lse_w = kernel_op("LogSumExp_Reduction(Log(x - y), 0, y)", a),
    softmax = kernel_op("SumSoftMaxWeight_Reduction(Log(x - y), 0, y)", a)
  )
  for (nm in names(ops)) {
    ys <- list(block = y_block, mixed = y_mixed)
    for (where in names(ys)) {
      expect_true(is.nan(ops[[nm]](x, ys[[where]])[1, 1]), label = paste(nm, "with NaNs", where))
    }
  }
})

test_that("every instruction set gives the same large results to 1e-12", {
  set.seed(36)
  x <- runif_mat(700, 3)
  y <- runif_mat(900, 3)
  b <- runif_mat(900, 2, -1, 1)
  args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)")
  ops <- list(
    kernel_op("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", args),
    kernel_op("LogSumExp_Reduction(-5 * SqDist(x, y), 1, Exp(b))", args),
    kernel_op("SumSoftMaxWeight_Reduction(-5 * SqDist(x, y), 0, b)", args),
    kernel_op("Sum_Reduction(Matern52Kernel(IntCst(2), x, y, b), 1)", args)
  )
  base <- lapply(ops, function(op) with_isa("sse2", op(x, y, b)))
  for (isa in test_isas()) {
    for (k in seq_along(ops)) {
      expect_close(with_isa(isa, ops[[k]](x, y, b)), base[[k]], tol = 1e-12)
    }
  }
  # nearest neighbours are the same on every instruction set (no near-ties in this data)
  nn <- kernel_op("ArgKMin_Reduction(SqDist(x, y), 3, 0)", args[1:2])
  nn_base <- with_isa("sse2", nn(x, y))
  for (isa in test_isas()) expect_identical(with_isa(isa, nn(x, y)), nn_base)
})

test_that("odd thread counts and more threads than cores give the same results", {
  set.seed(37)
  x <- runif_mat(5, 2)
  y <- runif_mat(40001, 2)
  b <- runif_mat(40001, 1)
  a <- c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
  ops <- list(kernel_op("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", a),
              kernel_op("Min_ArgMin_Reduction(SqDist(x, y) + b, 0)", a),
              kernel_op("KMin_ArgKMin_Reduction(SqDist(x, y) + b, 4, 0)", a),
              kernel_op("LogSumExp_Reduction(-30 * SqDist(x, y), 0, b)", a))
  ref <- with_threads(1, lapply(ops, function(op) op(x, y, b)))
  for (th in c(3, 7, 16)) {
    res <- with_threads(th, lapply(ops, function(op) op(x, y, b)))
    expect_equal(res, ref, tolerance = 1e-12, label = paste(th, "threads"))
  }
})

# ---- scale independence (issue 17; Note [Subnormals] in src/core/fp_env.h) -------------

test_that("extreme kernel scales match dense R, and R's floating-point state is left as it was", {
  set.seed(3)
  y <- runif_mat(300, 3)
  x <- y[seq(1, 300, by = 3), ]  # each x_i is a y_j: every row has a normal term, exp(0)
  b <- runif_mat(300, 1, 0.5, 1.5)
  # squared distances in the difference form (the expanded form's cancellation, ~1e-16,
  # times s = 20000 would be the error of the reference, not of the engine)
  d2 <- Reduce(`+`, lapply(1:3, function(k) outer(x[, k], y[, k], "-")^2))
  gauss <- kernel_op("Sum_Reduction(Exp(-s*SqDist(x,y))*b, 0)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
  gauss32 <- kernel_op("Sum_Reduction(Exp(-s*SqDist(x,y))*b, 0)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"),
                       dtype = "float32")
  lse <- kernel_op("LogSumExp_Reduction(-s*SqDist(x,y), 0)", c("x = Vi(3)", "y = Vj(3)", "s = Pm(1)"))
  lse32 <- kernel_op("LogSumExp_Reduction(-s*SqDist(x,y), 0)", c("x = Vi(3)", "y = Vj(3)", "s = Pm(1)"),
                     dtype = "float32")
  dense_lse <- function(s) apply(-s * d2, 1, function(v) max(v) + log(sum(exp(v - max(v)))))
  before <- kernops:::.fp_control()
  for (s in c(4000, 20000)) {  # most terms below 2.2e-308
    expect_equal(gauss(x, y, b, s), exp(-s * d2) %*% b, tolerance = 1e-12)
    expect_equal(lse(x, y, s), matrix(dense_lse(s)), tolerance = 1e-12)
  }
  for (s in c(150, 1000)) {  # most terms below 1.2e-38
    expect_equal(gauss32(x, y, b, s), exp(-s * d2) %*% b, tolerance = 1e-5)
    expect_equal(lse32(x, y, s), matrix(dense_lse(s)), tolerance = 1e-5)
  }
  expect_identical(kernops:::.fp_control(), before)
  # ... also when the call fails or is interrupted
  expect_error(gauss(x, y, b, NA_real_), class = "kernops_error")
  expect_identical(kernops:::.fp_control(), before)
  old <- options(kernops.debug_interrupt_after = 0)
  on.exit(options(old), add = TRUE)
  expect_s3_class(tryCatch(gauss(x, y, b, 4000), condition = function(c) c), "kernops_error_interrupt")
  expect_identical(kernops:::.fp_control(), before)
})

# ---- the rules documented in ?kernel_op ("NaN and Inf", "Differences from KeOps") ------

test_that("the NaN, Inf and KeOps-difference examples of ?kernel_op hold", {
  x <- matrix(c(0, 1, 3), 3, 1)
  b <- matrix(1, 3, 1)
  decl <- c("x = Vi(1)", "y = Vj(1)", "b = Vj(1)")
  # Rsqrt(0) = Inf; the explicit IfElse drops the i = j term as KeOps' Rsqrt(0) = 0 does
  expect_identical(kernel_op("Sum_Reduction(Rsqrt(SqDist(x,y))*b, 0)", decl)(x, x, b), matrix(Inf, 3, 1))
  D <- abs(outer(x[, 1], x[, 1], "-"))
  expect_equal(kernel_op("Sum_Reduction(IfElse(-SqDist(x,y), 0, Rsqrt(SqDist(x,y)))*b, 0)", decl)(x, x, b),
               matrix(rowSums(ifelse(D == 0, 0, 1 / D))), tolerance = 1e-14)
  # f - f is evaluated: NaN where f is infinite
  expect_true(all(is.nan(kernel_op("Sum_Reduction(Inv(x-y) - Inv(x-y), 0)", decl[1:2])(x, x))))
  # Min/ArgMin skip NaN; an all-NaN row gives NaN / NA; K-min pads with NaN / NA
  L <- suppressWarnings(log(outer(x[, 1], x[, 1], "-") - 0.5))  # NaN where negative
  mn <- kernel_op("Min_ArgMin_Reduction(Log(x - y - 0.5), 0)", decl[1:2])(x, x)
  expect_identical(mn$values[1, 1], NaN)
  expect_identical(mn$indices[1, 1], NA_integer_)
  expect_equal(mn$values[2:3, 1], apply(L[2:3, ], 1, min, na.rm = TRUE), tolerance = 1e-14)
  km <- kernel_op("KMin_ArgKMin_Reduction(Log(x - y - 0.5), 2, 0)", decl[1:2])(x, x)
  expect_identical(km$indices, matrix(c(NA, 1L, 2L, NA, NA, 1L), 3, 2))
  expect_true(all(is.nan(km$values[is.na(km$indices)])))
  # K-min of a vector formula: K-major columns
  expect_identical(kernel_op("KMin_Reduction(y - x, 2, 0)", c("x = Vi(2)", "y = Vj(2)"))(
    matrix(0, 1, 2), matrix(c(1, 2, 3, 30, 20, 10), 3, 2)), matrix(c(1, 10, 2, 20), 1, 4))
  # whole powers of negative numbers as in R, also past Pow's range
  expect_identical(kernel_op("Sum_Reduction(x^1000001*b, 0)", decl)(matrix(-1), matrix(1), matrix(1)), matrix(-1))
  expect_equal(kernel_op("Sum_Reduction(Powf(x, 3)*b, 0)", decl)(matrix(-2), matrix(1), matrix(1)), matrix(-8), tolerance = 1e-15)
  # float32 sums accumulate in double
  expect_equal(kernel_op("Sum_Reduction(y, 0)", decl[1:2], dtype = "float32")(matrix(1), matrix(3e38, 100, 1)),
               matrix(3e40), tolerance = 1e-6)
})

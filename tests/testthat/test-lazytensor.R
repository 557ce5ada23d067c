# LazyTensors (issue 4): every operation against the same computation written as a KeOps
# string for kernel_op(), a few against dense R, the plan cache, `~` formulas and errors.

set.seed(42)
N <- 7
M <- 9
x <- matrix(runif(N * 3, 0.1, 1), N, 3)
y <- matrix(runif(M * 3, 0.1, 1), M, 3)
a <- matrix(runif(N, 0.5, 1.5), N, 1)
b <- matrix(rnorm(M), M, 1)
u <- matrix(rnorm(M * 3), M, 3)
x_i <- Vi(x)
y_j <- Vj(y)
a_i <- Vi(a)
b_j <- Vj(b)
u_j <- Vj(u)

# The KeOps-string version of a computation: compiles `formula` and calls it on the data.
keops <- function(formula, ...) {
  data <- list(...)
  decl <- c(x = "Vi(3)", y = "Vj(3)", a = "Vi(1)", b = "Vj(1)", u = "Vj(3)", s = "Pm(1)", w = "Pm(3)")
  used <- intersect(names(decl), names(data))
  op <- kernel_op(formula, paste(used, "=", decl[used]))
  do.call(op, data[used])
}
full <- list(x = x, y = y, a = a, b = b, u = u)

# lazy: a LazyTensor F; string: the same F in KeOps syntax (variables x, y, a, b, u, s, w),
# spelled so that the results are bitwise identical (a non-whole number in a LazyTensor is a
# parameter, hence `s` in the strings of the kernels, with g = 1/sigma^2 computed as R does;
# elsewhere a number passed as a parameter or written as a constant gives the same bits).
elementwise_cases <- list(
  list("+", x_i + y_j, "x+y"),
  list("-", x_i - y_j, "x-y"),
  list("*", x_i * y_j, "x*y"),
  list("/", x_i / y_j, "x/y"),
  list("unary -", -x_i + y_j, "-x+y"),
  list("unary +", +x_i * y_j, "x*y"),
  list("nested -", x_i - (y_j - a_i), "x-(y-a)"),
  list("nested /", x_i / (y_j * a_i), "x/(y*a)"),
  list("precedence", -(x_i * y_j) - a_i * (b_j + 1), "-(x*y)-a*(b+1)"),
  list("^2", (x_i - y_j)^2, "Square(x-y)"),
  list("^3", (x_i - y_j)^3, "Pow(x-y,3)"),
  list("^-2", x_i^-2 * y_j, "Pow(x,-2)*y"),
  list("^0.5", (x_i + y_j)^0.5, "Sqrt(x+y)"),
  list("^-0.5", (x_i + y_j)^-0.5, "Rsqrt(x+y)"),
  list("^1.7", (x_i + y_j)^1.7, "Powf(x+y,1.7)"),
  list("^ lazy", x_i^y_j, "Powf(x,y)"),
  list("number ^ lazy", 2^(x_i - y_j), "Powf(2,x-y)"),
  list("whole numbers", 2 * x_i - 3 + y_j / 4, "2*x-3+y/4"),
  list("non-integer number", 0.25 * x_i - y_j * 1.5, "0.25*x-y*1.5"),
  list("number first", 1 - x_i * y_j, "1-x*y"),
  list("vector parameter", x_i * c(1.5, 2, -0.5) + y_j, "x*w+y", list(w = c(1.5, 2, -0.5))),
  list("Pm()", x_i * Pm(0.75) - y_j, "x*s-y", list(s = 0.75)),
  list("Pm() vector", sqdist(x_i * Pm(c(1, 2, 3)), y_j), "SqDist(x*w,y)", list(w = c(1, 2, 3))),
  list(">=", x_i >= y_j, "Step(x-y)"),
  list(">", x_i > y_j, "1-Step(y-x)"),
  list("<=", x_i <= y_j, "Step(y-x)"),
  list("<", x_i < y_j, "1-Step(x-y)"),
  list("==", ((a_i == 1) + (x_i == x_i)) * b_j, "(Step(-Abs(a-1))+Step(-Abs(x-x)))*b"),
  list("!=", x_i != y_j, "1-Step(-Abs(x-y))"),
  list("comparison with a number", (x_i - y_j > 0.1) * b_j, "(1-Step(0.1-(x-y)))*b"),
  list("!", !(x_i > y_j), "Step(y-x)"),
  list("! of a number", !(x_i - y_j), "Step(-Abs(x-y))"),
  list("&", (x_i > 0.3) & (y_j < 0.6), "(1-Step(0.3-x))*(1-Step(y-0.6))"),
  list("| of conditions", (x_i > 0.3) | (y_j < 0.6), "Max(1-Step(0.3-x),1-Step(y-0.6))"),
  list("exp", exp(x_i - y_j), "Exp(x-y)"),
  list("log", log(x_i + y_j), "Log(x+y)"),
  list("log base", log(x_i + y_j, 3), "Log(x+y)/1.0986122886681098"),
  list("log2", log2(x_i * y_j), "Log(x*y)/0.69314718055994531"),
  list("log10", log10(x_i * y_j), "Log(x*y)/2.3025850929940459"),
  list("log1p", log1p(x_i * y_j), "Log1p(x*y)"),
  list("expm1", expm1(x_i - y_j), "Expm1(x-y)"),
  list("sqrt", sqrt(x_i * y_j), "Sqrt(x*y)"),
  list("abs", abs(x_i - y_j), "Abs(x-y)"),
  list("sign", sign(x_i - y_j), "Sign(x-y)"),
  list("sin", sin(x_i - y_j), "Sin(x-y)"),
  list("cos", cos(x_i - y_j), "Cos(x-y)"),
  list("sqnorm2", sqnorm2(x_i - y_j), "SqNorm2(x-y)"),
  list("norm2", norm2(x_i - y_j), "Norm2(x-y)"),
  list("normalize", normalize(x_i - y_j), "Normalize(x-y)"),
  list("sqdist", sqdist(x_i, y_j), "SqDist(x,y)"),
  list("scalprod", scalprod(x_i, u_j), "(x|u)"),
  list("| scalar product", (x_i | u_j) * b_j, "(x|u)*b"),
  list("concat", concat(x_i, b_j, a_i), "Concat(Concat(x,b),a)"),
  list("elem", elem(x_i, 3) * y_j, "Elem(x,2)*y"),
  list("[k]", x_i[1] - y_j[2], "Elem(x,0)-Elem(y,1)"),
  list("extract", extract(x_i, 2, 2) - extract(u_j, 1, 2), "Extract(x,1,2)-Extract(u,0,2)"),
  list("[k1:k2]", x_i[2:3] * u_j[1:2], "Extract(x,1,2)*Extract(u,0,2)"),
  list("[c(k1,k2)]", x_i[c(3, 1)] + y_j[1], "Concat(Elem(x,2),Elem(x,0))+Elem(y,0)"),
  list("sum of coordinates", sum(x_i * u_j), "Sum(x*u)"),
  list("relu", relu(x_i - y_j), "ReLU(x-y)"),
  list("heaviside", heaviside(x_i - y_j), "Step(x-y)"),
  list("clamp", clamp(x_i - y_j, -0.2, 0.3), "Clamp(x-y,-0.2,0.3)"),
  list("clamp lazy bounds", clamp(u_j, -a_i, a_i), "Clamp(u,-a,a)"),
  list("minimum", minimum(x_i, y_j), "Min(x,y)"),
  list("maximum", maximum(x_i, 2 * y_j), "Max(x,2*y)"),
  list("if_else >=", if_else(x_i >= y_j, x_i, -y_j), "IfElse(x-y,x,-y)"),
  list("if_else >", if_else(x_i > y_j, x_i, -y_j), "IfElse(y-x,-y,x)"),
  list("if_else !=", if_else(x_i != x_i, 1, u_j), "IfElse(-Abs(x-x),u,1)"),
  list("if_else numeric condition", if_else(u_j, x_i, 2), "IfElse(-Abs(u),2,x)"),
  list("if_else &", if_else((x_i > 0.3) & (y_j < 0.6), x_i, y_j),
       "IfElse(-Abs((1-Step(0.3-x))*(1-Step(y-0.6))),y,x)"),
  list("gaussian_kernel", gaussian_kernel(x_i, y_j, 0.5) * b_j, "Exp(-4*SqDist(x,y))*b"),
  list("gaussian_kernel Pm sigma", gaussian_kernel(x_i, y_j, Pm(0.7)), "GaussKernel(1/Square(s),x,y,1)", list(s = 0.7)),
  list("laplace_kernel", laplace_kernel(x_i, y_j, 0.8), "LaplaceKernel(s,x,y,1)", list(s = 1 / 0.8^2)),
  list("cauchy_kernel", cauchy_kernel(x_i, y_j, 0.8), "CauchyKernel(s,x,y,1)", list(s = 1 / 0.8^2)),
  list("inverse_multiquadric_kernel", inverse_multiquadric_kernel(x_i, y_j, 0.8),
       "InverseMultiquadricKernel(s,x,y,1)", list(s = 1 / 0.8^2)),
  list("matern32_kernel", matern32_kernel(x_i, y_j, 0.8), "Matern32Kernel(s,x,y,1)", list(s = 1 / 0.8^2)),
  list("matern52_kernel", matern52_kernel(x_i, y_j, 0.8), "Matern52Kernel(s,x,y,1)", list(s = 1 / 0.8^2)),
  list("grad", grad(exp(-sqdist(x_i, y_j)) * b_j, x_i), "Grad(Exp(-SqDist(x,y))*b,x,1)"),
  list("grad with e", grad(x_i * u_j, x_i, a_i * y_j), "Grad(x*u,x,a*y)"),
  list("grad wrt Vj", grad(sqdist(x_i, y_j), y_j), "Grad(SqDist(x,y),y,1)")
)

test_that("every elementwise and vector operation matches its KeOps string", {
  for (case in elementwise_cases) {
    extra <- if (length(case) > 3) case[[4]] else list()
    for (index in c("j", "i")) {
      got <- sum(case[[2]], index = index)
      want <- do.call(keops, c(list(sprintf("Sum_Reduction(%s,%d)", case[[3]], if (index == "j") 0 else 1)),
                               full, extra))
      expect_identical(got, want, info = paste(case[[1]], "index", index))
    }
  }
})

test_that("results are bitwise identical when the formula is spelled the same way", {
  expect_identical(sum(exp(-sqdist(x_i, y_j) * 2) * b_j, index = "j"),
                   keops("Sum_Reduction(Exp(-SqDist(x,y)*2)*b,0)", x = x, y = y, b = b))
  expect_identical(sum(exp(-sqdist(x_i, y_j) * 2.5) * b_j, index = "j"),
                   keops("Sum_Reduction(Exp(-SqDist(x,y)*s)*b,0)", x = x, y = y, b = b, s = 2.5))
  expect_identical(argkmin(sqdist(x_i, y_j), 3, index = "j"),
                   keops("ArgKMin_Reduction(SqDist(x,y),3,0)", x = x, y = y))
})

test_that("every reduction matches its KeOps string", {
  D <- sqdist(x_i, y_j) - a_i * b_j
  cases <- list(
    list(sum(D, index = "j"), "Sum_Reduction(F,0)"),
    list(sum(D * u_j, index = "i"), "Sum_Reduction(F*u,1)"),
    list(min(D, index = "j"), "Min_Reduction(F,0)"),
    list(max(D * u_j, index = "i"), "Max_Reduction(F*u,1)"),
    list(argmin(D, index = "j"), "ArgMin_Reduction(F,0)"),
    list(argmax(D * u_j, index = "i"), "ArgMax_Reduction(F*u,1)"),
    list(min_argmin(D, index = "i"), "Min_ArgMin_Reduction(F,1)"),
    list(max_argmax(D, index = "j"), "Max_ArgMax_Reduction(F,0)"),
    list(kmin(D, 3, index = "j"), "KMin_Reduction(F,3,0)"),
    list(kmin(D * u_j, k = 2, index = "j"), "KMin_Reduction(F*u,2,0)"),
    list(argkmin(D, 4, index = "i"), "ArgKMin_Reduction(F,4,1)"),
    list(kmin_argkmin(D, 2, index = "j"), "KMin_ArgKMin_Reduction(F,2,0)"),
    list(logsumexp(-D, index = "j"), "LogSumExp_Reduction(-(F),0)"),
    list(logsumexp(-D * u_j, index = "i"), "LogSumExp_Reduction(-(F)*u,1)"),
    list(logsumexp(-D, index = "j", weight = Vj(abs(u))), "LogSumExp_Reduction(-(F),0,Abs(u))"),
    list(sumsoftmaxweight(-D, u_j, index = "j"), "SumSoftMaxWeight_Reduction(-(F),0,u)"),
    list(sumsoftmaxweight(-D, x_i, index = "i"), "SumSoftMaxWeight_Reduction(-(F),1,x)")
  )
  Fs <- "(SqDist(x,y)-a*b)"
  for (case in cases) {
    want <- do.call(keops, c(list(gsub("F", Fs, case[[2]], fixed = TRUE)), full))
    expect_identical(case[[1]], want, info = case[[2]])
  }
})

test_that("reductions agree with dense R", {
  D2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  K <- exp(-D2 / 0.3)
  expect_equal(sum(exp(-sqdist(x_i, y_j) / 0.3) * b_j, index = "j"), K %*% b, tolerance = 1e-12)
  expect_equal(sum(exp(-sqdist(x_i, y_j) / 0.3) * a_i, index = "i"), t(K) %*% a, tolerance = 1e-12)
  expect_equal(sum(gaussian_kernel(x_i, y_j, sqrt(0.3)) * b_j, index = "j"), K %*% b, tolerance = 1e-12)
  expect_equal(c(argmin(sqdist(x_i, y_j), index = "j")), apply(D2, 1, which.min))
  expect_equal(c(argmax(sqdist(x_i, y_j), index = "i")), apply(D2, 2, which.max))
  expect_equal(kmin(sqdist(x_i, y_j), 3, index = "j"), t(apply(D2, 1, function(r) sort(r)[1:3])),
               tolerance = 1e-12)
  expect_equal(c(logsumexp(-sqdist(x_i, y_j), index = "j")), log(rowSums(exp(-D2))), tolerance = 1e-12)
  expect_equal(sumsoftmaxweight(-sqdist(x_i, y_j), u_j, index = "j"),
               (exp(-D2) %*% u) / rowSums(exp(-D2)), tolerance = 1e-12)
  # counting neighbours with a comparison
  expect_equal(c(sum(sqdist(x_i, y_j) < 0.3, index = "j")), rowSums(D2 < 0.3))
  # matrices with the same R object on both sides: x_i and x_j
  K2 <- sum(exp(-sqdist(Vi(x), Vj(x))), index = "j")
  expect_equal(c(K2), unname(rowSums(exp(-as.matrix(stats::dist(x))^2))), tolerance = 1e-12)
  # gradient of sum_j exp(-|x_i - y_j|^2) b_j with respect to x_i
  g <- sum(grad(exp(-sqdist(x_i, y_j)) * b_j, x_i), index = "j")
  g_dense <- t(vapply(seq_len(N), function(i) {
    d <- -sweep(y, 2, x[i, ])
    colSums(-2 * d * c(exp(-rowSums(d^2)) * b))
  }, numeric(3)))
  expect_equal(g, g_dense, tolerance = 1e-12)
})

test_that("log1p() and expm1() are accurate where 1 + x rounds to 1 (Log1p, Expm1)", {
  t_i <- Vi(matrix(c(1e-17, -1e-17, 1e-300, 3e-10, -0.5, 2, 1e-5)))
  one_j <- Vj(matrix(1))
  tv <- c(1e-17, -1e-17, 1e-300, 3e-10, -0.5, 2, 1e-5)
  expect_equal(c(sum(log1p(t_i) * one_j, index = "j")), log1p(tv), tolerance = 1e-15)
  expect_equal(c(sum(expm1(t_i) * one_j, index = "j")), expm1(tv), tolerance = 1e-15)
  expect_identical(c(sum(log1p(t_i) * one_j, index = "j"))[1], 1e-17)  # Log(1 + x) gave 0
  # their gradients: 1 / (1 + x) and exp(x)
  expect_equal(sum(grad(log1p(t_i), t_i) * one_j, index = "j"), matrix(1 / (1 + tv)), tolerance = 1e-14)
  expect_equal(sum(grad(expm1(t_i), t_i) * one_j, index = "j"), matrix(exp(tv)), tolerance = 1e-14)
})

test_that("float32 works through the verbs", {
  r64 <- sum(exp(-sqdist(x_i, y_j)) * b_j, index = "j")
  r32 <- sum(exp(-sqdist(x_i, y_j)) * b_j, index = "j", dtype = "float32")
  expect_equal(r32, r64, tolerance = 1e-5)
  expect_equal(argmin(sqdist(x_i, y_j), index = "j", dtype = "float32"),
               argmin(sqdist(x_i, y_j), index = "j"))
  expect_error(sum(x_i * y_j, index = "j", dtype = "float16"), class = "kernops_error_input")
})

test_that("as.character() and print() show the KeOps formula and the variables", {
  K <- exp(-sqdist(x_i, y_j) / 0.5) * b_j
  expect_identical(as.character(K), "Exp(-SqDist(x,y)/p1)*b")
  expect_identical(format(K), "Exp(-SqDist(x,y)/p1)*b")
  out <- capture.output(print(K))
  expect_match(out[1], "<LazyTensor> dimension 1, indexed by i and j")
  expect_match(out[2], "formula: Exp(-SqDist(x,y)/p1)*b", fixed = TRUE)
  expect_true(any(grepl("x +Vi +7 x 3", out)))
  expect_true(any(grepl("y +Vj +9 x 3", out)))
  expect_true(any(grepl("p1 +Pm +1 value: 0.5", out)))
  expect_true(any(grepl("b +Vj +9 x 1", out)))
  expect_identical(as.character(2 * x_i - 3), "2*x-3")
  expect_identical(as.character(x_i - (y_j - 1)), "x-(y-1)")
  expect_identical(as.character(-(x_i * y_j)), "-(x*y)")
  expect_identical(as.character(x_i * -y_j), "x*(-y)")
  expect_identical(as.character(x_i - -3), "x-(-3)")
  expect_identical(as.character(x_i | y_j), "(x|y)")
  expect_identical(as.character(Vi(x) - Vj(x)), "x_i-x_j")
  expect_identical(as.character(Vi(x, name = "pts") + Vi(matrix(1, N, 3))), "pts+v1")
  expect_output(print(x_i > y_j), "0/1 condition")
  expect_true(is_lazy(x_i))
  expect_false(is_lazy(x))
})

test_that("a LazyTensor used twice is one variable; two wraps of the same data are two", {
  expect_identical(as.character(x_i * x_i + x_i), "x*x+x")
  K <- x_i * x_i + x_i
  expect_length(K$leaves, 1)
  expect_length((Vi(x) + Vi(x))$leaves, 2)
  expect_equal(sum(K * b_j, index = "j"), keops("Sum_Reduction((x*x+x)*b,0)", x = x, b = b))
})

test_that("compiled plans are cached by formula structure", {
  kernops:::lazy_cache_clear()
  s0 <- kernops:::lazy_cache_stats()
  expect_identical(c(s0$hits, s0$misses, s0$size), c(0, 0, 0))
  for (it in 1:5) {
    xx <- matrix(runif(30), 10, 3)
    r <- sum(exp(-sqdist(Vi(xx), y_j) / runif(1, 0.2, 2)) * b_j, index = "j")
    expect_equal(dim(r), c(10L, 1L))
  }
  s1 <- kernops:::lazy_cache_stats()
  expect_identical(c(s1$hits, s1$misses, s1$size), c(4, 1, 1))
  # another structure, another reduction, another dtype: new plans
  sum(exp(-sqdist(x_i, y_j)) * b_j, index = "i")
  sum(exp(-sqdist(x_i, y_j)) * b_j, index = "j", dtype = "float32")
  sum(cos(sqdist(x_i, y_j)) * b_j, index = "j")
  s2 <- kernops:::lazy_cache_stats()
  expect_identical(c(s2$hits, s2$misses), c(4, 4))
  # a changing whole number is a constant, so a different structure
  for (p in 2:3) sum((x_i - y_j)^p, index = "j")
  expect_identical(kernops:::lazy_cache_stats()$misses, 6)
  # ...but a kernel's 1/sigma^2 is always a parameter, whole (sigma = 0.5, 1) or not: a
  # loop over bandwidths compiles once (it compiled once per whole value)
  d2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  for (sg in c(0.5, 1, 2, 0.7))
    expect_equal(sum(gaussian_kernel(x_i, y_j, sg) * b_j, index = "j"), exp(-d2 / sg^2) %*% b)
  expect_identical(kernops:::lazy_cache_stats()$misses, 7)
  for (bad in list(1e-200, Inf, -1, 0, NA, "a"))
    expect_error(gaussian_kernel(x_i, y_j, bad), "1/sigma\\^2 is finite", class = "kernops_error_input")
  expect_error(gaussian_kernel(x_i, Vj(matrix(1, M, 2))), "gaussian_kernel\\(\\)", class = "kernops_error_dimension")
  # the cache is bounded
  old <- options(kernops.lazy_cache_size = 2)
  on.exit(options(old), add = TRUE)
  for (k in 1:4) sum(x_i * k * y_j, index = "j")
  expect_identical(kernops:::lazy_cache_stats()$size, 2L)
  options(kernops.lazy_cache_size = 0)
  m <- kernops:::lazy_cache_stats()$misses
  sum(x_i * y_j, index = "j")
  sum(x_i * y_j, index = "j")
  expect_identical(kernops:::lazy_cache_stats()$misses, m + 2)
})

test_that("a cache hit reuses the compiled operation", {
  kernops:::lazy_cache_clear()
  build <- function(xx) sum(sin(sqdist(Vi(xx), Vj(y)) * 1.25) * Vj(b) + Vi(a), index = "j")
  r1 <- build(x)
  ops <- as.list(kernops:::lazy_cache$ops)
  expect_length(ops, 1)
  r2 <- build(x[N:1, ])
  expect_identical(as.list(kernops:::lazy_cache$ops)[[1]]$op, ops[[1]]$op)
  expect_identical(kernops:::lazy_cache_stats()$hits, 1)
  expect_equal(r2, keops("Sum_Reduction(Sin(SqDist(x,y)*s)*b+a,0)", x = x[N:1, ], y = y, b = b, a = a, s = 1.25))
})

test_that("kernel_op() accepts R formulas", {
  decls <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)")
  op_r <- kernel_op(~ sum_j(exp(-s * sqnorm2(x - y)) * b), decls)
  op_s <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)", decls)
  expect_s3_class(op_r, "kernops_op")
  expect_identical(as.character(op_r), as.character(op_s))
  expect_identical(op_r(x, y, b, 2), op_s(x, y, b, 2))
  # the verbs with index =, quoted calls, numbers from the calling environment
  sigma <- 0.4
  op2 <- kernel_op(~ sum(exp(-sqdist(x, y) / sigma) * b, index = "i"), decls[1:3])
  expect_identical(as.character(op2), "Sum_Reduction(Exp(-SqNorm2(x-y)/0.4)*b,1)")
  expect_equal(op2(x, y, b), keops("Sum_Reduction(Exp(-SqDist(x,y)/0.4)*b,1)", x = x, y = y, b = b))
  op3 <- kernel_op(quote(argkmin_j(sqdist(x, y), 2)), c("x = Vi(0,3)", "y = Vj(1,3)"))
  expect_identical(op3(x, y), argkmin(sqdist(x_i, y_j), 2, index = "j"))
  op4 <- kernel_op(~ logsumexp_i(-sqdist(x, y), weight = b), decls[1:3], dtype = "float32")
  expect_equal(op4(x, y, b), logsumexp(-sqdist(x_i, y_j), index = "i", weight = b_j, dtype = "float32"))
  op5 <- kernel_op(~ sum_j(grad(exp(-sqdist(x, y)) * b, x)), decls[1:3])
  expect_equal(op5(x, y, b), sum(grad(exp(-sqdist(x_i, y_j)) * b_j, x_i), index = "j"))
  shorthands <- c("sum", "min", "max", "argmin", "argmax")
  for (fn in shorthands) {
    opj <- kernel_op(eval(parse(text = sprintf("~ %s_j(sqdist(x, y) * b)", fn))), decls[1:3])
    expect_equal(opj(x, y, b), get(fn)(sqdist(x_i, y_j) * b_j, index = "j"), info = fn)
  }
})

test_that("R formulas give clear errors", {
  decls <- c("x = Vi(3)", "y = Vj(3)")
  expect_error(kernel_op(~ exp(-sqdist(x, y)), decls), "without a reduction", class = "kernops_error_input")
  expect_error(kernel_op(z ~ sum_j(x - y), decls), "one-sided", class = "kernops_error_input")
  # formulas whose cache key passes R's 10000-byte limit on names are compiled every time
  # (the plan cache keys an environment by them; the reduction failed unclassed)
  K <- sqdist(x_i, y_j)
  for (k in 1:600) K <- K + elem(x_i, 1) * elem(y_j, 2)
  expect_gt(nchar(as.character(K)), 10000)
  expect_equal(as.vector(sum(K, index = "j")),
               rowSums(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y) + 600 * outer(x[, 1], y[, 2])))
  # a reduction of a constant: base R's sum(2, index = "j") failed unclassed
  expect_error(kernel_op(~ sum_j(2), decls), "sum_j\\(\\) needs a LazyTensor", class = "kernops_error_input")
  expect_error(kernel_op(~ argkmin_i(3, 2), decls), "argkmin_i\\(\\) needs a LazyTensor", class = "kernops_error_input")
  # base R's errors from the formula's own R code are classed, with R's message
  for (f in list(~ sum(2, index = "j"), ~ sum_j(x) + 1, ~ kmin_j(x), ~ sum_j(), ~ sum_j(x, 2)))
    expect_error(kernel_op(f, decls), "evaluating the R formula failed", class = "kernops_error_input")
  # a kernel whose first point is a number: still a `~` formula (sigma was taken for data)
  op_k <- kernel_op(~ sum_j(gaussian_kernel(0, y, 0.5) * sqnorm2(x)), decls)
  expect_equal(op_k(x, y), matrix(rowSums(x^2) * sum(exp(-rowSums(y^2) / 0.25)), N, 1))
  expect_error(kernel_op(~ sum_j(x - Vj(y)), decls), "already a LazyTensor", class = "kernops_error_input")
  yy <- y
  expect_error(kernel_op(~ sum_j(x - Vj(yy)), decls), "cannot contain data", class = "kernops_error_input")
  expect_error(kernel_op(~ sum_j(x - y * c(1, 2, 3)), decls), "Pm", class = "kernops_error_input")
  expect_error(kernel_op(~ sum_j(x - z), decls), "z")
  expect_error(kernel_op(~ sum_j(x - y), c("x = Vi(3", "y = Vj(3)")), class = "kernops_error_parse")
  expect_error(kernel_op(~ sum_j(x - y), c("x = Vi(3)", "y = Vj(2)")), class = "kernops_error_dimension")
})

test_that("incompatible shapes and row counts give classed errors", {
  expect_error(x_i + Vj(matrix(1, M, 2)), "dimensions must be equal or 1", class = "kernops_error_dimension")
  expect_error(scalprod(x_i, b_j), class = "kernops_error_dimension")
  expect_error(x_i | Vj(matrix(1, M, 2)), class = "kernops_error_dimension")
  expect_error(elem(x_i, 4), "out of range", class = "kernops_error_dimension")
  expect_error(elem(x_i, 0), "out of range", class = "kernops_error_dimension")
  expect_error(extract(x_i, 2, 3), class = "kernops_error_dimension")
  for (bad in list(Inf, NA, 1e10, 1.5))
    expect_error(elem(x_i, bad), "whole number", class = "kernops_error_input")
  expect_error(extract(x_i, 1, Inf), "whole number", class = "kernops_error_input")
  expect_error(x_i[c(0, 1)], class = "kernops_error_input")
  expect_error(x_i[1, 2], "one index", class = "kernops_error_input")
  expect_error(x_i[TRUE], "condition", class = "kernops_error_input")
  expect_error(x_i[x_i > 0], "condition", class = "kernops_error_input")
  # base R's pmax() and ifelse() on LazyTensors: a classed error pointing to the
  # elementwise functions (ifelse used to return a list of fragments of the LazyTensor)
  expect_error(pmax(x_i, y_j), "maximum\\(x, y\\)", class = "kernops_error_input")
  # with a number, pmax() reached `&` with the lengths of the internal list
  expect_error(pmax(sqdist(x_i, y_j), 1), "maximum\\(x, y\\)", class = "kernops_error_input")
  expect_error(pmin(x_i, 0.5), "minimum\\(x, y\\)", class = "kernops_error_input")
  expect_no_warning(expect_error(x_i[Inf], "positive whole numbers", class = "kernops_error_input"))
  expect_error(ifelse(x_i > y_j, x_i, y_j), "if_else", class = "kernops_error_input")
  expect_false(isTRUE(x_i))
  # base generics on the list a LazyTensor is made of: t(), rep(), unique() returned its
  # pieces, rev() and sort() failed in `[` with misleading messages
  K <- exp(-sqdist(x_i, y_j))
  generics <- list(rev = rev, sort = sort, median = stats::median, t = t, unique = unique,
                   rep = function(z) rep(z, 2), as.integer = as.integer, as.complex = as.complex,
                   `dim<-` = function(z) `dim<-`(z, c(1, 2)))
  for (g in names(generics))
    expect_error(generics[[g]](K), sprintf("cannot be used with %s\\(\\)", g), class = "kernops_error_input")
  for (bad in list(1, c("a", "b"), NA_character_))
    expect_error(Vi(x, name = bad), "`name` must be a single string", class = "kernops_error_input")
  for (base in list(-1, NA, c(2, 3), 1, "e"))
    expect_error(log(x_i, base), "base", class = "kernops_error_input")
  for (k in list(0, -1, 1.5, NA, Inf, 1e10, "2"))
    expect_error(argkmin(sqdist(x_i, y_j), k, index = "j"), "`k` must be", class = "kernops_error_input")
  expect_error(Vi(x) + Vi(matrix(1, N + 1, 3)), "same number of rows", class = "kernops_error_input")
  expect_error(Vj(y) * Vj(matrix(1, M - 1, 1)), "same number of rows", class = "kernops_error_input")
  # a one-column matrix of per-point values is data, not a parameter (it used to become Pm(M))
  expect_error(x_i * matrix(1, M, 1), "Wrap per-point data", class = "kernops_error_input")
  expect_error(matrix(1, 2, 1) + y_j, "Wrap per-point data", class = "kernops_error_input")
  expect_identical((x_i * matrix(c(1, 2, 3), 1, 3))$dim, 3L)  # a one-row matrix is still a parameter
  expect_error(logsumexp(x_i - y_j, index = "j", weight = b_j), "dimension 1", class = "kernops_error_dimension")
  expect_error(sumsoftmaxweight(x_i - y_j, u_j, index = "j"), class = "kernops_error_dimension")
  expect_error(grad(x_i - y_j, x_i), "direction", class = "kernops_error_dimension")
  expect_error(grad(sqdist(x_i, y_j), x_i, c(1, 2)), class = "kernops_error_dimension")
  expect_error(gaussian_kernel(x_i, y_j, Pm(c(1, 2))), class = "kernops_error_dimension")
})

test_that("reducing over an index the formula does not have is an error", {
  expect_error(sum(x_i * 2, index = "j"), "no Vj\\(\\) variable", class = "kernops_error_dimension")
  expect_error(sum(y_j * 2, index = "i"), "no Vi\\(\\) variable", class = "kernops_error_dimension")
  expect_error(sum(y_j * 2, index = "j"), "number of rows is unknown", class = "kernops_error_dimension")
  expect_error(argmin(Pm(2) * 3, index = "j"), class = "kernops_error_dimension")
})

test_that("the verbs check their arguments", {
  K <- sqdist(x_i, y_j)
  expect_error(sum(K, index = "k"), "\"i\" or \"j\"", class = "kernops_error_input")
  expect_error(sum(K, index = 0), class = "kernops_error_input")
  expect_error(min(K), "needs `index`", class = "kernops_error_input")
  expect_error(max(K, K, index = "j"), "maximum", class = "kernops_error_input")
  expect_error(argmin(K), "needs `index`", class = "kernops_error_input")
  expect_error(kmin(K, 0, index = "j"), "positive whole number", class = "kernops_error_input")
  expect_error(argkmin(K, 1.5, index = "j"), class = "kernops_error_input")
  expect_error(sum(K, index = "j", foo = 1), "unknown argument", class = "kernops_error_input")
  expect_error(prod(K), "not available", class = "kernops_error_input")
  expect_error(argmin(as.matrix(dist(x)), index = "j"), "reduces a LazyTensor", class = "kernops_error_input")
  expect_error(sumsoftmaxweight(K, index = "j"), "needs `v`", class = "kernops_error_input")
  # sum() without index is the sum of the coordinates, a LazyTensor
  expect_true(is_lazy(sum(x_i * y_j)))
  expect_identical(as.character(sum(x_i * y_j)), "Sum(x*y)")
})

test_that("a LazyTensor where a matrix is needed, and vice versa, are clear errors", {
  K <- exp(-sqdist(x_i, y_j))
  for (f in list(as.matrix, as.vector, as.numeric, as.double, as.array, as.data.frame, mean))
    expect_error(f(K), "LazyTensor is symbolic", class = "kernops_error_input")
  expect_error(c(x_i, y_j), "concat", class = "kernops_error_input")
  expect_error(x_i + x, "matrix", class = "kernops_error_input")
  expect_error(x_i + "a", class = "kernops_error_input")
  expect_error(x_i * NA, "finite", class = "kernops_error_input")
  expect_error(x_i * numeric(0), class = "kernops_error_input")
  expect_error(Vi(x_i), "already a LazyTensor", class = "kernops_error_input")
  expect_error(Vi("a"), class = "kernops_error_input")
  expect_error(Vi(array(1, c(2, 2, 2))), class = "kernops_error_input")
  expect_error(Vi(matrix(0, 0, 3)), class = "kernops_error_input")
  expect_error(Pm(x), "vector", class = "kernops_error_input")
  expect_error(floor(x_i), "not available", class = "kernops_error_input")
  expect_error(x_i %% 2, class = "kernops_error_input")
  expect_error((x_i > 0) | y_j, "ambiguous", class = "kernops_error_input")
  expect_error(sqdist(x, y), "at least one argument", class = "kernops_error_input")
  expect_error(grad(K, x_i * 2), "must be a variable", class = "kernops_error_input")
  expect_error(if_else(x > 0, x_i, y_j), class = "kernops_error_input")
  expect_error(gaussian_kernel(x_i, y_j, -1), "positive", class = "kernops_error_input")
  op <- kernel_op("Sum_Reduction(x, 0)", "x = Vi(3)")
  expect_error(op(x_i), "symbolic LazyTensor", class = "kernops_error_input")
  # errors from the run are reported against the user's call
  e <- tryCatch(sum(Vi(matrix(NA_real_, N, 1)) * b_j, index = "j"), kernops_error = function(e) e)
  expect_s3_class(e, "kernops_error")
  expect_identical(deparse(conditionCall(e)), "sum(x, index = \"j\")")
})

test_that("data frames, integer matrices and vectors are accepted as data", {
  df <- as.data.frame(x)
  expect_equal(sum(Vi(df) * y_j, index = "j"), sum(x_i * y_j, index = "j"))
  xi_int <- Vi(matrix(1:6, 3, 2))
  expect_equal(sum(xi_int * Vj(c(1, 2)), index = "j"), matrix(c(3, 6, 9, 12, 15, 18) * 1, 3, 2))
  expect_equal(sum(Vi(1:3) * Vj(c(1, 2)), index = "j"), matrix(c(3, 6, 9), 3, 1))
})

test_that("library(kernops) masks no function of the packages R attaches by default", {
  # kernops' step() masked stats::step, and its wrapper broke step() on a model fitted
  # inside a function ("object 'dd' not found"); the step function is heaviside().
  ours <- getNamespaceExports("kernops")
  for (pkg in c("base", "stats", "utils", "methods", "graphics", "grDevices", "datasets")) {
    theirs <- if (pkg == "base") ls(baseenv(), all.names = TRUE) else getNamespaceExports(pkg)
    expect_identical(intersect(ours, theirs), character(0), label = pkg)
  }
  fit_inside <- function() {
    dd <- datasets::mtcars
    step(stats::lm(mpg ~ wt + hp + drat + qsec + gear + carb + cyl, data = dd), trace = 0)
  }
  fit <- fit_inside()  # step() drops terms: it refits in the caller's frame, where dd lives
  expect_s3_class(fit, "lm")
  expect_lt(length(coef(fit)), 8)
  expect_error(heaviside(1), class = "kernops_error_input")
})

test_that("reduction_grad() differentiates LazyTensor reductions through kernel_grad()", {
  K <- exp(-sqdist(x_i, y_j) * 0.7) * b_j
  # a Sum reduction: the reduction of the symbolic gradient, and kernel_grad() on the string
  g <- reduction_grad(K, x_i, index = "j")
  expect_equal(g, sum(grad(K, x_i), index = "j"), tolerance = 1e-14)
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x,y)*s)*b,0)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
  gop <- kernel_grad(op, c("x", "y", "s"))
  want <- gop(x, y, b, 0.7, matrix(1, N, 1))
  got <- reduction_grad(K, list(x_i, y_j), index = "j")
  expect_named(got, c("x", "y"))
  expect_equal(got$x, want$x, tolerance = 1e-14)
  expect_equal(got$y, want$y, tolerance = 1e-14)
  s <- Pm(0.7)
  E <- matrix(rnorm(N), N, 1)
  got <- reduction_grad(exp(-sqdist(x_i, y_j) * s) * b_j, list(dx = x_i, ds = s), index = "j", direction = E)
  want <- gop(x, y, b, 0.7, E)
  expect_equal(got$dx, want$x, tolerance = 1e-14)
  expect_equal(got$ds, want$s, tolerance = 1e-14)
  # LogSumExp and SumSoftMaxWeight against central finite differences
  num_grad <- function(f, z, h = 1e-6) {
    vapply(seq_along(z), function(k) {
      zp <- z; zp[k] <- zp[k] + h
      zm <- z; zm[k] <- zm[k] - h
      (f(zp) - f(zm)) / (2 * h)
    }, numeric(1))
  }
  f_lse <- function(yy) sum(logsumexp(-sqdist(x_i, Vj(yy)), index = "j", weight = Vj(abs(b))))
  g_lse <- reduction_grad(-sqdist(x_i, y_j), y_j, index = "j", reduction = "logsumexp", weight = Vj(abs(b)))
  expect_equal(c(g_lse), num_grad(f_lse, y), tolerance = 1e-6)
  f_ssm <- function(xx) sum(sumsoftmaxweight(-sqdist(Vi(xx), y_j), u_j, index = "i"))
  g_ssm <- reduction_grad(-sqdist(x_i, y_j), x_i, index = "i", reduction = "sumsoftmaxweight", v = u_j)
  expect_equal(c(g_ssm), num_grad(f_ssm, x), tolerance = 1e-6)
  # compiled once per structure
  kernops:::lazy_cache_clear()
  for (it in 1:3) reduction_grad(exp(-sqdist(Vi(x + it), y_j) * 0.3) * b_j, y_j, index = "j")
  expect_identical(kernops:::lazy_cache_stats()$misses, 1)
  expect_identical(kernops:::lazy_cache_stats()$hits, 2)
  expect_error(reduction_grad(K, Vi(x), index = "j"), "does not appear", class = "kernops_error_input")
  expect_error(reduction_grad(K, x_i * 2, index = "j"), class = "kernops_error_input")
  expect_error(reduction_grad(K, x_i), "needs `index`", class = "kernops_error_input")
  expect_error(reduction_grad(K, x_i, index = "j", reduction = "min"), class = "kernops_error_input")
  expect_error(reduction_grad(K, x_i, index = "j", direction = matrix(1, 2, 2)), class = "kernops_error_dimension")
  # kernel_op() with an R formula gives an ordinary op, which kernel_grad() differentiates
  op_r <- kernel_op(~ sum_j(exp(-s * sqdist(x, y)) * b), c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
  expect_equal(kernel_grad(op_r, "x")(x, y, b, 0.7, matrix(1, N, 1)), gop(x, y, b, 0.7, matrix(1, N, 1))$x,
               tolerance = 1e-14)
})

test_that("data that would take more memory than allowed as doubles is a memory error", {
  # Vj(1:3e9) kept the compact sequence, with a row count beyond R's integers (NA), and
  # its 24 GB were allocated unchecked when a reduction read them
  e <- expect_error(Vj(1:3e9), class = "kernops_error_memory")
  expect_match(conditionMessage(e), "The data of Vj\\(\\) \\(3000000000 values\\) would need 24 GB")
  old <- options(kernops.max_output_bytes = 1e6)
  on.exit(options(old))
  expect_error(Vi(1:2e5), "limit of 1 MB", class = "kernops_error_memory")
  expect_equal(sum(Vi(1:2) * Vj(1:3), index = "j"), matrix(c(6, 12), 2, 1))
})

test_that("%*% and a factor operand give classed errors where R lets a package handle them", {
  skip_if(getRversion() < "4.3.0", "R < 4.3 has neither the matrixOps group generic nor chooseOpsMethod()")
  x_i <- Vi(matrix(1:6 / 6, 3, 2))
  y_j <- Vj(matrix(1:8 / 8, 4, 2))
  e <- expect_error(x_i %*% y_j, class = "kernops_error_input")
  expect_match(conditionMessage(e), "`%*%` is not defined for LazyTensors", fixed = TRUE)
  expect_error(x_i %*% matrix(1, 2, 2), class = "kernops_error_input")
  expect_error(matrix(1, 2, 3) %*% x_i, class = "kernops_error_input")
  for (f in list(function() x_i + factor(1), function() factor(1) * x_i)) {
    e <- NULL
    expect_no_warning(e <- tryCatch(f(), kernops_error_input = function(e) e))  # no "Incompatible methods"
    expect_s3_class(e, "kernops_error_input")
    expect_match(conditionMessage(e), "Cannot combine a LazyTensor with a factor", fixed = TRUE)
  }
})

# test-ops.R -- every operation of the formula language, as Sum_Reduction(F, axis),
# against the dense base-R oracle (helper-oracle.R), in float64 (1e-12) and float32
# (1e-5). The tolerance scale of a sum is max_i sum_j |F_ij|, the size of its rounding
# error; float32 references are computed on inputs rounded to float32.

# ---- the shared data set: one declaration per name ----------------------------------

op_decls <- c(
  x = "x = Vi(3)", y = "y = Vj(3)", a = "a = Vi(1)", b = "b = Vj(1)",
  c = "c = Vi(2)", A = "A = Vi(6)", u = "u = Vj(3)", w = "w = Vj(2)", B = "B = Vj(6)",
  p = "p = Pm(3)", g = "g = Pm(1)", P = "P = Pm(6)"
)
op_index <- c(x = "i", y = "j", a = "i", b = "j", c = "i", A = "i", u = "j", w = "j",
              B = "j", p = "parameter", g = "parameter", P = "parameter")

make_op_data <- function(N = 11, M = 19) {
  set.seed(42)
  list(
    x = runif_mat(N, 3, 0.5, 1.5), y = runif_mat(M, 3, 0.5, 1.5),
    a = runif_mat(N, 1, 0.5, 1.5), b = runif_mat(M, 1, 0.5, 1.5),
    c = runif_mat(N, 2, -1, 1), A = runif_mat(N, 6, -1, 1),
    u = runif_mat(M, 3, -1, 1), w = runif_mat(M, 2, -1, 1), B = runif_mat(M, 6, -1, 1),
    p = c(0.5, -1.25, 2), g = 0.75, P = c(1, -2, 0.5, 3, -1, 0.25)
  )
}
op_data <- make_op_data()

# The rows seen by the pair (i, j): i-variables at row i, j-variables at row j, and
# parameters whole.
pair_rows <- function(d, i, j) {
  out <- list()
  for (nm in names(d)) {
    out[[nm]] <- switch(op_index[[nm]], i = d[[nm]][i, ], j = d[[nm]][j, ], parameter = d[[nm]])
  }
  out
}

# One case: the formula F, the names of the variables it uses (in declaration order)
# and the reference F in R, a function of the list of rows.
case <- function(formula, vars, ref) list(formula = formula, vars = vars, ref = ref)

rowmaj <- function(v, nrow) matrix(v, nrow = nrow, byrow = TRUE)  # row-major storage
sqd <- function(x, y) sum((x - y)^2)

op_cases <- list(
  # arithmetic
  case("x + y", c("x", "y"), function(v) v$x + v$y),
  case("x - y", c("x", "y"), function(v) v$x - v$y),
  case("x * y", c("x", "y"), function(v) v$x * v$y),
  case("x / y", c("x", "y"), function(v) v$x / v$y),
  case("-x * y", c("x", "y"), function(v) -v$x * v$y),
  case("-(x - y)", c("x", "y"), function(v) -(v$x - v$y)),
  case("x - -y", c("x", "y"), function(v) v$x + v$y),
  case("x + y * a - b / a", c("x", "y", "a", "b"), function(v) v$x + v$y * v$a - v$b / v$a),
  # powers
  case("(x - y)^2", c("x", "y"), function(v) (v$x - v$y)^2),
  case("x^3 * y", c("x", "y"), function(v) v$x^3 * v$y),
  case("Pow(x - y, 3)", c("x", "y"), function(v) (v$x - v$y)^3),
  case("Pow(x, -2) * y", c("x", "y"), function(v) v$x^-2 * v$y),
  case("x^-1 + y", c("x", "y"), function(v) 1 / v$x + v$y),
  case("Pow(x * y, 0)", c("x", "y"), function(v) rep(1, 3)),
  case("x^0.5 * y", c("x", "y"), function(v) sqrt(v$x) * v$y),
  case("Powf(x, b)", c("x", "b"), function(v) v$x^v$b),
  case("Powf(x + y, 1.5)", c("x", "y"), function(v) (v$x + v$y)^1.5),
  case("Square(x - y)", c("x", "y"), function(v) (v$x - v$y)^2),
  case("Sqrt(x + y)", c("x", "y"), function(v) sqrt(v$x + v$y)),
  case("Rsqrt(x * y)", c("x", "y"), function(v) 1 / sqrt(v$x * v$y)),
  # transcendental and friends
  case("Exp(-x * y)", c("x", "y"), function(v) exp(-v$x * v$y)),
  case("Log(x + y)", c("x", "y"), function(v) log(v$x + v$y)),
  case("Log1p(x - y)", c("x", "y"), function(v) log1p(v$x - v$y)),
  case("Expm1(x - y) * b", c("x", "y", "b"), function(v) expm1(v$x - v$y) * v$b),
  case("Inv(x + y)", c("x", "y"), function(v) 1 / (v$x + v$y)),
  case("Abs(x - y)", c("x", "y"), function(v) abs(v$x - v$y)),
  case("Sign(x - y) * b", c("x", "y", "b"), function(v) sign(v$x - v$y) * v$b),
  case("Sign(x - x) + y", c("x", "y"), function(v) v$y),  # Sign(0) = 0
  case("Sin(x * y)", c("x", "y"), function(v) sin(v$x * v$y)),
  case("Cos(x - y)", c("x", "y"), function(v) cos(v$x - v$y)),
  case("Powf(x - y, 0) + Powf(Abs(x), y - y)", c("x", "y"), function(v) rep(2, 3)),  # x^0 = 1, as in R
  case("Step(x - y)", c("x", "y"), function(v) as.numeric(v$x - v$y >= 0)),
  case("Step(x - x) * y", c("x", "y"), function(v) v$y),  # Step(0) = 1
  case("ReLU(x - y)", c("x", "y"), function(v) pmax(v$x - v$y, 0)),
  case("Clamp(x - y, -0.25, 0.25)", c("x", "y"),
       function(v) pmin(pmax(v$x - v$y, -0.25), 0.25)),
  case("Clamp(x - y, -0.5 * a, 0.5 * b)", c("x", "y", "a", "b"),
       function(v) pmin(pmax(v$x - v$y, -0.5 * v$a), 0.5 * v$b)),
  case("Min(x, y)", c("x", "y"), function(v) pmin(v$x, v$y)),
  case("Max(x, y)", c("x", "y"), function(v) pmax(v$x, v$y)),
  case("Min(x, b)", c("x", "b"), function(v) pmin(v$x, v$b)),
  case("IfElse(x - y, x, y * b)", c("x", "y", "b"),
       function(v) ifelse(v$x - v$y >= 0, v$x, v$y * v$b)),
  case("IfElse(a - b, x, y)", c("x", "y", "a", "b"),
       function(v) if (v$a - v$b >= 0) v$x else v$y),
  # vector operations
  case("SqNorm2(x - y)", c("x", "y"), function(v) sum((v$x - v$y)^2)),
  case("Norm2(x - y)", c("x", "y"), function(v) sqrt(sum((v$x - v$y)^2))),
  case("Normalize(x - y)", c("x", "y"), function(v) (v$x - v$y) / sqrt(sum((v$x - v$y)^2))),
  case("Sum(x * y)", c("x", "y"), function(v) sum(v$x * v$y)),
  case("SqDist(x, y)", c("x", "y"), function(v) sqd(v$x, v$y)),
  case("(x | y)", c("x", "y"), function(v) sum(v$x * v$y)),
  case("(x - y | u) * c", c("x", "y", "c", "u"), function(v) sum((v$x - v$y) * v$u) * v$c),
  case("Elem(x, 2) * Elem(y, 0)", c("x", "y"), function(v) v$x[3] * v$y[1]),
  case("Elem(x, 0) - y", c("x", "y"), function(v) v$x[1] - v$y),
  case("Extract(Concat(x, y), 2, 3)", c("x", "y"), function(v) c(v$x, v$y)[3:5]),
  case("Extract(x * y, 1, 2)", c("x", "y"), function(v) (v$x * v$y)[2:3]),
  case("Concat(x, w)", c("x", "w"), function(v) c(v$x, v$w)),
  case("Concat(a, y - x)", c("x", "y", "a"), function(v) c(v$a, v$y - v$x)),
  case("MatVecMult(A, y)", c("y", "A"), function(v) as.vector(rowmaj(v$A, 2) %*% v$y)),
  case("MatVecMult(P, x - y)", c("x", "y", "P"), function(v) as.vector(rowmaj(v$P, 2) %*% (v$x - v$y))),
  case("MatVecMult(B, c)", c("c", "B"), function(v) as.vector(rowmaj(v$B, 3) %*% v$c)),
  case("VecMatMult(c, B)", c("c", "B"), function(v) as.vector(v$c %*% rowmaj(v$B, 2))),
  case("VecMatMult(w, A)", c("A", "w"), function(v) as.vector(v$w %*% rowmaj(v$A, 2))),
  case("TensorProd(c, y)", c("y", "c"), function(v) as.vector(t(outer(v$c, v$y)))),
  case("TensorProd(x - y, w)", c("x", "y", "w"), function(v) as.vector(t(outer(v$x - v$y, v$w)))),
  # broadcasting, parameters, constants
  case("a * y", c("y", "a"), function(v) v$a * v$y),
  case("x - b", c("x", "b"), function(v) v$x - v$b),
  case("b / x", c("x", "b"), function(v) v$b / v$x),
  case("Exp(-g * SqDist(x, y)) * u", c("x", "y", "u", "g"), function(v) exp(-v$g * sqd(v$x, v$y)) * v$u),
  case("p * x - y", c("x", "y", "p"), function(v) v$p * v$x - v$y),
  case("(p | x - y)", c("x", "y", "p"), function(v) sum(v$p * (v$x - v$y))),
  case("Exp(-(p | Square(x - y)))", c("x", "y", "p"), function(v) exp(-sum(v$p * (v$x - v$y)^2))),
  case("2.5 * x + 0.25 - y", c("x", "y"), function(v) 2.5 * v$x + 0.25 - v$y),
  case("1e-1 * x * y + 3", c("x", "y"), function(v) 0.1 * v$x * v$y + 3),
  case("IntCst(3) * x - y", c("x", "y"), function(v) 3 * v$x - v$y),
  case("Zero(3) + x * y", c("x", "y"), function(v) v$x * v$y),
  case("0 * x + y", c("x", "y"), function(v) v$y),
  case("1 * x / 1 + y", c("x", "y"), function(v) v$x + v$y),
  case("(2 * 3 - 4) * x * y", c("x", "y"), function(v) 2 * v$x * v$y),
  # named kernels (g = 1/sigma^2)
  case("GaussKernel(g, x, y, u)", c("x", "y", "u", "g"),
       function(v) exp(-v$g * sqd(v$x, v$y)) * v$u),
  case("GaussKernel(g, x, y, b)", c("x", "y", "b", "g"),
       function(v) exp(-v$g * sqd(v$x, v$y)) * v$b),
  case("LaplaceKernel(g, x, y, u)", c("x", "y", "u", "g"),
       function(v) exp(-sqrt(v$g * sqd(v$x, v$y))) * v$u),
  case("CauchyKernel(g, x, y, u)", c("x", "y", "u", "g"),
       function(v) 1 / (1 + v$g * sqd(v$x, v$y)) * v$u),
  case("InverseMultiquadricKernel(g, x, y, u)", c("x", "y", "u", "g"),
       function(v) 1 / sqrt(1 + v$g * sqd(v$x, v$y)) * v$u),
  case("Matern32Kernel(g, x, y, u)", c("x", "y", "u", "g"), function(v) {
    r <- sqrt(3 * v$g * sqd(v$x, v$y))
    (1 + r) * exp(-r) * v$u
  }),
  case("Matern52Kernel(g, x, y, u)", c("x", "y", "u", "g"), function(v) {
    r <- sqrt(5 * v$g * sqd(v$x, v$y))
    (1 + r + r^2 / 3) * exp(-r) * v$u
  }),
  case("GaussKernel(a, x, y, u)", c("x", "y", "a", "u"),  # a per-i bandwidth
       function(v) exp(-v$a * sqd(v$x, v$y)) * v$u),
  # more broadcasting: a dimension-1 value in every position of an elementwise op
  case("Clamp(b, x - 1, y)", c("x", "y", "b"), function(v) pmin(pmax(v$b, v$x - 1), v$y)),
  case("Clamp(x - y, -a, b)", c("x", "y", "a", "b"), function(v) pmin(pmax(v$x - v$y, -v$a), v$b)),
  case("IfElse(x - y, a, b)", c("x", "y", "a", "b"), function(v) ifelse(v$x - v$y >= 0, v$a, v$b)),
  case("Powf(b, x)", c("x", "b"), function(v) v$b^v$x),
  case("Max(b, x - y)", c("x", "y", "b"), function(v) pmax(v$b, v$x - v$y)),
  case("MatVecMult(x - y, b)", c("x", "y", "b"), function(v) (v$x - v$y) * v$b),
  case("TensorProd(a, y)", c("y", "a"), function(v) v$a * v$y),
  # symbolic derivatives
  case("Grad(Exp(-g * SqDist(x, y)), x, b)", c("x", "y", "b", "g"),
       function(v) v$b * exp(-v$g * sqd(v$x, v$y)) * (-2 * v$g * (v$x - v$y))),
  case("Grad(SqDist(x, y), y, b)", c("x", "y", "b"), function(v) -2 * (v$x - v$y) * v$b),
  case("Grad(GaussKernel(g, x, y, u), x, y)", c("x", "y", "u", "g"),  # gradient of <y, K(x, y) u>
       function(v) sum(v$y * v$u) * exp(-v$g * sqd(v$x, v$y)) * (-2 * v$g * (v$x - v$y))),
  case("Diff(Exp(-SqDist(x, y)), x, u)", c("x", "y", "u"),
       function(v) exp(-sqd(v$x, v$y)) * (-2 * sum((v$x - v$y) * v$u)))
)

run_case <- function(cs, dtype, axis = 0) {
  data <- op_data[cs$vars]
  check_sum_op(cs$formula, unname(op_decls[cs$vars]), data,
               function(i, j, d) cs$ref(pair_rows(d, i, j)), dtype = dtype, axis = axis)
}

for (isa in test_isas()) {
  for (dtype in c("float64", "float32")) {
    for (axis in 0:1) {
      test_that(sprintf("every operation matches the dense reference (%s, axis %d, isa %s)",
                        dtype, axis, isa), {
        with_isa(isa, for (cs in op_cases) run_case(cs, dtype, axis))
      })
    }
  }
}

test_that("Sin and Cos of large arguments (libm beyond 1e6) match R in float64", {
  # float32 rounds such arguments by more than a period, so only float64 is compared
  cs <- list(formula = "Sin(300 * x) * Cos(2e6 * y) + Cos(3e5 * x)", vars = c("x", "y"),
             ref = function(v) sin(300 * v$x) * cos(2e6 * v$y) + cos(3e5 * v$x))
  for (isa in test_isas()) with_isa(isa, for (axis in 0:1) run_case(cs, "float64", axis))
})

test_that("the reference table covers every operation of the language", {
  ops <- c("Pow(", "Powf(", "Square(", "Sqrt(", "Rsqrt(", "Exp(", "Log(", "Log1p(", "Expm1(", "Inv(", "Abs(",
           "Sign(", "Sin(", "Cos(", "Step(", "ReLU(", "Clamp(", "Min(", "Max(", "IfElse(",
           "SqNorm2(", "Norm2(", "Normalize(", "Sum(", "SqDist(", "|", "Elem(", "Extract(",
           "Concat(", "MatVecMult(", "VecMatMult(", "TensorProd(", "GaussKernel(",
           "LaplaceKernel(", "CauchyKernel(", "InverseMultiquadricKernel(", "Matern32Kernel(",
           "Matern52Kernel(", "Grad(", "Diff(", "^", "+", "-", "*", "/")
  formulas <- vapply(op_cases, `[[`, "", "formula")
  for (o in ops) expect_true(any(grepl(o, formulas, fixed = TRUE)), label = o)
})

test_that("inline variables Vi(pos, dim) / Vj(pos, dim) / Pm(pos, dim) work without declarations", {
  d <- op_data
  op <- kernel_op("Sum_Reduction(Exp(-Pm(2,1) * SqDist(Vi(0,3), Vj(1,3))) * Vj(1,3), 0)",
                  character(), dtype = "float64")
  got <- op(d$x, d$y, d$g)
  want <- dense_reduce_f(function(i, j) exp(-d$g * sqd(d$x[i, ], d$y[j, ])) * d$y[j, ],
                         nrow(d$x), nrow(d$y), "Sum")
  expect_close(got, want, "float64")
  # Inline variables mixed with declared ones.
  op2 <- kernel_op("Sum_Reduction((x - Vj(1,3) | Vj(2,3)), 1)", c("x = Vi(3)"))
  got2 <- op2(d$x, d$y, d$u)
  want2 <- dense_reduce_f(function(i, j) sum((d$x[i, ] - d$y[j, ]) * d$u[j, ]),
                          nrow(d$x), nrow(d$y), "Sum", axis = 1)
  expect_close(got2, want2, "float64")
})

test_that("declarations with explicit positions reorder the arguments", {
  d <- op_data
  op <- kernel_op("Sum_Reduction((x - y) * b, 0)", c("b = Vj(2,1)", "x = Vi(0,3)", "y = Vj(1,3)"))
  expect_named(formals(op), c("x", "y", "b", "..."))
  got <- op(d$x, d$y, d$b)
  want <- dense_reduce_f(function(i, j) (d$x[i, ] - d$y[j, ]) * d$b[j, ], nrow(d$x), nrow(d$y), "Sum")
  expect_close(got, want, "float64")
  expect_identical(op(b = d$b, y = d$y, x = d$x), got)
})

test_that("a repeated subexpression gives the same result as writing it out", {
  d <- op_data
  op1 <- kernel_op("Sum_Reduction(Exp(-SqDist(x, y)) * Exp(-SqDist(x, y)) * u, 0)",
                   c("x = Vi(3)", "y = Vj(3)", "u = Vj(3)"))
  op2 <- kernel_op("Sum_Reduction(Exp(-2 * SqDist(x, y)) * u, 0)",
                   c("x = Vi(3)", "y = Vj(3)", "u = Vj(3)"))
  expect_close(op1(d$x, d$y, d$u), op2(d$x, d$y, d$u), "float64", tol = 1e-13)
})

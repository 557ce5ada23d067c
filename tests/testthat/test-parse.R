# test-parse.R -- canonical strings round-trip through the parser, print() describes the
# op, and malformed formulas raise kernops_error_parse (with a 1-based `pos`) or
# kernops_error_dimension.

parse_args <- c("x = Vi(3)", "y = Vj(3)", "a = Vi(1)", "b = Vj(1)", "u = Vj(3)",
                "A = Vi(6)", "p = Pm(3)", "g = Pm(1)")

set.seed(99)
parse_data <- list(
  x = runif_mat(5, 3, 0.5, 1.5), y = runif_mat(8, 3, 0.5, 1.5),
  a = runif_mat(5, 1, 0.5, 1.5), b = runif_mat(8, 1, 0.5, 1.5), u = runif_mat(8, 3, -1, 1),
  A = runif_mat(5, 6, -1, 1), p = c(0.5, -1, 2), g = 0.7
)

roundtrip_formulas <- c(
  "Sum_Reduction(x + y, 0)",
  "Sum_Reduction(x - y - (x - y) * b, 1)",
  "Sum_Reduction(x - (y - x), 0)",
  "Sum_Reduction(x / (y / x), 0)",
  "Sum_Reduction(x - -y, 0)",
  "Sum_Reduction(x * -y, 0)",
  "Sum_Reduction(x - 2 * -y, 0)",
  "Sum_Reduction((x - y) / -2, 0)",
  "Sum_Reduction(-(x - y) * b, 0)",
  "Sum_Reduction(-x^2 - y, 0)",
  "Sum_Reduction((-x)^2 - y, 0)",
  "Sum_Reduction(0 - x * y, 0)",
  "Sum_Reduction(x^-2 * y + Pow(y, 3), 0)",
  "Sum_Reduction(x^0.5 - Powf(y, 1.5), 0)",
  "Sum_Reduction(1/3 * x - y, 0)",
  "Sum_Reduction(123456789.123456789 * x * y, 0)",
  "Sum_Reduction(1e-300 * x + 1e300 * y * 1e-300, 0)",
  "Sum_Reduction(Max(x - y, (-1) * 0), 0)",
  "Sum_Reduction(Exp(-g * SqDist(x, y)) * u, 0)",
  "Sum_Reduction(Square(x) + Sqrt(y) + Rsqrt(x) + Log(y) + Inv(x) + Abs(x - y) + Sign(x - y), 0)",
  "Sum_Reduction(Sin(x) * Cos(y) + Step(x - y) + ReLU(y - x), 0)",
  "Sum_Reduction(Clamp(x - y, -0.25, 0.25) + Min(x, y) + Max(x, b), 0)",
  "Sum_Reduction(IfElse(x - y, x, y * b), 0)",
  "Sum_Reduction(Norm2(x - y) * Normalize(x - y), 1)",
  "Sum_Reduction(Sum(x * y) + (x | y) + (p | x - y), 0)",
  "Sum_Reduction(Elem(x, 2) * Extract(Concat(x, y), 2, 3), 0)",
  "Sum_Reduction(MatVecMult(A, y) - VecMatMult(y, A), 0)",
  "Sum_Reduction(TensorProd(x, u), 0)",
  "Sum_Reduction(GaussKernel(g, x, y, u) + LaplaceKernel(g, x, y, u), 0)",
  "Sum_Reduction(CauchyKernel(g, x, y, b) + InverseMultiquadricKernel(g, x, y, b), 0)",
  "Sum_Reduction(Matern32Kernel(g, x, y, u) + Matern52Kernel(g, x, y, u), 1)",
  "Sum_Reduction(Grad(Exp(-SqDist(x, y)), x, IntCst(1)), 0)",
  "Sum_Reduction(Grad(GaussKernel(g, x, y, u), x, x), 0)",
  "Sum_Reduction(Diff(Exp(-SqDist(x, y)), x, y), 0)",
  "Sum_Reduction(Zero(3) + Sin(x) * y, 0)",
  "Min_Reduction(SqDist(x, y), 0)",
  "Max_ArgMax_Reduction(x - y, 1)",
  "ArgMin_Reduction(SqDist(x, y), 1)",
  "KMin_ArgKMin_Reduction(SqDist(x, y), 3, 0)",
  "ArgKMin_Reduction(x * y, 2, 1)",
  "LogSumExp_Reduction(-SqDist(x, y), 0)",
  "LogSumExp_Reduction(-SqDist(x, y) * g, 1, a * b + Square(x))",
  "SumSoftMaxWeight_Reduction(-SqDist(x, y), 0, u - x)"
)

test_that("canonical strings are fixed points of the parser and compute the same numbers", {
  for (f in roundtrip_formulas) {
    op1 <- kernel_op(f, parse_args)
    c1 <- as.character(op1)
    expect_type(c1, "character")
    expect_length(c1, 1)
    expect_false(grepl(" ", c1), label = paste("canonical form of", f, "has no spaces"))
    op2 <- kernel_op(c1, parse_args)
    expect_identical(as.character(op2), c1, label = paste("re-parsed canonical form of", f))
    expect_identical(format(op1), c1)
    r1 <- call_op(op1, parse_data)
    r2 <- call_op(op2, parse_data)
    expect_identical(r2, r1, label = paste("result of re-parsed", f))
  }
})

test_that("canonical strings of inline variables round-trip with the canonical declarations", {
  op <- kernel_op("Sum_Reduction(Exp(-Pm(2,1) * SqDist(Vi(0,3), Vj(1,3))) * Vj(1,3), 1)", character())
  c1 <- as.character(op)
  decls <- environment(op)$.kernops_state$decls
  expect_identical(decls, c("V0 = Vi(0,3)", "V1 = Vj(1,3)", "V2 = Pm(2,1)"))
  op2 <- kernel_op(c1, decls)
  expect_identical(as.character(op2), c1)
  expect_identical(op2(parse_data$x, parse_data$y, 0.7), op(parse_data$x, parse_data$y, 0.7))
})

test_that("whitespace and redundant parentheses do not change the canonical string", {
  a <- as.character(kernel_op("Sum_Reduction( ( (x) - (y) ) * b ,0 )", parse_args))
  b <- as.character(kernel_op("Sum_Reduction((x-y)*b,0)", parse_args))
  expect_identical(a, b)
  expect_identical(a, "Sum_Reduction((x-y)*b,0)")
})

test_that("simplifications are applied once and are stable", {
  canon <- function(f) as.character(kernel_op(f, parse_args))
  expect_identical(canon("Sum_Reduction(-(-x) * y, 0)"), "Sum_Reduction(x*y,0)")
  expect_identical(canon("Sum_Reduction(x^1.0 * y, 0)"), "Sum_Reduction(x*y,0)")
  expect_identical(canon("Sum_Reduction(2^3 * x - y, 0)"), "Sum_Reduction(8*x-y,0)")
  expect_identical(canon("Sum_Reduction(Zero(3) * x + y, 0)"), "Sum_Reduction(y,0)")
  expect_identical(canon("Sum_Reduction(x^-2 * y, 0)"), "Sum_Reduction(Pow(x,-2)*y,0)")
  expect_identical(canon("Sum_Reduction(x^2.5 * y, 0)"), "Sum_Reduction(Powf(x,2.5)*y,0)")
})

test_that("print() shows the reduction, formula, variables, dims, output, dtype and backend", {
  op <- kernel_op("Sum_Reduction(Exp(-g * SqDist(x, y)) * u, 0)",
                  c("x = Vi(3)", "y = Vj(3)", "u = Vj(3)", "g = Pm(1)"))
  expect_output(print(op), "<kernops_op> Sum reduction over j \\(result indexed by i\\)")
  expect_output(print(op), "formula: Sum_Reduction\\(Exp\\(-g\\*SqNorm2\\(x-y\\)\\)\\*u,0\\)")
  expect_output(print(op), "x +Vi +dim 3 +\\(argument 1\\)")
  expect_output(print(op), "y +Vj +dim 3 +\\(argument 2\\)")
  expect_output(print(op), "u +Vj +dim 3 +\\(argument 3\\)")
  expect_output(print(op), "g +Pm +dim 1 +\\(argument 4\\)")
  expect_output(print(op), "output: N x 3 matrix \\(N = rows of the Vi arguments\\)")
  expect_output(print(op), "dtype: float64, backend: auto")
  capture_output(expect_invisible(print(op)))

  op1 <- kernel_op("KMin_ArgKMin_Reduction(SqDist(x, y), 4, 1)", c("x = Vi(2)", "y = Vj(2)"),
                   dtype = "float32", backend = "cpu")
  expect_output(print(op1), "KMin_ArgKMin reduction over i \\(result indexed by j\\)")
  expect_output(print(op1), "output: M x 8 matrix \\(M = rows of the Vj arguments\\)")
  expect_output(print(op1), "dtype: float32, backend: cpu")
  expect_s3_class(op1, "kernops_op")
  expect_true(is.function(op1))
})

test_that("the returned op takes the declared variables as arguments, in declaration order", {
  op <- kernel_op("Sum_Reduction(a * b, 0)", c("b = Vj(1)", "a = Vi(1)"))
  expect_named(formals(op), c("b", "a", "..."))
  expect_identical(op(b = 1:3, a = c(1, 1)), matrix(6, 2, 1))
  expect_identical(op(1:3, 1:2), matrix(c(6, 12), 2, 1))
})

test_that("variable names that are R keywords or internal names work", {
  for (nm in c("x.1", "x_1", "environment", "run_kernel_op", "missing", "get", "data",
               "state", "env", "function", "if", "TRUE")) {
    op <- kernel_op(sprintf("Sum_Reduction(%s * y, 0)", nm), c(sprintf("%s = Vi(1)", nm), "y = Vj(1)"))
    expect_identical(op(c(1, 2), c(1, 1, 1)), matrix(c(3, 6), 2, 1), label = nm)
  }
})

# ---- parse errors ------------------------------------------------------------------

# Expects a kernops_error_parse whose `pos` points at `at` (a 1-based position, or a
# string whose first occurrence in the source gives it).
expect_parse_error <- function(formula, args = parse_args, at = NULL) {
  e <- expect_error(kernel_op(formula, args), class = "kernops_error_parse")
  expect_s3_class(e, "kernops_error")
  if (!is.null(at)) {
    src <- e$source
    want <- if (is.character(at)) regexpr(at, src, fixed = TRUE)[[1]] else at
    expect_identical(e$pos, as.numeric(want), label = sprintf("pos of the error in \"%s\"", src))
    expect_true(grepl("^", conditionMessage(e), fixed = TRUE))
  }
  invisible(e)
}

test_that("unbalanced parentheses are parse errors at the offending token", {
  f <- "Sum_Reduction(Exp(-x), 0"
  e <- expect_parse_error(f, at = nchar(f) + 1)  # end of the formula
  expect_identical(e$source, f)
  expect_parse_error("Sum_Reduction(Exp(-x)), 0)", at = "), 0")
  expect_parse_error("Sum_Reduction(Exp(-x, 0)")
  expect_parse_error("Sum_Reduction((x - y, 0)")
  expect_parse_error("Sum_Reduction((x | y, 0)")
})

test_that("unknown functions and unknown variables are parse errors", {
  e <- expect_parse_error("Sum_Reduction(Foo(x), 0)", at = "Foo")
  expect_identical(e$token, "Foo")
  e <- expect_parse_error("Sum_Reduction(x - z, 0)", at = "z")
  expect_identical(e$token, "z")
  expect_parse_error("Sum_Reduction(inf * x, 0)", at = "inf")
  expect_parse_error("Sum_Reduction(x $ y, 0)", at = "$")
  expect_parse_error("Sum_Reduction(exp(x), 0)", at = "exp")
})

test_that("a wrong number of arguments is a parse error", {
  expect_parse_error("Sum_Reduction(Exp(x, y), 0)", at = ", y")  # the extra argument
  expect_parse_error("Sum_Reduction(SqDist(x), 0)", at = "SqDist")
  expect_parse_error("Sum_Reduction(GaussKernel(g, x, y), 0)", at = "GaussKernel")
  expect_parse_error("Sum_Reduction(Elem(x), 0)")
  expect_parse_error("Sum_Reduction(Clamp(x, y), 0)")
  expect_parse_error("Sum_Reduction(Min(x), 0)")
  expect_parse_error("KMin_Reduction(x, 0)")
  expect_parse_error("Sum_Reduction(x - y, 0, x)", at = ", x")
  expect_parse_error("SumSoftMaxWeight_Reduction(-SqDist(x, y), 0)")
  expect_parse_error("Sum_Reduction(Grad(SqDist(x, y), x + y, IntCst(1)), 0)")
})

test_that("malformed declarations are parse errors located in the declaration", {
  for (bad in c("x = Vk(3)", "x Vi(3)", "x = Vi(0)", "x = Vi()", "x = Vi(1.5)",
                "x = Vi(3) extra", "x = Vi(3", "= Vi(3)", "x = Vi(-1)")) {
    e <- expect_parse_error("Sum_Reduction(x - y, 0)", c(bad, "y = Vj(3)"))
    expect_identical(e$source, bad)
    expect_true(is.numeric(e$pos) && e$pos >= 1 && e$pos <= nchar(bad) + 1, label = bad)
  }
  e <- expect_parse_error("Sum_Reduction(x - y, 0)", c("x = Vk(3)", "y = Vj(3)"))
  expect_identical(e$pos, 5)
  expect_identical(e$token, "Vk")
  e <- expect_parse_error("Sum_Reduction(x - y, 0)", c("x Vi(3)", "y = Vj(3)"))
  expect_identical(e$pos, 3)
  e <- expect_error(kernel_op("Sum_Reduction(x - y, 0)", c("", "y = Vj(3)")), class = "kernops_error_parse")
  expect_identical(e$pos, 1)
  # the same name twice, the same position twice
  expect_parse_error("Sum_Reduction(x, 0)", c("x = Vi(3)", "x = Vj(3)"))
  expect_parse_error("Sum_Reduction(x - y, 0)", c("x = Vi(0,3)", "y = Vj(0,3)"))
})

test_that("reserved names cannot be declared", {
  for (nm in c("Exp", "Vi", "Vj", "Pm", "SqDist", "Norm2", "GaussKernel", "Grad",
               "Sum_Reduction", "LogSumExp_Reduction", "Sum", "Elem", "IntCst")) {
    e <- expect_parse_error("Sum_Reduction(y, 0)", c(paste(nm, "= Vi(3)"), "y = Vj(3)"), at = 1)
    expect_identical(e$token, nm)
  }
})

test_that("a missing reduction, a bad axis and trailing text are parse errors", {
  expect_parse_error("Exp(-SqDist(x, y))", at = 1)
  expect_parse_error("SqDist(x, y)", at = 1)
  # an empty formula is a parse error at position 1, like any other (documented: every
  # kernops_error_parse carries `pos`, `token` and `source`)
  e <- expect_error(kernel_op("", parse_args), class = "kernops_error_parse")
  expect_identical(e$pos, 1)
  expect_identical(e$source, "")
  expect_parse_error("Sum_Reduction(x - y, 2)", at = "2")
  expect_parse_error("Sum_Reduction(x - y, -1)")
  expect_parse_error("Sum_Reduction(x - y, 0.5)", at = "0.5")
  expect_parse_error("Sum_Reduction(x - y)")
  expect_parse_error("KMin_Reduction(SqDist(x, y), 0, 0)", at = "0, 0")
  expect_parse_error("Sum_Reduction(x - y, 0) foo", at = "foo")
  expect_parse_error("Sum_Reduction(x - y, 0))", at = 24)
  expect_parse_error("Sum_Reduction(x - y, 0) + x", at = "+ x")
  expect_parse_error("Sum_Reduction(x^y, 0)", at = "y,")
  expect_parse_error("Sum_Reduction(x - , 0)", at = ", 0")
})

test_that("non-string formulas and declarations are input errors", {
  expect_error(kernel_op(NA_character_, parse_args), class = "kernops_error_input")
  expect_error(kernel_op(c("Sum_Reduction(x, 0)", "x"), parse_args), class = "kernops_error_input")
  expect_error(kernel_op(1, parse_args), class = "kernops_error_input")
  expect_error(kernel_op("Sum_Reduction(x, 0)", NA_character_), class = "kernops_error_input")
  expect_error(kernel_op("Sum_Reduction(x, 0)", 3), class = "kernops_error_input")
  # positions must have no gaps
  expect_error(kernel_op("Sum_Reduction(x - y, 0)", c("x = Vi(0,3)", "y = Vj(2,3)")),
               class = "kernops_error_input")
})

# ---- dimension errors in formulas ------------------------------------------------------

test_that("shapes that do not fit inside a formula are dimension errors", {
  dim_err <- function(f, args) {
    e <- expect_error(kernel_op(f, args), class = "kernops_error_dimension")
    expect_s3_class(e, "kernops_error")
    invisible(e)
  }
  a32 <- c("x = Vi(3)", "y = Vj(2)")
  e <- dim_err("Sum_Reduction(x - y, 0)", a32)
  expect_false(inherits(e, "kernops_error_parse"))
  dim_err("Sum_Reduction(x * y + 1, 0)", a32)
  dim_err("Sum_Reduction(Min(x, y), 0)", a32)
  dim_err("Sum_Reduction(IfElse(x, y, x), 0)", a32)
  dim_err("Sum_Reduction((x | y), 0)", a32)
  dim_err("Sum_Reduction(SqDist(x, y), 0)", a32)
  dim_err("Sum_Reduction(Elem(x, 3) * y, 0)", a32)
  dim_err("Sum_Reduction(Elem(x, -1) * y, 0)", a32)
  dim_err("Sum_Reduction(Extract(x, 2, 2) * y, 0)", a32)
  dim_err("Sum_Reduction(Extract(x, 0, 0) * y, 0)", a32)
  dim_err("Sum_Reduction(MatVecMult(x, y), 0)", a32)  # 3 is not a multiple of 2
  dim_err("Sum_Reduction(VecMatMult(y, x), 0)", a32)
  dim_err("Sum_Reduction(GaussKernel(1, x, y, y), 0)", a32)
  # Grad: the direction must have the dimension of the formula
  dim_err("Sum_Reduction(Grad(SqDist(x, y), x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  dim_err("Sum_Reduction(Diff(SqDist(x, y), x, IntCst(1) + Elem(y, 0) * Extract(y, 0, 2)), 0)",
          c("x = Vi(3)", "y = Vj(3)"))
  # an inline variable that contradicts a declaration
  dim_err("Sum_Reduction(Vi(0,2) - y, 0)", c("x = Vi(3)", "y = Vj(3)"))
  # weighted LogSumExp and SumSoftMaxWeight need F of dimension 1
  dim_err("LogSumExp_Reduction(x - y, 0, y)", c("x = Vi(3)", "y = Vj(3)"))
  dim_err("SumSoftMaxWeight_Reduction(x - y, 0, y)", c("x = Vi(3)", "y = Vj(3)"))
})

test_that("deeply nested formulas raise a parse error instead of overflowing the C stack", {
  decls <- c("x = Vi(1)", "y = Vj(1)")
  nested <- paste0("Sum_Reduction(", strrep("(", 1e5), "x", strrep(")", 1e5), ",0)")
  expect_error(kernel_op(nested, decls), class = "kernops_error_parse")
  expect_error(kernel_op(paste0("Sum_Reduction(", strrep("-", 5000), "x,0)"), decls), class = "kernops_error_parse")
  long_sum <- paste0("Sum_Reduction(x", strrep("+x", 20000), ",0)")
  expect_error(kernel_op(long_sum, decls), class = "kernops_error_parse")
  # a long but admissible chain still works, and so does its gradient
  op <- kernel_op(paste0("Sum_Reduction(y", strrep("+x", 1500), ",0)"), decls)
  expect_equal(op(1:2, 1:3), matrix(c(3 * 1500 * 1 + 6, 3 * 1500 * 2 + 6)))
  expect_equal(kernel_grad(op, "x")(1:2, 1:3, c(1, 1)), matrix(c(4500, 4500)))
})

test_that("an inline variable never takes the name of a declared one", {
  # Vj(1,1) was named V1 like the declared Vi: two arguments V1, and the Vj data ignored
  op <- kernel_op("Sum_Reduction(V1*Vj(1,1), 0)", "V1 = Vi(0,1)")
  expect_identical(names(formals(op)), c("V1", "V1_", "..."))
  expect_equal(op(c(1, 2), c(10, 20, 30)), matrix(c(60, 120), 2, 1))
})

test_that("a variable name beyond R's limit for argument names is a classed error", {
  nm <- strrep("a", 10001)
  expect_error(kernel_op(paste0("Sum_Reduction(", nm, ",0)"), paste(nm, "= Vi(1)")),
               "longer than R's limit", class = "kernops_error_input")
})

test_that("nesting errors carry subtype \"nesting\"; a flat sum names its real limit", {
  decls <- c("x = Vi(1)", "y = Vj(1)")
  e <- tryCatch(kernel_op(paste0("Sum_Reduction(", strrep("(", 1e5), "x", strrep(")", 1e5), ",0)"), decls),
                kernops_error_parse = identity)
  expect_identical(e$subtype, "nesting")
  # x+x+...+x is a left-deep tree: the message says so, at the '+' where the limit is reached
  e <- tryCatch(kernel_op(paste0("Sum_Reduction(x", strrep("+x", 5000), ",0)"), decls),
                kernops_error_parse = identity)
  expect_identical(e$subtype, "nesting")
  expect_match(conditionMessage(e), "sum or difference of more than 2000 terms", fixed = TRUE)
  expect_identical(e$token, "+")
  expect_identical(e$pos, 15 + 1 + 2 * 1999)
  # other parse errors have no subtype
  e <- tryCatch(kernel_op("Sum_Reduction(Exp(x,0)", decls), kernops_error_parse = identity)
  expect_null(e$subtype)
})

test_that("declarations need a comma between numbers and integers in range", {
  # "Vi(3 4)" was read as Vi(3,4)
  e <- tryCatch(kernel_op("Sum_Reduction(x,0)", "x = Vi(3 4)"), kernops_error_parse = identity)
  expect_s3_class(e, "kernops_error_parse")
  expect_identical(e$token, "4")
  expect_match(conditionMessage(e), "found '4'", fixed = TRUE)
  # 3e9 was converted to int before the range check (undefined behaviour)
  expect_error(kernel_op("Sum_Reduction(x,0)", "x = Vi(3e9)"), class = "kernops_error_parse")
  expect_error(kernel_op("Sum_Reduction(x,0)", "x = Vi(1,2,3)"), class = "kernops_error_parse")
})

test_that("a formula whose text would be exponentially long compiles and runs", {
  # Normalize(v) uses v twice: 26 nested ones (311 characters) printed as gigabytes and
  # took 149 s before failing with an unclassed std::bad_alloc
  f <- "x"
  for (k in 1:26) f <- sprintf("Normalize(%s)", f)
  op <- kernel_op(sprintf("Sum_Reduction(%s*y,0)", f), c("x = Vi(3)", "y = Vj(3)"))
  expect_output(print(op), "too large to write out")
  expect_true(is.na(as.character(op)))
  x <- matrix(c(1, -2, 0.5, 3, 0, 1), 2, 3)
  y <- matrix(c(0.5, 1, -1, 2, 0, 1), 2, 3)
  expect_equal(op(x, y), (x / sqrt(rowSums(x^2))) * rep(colSums(y), each = 2))
  # gradients are written from the formula's text: refused with a classed error
  expect_error(kernel_grad(op, "x"), "too large", class = "kernops_error_unsupported")
  # a moderate nesting still prints in full and differentiates
  op8 <- kernel_op(sprintf("Sum_Reduction(%s*y,0)", "Normalize(Normalize(x))"), c("x = Vi(3)", "y = Vj(3)"))
  expect_false(is.na(as.character(op8)))
  expect_s3_class(kernel_grad(op8, "x"), "kernops_grad_op")
})

# test-errors.R -- every error path of running an op: bad data (kernops_error_input),
# shapes that do not fit the declarations (kernops_error_dimension), results too large
# (kernops_error_memory), an unavailable backend (kernops_error_backend), and an
# interrupted computation (kernops_error_interrupt, an "interrupt" condition as R's own)
# after which the session still works.

err_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(2)")
err_op <- kernel_op("Sum_Reduction(Exp(-Elem(s, 0) * SqDist(x, y)) * b * Elem(s, 1), 0)", err_args)
set.seed(17)
err_data <- list(x = runif_mat(6, 3), y = runif_mat(9, 3), b = runif_mat(9, 2), s = c(2, 0.5))

err_ref <- function(d) {
  K <- exp(-d$s[1] * outer(rowSums(d$x^2), rowSums(d$y^2), "+") + 2 * d$s[1] * tcrossprod(d$x, d$y))
  K %*% d$b * d$s[2]
}

# Calls err_op with one argument replaced.
with_arg <- function(name, value) {
  d <- err_data
  d[name] <- list(value)
  do.call(err_op, d)
}

test_that("the reference call works (the error tests below start from valid data)", {
  expect_close(do.call(err_op, err_data), err_ref(err_data), tol = 1e-10)
})

test_that("NA, NaN and Inf in any kind of argument are input errors", {
  for (name in names(err_data)) {
    for (bad in c(NA, NaN, Inf, -Inf)) {
      v <- err_data[[name]]
      v[length(v)] <- bad
      e <- expect_error(with_arg(name, v), class = "kernops_error_input")
      expect_s3_class(e, "kernops_error")
      expect_s3_class(e, "error")
    }
  }
  # NA in an integer matrix too
  xi <- matrix(1:18, 6, 3)
  xi[2, 2] <- NA
  expect_error(with_arg("x", xi), class = "kernops_error_input")
  # and in the float32 path
  op32 <- kernel_op(as.character(err_op), err_args, dtype = "float32")
  d <- err_data
  d$y[1, 1] <- NaN
  expect_error(do.call(op32, d), class = "kernops_error_input")
})

test_that("non-numeric arguments are input errors (logical included)", {
  x <- err_data$x
  bad_values <- list(
    character = matrix(as.character(x), 6, 3),
    logical = matrix(TRUE, 6, 3),
    list = lapply(seq_len(6), function(i) x[i, ]),
    complex = matrix(complex(real = x), 6, 3),
    factor = factor(c("a", "b", "c")),
    null = NULL,
    function_ = function() 1,
    array3d = array(x, c(6, 3, 1))
  )
  for (nm in names(bad_values)) {
    expect_error(with_arg("x", bad_values[[nm]]), class = "kernops_error_input", label = nm)
  }
  expect_error(with_arg("s", "2"), class = "kernops_error_input")
  expect_error(with_arg("s", c(TRUE, FALSE)), class = "kernops_error_input")
  expect_error(with_arg("b", data.frame(a = letters[1:9], b = 1:9)), class = "kernops_error_input")
})

test_that("integer matrices and numeric data frames are accepted", {
  set.seed(2)
  xi <- matrix(sample(0:3, 18, TRUE), 6, 3)
  yi <- matrix(sample(0:3, 27, TRUE), 9, 3)
  d <- err_data
  d$x <- xi
  d$y <- yi
  got <- do.call(err_op, d)
  want <- err_ref(lapply(d, function(v) {
    storage.mode(v) <- "double"
    v
  }))
  expect_close(got, want, tol = 1e-10)
  d2 <- d
  d2$x <- as.data.frame(xi)
  d2$b <- data.frame(p = err_data$b[, 1], q = as.integer(round(10 * err_data$b[, 2])))
  d3 <- d
  d3$b <- cbind(err_data$b[, 1], round(10 * err_data$b[, 2]))
  expect_identical(do.call(err_op, d2), do.call(err_op, d3))
  # integer parameters, and a parameter given as a matrix
  expect_identical(with_arg("s", c(2L, 1L)), with_arg("s", c(2, 1)))
  expect_identical(with_arg("s", matrix(c(2, 0.5), 1, 2)), do.call(err_op, err_data))
  # a plain vector is one column
  op1 <- kernel_op("Sum_Reduction(a * b, 0)", c("a = Vi(1)", "b = Vj(1)"))
  expect_identical(op1(1:3, c(1, 2)), matrix(c(3, 6, 9), 3, 1))
})

test_that("zero-row inputs are input errors", {
  expect_error(with_arg("x", matrix(0, 0, 3)), class = "kernops_error_input")
  expect_error(with_arg("y", matrix(0, 0, 3)), class = "kernops_error_input")
  expect_error(with_arg("b", matrix(0, 0, 2)), class = "kernops_error_input")
  op1 <- kernel_op("Sum_Reduction(a * b, 0)", c("a = Vi(1)", "b = Vj(1)"))
  expect_error(op1(numeric(0), 1), class = "kernops_error_input")
  expect_error(op1(1, numeric(0)), class = "kernops_error_input")
})

test_that("inconsistent row counts between variables of the same index are input errors", {
  # two Vj variables
  expect_error(with_arg("b", runif_mat(8, 2)), class = "kernops_error_input")
  # two Vi variables
  op <- kernel_op("Sum_Reduction((x - y) * a, 0)", c("x = Vi(3)", "a = Vi(1)", "y = Vj(3)"))
  expect_error(op(runif_mat(5, 3), runif_mat(4, 1), runif_mat(7, 3)), class = "kernops_error_input")
  # the same on axis 1
  op1 <- kernel_op("Sum_Reduction((x - y) * a, 1)", c("x = Vi(3)", "a = Vi(1)", "y = Vj(3)"))
  expect_error(op1(runif_mat(5, 3), runif_mat(4, 1), runif_mat(7, 3)), class = "kernops_error_input")
  # different counts for i and for j are fine
  expect_identical(dim(op1(runif_mat(5, 3), runif_mat(5, 1), runif_mat(7, 3))), c(7L, 3L))
})

test_that("a missing argument is an input error", {
  expect_error(err_op(err_data$x, err_data$y, err_data$b), class = "kernops_error_input")
  expect_error(err_op(x = err_data$x, b = err_data$b, s = err_data$s), class = "kernops_error_input")
  expect_error(err_op(), class = "kernops_error_input")
})

test_that("arguments R cannot match are input errors naming them", {
  # R's own "unused argument" errors were unclassed
  d <- err_data
  e <- expect_error(err_op(d$x, d$y, d$b, d$s, 5), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Unused argument `5`.*`x`, `y`, `b`, `s`")
  expect_identical(deparse(conditionCall(e)), "err_op(d$x, d$y, d$b, d$s, 5)")
  e <- expect_error(err_op(d$x, d$y, d$b, d$s, z = 1), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Unused argument `z = 1`.*`z` is not one of them")
  e <- expect_error(err_op(d$x, d$y, d$b, t = d$s), class = "kernops_error_input")
  expect_match(conditionMessage(e), "`t = d\\$s`")
  # two extra arguments, one given by value (as do.call() does)
  e <- expect_error(do.call(err_op, c(d, list(1:3, w = matrix(0, 2, 2)))), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Unused arguments `<an integer vector>`, `w = <a double matrix>`")
  # a missing argument is still named as such
  e <- expect_error(err_op(d$x, d$y, 5), class = "kernops_error_input")
  expect_match(conditionMessage(e), "Argument `s` is missing")
})

test_that("logical data is rejected with a message naming its type", {
  e <- expect_error(with_arg("x", err_data$x > 0.5), class = "kernops_error_input")
  expect_match(conditionMessage(e), "not a logical matrix (for 0/1 values, pass +x or x * 1)", fixed = TRUE)
  e <- expect_error(with_arg("s", c(TRUE, FALSE)), class = "kernops_error_input")
  expect_match(conditionMessage(e), "not a logical vector", fixed = TRUE)
  e <- expect_error(with_arg("x", matrix(as.character(err_data$x), 6, 3)), class = "kernops_error_input")
  expect_match(conditionMessage(e), "not a character matrix", fixed = TRUE)
  e <- expect_error(with_arg("x", stats::lm(mpg ~ wt, datasets::mtcars)), class = "kernops_error_input")
  expect_match(conditionMessage(e), "not an object of class lm", fixed = TRUE)
})

test_that("a malformed debug option is an input error", {
  # kernops.debug_interrupt_after went to C++ unchecked: Rcpp::not_compatible
  for (bad in list(c(1, 2), list(), "a", 1.5, -2)) local({
    old <- options(kernops.debug_interrupt_after = bad)
    on.exit(options(old))
    expect_error(do.call(err_op, err_data), "debug_interrupt_after", class = "kernops_error_input")
  })
})

test_that("K larger than the number of points reduced over is an input error", {
  args <- c("x = Vi(2)", "y = Vj(2)")
  x <- runif_mat(6, 2)
  y <- runif_mat(4, 2)
  for (red in c("KMin", "ArgKMin", "KMin_ArgKMin")) {
    op <- kernel_op(sprintf("%s_Reduction(SqDist(x, y), 5, 0)", red), args)
    expect_error(op(x, y), class = "kernops_error_input")
    op_ok <- kernel_op(sprintf("%s_Reduction(SqDist(x, y), 4, 0)", red), args)
    expect_no_error(op_ok(x, y))
    # axis 1 reduces over i: 6 points
    op1 <- kernel_op(sprintf("%s_Reduction(SqDist(x, y), 7, 1)", red), args)
    expect_error(op1(x, y), class = "kernops_error_input")
    op1_ok <- kernel_op(sprintf("%s_Reduction(SqDist(x, y), 6, 1)", red), args)
    expect_no_error(op1_ok(x, y))
  }
})

test_that("a wrong number of columns or parameter values is a dimension error", {
  expect_error(with_arg("x", runif_mat(6, 2)), class = "kernops_error_dimension")
  expect_error(with_arg("y", runif_mat(9, 4)), class = "kernops_error_dimension")
  expect_error(with_arg("b", runif_mat(9, 1)), class = "kernops_error_dimension")
  expect_error(with_arg("b", runif(9)), class = "kernops_error_dimension")
  expect_error(with_arg("s", 1), class = "kernops_error_dimension")
  expect_error(with_arg("s", c(1, 2, 3)), class = "kernops_error_dimension")
  # a transposed matrix
  expect_error(with_arg("x", t(err_data$x)), class = "kernops_error_dimension")
})

test_that("a formula without a Vj (or Vi) variable is a dimension error when run", {
  op <- kernel_op("Sum_Reduction(Exp(x), 0)", "x = Vi(2)")
  expect_error(op(runif_mat(4, 2)), class = "kernops_error_dimension")
  op1 <- kernel_op("Sum_Reduction(Exp(x), 1)", "x = Vi(2)")  # result indexed by j: unknown size
  expect_error(op1(runif_mat(4, 2)), class = "kernops_error_dimension")
  opj <- kernel_op("Sum_Reduction(y * s, 0)", c("y = Vj(2)", "s = Pm(1)"))
  expect_error(opj(runif_mat(4, 2), 1), class = "kernops_error_dimension")
})

test_that("a bad kernops.max_output_bytes option is a classed error", {
  for (bad in list("a", c(1, 2), NA, -1)) {
    old <- options(kernops.max_output_bytes = bad)
    expect_error(do.call(err_op, err_data), "max_output_bytes", class = "kernops_error_input")
    options(old)
  }
})

test_that("a result larger than kernops.max_output_bytes is a memory error", {
  old <- options(kernops.max_output_bytes = 64)
  on.exit(options(old), add = TRUE)
  e <- expect_error(do.call(err_op, err_data), class = "kernops_error_memory")  # 6 x 2 doubles = 96 bytes
  expect_s3_class(e, "kernops_error")
  # sizes are written readably (they were "0.000000 GB")
  expect_match(conditionMessage(e), "would need 96 bytes (6 rows x 2 columns), more than the limit of 64 bytes",
               fixed = TRUE)
  options(kernops.max_output_bytes = 5e7)
  e <- expect_error(kernel_op("Sum_Reduction(a * b, 0)", c("a = Vi(3)", "b = Vj(1)"))(matrix(1, 3e6, 3), 1),
                    class = "kernops_error_memory")
  expect_match(conditionMessage(e), "would need 72 MB .* limit of 50 MB")
  options(kernops.max_output_bytes = 64)
  # index columns count too
  opk <- kernel_op("KMin_ArgKMin_Reduction(SqDist(x, y), 2, 0)", c("x = Vi(3)", "y = Vj(3)"))
  expect_error(opk(err_data$x, err_data$y), class = "kernops_error_memory")
  # a result under the limit is fine
  op_small <- kernel_op("Sum_Reduction(a * b, 0)", c("a = Vi(1)", "b = Vj(1)"))
  expect_identical(op_small(1, 1:3), matrix(6, 1, 1))
  options(old)
  expect_no_error(do.call(err_op, err_data))
})

# Runs R statements in a child Rscript limited to `vmem_kb` of address space, so that a
# regression cannot take this session down; returns the child's standard output lines.
run_limited_child <- function(statements, vmem_kb = 2000000) {
  rscript <- file.path(R.home("bin"), "Rscript")
  script <- paste(statements, collapse = "; ")
  system2("bash", c("-c", shQuote(sprintf("ulimit -v %d; %s -e %s", vmem_kb, shQuote(rscript), shQuote(script)))),
          stdout = TRUE, stderr = FALSE)
}

test_that("a result R cannot allocate is a memory error, not R's unclassed one", {
  # A child R limited to 2 GB of address space asks for an ArgKMin result of 2.4 GB (under
  # the 16 GiB default limit): before, R's "cannot allocate vector" reached the user.
  skip_on_os("windows")
  skip_if(Sys.which("bash") == "")
  out <- run_limited_child(c(
    "suppressMessages(library(kernops))",
    "op <- kernel_op('ArgKMin_Reduction(SqDist(x, y), 1000, 0)', c('x = Vi(1)', 'y = Vj(1)'))",
    "r <- tryCatch(op(as.double(1:2e5), as.double(1:1000)), error = function(e) e)",
    "cat(class(r)[1], grepl('could not allocate', conditionMessage(r)))"))
  expect_identical(out, "kernops_error_memory TRUE")
})

test_that("data that would take more memory than allowed as doubles is a memory error", {
  # 1:3e9 is a compact sequence that takes no memory: the engine's read of it allocated
  # its 24 GB unchecked (R's unclassed error, or R killed by the system). Run in a child R
  # limited to 2 GB of address space, so that a regression cannot take this session down.
  skip_on_os("windows")
  skip_if(Sys.which("bash") == "")
  out <- run_limited_child(c(
    "suppressMessages(library(kernops))",
    "op <- kernel_op('Sum_Reduction(a * b, 0)', c('a = Vi(1)', 'b = Vj(1)'))",
    "show <- function(r) cat(class(r)[1], conditionMessage(r), '\n')",
    "show(tryCatch(op(matrix(1), 1:3e9), error = function(e) e))",
    "show(tryCatch(op(matrix(1), 1:2e9), error = function(e) e))",
    "options(kernops.max_output_bytes = 1e6)",
    "show(tryCatch(op(matrix(1), 1:2e5), error = function(e) e))",
    "cat(op(matrix(2), 1:1e5), '\n')"))
  expect_length(out, 4)
  expect_match(out[1], "^kernops_error_memory Argument `b` \\(3000000000 values\\) would need 24 GB .*more than the limit of 17.2 GB")
  expect_match(out[2], "^kernops_error_memory Argument `b` \\(2000000000 values\\) would need 16 GB .*which R could not allocate")
  # integers are converted to doubles under the same limit
  expect_match(out[3], "^kernops_error_memory Argument `b` \\(200000 values\\) would need 1.6 MB .*limit of 1 MB")
  expect_identical(out[4], "10000100000 ")
})

test_that("K x dim(F) too large for a K-min reduction is a memory error, not a crash", {
  # K * dim was computed in int: with K * dim = 2^32 the op printed "N x 0 matrix" and the
  # call wrote past the result (a segfault on 512 KB of data)
  e <- expect_error(kernel_op("KMin_Reduction(SumT(SqDist(x,y),65536),65536,0)", c("x = Vi(1)", "y = Vj(1)")),
                    class = "kernops_error_memory")
  expect_match(conditionMessage(e), "65536 x 65536 = 4294967296", fixed = TRUE)
  expect_error(argkmin(sqdist(Vi(matrix(0.5)), Vj(matrix(runif(2^16)))) * Pm(rep(1, 2^16)), k = 2^16, index = "j"),
               class = "kernops_error_memory")
  # up to the limit, the width is right
  op <- kernel_op("KMin_Reduction(SumT(SqDist(x,y),4096),65536,0)", c("x = Vi(1)", "y = Vj(1)"))
  expect_equal(environment(op)$.kernops_state$out_dim, 2^28)
})

test_that("backend = \"cuda\" is a backend error; bad dtype and backend values are input errors", {
  f <- "Sum_Reduction(SqDist(x, y), 0)"
  a <- c("x = Vi(3)", "y = Vj(3)")
  e <- expect_error(kernel_op(f, a, backend = "cuda"), class = "kernops_error_backend")
  expect_s3_class(e, "kernops_error")
  expect_error(kernel_op(f, a, dtype = "float16"), class = "kernops_error_input")
  expect_error(kernel_op(f, a, dtype = c("float32", "float64")), class = "kernops_error_input")
  expect_error(kernel_op(f, a, dtype = NA), class = "kernops_error_input")
  expect_error(kernel_op(f, a, backend = "gpu"), class = "kernops_error_input")
  expect_s3_class(kernel_op(f, a, backend = "auto"), "kernops_op")
  # an invalid instruction-set cap is an input error when the op runs
  op <- kernel_op(f, a)
  for (bad in list("avx3", 2, c("sse2", "avx2"), NA_character_)) {
    old <- options(kernops.cpu_isa = bad)
    expect_error(op(matrix(1, 2, 3), matrix(1, 2, 3)), class = "kernops_error_input")
    options(old)
  }
  for (ok in c("auto", "sse2", "avx2", "avx512")) {
    old <- options(kernops.cpu_isa = ok)
    expect_identical(op(matrix(1, 2, 3), matrix(2, 2, 3)), matrix(6, 2, 1))
    options(old)
  }
  expect_s3_class(kernel_op(f, a, backend = "cpu", dtype = "float32"), "kernops_op")
})

catch_interrupt <- function(expr) tryCatch(expr, interrupt = function(e) e)

test_that("an interrupted computation signals an interrupt and the session stays usable", {
  set.seed(8)
  N <- 3000
  M <- 3000
  x <- runif_mat(N, 2)
  y <- runif_mat(M, 2)
  b <- runif_mat(M, 1)
  op <- kernel_op("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)"))
  old <- options(kernops.debug_interrupt_after = 0)
  e <- catch_interrupt(op(x, y, b))
  expect_s3_class(e, c("kernops_error_interrupt", "interrupt", "condition"), exact = TRUE)
  expect_identical(deparse(conditionCall(e)), "op(x, y, b)")
  expect_s3_class(tryCatch(op(x, y, b), kernops_error_interrupt = function(e) e), "interrupt")
  options(kernops.debug_interrupt_after = 2)
  expect_s3_class(catch_interrupt(op(x, y, b)), "kernops_error_interrupt")
  # with a single thread as well
  old_t <- options(kernops.threads = 1)
  options(kernops.debug_interrupt_after = 0)
  expect_s3_class(catch_interrupt(op(x, y, b)), "kernops_error_interrupt")
  # a LazyTensor reduction reports the user's call
  e <- catch_interrupt(sum(exp(-sqdist(Vi(x), Vj(y))) * Vj(b), index = "j"))
  expect_s3_class(e, "kernops_error_interrupt")
  expect_match(deparse(conditionCall(e)), "^sum\\(")
  options(old_t)
  options(old)
  # afterwards the same op (and others) work normally
  res <- op(x, y, b)
  rows <- c(1, 17, 1500, 3000)
  D <- 0
  for (k in 1:2) D <- D + outer(x[rows, k], y[, k], "-")^2
  expect_close(res[rows, , drop = FALSE], exp(-D) %*% b, scale = max(exp(-D) %*% abs(b)))
  expect_identical(op(x, y, b), res)
  op2 <- kernel_op("Min_ArgMin_Reduction(SqDist(x, y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  D3 <- (outer(x[1:3, 1], y[, 1], "-")^2) + outer(x[1:3, 2], y[, 2], "-")^2
  expect_identical(op2(x[1:3, ], y)$indices, matrix(apply(D3, 1, which.min), 3, 1))
})

test_that("Ctrl-C is not an error: it stops loops that catch errors, as R's own interrupt does", {
  # As a kernops_error, an interrupt was swallowed by try() and tryCatch(error = ), and a
  # loop over many calls could not be stopped with Ctrl-C.
  op <- kernel_op("Sum_Reduction(SqDist(x, y), 0)", c("x = Vi(2)", "y = Vj(2)"))
  x <- runif_mat(50, 2)
  old <- options(kernops.debug_interrupt_after = 0)
  on.exit(options(old), add = TRUE)
  calls <- 0
  res <- catch_interrupt(for (k in 1:3) {
    calls <- calls + 1
    try(op(x, x), silent = TRUE)
    tryCatch(op(x, x), error = function(e) NULL)
  })
  expect_s3_class(res, "kernops_error_interrupt")
  expect_identical(calls, 1)
  expect_s3_class(catch_interrupt(tryCatch(op(x, x), kernops_error = function(e) "swallowed")), "interrupt")
  # uncaught, it ends the script (R returns to the top level, which ends Rscript)
  skip_if(Sys.which("bash") == "")
  script <- paste(
    "suppressMessages(library(kernops))",
    "op <- kernel_op('Sum_Reduction(SqDist(x, y), 0)', c('x = Vi(1)', 'y = Vj(1)'))",
    "options(kernops.debug_interrupt_after = 0)",
    "for (k in 1:3) { cat('call', k, ''); try(op(1:3, 1:3), silent = TRUE) }",
    "cat('not reached')", sep = "; ")
  rscript <- file.path(R.home("bin"), "Rscript")
  out <- suppressWarnings(system2(rscript, c("-e", shQuote(script)), stdout = TRUE, stderr = FALSE))
  expect_identical(c(out), "call 1 ")
  expect_identical(attr(out, "status"), 1L)
})

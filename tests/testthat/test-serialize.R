# test-serialize.R -- a kernops_op survives saveRDS()/readRDS(): the compiled plan (an
# external pointer, NULL after deserialisation) is rebuilt on the first call.

ser_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)")
ser_formula <- "Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0)"
set.seed(4)
ser_data <- list(x = runif_mat(7, 3), y = runif_mat(12, 3), b = runif_mat(12, 2, -1, 1), s = 2)

roundtrip_rds <- function(obj) {
  path <- tempfile(fileext = ".rds")
  on.exit(unlink(path), add = TRUE)
  saveRDS(obj, path)
  readRDS(path)
}

test_that("an op read back with readRDS computes the same result", {
  for (dtype in c("float64", "float32")) {
    op <- kernel_op(ser_formula, ser_args, dtype = dtype)
    want <- call_op(op, ser_data)
    op2 <- roundtrip_rds(op)
    expect_s3_class(op2, "kernops_op")
    expect_identical(as.character(op2), as.character(op))
    expect_identical(names(formals(op2)), names(formals(op)))
    # the external pointer did not survive: it is rebuilt on the first call
    expect_false(kernops:::cpp_plan_valid(environment(op2)$.kernops_state$ptr))
    expect_identical(call_op(op2, ser_data), want)
    expect_true(kernops:::cpp_plan_valid(environment(op2)$.kernops_state$ptr))
    expect_identical(call_op(op2, ser_data), want)
    expect_output(print(op2), paste0("dtype: ", dtype))
    # the original op is untouched
    expect_identical(call_op(op, ser_data), want)
  }
})

test_that("serialize()/unserialize() in memory and ops inside other objects work too", {
  op <- kernel_op("KMin_ArgKMin_Reduction(SqDist(x, y), 2, 1)", c("x = Vi(3)", "y = Vj(3)"))
  want <- op(ser_data$x, ser_data$y)
  op2 <- unserialize(serialize(op, NULL))
  expect_identical(op2(ser_data$x, ser_data$y), want)
  lst <- roundtrip_rds(list(a = op, b = op))
  expect_identical(lst$a(ser_data$x, ser_data$y), want)
  expect_identical(lst$b(ser_data$x, ser_data$y), want)
  inline <- kernel_op("Sum_Reduction(Vi(0,3) * Vj(1,3), 0)", character())
  expect_identical(roundtrip_rds(inline)(ser_data$x, ser_data$y),
                   inline(ser_data$x, ser_data$y))
})

test_that("an op saved in one R session runs in a fresh one", {
  skip_on_cran()
  op <- kernel_op(ser_formula, ser_args)
  want <- call_op(op, ser_data)
  path <- tempfile(fileext = ".rds")
  out <- tempfile(fileext = ".rds")
  on.exit(unlink(c(path, out)), add = TRUE)
  saveRDS(list(op = op, data = ser_data), path)
  script <- sprintf(
    ".libPaths(c(%s, .libPaths())); o <- readRDS('%s'); saveRDS(do.call(o$op, o$data), '%s')",
    paste(deparse(.libPaths()), collapse = ""), path, out
  )
  rscript <- file.path(R.home("bin"), "Rscript")
  status <- system2(rscript, c("-e", shQuote(script)), stdout = FALSE, stderr = FALSE)
  expect_identical(status, 0L)
  expect_identical(readRDS(out), want)
})

test_that("a LazyTensor read back in another session is not confused with new ones", {
  skip_on_cran()
  set.seed(5)
  X <- runif_mat(2, 3)
  X2 <- runif_mat(2, 3)
  Y <- runif_mat(4, 3)
  path <- tempfile(fileext = ".rds")
  out <- tempfile(fileext = ".rds")
  on.exit(unlink(c(path, out)), add = TRUE)
  saveRDS(list(x = Vi(X), X2 = X2, Y = Y), path)
  # In the fresh session the first variables made get the first counter values, as the
  # saved one did here: they must still be different variables.
  script <- sprintf(paste0(
    ".libPaths(c(%s, .libPaths())); suppressPackageStartupMessages(library(kernops)); ",
    "L <- readRDS('%s'); x2 <- Vi(L$X2); y <- Vj(L$Y); ",
    "saveRDS(list(diff = sum(sqdist(L$x, y) - sqdist(x2, y), index = 'j'), ",
    "first = sum(sqdist(L$x, Vj(L$Y)), index = 'j')), '%s')"),
    paste(deparse(.libPaths()), collapse = ""), path, out
  )
  rscript <- file.path(R.home("bin"), "Rscript")
  status <- system2(rscript, c("-e", shQuote(script)), stdout = FALSE, stderr = FALSE)
  expect_identical(status, 0L)
  got <- readRDS(out)
  d2 <- function(A, B) outer(rowSums(A^2), rowSums(B^2), "+") - 2 * tcrossprod(A, B)
  expect_equal(as.vector(got$diff), rowSums(d2(X, Y) - d2(X2, Y)), tolerance = 1e-12)
  expect_equal(as.vector(got$first), rowSums(d2(X, Y)), tolerance = 1e-12)
})

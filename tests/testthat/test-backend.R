test_that("backend_info() reports the build and prints readably", {
  info <- backend_info()
  expect_s3_class(info, "kernops_backend_info")
  expect_named(info, c("cpu", "cuda", "compiler"))
  expect_true(is.integer(info$cpu$threads_default) && info$cpu$threads_default >= 1L)
  expect_type(info$cpu$simd, "character")
  expect_type(info$cuda$toolkit_found_at_build, "logical")
  expect_false(info$cuda$driver_available)
  expect_match(info$cuda$status, "not implemented")
  if (info$cuda$toolkit_found_at_build) {
    # The path and version travel through configure -> make -> sh -> a C string literal.
    expect_true(dir.exists(info$cuda$cuda_home) || nzchar(info$cuda$cuda_home))
    expect_match(info$cuda$cuda_version, "^[0-9]+\\.[0-9]+$|^unknown$")
  } else {
    expect_identical(info$cuda$cuda_home, NA_character_)
  }
  expect_gte(info$compiler$cxx_std, 201703L)
  expect_output(print(info), "kernops backend info")
})

test_that("kernops_threads() resolves option, then env var, then cores", {
  old_opt <- options(kernops.threads = NULL)
  old_env <- Sys.getenv("KERNOPS_THREADS", unset = NA)
  on.exit({
    options(old_opt)
    if (is.na(old_env)) Sys.unsetenv("KERNOPS_THREADS") else Sys.setenv(KERNOPS_THREADS = old_env)
  }, add = TRUE)

  Sys.setenv(KERNOPS_THREADS = "3")
  expect_identical(kernops_threads(), 3L)
  options(kernops.threads = 2L)
  expect_identical(kernops_threads(), 2L)
  options(kernops.threads = NULL)
  Sys.unsetenv("KERNOPS_THREADS")
  expect_true(kernops_threads() >= 1L)
  Sys.setenv(KERNOPS_THREADS = "lots")
  expect_error(kernops_threads(), class = "kernops_error_input")
})

test_that("kernops_threads(n) sets the option and returns the old value", {
  old <- options(kernops.threads = 2L)
  on.exit(options(old), add = TRUE)
  expect_invisible(prev <- kernops_threads(1))
  expect_identical(prev, 2L)
  expect_identical(getOption("kernops.threads"), 1L)
})

test_that("kernops_threads() rejects bad input with a classed error", {
  old <- options(kernops.threads = NULL)
  on.exit(options(old), add = TRUE)
  for (bad in list(0, -1, 1.5, NA, "2", c(1, 2), Inf, 1025, .Machine$integer.max)) {
    expect_error(kernops_threads(bad), class = "kernops_error_input")
  }
  options(kernops.threads = "many")
  expect_error(kernops_threads(), class = "kernops_error_input")
})

test_that("kernops_threads(n) replaces an invalid setting", {
  old <- options(kernops.threads = "4")
  on.exit(options(old))
  expect_error(kernops_threads(), class = "kernops_error_input")
  expect_null(kernops_threads(2))
  expect_identical(kernops_threads(), 2L)
})

test_that("the detected core count is asked once per session", {
  # parallel::detectCores() runs a shell pipeline on Linux (~6 ms), and every reduction
  # asks for its default thread count
  old <- options(kernops.threads = NULL)
  on.exit(options(old))
  n <- kernops_threads()
  expect_identical(environment(kernops:::detected_cores)$cores, kernops:::detected_cores())
  expect_false(is.null(environment(kernops:::detected_cores)$cores))
  expect_true(n >= 1)
})

test_that("backend_info() reports the build and prints readably", {
  info <- backend_info()
  expect_s3_class(info, "kernops_backend_info")
  expect_named(info, c("cpu", "cuda", "compiler"))
  expect_true(is.integer(info$cpu$threads_default) && info$cpu$threads_default >= 1L)
  expect_type(info$cpu$simd, "character")
  expect_type(info$cuda$toolkit_found_at_build, "logical")
  expect_type(info$cuda$available, "logical")
  expect_type(info$cuda$status, "character")
  if (info$cuda$toolkit_found_at_build) {
    # The path and version travel through configure -> make -> sh -> a C string literal.
    expect_true(dir.exists(info$cuda$cuda_home) || nzchar(info$cuda$cuda_home))
    expect_match(info$cuda$cuda_version, "^[0-9]+\\.[0-9]+$|^unknown$")
  } else {
    expect_identical(info$cuda$cuda_home, NA_character_)
  }
  expect_gte(info$compiler$cxx_std, 201703L)
  expect_output(print(info), "kernops backend info")
  expect_output(print(info), "CUDA:")
})

test_that("backend_info() says why CUDA is unusable on a machine without a GPU", {
  info <- backend_info()
  skip_if(isTRUE(info$cuda$available), "a usable GPU is present")
  expect_false(info$cuda$available)
  # The reasons the probe gives, most specific first; here (no driver) the first.
  expect_match(info$cuda$status,
               "^no CUDA driver|^no CUDA device|^the CUDA driver|^NVRTC")
  if (!info$cuda$driver_available) {
    expect_identical(info$cuda$device, NA_character_)
    expect_identical(info$cuda$memory, NA_real_)
    expect_identical(info$cuda$compute_capability, NA_character_)
  }
  expect_output(print(info), "not available: ")
})

test_that("backend_info() reports NVRTC's version when a toolkit is installed", {
  info <- backend_info()
  skip_if_not(isTRUE(info$cuda$toolkit_found_at_build) && dir.exists(info$cuda$cuda_home),
              "no CUDA toolkit here")
  expect_match(info$cuda$nvrtc_version, "^[0-9]+\\.[0-9]+$")
  expect_output(print(info), paste0("NVRTC ", info$cuda$nvrtc_version), fixed = TRUE)
})

test_that("the kernel cache directory follows option kernops.cuda_cache", {
  withr_opts <- options(kernops.cuda_cache = NULL)
  on.exit(options(withr_opts), add = TRUE)
  expect_identical(backend_info()$cuda$cache_dir, tools::R_user_dir("kernops", "cache"))
  dir <- file.path(tempdir(), "kernops-cache")
  options(kernops.cuda_cache = dir)
  expect_identical(backend_info()$cuda$cache_dir, dir)
  options(kernops.cuda_cache = "")
  expect_output(print(backend_info()), "kernel cache: memory only")
  options(kernops.cuda_cache = 1)
  expect_error(backend_info(), class = "kernops_error_input")
})

# ---- backend arguments ------------------------------------------------------------------

cuda_unusable <- function() !isTRUE(backend_info()$cuda$available)

test_that("backend = \"cuda\" without a usable GPU is a classed error saying why", {
  skip_if_not(cuda_unusable(), "a usable GPU is present")
  why <- backend_info()$cuda$status
  f <- "Sum_Reduction(Exp(-SqDist(x,y))*b, 0)"
  decls <- c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
  err <- expect_error(kernel_op(f, decls, backend = "cuda"), class = "kernops_error_backend")
  expect_match(conditionMessage(err), why, fixed = TRUE)
  expect_match(conditionMessage(err), "backend = \"cpu\"", fixed = TRUE)
  x <- matrix(rnorm(20), 10, 2)
  y <- matrix(rnorm(30), 15, 2)
  D <- sqdist(Vi(x), Vj(y))
  expect_error(sum(exp(-D), index = "j", backend = "cuda"), class = "kernops_error_backend")
  expect_error(argmin(D, index = "j", backend = "cuda"), class = "kernops_error_backend")
  expect_error(argkmin(D, 2, index = "j", backend = "cuda"), class = "kernops_error_backend")
  expect_error(logsumexp(-D, index = "i", backend = "cuda"), class = "kernops_error_backend")
  expect_error(sumsoftmaxweight(-D, Vj(y), index = "j", backend = "cuda"), class = "kernops_error_backend")
  expect_error(reduction_grad(exp(-D), Vi(x), index = "j", backend = "cuda"), class = "kernops_error_backend")
  op <- kernel_op(f, decls)
  expect_error(kernel_grad(op, "x", backend = "cuda"), class = "kernops_error_backend")
  # the statistics pass `backend` on
  expect_error(kde(x, backend = "cuda"), class = "kernops_error_backend")
  expect_error(mmd(x, y, backend = "cuda"), class = "kernops_error_backend")
  expect_error(sinkhorn(x, y, backend = "cuda"), class = "kernops_error_backend")
})

test_that("backend arguments are checked and kept by the operations", {
  f <- "Sum_Reduction(Exp(-SqDist(x,y))*b, 0)"
  decls <- c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
  expect_error(kernel_op(f, decls, backend = "gpu"), class = "kernops_error_input")
  expect_error(kernel_op(f, decls, backend = NA), class = "kernops_error_input")
  op <- kernel_op(f, decls, backend = "cpu")
  expect_output(print(op), "backend: cpu")
  expect_output(print(kernel_op(f, decls)), "backend: auto")
  x <- matrix(rnorm(20), 10, 2)
  y <- matrix(rnorm(30), 15, 2)
  b <- matrix(rnorm(15), 15, 1)
  dense <- exp(-outer(rowSums(x^2), rowSums(y^2), "+") + 2 * tcrossprod(x, y)) %*% b
  expect_equal(op(x, y, b), dense, tolerance = 1e-12)
  D <- sqdist(Vi(x), Vj(y))
  expect_equal(sum(exp(-D) * Vj(b), index = "j", backend = "cpu"), dense, tolerance = 1e-12)
  expect_error(sum(exp(-D), index = "j", backend = "tpu"), class = "kernops_error_input")
  expect_error(argmin(D, index = "j", backend = 1), class = "kernops_error_input")
  g <- kernel_grad(op, "x", backend = "cpu")
  expect_equal(g(x, y, b, direction = matrix(1, 10, 1)), kernel_grad(op, "x")(x, y, b, direction = matrix(1, 10, 1)))
  expect_identical(environment(op)$.kernops_state$backend, "cpu")  # the op keeps its own
  fit <- kde(x, backend = "cpu")
  expect_identical(fit$backend, "cpu")
})

test_that("option kernops.backend sets what \"auto\" means", {
  old <- options(kernops.backend = "cpu")
  on.exit(options(old), add = TRUE)
  f <- "Sum_Reduction(x*y, 0)"
  decls <- c("x = Vi(1)", "y = Vj(1)")
  expect_output(print(kernel_op(f, decls)), "backend: cpu")
  options(kernops.backend = "auto")
  expect_output(print(kernel_op(f, decls)), "backend: auto")
  options(kernops.backend = "gpu")
  expect_error(kernel_op(f, decls), class = "kernops_error_input")
  options(kernops.backend = "cuda")
  if (cuda_unusable()) expect_error(kernel_op(f, decls), class = "kernops_error_backend")
  # an explicit "cpu" wins over the option
  expect_output(print(kernel_op(f, decls, backend = "cpu")), "backend: cpu")
})

test_that("\"auto\" computes on the CPU when CUDA is unusable, at any size", {
  skip_if_not(cuda_unusable(), "a usable GPU is present")
  old <- options(kernops.cuda_min_pairs = 0, kernops.backend = NULL)
  on.exit(options(old), add = TRUE)
  op <- kernel_op("Sum_Reduction(x*y, 0)", c("x = Vi(1)", "y = Vj(1)"))
  expect_silent(res <- op(as.double(1:3), as.double(1:4)))
  expect_equal(res, matrix(c(10, 20, 30), 3, 1))
  options(kernops.cuda_min_pairs = -1)
  expect_error(op(as.double(1:3), as.double(1:4)), class = "kernops_error_input")
})

test_that("the size rule of \"auto\" counts N x M pairs", {
  vars <- list(name = c("x", "y", "s"), index = c("i", "j", "parameter"))
  expect_identical(kernops:::n_pairs(vars, list(matrix(0, 3e3, 2), matrix(0, 5e3, 2), 1)), 1.5e7)
  expect_identical(kernops:::n_pairs(vars, list(1:7, 1:9, 1)), 63)
  old <- options(kernops.cuda_min_pairs = NULL, kernops.cuda_chunk_rows = NULL)
  on.exit(options(old), add = TRUE)
  expect_identical(kernops:::cuda_min_pairs(), 1e7)
  expect_identical(kernops:::cuda_chunk_rows(), 0)
  options(kernops.cuda_chunk_rows = 1.5)
  expect_error(kernops:::cuda_chunk_rows(), class = "kernops_error_input")
  options(kernops.cuda_chunk_rows = 4096)
  expect_identical(kernops:::cuda_chunk_rows(), 4096)
})

test_that("a failed device is reported and leaves the CPU path working", {
  kernops:::cpp_cuda_force_failure("test: the device was lost")
  on.exit(kernops:::cpp_cuda_force_failure(""), add = TRUE)
  info <- backend_info()
  expect_false(info$cuda$available)
  expect_identical(info$cuda$status, "test: the device was lost")
  f <- "Sum_Reduction(x*y, 0)"
  decls <- c("x = Vi(1)", "y = Vj(1)")
  err <- expect_error(kernel_op(f, decls, backend = "cuda"), class = "kernops_error_backend")
  expect_match(conditionMessage(err), "the device was lost", fixed = TRUE)
  old <- options(kernops.cuda_min_pairs = 0)
  on.exit(options(old), add = TRUE)
  op <- kernel_op(f, decls)
  expect_equal(op(as.double(1:3), as.double(1:4)), matrix(c(10, 20, 30), 3, 1))
  expect_equal(kernel_op(f, decls, backend = "cpu")(as.double(1:2), 1), matrix(c(1, 2), 2, 1))
  kernops:::cpp_cuda_force_failure("")
  expect_false(identical(backend_info()$cuda$status, "test: the device was lost"))
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

test_that("the fallback of \"auto\" from a failed GPU is a classed warning", {
  # (the GPU path itself cannot run without a GPU: this is the condition it raises)
  w <- expect_warning(kernops:::warn_backend_fallback("a CUDA kernel failed: test", NULL),
                      class = "kernops_warning_backend")
  expect_s3_class(w, "kernops_warning")
  expect_match(conditionMessage(w), "Computed on the CPU instead", fixed = TRUE)
})

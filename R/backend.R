# backend.R -- which backends this build of kernops has and can use now, how a reduction
# picks one (backend = "auto" | "cpu" | "cuda", option kernops.backend), and how many CPU
# threads it uses. CUDA is found at run time (src/core/cuda/: libcuda and libnvrtc are
# dlopen()ed), so the same installation runs on machines with and without a GPU.

#' Backends available to kernops
#'
#' Reports how this installation of kernops was built and what it can run on: the default
#' number of CPU threads, the SIMD instruction sets the compiler targeted, and the CUDA
#' backend: whether a GPU is usable now and, if not, why (no driver, no device, no NVRTC).
#'
#' CUDA needs nothing at build time: the NVIDIA driver (`libcuda.so.1`) and NVRTC, the
#' CUDA run-time compiler (`libnvrtc`, from a CUDA toolkit found on the library path,
#' through `CUDA_HOME`, or where `configure` saw one), are loaded when first needed. Kernels
#' are compiled once per formula, dtype and GPU architecture and cached in memory and on
#' disk, in `getOption("kernops.cuda_cache", tools::R_user_dir("kernops", "cache"))` (`""`
#' keeps them in memory only), so a new R session does not compile them again.
#'
#' @return An object of class `kernops_backend_info`: a list with elements
#'   * `cpu`: a list with `threads_default` (see [kernops_threads()]), `simd`
#'     (instruction sets enabled for the whole build by the compiler flags, e.g. `"SSE2"`),
#'     `isa_available` (the engine's instruction sets this processor can run: `"sse2"`,
#'     `"avx2"`, `"avx512"`) and `isa` (the one in use: the best available, capped by
#'     option `kernops.cpu_isa`, which may be `"auto"`, `"sse2"`, `"avx2"` or `"avx512"`);
#'   * `cuda`: a list with `available` (logical: reductions can run on the GPU now),
#'     `status` (`"available"`, or why not, e.g. `"no CUDA driver (libcuda.so.1 not
#'     found)"`), `device` (name), `memory` (bytes), `compute_capability` (e.g. `"9.0"`),
#'     `driver_version`, `nvrtc_version` (`NA` where unknown), `cache_dir`,
#'     `toolkit_found_at_build` (logical), `cuda_home` and `cuda_version` (what
#'     `configure` found, `NA` when nothing), and `driver_available` (logical: a driver
#'     and a device were found);
#'   * `compiler`: a list with `version` (the compiler's version string) and `cxx_std`
#'     (the value of `__cplusplus`).
#' @seealso [kernops_threads()], [kernel_op()] for `backend`
#' @export
#' @examples
#' info <- backend_info()
#' info
#' info$cpu$threads_default
#' info$cuda$status
backend_info <- function() {
  b <- cpp_build_info()
  g <- cpp_cuda_info()
  structure(
    list(
      cpu = list(
        threads_default = kernops_threads(),
        simd = b$simd_flags,
        isa_available = cpp_cpu_isas(),
        isa = cpu_isa_in_use()
      ),
      cuda = list(
        available = g$usable,
        status = if (g$usable) "available" else g$why,
        device = g$device,
        memory = g$memory,
        compute_capability = g$compute_capability,
        driver_version = g$driver_version,
        nvrtc_version = g$nvrtc_version,
        cache_dir = cuda_cache_dir(),
        toolkit_found_at_build = b$cuda_toolkit,
        cuda_home = b$cuda_home,
        cuda_version = b$cuda_version,
        driver_available = g$driver_loaded
      ),
      compiler = list(version = b$compiler, cxx_std = b$cxx_std)
    ),
    class = "kernops_backend_info"
  )
}

#' @rdname backend_info
#' @param x A `kernops_backend_info` object.
#' @param ... Ignored.
#' @export
print.kernops_backend_info <- function(x, ...) {
  cuda <- x$cuda
  toolkit <- if (isTRUE(cuda$toolkit_found_at_build)) {
    sprintf("found at build (%s, version %s)", cuda$cuda_home, cuda$cuda_version)
  } else {
    "not found at build"
  }
  gpu <- if (isTRUE(cuda$available)) {
    sprintf("%s, %.1f GB, compute capability %s, driver %s", cuda$device, cuda$memory / 1e9,
            cuda$compute_capability, cuda$driver_version)
  } else {
    sprintf("not available: %s", cuda$status)
  }
  cat(
    "<kernops backend info>\n",
    sprintf("CPU:      %d threads by default; engine instruction set %s (available: %s)\n",
            x$cpu$threads_default, x$cpu$isa, paste(x$cpu$isa_available, collapse = ", ")),
    sprintf("CUDA:     %s\n", gpu),
    sprintf("          NVRTC %s; toolkit %s\n",
            if (is.na(cuda$nvrtc_version)) "not found" else cuda$nvrtc_version, toolkit),
    sprintf("          kernel cache: %s\n", if (nzchar(cuda$cache_dir)) cuda$cache_dir else "memory only"),
    sprintf("Compiler: %s, C++ standard %s\n", x$compiler$version, x$compiler$cxx_std),
    sep = ""
  )
  invisible(x)
}

# ---- choosing a backend ---------------------------------------------------------------------

# The backend a kernel_op() (or a statistics function) keeps: "cpu", "cuda" or "auto", after
# option kernops.backend replaced "auto". "cuda" is refused here, when the op is made, if
# CUDA is unusable, with the reason.
resolve_backend <- function(backend, call) {
  if (backend == "auto") backend <- backend_option(call)
  if (backend == "cuda") check_cuda(call)
  backend
}

backend_option <- function(call) {
  b <- getOption("kernops.backend", "auto")
  if (!is.character(b) || length(b) != 1 || !(b %in% c("auto", "cpu", "cuda")))
    abort_kernops("Option `kernops.backend` must be \"auto\", \"cpu\" or \"cuda\".", "kernops_error_input",
                  call = call)
  b
}

check_cuda <- function(call) {
  why <- cpp_cuda_why()
  if (nzchar(why))
    abort_kernops(c(sprintf("The CUDA backend is not usable: %s.", why),
                    "Use backend = \"cpu\" (or \"auto\"); see backend_info()."),
                  "kernops_error_backend", call = call)
}

# The backend one call runs on: "auto" takes the GPU for problems of at least
# kernops.cuda_min_pairs pairs when CUDA is usable.
run_backend <- function(state, data, call) {
  b <- state$backend
  if (b == "cpu") return("cpu")
  if (b == "auto") {
    if (!is.null(state$cuda_refused) || n_pairs(state$vars, data) < cuda_min_pairs(call) || nzchar(cpp_cuda_why()))
      return("cpu")
  } else {
    check_cuda(call)  # the device may have failed since the op was made
  }
  cpp_cuda_set_cache_dir(cuda_cache_dir())
  "cuda"
}

# N x M of a call: rows of the i-indexed arguments times rows of the j-indexed ones.
n_pairs <- function(vars, data) {
  rows <- function(ix) {
    k <- match(ix, vars$index)
    if (is.na(k)) 0 else as.double(NROW(data[[k]]))
  }
  rows("i") * rows("j")
}

# Smallest N x M that "auto" sends to the GPU. The default, 1e7 pairs, is not measured (no
# GPU was available when it was chosen): a few ms of CPU time, about what a launch, the
# copies and the first-call module load cost.
cuda_min_pairs <- function(call = NULL) {
  v <- getOption("kernops.cuda_min_pairs", 1e7)
  if (!is.numeric(v) || length(v) != 1 || is.na(v) || v < 0)
    abort_kernops("Option `kernops.cuda_min_pairs` must be a single non-negative number.", "kernops_error_input",
                  call = call)
  v
}

# Output rows per CUDA launch (0: chosen from the device's free memory and size).
cuda_chunk_rows <- function(call = NULL) {
  v <- getOption("kernops.cuda_chunk_rows", 0)
  if (!is.numeric(v) || length(v) != 1 || is.na(v) || v < 0 || v != round(v))
    abort_kernops("Option `kernops.cuda_chunk_rows` must be a single whole number, 0 (automatic) or more.",
                  "kernops_error_input", call = call)
  as.double(v)
}

# Where compiled kernels are kept between sessions ("" for memory only).
cuda_cache_dir <- function() {
  d <- getOption("kernops.cuda_cache")
  if (is.null(d)) return(tools::R_user_dir("kernops", "cache"))
  if (!is.character(d) || length(d) != 1 || is.na(d))
    abort_kernops("Option `kernops.cuda_cache` must be a directory (a single string), or \"\" for no disk cache.",
                  "kernops_error_input")
  path.expand(d)
}

# "auto" chose the GPU and it failed: a classed warning, then the CPU.
warn_backend_fallback <- function(message, call) {
  warning(structure(class = c("kernops_warning_backend", "kernops_warning", "warning", "condition"),
                    list(message = paste0(message, "\nComputed on the CPU instead."), call = call)))
}

#' Number of CPU threads used by kernops
#'
#' Gets or sets the default number of threads the CPU backend uses.
#'
#' Without an argument the default is, in order: the option `kernops.threads`; the
#' environment variable `KERNOPS_THREADS`; the number of cores reported by
#' [parallel::detectCores()], capped at 2 when `_R_CHECK_LIMIT_CORES_` is set (as
#' `R CMD check --as-cran` does, following CRAN policy).
#'
#' @param n `NULL` to query, or a whole number of threads from 1 to 1024 to set as the
#'   default (stored in the option `kernops.threads`).
#' @return With `n = NULL`, the current default number of threads (an integer). Otherwise
#'   the previous default, invisibly.
#' @seealso [backend_info()]
#' @export
#' @examples
#' kernops_threads()
#' old <- kernops_threads(1)
#' kernops_threads()
#' kernops_threads(old)  # restore
kernops_threads <- function(n = NULL) {
  if (is.null(n)) {
    return(threads_default())
  }
  n <- check_threads(n, "`n`", call = sys.call())
  old <- tryCatch(threads_default(), kernops_error = function(e) NULL)  # NULL: it was invalid
  options(kernops.threads = n)
  invisible(old)
}

# Resolves option > env var > detected cores. Invalid option or env values are errors, not
# silently ignored: a typo in KERNOPS_THREADS should not quietly use every core.
threads_default <- function() {
  opt <- getOption("kernops.threads")
  if (!is.null(opt)) {
    return(check_threads(opt, "Option `kernops.threads`"))
  }
  env <- Sys.getenv("KERNOPS_THREADS", unset = "")
  if (nzchar(env)) {
    return(check_threads(suppressWarnings(as.numeric(env)),
                         sprintf("Environment variable `KERNOPS_THREADS` (\"%s\")", env)))
  }
  cores <- detected_cores()
  limit <- Sys.getenv("_R_CHECK_LIMIT_CORES_", unset = "")
  if (nzchar(limit) && !identical(tolower(limit), "false")) cores <- min(cores, 2L)
  as.integer(cores)
}

# parallel::detectCores(), asked once per session: on Linux it runs a shell pipeline
# (grep ... /proc/cpuinfo | wc -l), 3-6 ms, and every reduction without a thread option
# asks for its thread count (bench/RESULTS.md: 500 small calls 1.75 s before, 0.08 s after).
detected_cores <- local({
  cores <- NULL
  function() {
    if (is.null(cores)) {
      n <- parallel::detectCores(logical = TRUE)
      cores <<- if (is.na(n) || n < 1L) 1L else as.integer(n)
    }
    cores
  }
})

# More threads than this are refused: each one gets its own working buffers, and with
# .Machine$integer.max of them every call failed with a misleading out-of-memory error.
max_threads <- 1024L

check_threads <- function(n, what, call = NULL) {
  ok <- is.numeric(n) && length(n) == 1L && !is.na(n) && is.finite(n) &&
    n >= 1 && n <= max_threads && n == round(n)
  if (!ok) {
    abort_kernops(
      sprintf("%s must be a single whole number of threads, from 1 to %d.", what, max_threads),
      class = "kernops_error_input",
      call = call
    )
  }
  as.integer(n)
}

# The highest CPU instruction set the engine may use, from option kernops.cpu_isa:
# "auto" (default: the best the processor supports), "sse2" (baseline), "avx2", "avx512".
# Asking for more than the processor has falls back to the best available.
cpu_isa_level <- function() {
  isa <- getOption("kernops.cpu_isa", "auto")
  levels <- c(sse2 = 0L, baseline = 0L, avx2 = 1L, avx512 = 2L, auto = 2L)
  if (!is.character(isa) || length(isa) != 1 || !(isa %in% names(levels)))
    abort_kernops(sprintf("Option `kernops.cpu_isa` must be one of %s.",
                          paste0("\"", c("auto", "sse2", "avx2", "avx512"), "\"", collapse = ", ")),
                  "kernops_error_input")
  levels[[isa]]
}

# The instruction set the CPU engine uses now, given the option and the processor.
cpu_isa_in_use <- function() {
  available <- cpp_cpu_isas()
  available[min(length(available), cpu_isa_level() + 1L)]
}

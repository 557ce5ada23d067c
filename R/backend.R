# backend.R -- which backends this build of kernops has, and how many CPU threads it uses.
# The CUDA fields only say what `configure` found at build time; a run-time CUDA backend is a
# later issue, so `driver_available` is always FALSE here.

#' Backends available to kernops
#'
#' Reports how this installation of kernops was built and what it can run on: the default
#' number of CPU threads, the SIMD instruction sets the compiler targeted, and whether a
#' CUDA toolkit was found when the package was installed.
#'
#' The CUDA backend is not implemented in this version: `cuda$driver_available` is always
#' `FALSE` and `cuda$status` says so. When it arrives, the toolkit recorded here (found through
#' `CUDA_HOME`, `nvcc` on the `PATH` or `/usr/local/cuda` at install time) is loaded at run
#' time, so a package installed without CUDA still works on the CPU.
#'
#' @return An object of class `kernops_backend_info`: a list with elements
#'   * `cpu`: a list with `threads_default` (see [kernops_threads()]), `simd`
#'     (instruction sets enabled for the whole build by the compiler flags, e.g. `"SSE2"`),
#'     `isa_available` (the engine's instruction sets this processor can run: `"sse2"`,
#'     `"avx2"`, `"avx512"`) and `isa` (the one in use: the best available, capped by
#'     option `kernops.cpu_isa`, which may be `"auto"`, `"sse2"`, `"avx2"` or `"avx512"`);
#'   * `cuda`: a list with `toolkit_found_at_build` (logical), `cuda_home` and
#'     `cuda_version` (character, `NA` when no toolkit was found), `driver_available`
#'     (logical) and `status` (character);
#'   * `compiler`: a list with `version` (the compiler's version string) and `cxx_std`
#'     (the value of `__cplusplus`).
#' @seealso [kernops_threads()]
#' @export
#' @examples
#' info <- backend_info()
#' info
#' info$cpu$threads_default
#' info$cuda$toolkit_found_at_build
backend_info <- function() {
  b <- cpp_build_info()
  structure(
    list(
      cpu = list(
        threads_default = kernops_threads(),
        simd = b$simd_flags,
        isa_available = cpp_cpu_isas(),
        isa = cpu_isa_in_use()
      ),
      cuda = list(
        toolkit_found_at_build = b$cuda_toolkit,
        cuda_home = b$cuda_home,
        cuda_version = b$cuda_version,
        driver_available = FALSE,
        status = "not implemented in this version"
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
  cat(
    "<kernops backend info>\n",
    sprintf("CPU:      %d threads by default; engine instruction set %s (available: %s)\n",
            x$cpu$threads_default, x$cpu$isa, paste(x$cpu$isa_available, collapse = ", ")),
    sprintf("CUDA:     toolkit %s; driver available: %s (%s)\n",
            toolkit, if (isTRUE(cuda$driver_available)) "yes" else "no", cuda$status),
    sprintf("Compiler: %s, C++ standard %s\n", x$compiler$version, x$compiler$cxx_std),
    sep = ""
  )
  invisible(x)
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

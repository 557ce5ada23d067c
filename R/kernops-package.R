#' kernops: kernel operations that never store the kernel matrix
#'
#' kernops compiles a kernel formula such as `Exp(-s*SqNorm2(x-y))*b` into a tiled
#' reduction `out_i = sum_j F(x_i, y_j)` computed without ever storing the N x M
#' matrix. Start with [kernel_op()]; see `vignette("kernops")` (installed with a package
#' built by `R CMD build`; in a source checkout, `vignettes/kernops.Rmd`).
#'
#' Options:
#' * `kernops.threads`: number of CPU threads (see [kernops_threads()]).
#' * `kernops.max_output_bytes`: largest result allowed (default 2^34 bytes, 16 GiB),
#'   counting 8 bytes per value and 12 per index (the engine's buffer, then R's integers);
#'   larger ones raise a `kernops_error_memory` condition instead of exhausting memory, as
#'   does a result that R cannot allocate. The same limit bounds the copy of input data
#'   as doubles in memory (8 bytes a value) made of integer data or of a compact sequence
#'   such as `1:3e9`.
#' * `kernops.progress`: report progress on stderr for reductions that run longer than
#'   2 seconds (default: `interactive()`), in local calls; sharded calls report a
#'   `progressr` step per shard instead ([kernops_future]). Long reductions can always be interrupted with
#'   Ctrl-C (a `kernops_error_interrupt` condition, of class `"interrupt"` as R's own:
#'   `try()` does not catch it).
#' * `kernops.cpu_isa`: the highest CPU instruction set the engine may use (`"auto"`,
#'   `"sse2"`, `"avx2"`, `"avx512"`); see [backend_info()].
#' * `kernops.backend`: what `backend = "auto"` means (`"auto"`, `"cpu"` or `"cuda"`; see
#'   [kernel_op()]). `kernops.cuda_min_pairs`: the smallest N x M that `"auto"` sends to a
#'   usable GPU (default 1e7, not measured). `kernops.cuda_chunk_rows`: output rows per GPU
#'   launch (default 0: chosen from the GPU's free memory). `kernops.cuda_cache`: the
#'   directory of compiled GPU kernels (default `tools::R_user_dir("kernops", "cache")`;
#'   `""` for none; kept under 256 MB, the least recently used kernels deleted first). See
#'   [backend_info()].
#' * `kernops.future`, `kernops.future_shards`: shard reductions over the workers of
#'   `future::plan()`; see [kernops_future].
#'
#' @keywords internal
#' @useDynLib kernops, .registration = TRUE
#' @importFrom Rcpp sourceCpp
"_PACKAGE"

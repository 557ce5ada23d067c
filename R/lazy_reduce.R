# lazy_reduce.R -- reductions of LazyTensors (the verbs that compute), and the cache of
# compiled plans keyed by formula structure. See lazytensor.R for the representation.

#' Reductions of LazyTensors
#'
#' Reduce a LazyTensor \eqn{F(x_i, y_j)} over one of its indices, computing the result
#' tile by tile without storing the N x M kernel matrix. The result is an ordinary R
#' matrix (integer indices, from 1, for the `arg` reductions).
#'
#' `index` is the index that is reduced over, and has no default:
#'
#' * `index = "j"`: \eqn{\mathrm{out}_i = \mathrm{red}_j F(x_i, y_j)}, one row per point of
#'   the `Vi()` variables (KeOps `axis = 0`);
#' * `index = "i"`: \eqn{\mathrm{out}_j = \mathrm{red}_i F(x_i, y_j)}, one row per point of
#'   the `Vj()` variables (KeOps `axis = 1`).
#'
#' The reductions, for a formula of dimension d:
#'
#' * `sum(x, index =)`, `min(x, index =)`, `max(x, index =)`: coordinate-wise sum, minimum,
#'   maximum (d columns). `sum(x)` *without* `index` is the sum of the coordinates of `x`
#'   (a LazyTensor of dimension 1, KeOps `Sum`), as `sum()` of an R vector.
#' * `argmin()`, `argmax()`: the index (1-based) of the minimum/maximum, per coordinate;
#'   `min_argmin()`, `max_argmax()`: both, as a list with `values` and `indices`.
#' * `kmin(x, k)`: the `k` smallest values in increasing order (k columns per coordinate),
#'   `argkmin(x, k)` their indices, `kmin_argkmin(x, k)` both.
#' * `logsumexp(x, index, weight)`: \eqn{\log \sum_j \exp(F_{ij})}, or
#'   \eqn{\log \sum_j \exp(F_{ij}) w_{ij}} with a weight (then `x` has dimension 1),
#'   computed stably.
#' * `sumsoftmaxweight(x, v, index)`: \eqn{\sum_j \exp(F_{ij}) v_{ij} / \sum_j
#'   \exp(F_{ij})}, the softmax-weighted average of `v` (`x` of dimension 1).
#'
#' The first call with a given formula structure compiles it with [kernel_op()]; later
#' calls with the same structure and new data reuse the compiled plan (see the *Caching*
#' section of [lazytensor]).
#'
#' @param x A LazyTensor (for the Summary methods `...` holds it, with `index`,
#'   `dtype` and `backend`).
#' @param index `"j"` (reduce over j, one row per i) or `"i"` (reduce over i, one row per
#'   j).
#' @param k The number of smallest values, a positive whole number.
#' @param weight Optional LazyTensor (or number/vector) of weights \eqn{w_{ij}}.
#' @param v A LazyTensor (or number/vector): the values to average.
#' @param dtype `"float64"` (default) or `"float32"`, as in [kernel_op()].
#' @param backend `"auto"` (default), `"cpu"` or `"cuda"`, as in [kernel_op()].
#' @param ...,na.rm For `sum()`, `min()`, `max()`: the LazyTensor, and the named
#'   arguments `index`, `dtype` and `backend`; `na.rm` is ignored.
#' @return A numeric matrix with one row per point of the index that is not reduced;
#'   integer indices for `argmin()`, `argmax()` and `argkmin()`; a list with `values` and
#'   `indices` for `min_argmin()`, `max_argmax()` and `kmin_argkmin()`.
#' @seealso [lazytensor]
#' @name lazy_reductions
#' @examples
#' x <- matrix(rnorm(200), 100, 2)
#' y <- matrix(rnorm(100), 50, 2)
#' D <- sqdist(Vi(x), Vj(y))
#' # 3 nearest neighbours of each x_i among the y_j, and their squared distances
#' knn <- kmin_argkmin(D, k = 3, index = "j")
#' head(knn$indices)
#' head(knn$values)
#' # for each y_j, the closest x_i
#' head(argmin(D, index = "i"))
#' # a softmax-weighted average of the x_i for each y_j
#' head(sumsoftmaxweight(-D, Vi(x), index = "i"))
NULL

#' @rdname lazy_reductions
#' @export
Summary.kernops_lazy <- function(..., na.rm = FALSE) {
  args <- list(...)
  nms <- names(args) %||% rep("", length(args))
  opts <- args[nms != ""]
  xs <- args[nms == ""]
  g <- .Generic
  index <- opts$index
  call <- as.call(c(list(as.name(g), quote(x)), if (!is.null(index)) list(index = index)))
  bad <- setdiff(names(opts), c("index", "dtype", "backend"))
  if (length(bad))
    abort_kernops(sprintf("%s() of a LazyTensor: unknown argument `%s` (use index = \"i\" or \"j\", dtype, backend).",
                          g, bad[1]), "kernops_error_input", call = call)
  if (!(g %in% c("sum", "min", "max")))
    abort_kernops(c(sprintf("%s() is not available for LazyTensors.", g),
                    "The reductions are sum(), min(), max(), argmin(), argmax(), kmin(), argkmin(), logsumexp() and sumsoftmaxweight()."),
                  "kernops_error_input", call = call)
  if (length(xs) != 1 || !inherits(xs[[1]], "kernops_lazy"))
    abort_kernops(c(sprintf("%s() takes a single LazyTensor and `index`.", g),
                    if (g != "sum") sprintf("For the elementwise %s of two LazyTensors use %s(a, b).", g,
                                            if (g == "min") "minimum" else "maximum")),
                  "kernops_error_input", call = call)
  x <- xs[[1]]
  if (is.null(index)) {
    if (g == "sum") return(lazy_call("Sum", list(x), call, dim = 1L))
    abort_kernops(missing_index_msg(g), "kernops_error_input", call = call)
  }
  red <- c(sum = "Sum_Reduction", min = "Min_Reduction", max = "Max_Reduction")[[g]]
  lazy_reduce(x, red, index, opts$dtype %||% "float64", call, g, backend = opts$backend %||% "auto")
}

missing_index_msg <- function(verb) {
  c(sprintf("%s() of a LazyTensor needs `index`, the index to reduce over:", verb),
    "index = \"j\" reduces over j (one row per i, KeOps axis 0), index = \"i\" over i (one row per j, axis 1).")
}

#' @rdname lazy_reductions
#' @export
argmin <- function(x, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "ArgMin_Reduction", index, dtype, sys.call(), "argmin", missing(index), backend = backend)
}

#' @rdname lazy_reductions
#' @export
argmax <- function(x, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "ArgMax_Reduction", index, dtype, sys.call(), "argmax", missing(index), backend = backend)
}

#' @rdname lazy_reductions
#' @export
min_argmin <- function(x, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "Min_ArgMin_Reduction", index, dtype, sys.call(), "min_argmin", missing(index), backend = backend)
}

#' @rdname lazy_reductions
#' @export
max_argmax <- function(x, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "Max_ArgMax_Reduction", index, dtype, sys.call(), "max_argmax", missing(index), backend = backend)
}

#' @rdname lazy_reductions
#' @export
kmin <- function(x, k, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "KMin_Reduction", index, dtype, sys.call(), "kmin", missing(index), k = k, backend = backend)
}

#' @rdname lazy_reductions
#' @export
argkmin <- function(x, k, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "ArgKMin_Reduction", index, dtype, sys.call(), "argkmin", missing(index), k = k, backend = backend)
}

#' @rdname lazy_reductions
#' @export
kmin_argkmin <- function(x, k, index, dtype = "float64", backend = "auto") {
  verb_reduce(x, "KMin_ArgKMin_Reduction", index, dtype, sys.call(), "kmin_argkmin", missing(index), k = k, backend = backend)
}

#' @rdname lazy_reductions
#' @export
logsumexp <- function(x, index, weight = NULL, dtype = "float64", backend = "auto") {
  verb_reduce(x, "LogSumExp_Reduction", index, dtype, sys.call(), "logsumexp", missing(index),
              extra = weight, extra_name = "weight", backend = backend)
}

#' @rdname lazy_reductions
#' @export
sumsoftmaxweight <- function(x, v, index, dtype = "float64", backend = "auto") {
  if (missing(v))
    abort_kernops("sumsoftmaxweight() needs `v`, the values to average.", "kernops_error_input", call = sys.call())
  verb_reduce(x, "SumSoftMaxWeight_Reduction", index, dtype, sys.call(), "sumsoftmaxweight",
              missing(index), extra = v, extra_name = "v", backend = backend)
}

verb_reduce <- function(x, red, index, dtype, call, verb, index_missing, k = NULL,
                        extra = NULL, extra_name = NULL, backend = "auto") {
  if (!inherits(x, "kernops_lazy"))
    abort_kernops(c(sprintf("%s() reduces a LazyTensor (made with Vi(), Vj() and Pm()), not %s.", verb, describe_type(x)),
                    if (is.matrix(x)) "For an R matrix, use apply() or the matrixStats package."),
                  "kernops_error_input", call = call)
  if (index_missing) abort_kernops(missing_index_msg(verb), "kernops_error_input", call = call)
  lazy_reduce(x, red, index, dtype, call, verb, k = k, extra = extra, extra_name = extra_name, backend = backend)
}

# Builds the reduction formula; computes it (data), or returns it (a `~` formula).
lazy_reduce <- function(x, red, index, dtype, call, verb, k = NULL, extra = NULL, extra_name = NULL,
                        backend = "auto") {
  r <- lazy_reduction_formula(x, red, index, call, verb, k, extra, extra_name)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
  if (isTRUE(r$node$symbolic))
    return(structure(list(f = r$f, leaves = r$node$leaves), class = "kernops_lazy_reduction"))
  check_reduction_rows(r$node, index, verb, call)
  lazy_run(r$f, r$node$leaves, dtype, call, backend)
}

# The reduction formula Red(F[,K],axis[,extra]) (with tokens) and the node of its variables.
lazy_reduction_formula <- function(x, red, index, call, verb, k = NULL, extra = NULL, extra_name = NULL) {
  if (!is.character(index) || length(index) != 1 || !(index %in% c("i", "j")))
    abort_kernops(c("`index` must be \"i\" or \"j\", the index to reduce over:",
                    "\"j\" gives one row per i (KeOps axis 0), \"i\" one row per j (axis 1)."),
                  "kernops_error_input", call = call)
  axis <- if (index == "j") 0L else 1L
  kpart <- ""
  if (!is.null(k)) {
    if (!is.numeric(k) || length(k) != 1 || is.na(k) || !is.finite(k) || k != round(k) || k < 1 ||
        k > .Machine$integer.max)
      abort_kernops("`k` must be a positive whole number (at most .Machine$integer.max).", "kernops_error_input",
                    call = call)
    kpart <- paste0(",", as.integer(k))
  }
  args <- list(x)
  epart <- ""
  if (!is.null(extra)) {
    e <- as_lazy(extra, x, call)
    if (x$dim != 1)
      abort_kernops(sprintf("%s(): with `%s`, the formula must have dimension 1, got %d.", verb, extra_name, x$dim),
                    "kernops_error_dimension", call = call)
    args <- list(x, e)
    epart <- paste0(",", e$f)
  }
  f <- paste0(red, "(", x$f, kpart, ",", axis, epart, ")")
  list(f = f, node = lazy_node(args, f, 4L, x$dim, call))
}

# Errors for a reduction over an index the formula does not have, or towards one it lacks.
check_reduction_rows <- function(node, index, verb, call) {
  other <- if (index == "j") "i" else "j"
  if (is.na(if (index == "j") node$nj else node$ni))
    abort_kernops(c(sprintf("%s(index = \"%s\") reduces over %s, but the formula has no %s() variable: there is nothing to reduce over.",
                            verb, index, index, kind_fn[[index]]),
                    if (!is.na(if (index == "j") node$ni else node$nj))
                      sprintf("Did you mean index = \"%s\"? Or wrap the data indexed by %s with %s().", other, index, kind_fn[[index]])),
                  "kernops_error_dimension", call = call)
  if (is.na(if (index == "j") node$ni else node$nj))
    abort_kernops(sprintf("%s(index = \"%s\") gives one row per %s point, but the formula has no %s() variable: the number of rows is unknown.",
                          verb, index, other, kind_fn[[other]]),
                  "kernops_error_dimension", call = call)
}

#' Gradients of LazyTensor reductions
#'
#' `reduction_grad()` differentiates a reduction of a LazyTensor with respect to some of
#' its variables, with [kernel_grad()]: it returns the gradient of
#' \eqn{\langle e, \mathrm{red}(F) \rangle} (with \eqn{e} = `direction`, by default all
#' ones, i.e. the gradient of the sum of all the entries of the result) with respect to each
#' variable in `wrt`. The reduction is one of those [kernel_grad()] can differentiate:
#' `"sum"`, `"logsumexp"` (with an optional `weight`) and `"sumsoftmaxweight"` (with `v`).
#'
#' For a variable on the side of the result (e.g. a `Vi()` with `index = "j"`) the
#' gradient has one row per result row; on the reduced side, one row per reduced point;
#' for a `Pm()` parameter it is a vector. The compiled gradient is cached with the
#' reduction, so calling `reduction_grad()` in a loop with new data of the same structure
#' compiles once.
#'
#' [grad()] is the symbolic counterpart, inside a formula: `sum(grad(F, x_i), index = "j")`
#' equals `reduction_grad(F, x_i, index = "j")`.
#'
#' @param x A LazyTensor: the formula F.
#' @param wrt A variable of `x` (a LazyTensor made by `Vi()`, `Vj()` or `Pm()`), or a list
#'   of them (named or not).
#' @param index `"j"` or `"i"`, the index reduced over, as in [lazy_reductions].
#' @param reduction `"sum"`, `"logsumexp"` or `"sumsoftmaxweight"`.
#' @param direction `NULL` (all ones) or a matrix shaped like the result of the reduction.
#' @param weight,v The weight of `"logsumexp"`, the values of `"sumsoftmaxweight"`.
#' @param dtype `"float64"` (default) or `"float32"`.
#' @param backend `"auto"` (default), `"cpu"` or `"cuda"`, as in [kernel_op()].
#' @return The gradient (a matrix, or a vector for a parameter); for several variables in
#'   `wrt`, a list of them, with the names of `wrt` or else the variables' names.
#' @seealso [grad()], [kernel_grad()], [lazy_reductions]
#' @export
#' @examples
#' x <- matrix(rnorm(40), 20, 2)
#' y <- matrix(rnorm(60), 30, 2)
#' x_i <- Vi(x)
#' # gradient of sum_i log sum_j exp(-|x_i - y_j|^2) with respect to the x_i
#' g <- reduction_grad(-sqdist(x_i, Vj(y)), x_i, index = "j", reduction = "logsumexp")
#' dim(g)
#' # the gradient of a sum reduction is the reduction of the symbolic gradient
#' K <- exp(-sqdist(x_i, Vj(y)))
#' all.equal(reduction_grad(K, x_i, index = "j"), sum(grad(K, x_i), index = "j"))
reduction_grad <- function(x, wrt, index, reduction = c("sum", "logsumexp", "sumsoftmaxweight"),
                           direction = NULL, weight = NULL, v = NULL, dtype = "float64", backend = "auto") {
  call <- sys.call()
  x <- check_lazy(x, "reduction_grad")
  if (missing(index)) abort_kernops(missing_index_msg("reduction_grad"), "kernops_error_input", call = call)
  reduction <- match_choice(reduction, c("sum", "logsumexp", "sumsoftmaxweight"), "reduction", call)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
  red <- c(sum = "Sum_Reduction", logsumexp = "LogSumExp_Reduction",
           sumsoftmaxweight = "SumSoftMaxWeight_Reduction")[[reduction]]
  if (reduction == "sumsoftmaxweight" && is.null(v))
    abort_kernops("reduction_grad(): \"sumsoftmaxweight\" needs `v`.", "kernops_error_input", call = call)
  extra <- if (reduction == "logsumexp") weight else if (reduction == "sumsoftmaxweight") v
  r <- lazy_reduction_formula(x, red, index, call, "reduction_grad", extra = extra,
                              extra_name = if (reduction == "logsumexp") "weight" else "v")
  if (isTRUE(r$node$symbolic))
    abort_kernops("reduction_grad() computes: it cannot be used inside a formula given to kernel_op().",
                  "kernops_error_input", call = call)
  check_reduction_rows(r$node, index, "reduction_grad", call)
  single <- inherits(wrt, "kernops_lazy")
  wrts <- if (single) list(wrt) else wrt
  if (!is.list(wrts) || length(wrts) == 0 ||
      !all(vapply(wrts, function(w) inherits(w, "kernops_lazy") && isTRUE(w$leaf), logical(1))))
    abort_kernops("`wrt` must be a variable (a LazyTensor made by Vi(), Vj() or Pm()) or a list of them.",
                  "kernops_error_input", call = call)
  toks <- vapply(wrts, function(w) w$f, "")
  fin <- lazy_finalize(r$f, r$node$leaves)
  labels <- stats::setNames(fin$labels, fin$tokens)
  missing_tok <- !(toks %in% names(labels))
  if (any(missing_tok))
    abort_kernops("reduction_grad(): a variable in `wrt` does not appear in the formula.",
                  "kernops_error_input", call = call)
  wrt_labels <- unname(labels[toks])
  entry <- lazy_entry(fin, dtype, call, backend)
  state <- environment(entry$op)$.kernops_state
  dir_name <- unique_name("direction", fin$labels)
  gkey <- paste(c(dir_name, wrt_labels), collapse = "\r")
  gop <- entry$grads[[gkey]]
  if (is.null(gop)) {
    gop <- with_call(kernel_grad(entry$op, unique(wrt_labels), direction = dir_name), call)
    assign(gkey, gop, envir = entry$grads)
  }
  rows <- if (index == "j") r$node$ni else r$node$nj
  if (is.null(direction)) {
    direction <- matrix(1, rows, state$out_dim)
  } else if (!is.numeric(direction) || NROW(direction) != rows || NCOL(direction) != state$out_dim) {
    abort_kernops(sprintf("`direction` must be a numeric %d x %d matrix, shaped like the result of the reduction.",
                          rows, state$out_dim), "kernops_error_dimension", call = call)
  }
  args <- c(stats::setNames(fin$data, fin$labels), stats::setNames(list(direction), dir_name))
  res <- with_call(do.call(gop, args), call)
  if (length(unique(wrt_labels)) == 1) res <- stats::setNames(list(res), wrt_labels[1])
  out <- unname(res[wrt_labels])
  if (single) return(out[[1]])
  names(out) <- if (!is.null(names(wrt)) && all(nzchar(names(wrt)))) names(wrt) else wrt_labels
  out
}

# ---- compiling through the cache, and running --------------------------------------

lazy_cache <- new.env(parent = emptyenv())

lazy_cache_clear <- function() {
  lazy_cache$ops <- new.env(hash = TRUE, parent = emptyenv())
  lazy_cache$keys <- character()
  lazy_cache$hits <- 0
  lazy_cache$misses <- 0
  invisible(NULL)
}
lazy_cache_clear()

# Internal: hits, misses and size of the plan cache (used by the tests and benchmarks).
lazy_cache_stats <- function() {
  list(hits = lazy_cache$hits, misses = lazy_cache$misses, size = length(lazy_cache$keys),
       capacity = lazy_cache_capacity())
}

lazy_cache_capacity <- function() {
  n <- getOption("kernops.lazy_cache_size", 256)
  if (!is.numeric(n) || length(n) != 1 || is.na(n) || n < 0) 256 else n
}

# Declarations, the formula with variable names, and the data, for a reduction formula
# with tokens: variables are numbered in order of first appearance.
lazy_finalize <- function(f, leaves) {
  sp <- split_tokens(f)
  ids <- unique(sp$toks)
  lv <- leaves[ids]
  labels <- leaf_labels(lv)
  sp$parts[sp$idx] <- labels[sp$toks]
  n <- length(lv)
  kinds <- character(n)
  dims <- integer(n)
  data <- vector("list", n)
  for (k in seq_len(n)) {
    l <- lv[[k]]
    kinds[k] <- kind_fn[[l$cat]]
    dims[k] <- l$dim
    if (!is.null(l$data)) data[[k]] <- l$data
  }
  decls <- paste0(labels, " = ", kinds, "(", seq_len(n) - 1L, ",", dims, ")")
  list(formula = paste(sp$parts, collapse = ""), decls = decls, labels = unname(labels), tokens = ids,
       data = data)
}

lazy_run <- function(f, leaves, dtype, call, backend = "auto") {
  fin <- lazy_finalize(f, leaves)
  entry <- lazy_entry(fin, dtype, call, backend)
  env <- list2env(stats::setNames(fin$data, fin$labels), parent = emptyenv())
  env$.kernops_op <- entry$op
  with_call(eval(entry$call, env), call)
}

# The cache entry for a finalized formula: the compiled kernel_op(), the call that passes
# the data to it, and an environment for its compiled gradients (reduction_grad()).
lazy_entry <- function(fin, dtype, call, backend = "auto") {
  key <- paste(c(dtype, backend, fin$formula, fin$decls), collapse = "\n")
  cap <- lazy_cache_capacity()  # 0 disables the cache
  # the key names a variable of the cache environment, and R limits names to 10000 bytes:
  # longer formulas are compiled every time
  if (nchar(key, type = "bytes") > 10000L) cap <- 0
  entry <- if (cap > 0) get0(key, envir = lazy_cache$ops, inherits = FALSE)
  if (!is.null(entry)) {
    lazy_cache$hits <- lazy_cache$hits + 1
    return(entry)
  }
  lazy_cache$misses <- lazy_cache$misses + 1
  op <- with_call(kernel_op(fin$formula, fin$decls, dtype = dtype, backend = backend), call)
  argcall <- as.call(c(list(as.name(".kernops_op")),
                       stats::setNames(lapply(fin$labels, as.name), fin$labels)))
  entry <- list(op = op, call = argcall, grads = new.env(parent = emptyenv()))
  if (cap > 0) {
    while (length(lazy_cache$keys) >= cap) {
      rm(list = lazy_cache$keys[1], envir = lazy_cache$ops)
      lazy_cache$keys <- lazy_cache$keys[-1]
    }
    assign(key, entry, envir = lazy_cache$ops)
    lazy_cache$keys <- c(lazy_cache$keys, key)
  }
  entry
}

# Reports kernops errors raised below as coming from `call` (the user's reduction).
with_call <- function(expr, call) {
  tryCatch(expr, kernops_error = function(e) {
    e$call <- call
    stop(e)
  }, kernops_error_interrupt = function(e) signal_interrupt(conditionMessage(e), call))
}

#' @export
print.kernops_lazy_reduction <- function(x, ...) {
  labels <- leaf_labels(ordered_leaves(x$f, x$leaves))
  cat("<LazyTensor reduction> ", name_tokens(x$f, labels), "\n", sep = "")
  invisible(x)
}

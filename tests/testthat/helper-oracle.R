# helper-oracle.R -- a dense base-R oracle for kernel reductions, and tolerance helpers.
#
# The oracle materialises the whole N x M x d array of F(x_i, y_j) with plain R loops
# (small sizes only), then reduces it along the requested axis. Everything here is
# deliberately naive: it is the reference the tiled C++ engine is checked against.

# CRAN-style cap: the suite never uses more than two threads.
kernops_threads(2)

# ---- data --------------------------------------------------------------------------

# Deterministic uniform matrix with `n` rows and `d` columns in [lo, hi].
runif_mat <- function(n, d, lo = 0, hi = 1) {
  matrix(stats::runif(n * d, lo, hi), n, d)
}

# Rounds doubles to the nearest float32 (keeping dim): the reference for a float32 run
# is computed in double on the inputs the engine actually sees.
round_f32 <- function(x) {
  if (is.list(x)) return(lapply(x, round_f32))
  out <- readBin(writeBin(as.double(x), raw(), size = 4), "double", size = 4, n = length(x))
  attributes(out) <- attributes(x)
  out
}

# Row `i` of a matrix argument as a plain vector (a parameter is returned whole).
row_of <- function(m, i) if (is.matrix(m)) m[i, ] else m

# ---- the dense pair array ----------------------------------------------------------

# Evaluates f(i, j) (a numeric vector of length d) for every pair: an N x M x d array.
dense_pairs <- function(f, N, M) {
  first <- f(1L, 1L)
  d <- length(first)
  out <- array(NA_real_, c(N, M, d))
  for (i in seq_len(N)) {
    for (j in seq_len(M)) out[i, j, ] <- f(i, j)
  }
  out
}

# The pair array seen from the reduction: result rows first, reduced index second.
# axis = 0: rows are i, reduced over j (as is); axis = 1: rows are j, reduced over i.
orient <- function(Fa, axis) {
  stopifnot(axis %in% c(0, 1))
  if (axis == 0) Fa else aperm(Fa, c(2, 1, 3))
}

# ---- reductions of a dense array (rows x reduced x d) -------------------------------

# Applies `g` to each vector Fa[r, , k]; returns a rows x d matrix (g returns a scalar)
# or rows x (length(g(.)) * d) in KeOps' K-major order: column q * d + k (0-based) holds
# the q-th entry of g for component k.
per_row_comp <- function(Fa, g) {
  n <- dim(Fa)[1]
  d <- dim(Fa)[3]
  cols <- lapply(seq_len(d), function(k) {
    res <- lapply(seq_len(n), function(r) g(Fa[r, , k]))
    do.call(rbind, res)
  })
  out <- do.call(cbind, cols)
  K <- ncol(out) / d
  out <- out[, as.vector(t(matrix(seq_len(K * d), K, d))), drop = FALSE]
  dimnames(out) <- NULL
  out
}

lse <- function(v) {
  m <- max(v)
  m + log(sum(exp(v - m)))
}

# Dense reduction of the array Fa (N x M x d) along `axis`. `reduction` is one of
# "Sum", "Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax", "KMin",
# "ArgKMin", "KMin_ArgKMin", "LogSumExp", "SumSoftMaxWeight". `W` (same layout as
# Fa, N x M x w) is the LogSumExp weight or the SumSoftMaxWeight values; F must then
# have dimension 1. Indices are 1-based, ties resolved towards the first index.
dense_reduce <- function(Fa, reduction, axis = 0, K = NULL, W = NULL) {
  A <- orient(Fa, axis)
  if (!is.null(W)) Wa <- orient(W, axis)
  first_k <- function(v) order(v, seq_along(v))[seq_len(K)]
  switch(reduction,
    Sum = per_row_comp(A, sum),
    Min = per_row_comp(A, min),
    Max = per_row_comp(A, max),
    ArgMin = per_row_comp(A, which.min),
    ArgMax = per_row_comp(A, which.max),
    Min_ArgMin = list(values = per_row_comp(A, min), indices = per_row_comp(A, which.min)),
    Max_ArgMax = list(values = per_row_comp(A, max), indices = per_row_comp(A, which.max)),
    KMin = per_row_comp(A, function(v) v[first_k(v)]),
    ArgKMin = per_row_comp(A, first_k),
    KMin_ArgKMin = list(values = per_row_comp(A, function(v) v[first_k(v)]),
                        indices = per_row_comp(A, first_k)),
    LogSumExp = if (is.null(W)) {
      per_row_comp(A, lse)
    } else {
      stopifnot(dim(A)[3] == 1)
      t(vapply(seq_len(dim(A)[1]), function(r) {
        v <- A[r, , 1]
        m <- max(v)
        vapply(seq_len(dim(Wa)[3]), function(c) m + log(sum(exp(v - m) * Wa[r, , c])), 0)
      }, numeric(dim(Wa)[3])))
    },
    SumSoftMaxWeight = {
      stopifnot(dim(A)[3] == 1, !is.null(W))
      res <- t(vapply(seq_len(dim(A)[1]), function(r) {
        e <- exp(A[r, , 1] - max(A[r, , 1]))
        vapply(seq_len(dim(Wa)[3]), function(c) sum(e * Wa[r, , c]) / sum(e), 0)
      }, numeric(dim(Wa)[3])))
      res
    },
    stop("unknown reduction ", reduction)
  ) -> out
  # vapply/t() on a single column or row can drop to a vector: always a matrix.
  fix <- function(m) {
    if (!is.matrix(m)) m <- matrix(m, nrow = dim(A)[1])
    if (nrow(m) != dim(A)[1]) m <- t(m)
    m
  }
  if (is.list(out)) {
    out$values <- fix(out$values)
    out$indices <- fix(out$indices)
    storage.mode(out$indices) <- "integer"
  } else {
    out <- fix(out)
    if (reduction %in% c("ArgMin", "ArgMax", "ArgKMin")) storage.mode(out) <- "integer"
  }
  out
}

# One-call convenience: the pair array of f, reduced.
dense_reduce_f <- function(f, N, M, reduction, axis = 0, ...) {
  dense_reduce(dense_pairs(f, N, M), reduction, axis, ...)
}

# ---- tolerances ----------------------------------------------------------------------

tol_for <- function(dtype) switch(dtype, float64 = 1e-12, float32 = 1e-5)

# expect_close(got, want, dtype): max|got - want| <= tol * scale, where scale is
# max|want| (or a caller-supplied scale, e.g. max_i sum_j |F_ij| for a sum, which is
# what the rounding error of a sum is proportional to) and tol is 1e-12 for float64,
# 1e-5 for float32. NA positions must agree.
expect_close <- function(got, want, dtype = "float64", scale = NULL, tol = tol_for(dtype)) {
  if (!identical(dim(got), dim(want))) {
    fail(sprintf("%s has dim (%s), expected (%s)", deparse1(substitute(got)),
                 paste(dim(got), collapse = ", "), paste(dim(want), collapse = ", ")))
    return(invisible(got))
  }
  if (!identical(is.na(got), is.na(want))) {
    fail(sprintf("%s: NA positions differ from the reference", deparse1(substitute(got))))
    return(invisible(got))
  }
  ok <- !is.na(want)
  if (is.null(scale)) scale <- if (any(ok)) max(abs(want[ok])) else 0
  scale <- max(scale, .Machine$double.xmin)
  err <- if (any(ok)) max(abs(got[ok] - want[ok])) else 0
  expect(
    is.finite(err) && err <= tol * scale,
    sprintf("%s differs from the reference (%s): max abs error %.3g > %g * scale %.3g (relative %.3g)",
            deparse1(substitute(got)), dtype, err, tol, scale, err / scale)
  )
  invisible(got)
}

# The declared variables of an op (name, index "i"/"j"/"parameter", pos, dim).
op_vars <- function(op) environment(op)$.kernops_state$vars

# Number of rows of the first argument of `op` indexed by `index` ("i" or "j").
op_rows <- function(op, data, index) {
  v <- op_vars(op)
  nm <- v$name[v$index == index][1]
  NROW(data[[nm]])
}

# Calls a kernops_op with the arguments it declares, taken by name from `data`.
call_op <- function(op, data) {
  do.call(op, data[setdiff(names(formals(op)), "...")])
}

# Checks one Sum reduction against the oracle in the given dtype. `data` is a named
# list of the arguments; `ref(i, j, d)` computes F(x_i, y_j) from `d`, which is `data`
# itself (float64) or `data` rounded to float32.
check_sum_op <- function(formula, args, data, ref, dtype, axis = 0, label = formula) {
  op <- kernel_op(sprintf("Sum_Reduction(%s, %d)", formula, axis), args, dtype = dtype)
  d <- if (dtype == "float32") round_f32(data) else data
  N <- op_rows(op, data, "i")
  M <- op_rows(op, data, "j")
  Fa <- dense_pairs(function(i, j) ref(i, j, d), N, M)
  want <- dense_reduce(Fa, "Sum", axis)
  scale <- max(dense_reduce(abs(Fa), "Sum", axis))
  got <- call_op(op, data)
  expect_true(is.matrix(got) && is.double(got), label = paste(label, "returns a double matrix"))
  err <- max(abs(got - want))
  expect(
    identical(dim(got), dim(want)) && is.finite(err) && err <= tol_for(dtype) * max(scale, 1e-300),
    sprintf("%s [%s, axis %d]: max abs error %.3g vs scale %.3g (relative %.3g, tolerance %g)",
            label, dtype, axis, err, scale, err / scale, tol_for(dtype))
  )
  invisible(got)
}

# Builds "<Red>_Reduction(F, [K,] axis[, G])".
reduction_string <- function(red, formula, axis, K = NULL, G = NULL) {
  parts <- c(formula, if (!is.null(K)) K, axis, if (!is.null(G)) G)
  sprintf("%s_Reduction(%s)", red, paste(parts, collapse = ", "))
}

# Checks any reduction against the oracle. `ref(i, j, d)` gives F at a pair and
# `gref(i, j, d)` the second formula G (LogSumExp weight / SumSoftMaxWeight values).
# Values are compared with expect_close (a sum against max sum |F|), indices exactly.
check_reduction <- function(red, formula, args, data, ref, axis = 0, dtype = "float64",
                            K = NULL, G = NULL, gref = NULL, threads = NULL) {
  op <- kernel_op(reduction_string(red, formula, axis, K, G), args, dtype = dtype)
  d <- if (dtype == "float32") round_f32(data) else data
  N <- op_rows(op, data, "i")
  M <- op_rows(op, data, "j")
  Fa <- dense_pairs(function(i, j) ref(i, j, d), N, M)
  W <- if (!is.null(gref)) dense_pairs(function(i, j) gref(i, j, d), N, M)
  want <- dense_reduce(Fa, red, axis, K = K, W = W)
  if (!is.null(threads)) {
    old <- options(kernops.threads = threads)
    on.exit(options(old), add = TRUE)
  }
  got <- call_op(op, data)
  label <- sprintf("%s [%s, axis %d]", reduction_string(red, formula, axis, K, G), dtype, axis)
  if (is.list(want)) {
    expect_type(got, "list")
    expect_named(got, c("values", "indices"))
    expect_close_lab(got$values, want$values, dtype, label = label)
    expect_identical(got$indices, want$indices, label = paste(label, "indices"))
  } else if (red %in% c("ArgMin", "ArgMax", "ArgKMin")) {
    expect_identical(got, want, label = label)
  } else {
    scale <- if (red == "Sum") max(dense_reduce(abs(Fa), "Sum", axis)) else NULL
    expect_close_lab(got, want, dtype, scale = scale, label = label)
  }
  invisible(got)
}

# expect_close with an explicit label for the failure message.
expect_close_lab <- function(got, want, dtype, scale = NULL, label = "result", tol = tol_for(dtype)) {
  ok_shape <- identical(dim(got), dim(want)) && identical(is.na(got), is.na(want))
  fin <- !is.na(want)
  if (is.null(scale)) scale <- if (any(fin)) max(abs(want[fin])) else 0
  scale <- max(scale, .Machine$double.xmin)
  err <- if (ok_shape && any(fin)) max(abs(got[fin] - want[fin])) else if (ok_shape) 0 else Inf
  expect(is.finite(err) && err <= tol * scale,
         sprintf("%s: %s; max abs error %.3g, scale %.3g, relative %.3g, tolerance %g", label,
                 if (ok_shape) "values differ" else "shape or NA positions differ",
                 err, scale, err / scale, tol))
  invisible(got)
}

# ---- instruction sets ----------------------------------------------------------------

# The CPU engine's instruction sets usable on this machine ("sse2", "avx2", "avx512"),
# each selectable with option kernops.cpu_isa; "auto" on builds without dispatch.
test_isas <- function() {
  a <- backend_info()$cpu$isa_available
  if (is.null(a)) "auto" else a
}

# Evaluates `expr` with option kernops.cpu_isa set to `isa`.
with_isa <- function(isa, expr) {
  old <- options(kernops.cpu_isa = isa)
  on.exit(options(old))
  force(expr)
}

# stat_kernels.R -- the kernels of the statistics functions (kde(), kernel_norm(), mmd(),
# kernel_solve(), kernel_spline()), in one bandwidth convention, and the checks of their
# arguments.

#' Kernels of the statistics functions
#'
#' Every statistics function of kernops (kernel density estimation, kernel norms and MMD,
#' kernel solves and splines) names its kernel with `kernel =` and its scale with `sigma`
#' (or a bandwidth matrix `H` for `kde()`), in one convention: \eqn{\sigma} is in the
#' units of the data and, for the Gaussian, is the standard deviation,
#' \deqn{k(x, y) = \exp(-|x - y|^2 / (2\sigma^2)),}
#' as in `ks` (\eqn{H = \sigma^2 I}) and in the MMD literature. With \eqn{r = |x - y|}:
#'
#' * `"gaussian"`: \eqn{\exp(-r^2 / (2\sigma^2))};
#' * `"laplace"`: \eqn{\exp(-r / \sigma)};
#' * `"cauchy"`: \eqn{1 / (1 + r^2 / \sigma^2)};
#' * `"epanechnikov"`: \eqn{\max(0, 1 - r^2 / \sigma^2)} (compact support: only for `kde()`);
#' * `"matern32"`: \eqn{(1 + u) \exp(-u)} with \eqn{u = \sqrt 3\, r / \sigma} (Matern,
#'   \eqn{\nu = 3/2}, length scale \eqn{\sigma});
#' * `"matern52"`: \eqn{(1 + u + u^2 / 3) \exp(-u)} with \eqn{u = \sqrt 5\, r / \sigma}
#'   (Matern, \eqn{\nu = 5/2});
#' * `"imq"`: \eqn{1 / \sqrt{1 + r^2 / \sigma^2}} (inverse multiquadric).
#'
#' [kde()] takes the first four, [kernel_norm()] and [mmd()] the positive definite
#' `"gaussian"`, `"laplace"` and `"cauchy"`, and [kernel_solve()] and [kernel_spline()] the
#' positive definite ones: all but `"epanechnikov"`.
#'
#' The same Gaussian in the other places users meet it: the LazyTensor
#' [gaussian_kernel()] (the engine's `GaussKernel`) has no factor 1/2,
#' \eqn{\exp(-r^2/s^2)}, so it is `gaussian_kernel(x, y, sigma = sqrt(2) * sigma)`;
#' kernlab's `rbfdot(sigma = g)` is \eqn{\exp(-g r^2)}, so it is `rbfdot(sigma = 1 / (2 *
#' sigma^2))`. Density estimates multiply the kernel by the constant that makes it
#' integrate to 1 (see [kde()]); kernel norms and MMD use it as written here.
#' @name stat_kernels
#' @seealso [kernels] for the LazyTensor kernels; [kernel_norm()], [mmd()] and
#'   [mmd_test()] for kernel norms and MMD tests in this convention; [kernel_solve()] and
#'   [kernel_spline()] for kernel systems and splines.
#' @examples
#' x <- matrix(rnorm(20), 10, 2)
#' sigma <- 0.7
#' K <- exp(-as.matrix(dist(x))^2 / (2 * sigma^2))   # the "gaussian" of this page
#' Kb <- sum(gaussian_kernel(Vi(x), Vj(x), sigma = sqrt(2) * sigma) * Vj(rep(1, 10)), index = "j")
#' all.equal(as.vector(Kb), unname(rowSums(K)))
NULL

# Per kernel: the engine's formula of k(x, y) with the parameter g (so that a new sigma never
# recompiles: g is a Pm), and g as a function of sigma. The Gaussian, Laplace and Cauchy
# (and Matern, IMQ) spellings are the engine's named kernels, which take its fused radial path.
stat_kernel_table <- list(
  gaussian = list(formula = "GaussKernel(g,x,y,1)", g = function(sigma) 1 / (2 * sigma^2)),
  laplace = list(formula = "LaplaceKernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  cauchy = list(formula = "CauchyKernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  epanechnikov = list(formula = "ReLU(1-g*SqDist(x,y))", g = function(sigma) 1 / sigma^2),
  matern32 = list(formula = "Matern32Kernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  matern52 = list(formula = "Matern52Kernel(g,x,y,1)", g = function(sigma) 1 / sigma^2),
  imq = list(formula = "InverseMultiquadricKernel(g,x,y,1)", g = function(sigma) 1 / sigma^2)
)

# The kernel's entry, or a kernops_error_input naming the argument and the choices.
stat_kernel <- function(kernel, allowed = names(stat_kernel_table), arg = "kernel", call = NULL) {
  if (!is.character(kernel) || length(kernel) != 1 || is.na(kernel) || !kernel %in% allowed)
    abort_kernops(sprintf("`%s` must be one of %s, not %s.", arg, paste0('"', allowed, '"', collapse = ", "),
                          if (is.character(kernel) && length(kernel) == 1) paste0('"', kernel, '"') else describe_type(kernel)),
                  "kernops_error_input", call = call)
  c(stat_kernel_table[[kernel]], name = kernel)
}

# A positive, finite scale (sigma, h) whose g is finite too, or a kernops_error_input.
check_bandwidth <- function(sigma, arg = "sigma", call = NULL) {
  if (!is.numeric(sigma) || length(sigma) != 1 || is.na(sigma) || !is.finite(sigma) || sigma <= 0 ||
      !is.finite(1 / sigma^2))
    abort_kernops(sprintf("`%s` must be a single positive finite number (got %s).", arg,
                          if (is.numeric(sigma) && length(sigma) == 1) format(sigma) else describe_type(sigma)),
                  "kernops_error_input", call = call)
  invisible(sigma)
}

# k(x, y) times the weight b (a Vj of any width): the engine's named kernels take it as
# their last argument (their fused radial path), other formulas are multiplied by it.
stat_weighted_kernel <- function(formula) {
  if (grepl("^[A-Za-z]+Kernel\\(.*,1\\)$", formula)) sub(",1)$", ",b)", formula) else sprintf("(%s)*b", formula)
}

# sum_j k(x_i, y_j) b_j for a kernel formula of the table (b of p columns), in d dimensions:
# the one reduction of kde() (b the sample weights, on whitened data) and of kernel norms
# and MMD (b the weights, or the permutation test's labellings).
stat_sum_formula <- function(formula) sprintf("Sum_Reduction(%s,0)", stat_weighted_kernel(formula))
stat_sum_args <- function(d, p = 1L) c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), sprintf("b = Vj(%d)", p), "g = Pm(1)")

# The points of a statistics function as a finite double matrix, one row per point: from
# a numeric vector (points on the line; a vector of length d is one point when the
# dimension d > 1 is given), matrix or numeric data frame; at least `min_n` rows and, when
# given, `d` columns. Errors name the argument `arg`. (The engine's own coercion,
# as_kernel_data() in kernel_op.R, has other rules.)
stat_points <- function(x, arg, d = NULL, min_n = 1L, call = NULL) {
  if (is.data.frame(x)) {
    if (!all(vapply(x, is.numeric, logical(1))))
      abort_kernops(sprintf("`%s` is a data frame with non-numeric columns.", arg), "kernops_error_input", call = call)
    x <- as.matrix(x)
  }
  if (!(is.double(x) || is.integer(x)) || is.factor(x) || (!is.null(dim(x)) && length(dim(x)) != 2))
    abort_kernops(sprintf("`%s` must be a numeric matrix (rows are points) or vector, not %s.", arg, describe_type(x)),
                  "kernops_error_input", call = call)
  # as doubles under the memory limit (a compact 1:3e9 would otherwise be written out unchecked)
  dims <- if (is.matrix(x)) dim(x) else {
    cols <- if (!is.null(d) && d > 1 && length(x) == d) d else 1L
    c(length(x) %/% cols, cols)
  }
  x <- as_double_data(x, sprintf("`%s`", arg), call)
  dim(x) <- dims
  if (nrow(x) < min_n || ncol(x) < 1)
    abort_kernops(sprintf("`%s` must have at least %d point%s (rows), not %d.", arg, min_n,
                          if (min_n > 1) "s" else "", nrow(x)), "kernops_error_input", call = call)
  if (!is.null(d) && ncol(x) != d)
    abort_kernops(sprintf("`%s` must have %d column%s (the dimension of `x`), not %d.", arg, d,
                          if (d > 1) "s" else "", ncol(x)), "kernops_error_dimension", call = call)
  bad <- which(!is.finite(x))
  if (length(bad))
    abort_kernops(sprintf("`%s` has a non-finite value (%s) in row %d: remove or impute such rows first.",
                          arg, format(x[bad[1]]), (bad[1] - 1L) %% nrow(x) + 1L), "kernops_error_input", call = call)
  x
}

# Compiled reductions, cached for the session by formula, declarations, dtype and backend:
# the statistics functions (kde, bandwidth selectors, mmd) call them in loops with new data
# and bandwidths (a Pm), never recompiling.
stat_op_cache <- new.env(parent = emptyenv())
stat_op <- function(formula, args, dtype, backend) {
  key <- paste(formula, paste(args, collapse = ";"), dtype, backend, sep = "|")
  op <- stat_op_cache[[key]]
  if (is.null(op)) {
    op <- kernel_op(formula, args, dtype = dtype, backend = backend)
    assign(key, op, envir = stat_op_cache)
  }
  op
}

# The gradient of a cached op with respect to `wrt` (direction argument `e`), cached alike:
# predict(deriv = 1) is called in loops (mean shift), and so are MMD gradient flows.
stat_grad_op <- function(formula, args, dtype, backend, wrt) {
  key <- paste("grad", wrt, formula, paste(args, collapse = ";"), dtype, backend, sep = "|")
  gop <- stat_op_cache[[key]]
  if (is.null(gop)) {
    gop <- kernel_grad(stat_op(formula, args, dtype, backend), wrt = wrt, direction = "e")
    assign(key, gop, envir = stat_op_cache)
  }
  gop
}

# Sums over the pairs of one point set X (n x d) of a formula `body` in x and y that is
# symmetric (body(x, y) = body(y, x)), of dimension `dim`, weighted: for each column k of
# the weights P (n x p) and Q (default P),
#   sum_{i != j} P_ik Q_jk body(x_i, x_j)      (all i, j with diagonal = TRUE),
# returned as a dim x p matrix. No n x n matrix, and each unordered pair is computed once:
# the rows are cut into B = min(16, ceiling(n / block)) blocks of equal sizes; block a is
# reduced against the rows after it with both orders of each pair folded in (weight
# columns Q_j and P_j, or 2 P_j when Q = P) and against itself, where the pair i = j is
# dropped inside the reduction (Step(|i - j| - 1/2): subtracting the diagonal afterwards
# would lose every digit of a leave-one-out sum far in the tails) or, with diagonal = TRUE,
# kept (weighted: in the same reduction as the later rows). That is (1 + 1/B) / 2 of the
# n^2 pairs with B blocks. Used by the bandwidth selectors (LSCV, the plug-in functionals)
# and by kernel norms / MMD (a' K a, and the permutation test's labellings as columns).
# `params`: declarations of the body's parameters (values passed to the returned function
# as `par`, a named list).
stat_pair_sum <- function(body, d, dim = 1L, dtype, backend, diagonal = FALSE, params = character(),
                          block = 2048L) {
  xy <- c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), params)
  ops <- function(width) {
    # the weights b multiply the body; the engine's named kernels take them as their last
    # argument (their fused radial path); a vector body with several weight columns takes
    # every product (TensorProd: entry k * width + c is body_k b_c). width 0: no weights
    # (uniform ones, folded in afterwards), as a product with b costs a generic body
    # about as much as the body itself
    wb <- if (width == 0) body
          else if (dim == 1) stat_weighted_kernel(body)
          else if (width == 1) sprintf("(%s)*b", body)
          else sprintf("TensorProd(%s,b)", body)
    args <- c(xy, if (width > 0) sprintf("b = Vj(%d)", width))
    list(full = stat_op(sprintf("Sum_Reduction(%s,0)", wb), args, dtype, backend),
         loo = if (!diagonal) stat_op(sprintf("Sum_Reduction(Step(Abs(i-j)-0.5)*%s,0)", wb),
                                      c(args, "i = Vi(1)", "j = Vj(1)"), dtype, backend))
  }
  function(X, P, Q = NULL, par = list()) {
    n <- nrow(X)
    P <- as.matrix(P)
    p <- ncol(P)
    bilinear <- !is.null(Q)
    if (bilinear) Q <- as.matrix(Q)
    # one column of equal weights: the unweighted sums (width 0), times P_1^2
    uniform <- !bilinear && p == 1 && all(P == P[1])
    width <- if (uniform) 0L else if (bilinear) 2L * p else p
    op <- ops(width)
    # fold the reduction's rows (sum_j body_ij b_j) with the row weights W: a dim x p matrix
    fold <- function(res, W) {
      if (uniform) return(matrix(colSums(as.matrix(res)), dim, 1))
      s <- matrix(colSums(as.matrix(res) * W[, rep(seq_len(width), dim), drop = FALSE]), width, dim)
      t(if (bilinear) s[seq_len(p), , drop = FALSE] + s[p + seq_len(p), , drop = FALSE] else s)
    }
    # the weights of the columns y_j and of the rows x_i, for the pairs of the same block
    # (both orders are there) and for the later rows (both orders folded in)
    same_b <- function(r) if (bilinear) cbind(Q[r, , drop = FALSE], 0 * P[r, , drop = FALSE]) else P[r, , drop = FALSE]
    later_b <- function(r) if (bilinear) cbind(Q[r, , drop = FALSE], P[r, , drop = FALSE]) else 2 * P[r, , drop = FALSE]
    row_w <- function(r) if (bilinear) cbind(P[r, , drop = FALSE], Q[r, , drop = FALSE]) else P[r, , drop = FALSE]
    reduce <- function(f, x, y, b, ...) {
      if (uniform) {
        # unweighted: the later rows count twice (b = 2) as a factor instead
        res <- do.call(f, c(list(x = x, y = y), par, list(...)))
        return(if (identical(b, "later")) 2 * res else res)
      }
      do.call(f, c(list(x = x, y = y, b = b), par, list(...)))
    }
    B <- max(1L, min(16L, ceiling(n / block)))
    first <- floor(seq(0, n, length.out = B + 1))  # block a is rows first[a] + 1 .. first[a + 1]
    total <- 0
    for (a in seq_len(B)) {
      rows <- (first[a] + 1):first[a + 1]
      later <- if (first[a + 1] < n) (first[a + 1] + 1):n else integer()
      Xa <- X[rows, , drop = FALSE]
      W <- if (!uniform) row_w(rows)
      if (diagonal && !uniform) {
        b <- rbind(same_b(rows), later_b(later))
        total <- total + fold(reduce(op$full, Xa, X[c(rows, later), , drop = FALSE], b), W)
      } else {
        if (diagonal) {
          total <- total + fold(reduce(op$full, Xa, Xa, "same"), W)
        } else {
          idx <- as.double(seq_along(rows))
          total <- total + fold(reduce(op$loo, Xa, Xa, if (!uniform) same_b(rows) else "same", i = idx, j = idx), W)
        }
        if (length(later))
          total <- total + fold(reduce(op$full, Xa, X[later, , drop = FALSE], if (!uniform) later_b(later) else "later"), W)
      }
    }
    if (uniform) P[1]^2 * total else total
  }
}

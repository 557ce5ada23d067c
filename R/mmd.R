# mmd.R -- kernel norms between weighted measures, the maximum mean discrepancy (MMD) and
# kernel two-sample tests. Every quantity is a few Sum reductions of one compiled operation,
# k(x_i, y_j) * b_j summed over j, with the bandwidth as a parameter (g = Pm): the
# operations are compiled once per kernel, dimension, weight width, dtype and backend and
# kept for the session, and no n x m matrix is ever formed.

#' Kernel norm between two weighted point clouds
#'
#' `kernel_norm()` computes the squared kernel (RKHS, "maximum mean discrepancy") distance
#' between the measures \eqn{\mu = \sum_i a_i \delta_{x_i}} and
#' \eqn{\nu = \sum_j b_j \delta_{y_j}},
#' \deqn{\|\mu - \nu\|^2 = a^T K_{xx} a - 2 a^T K_{xy} b + b^T K_{yy} b,}
#' by three kernel reductions (\eqn{K_{xx} a}, \eqn{K_{xy} b}, \eqn{K_{yy} b}; the two
#' symmetric ones by blocks of rows, each pair of blocks once), without ever storing a
#' kernel matrix. It is the data term of shape matching (the "kernel
#' distance" between shapes seen as measures) and, with uniform weights \eqn{1/n} and
#' \eqn{1/m}, the biased (V-statistic) MMD^2 of [mmd()].
#'
#' The kernel and its scale follow the package's one convention ([stat_kernels]): for the
#' Gaussian, `sigma` is the standard deviation, \eqn{k(x, y) = \exp(-|x - y|^2 / (2
#' \sigma^2))} (kernlab's `rbfdot(sigma = 1 / (2 * sigma^2))`). The weights are used as
#' given (measures need not have mass 1); [mmd()] normalises them.
#'
#' @param x,y Numeric matrices (rows are points, the same number of columns), or vectors
#'   (points on the line), or numeric data frames. Finite values only.
#' @param a,b Non-negative weights of the points of `x` and `y` (vectors of lengths
#'   `nrow(x)`, `nrow(y)`); `NULL` (the default) is uniform, \eqn{1/n} and \eqn{1/m}.
#' @param kernel `"gaussian"` (default), `"laplace"` or `"cauchy"` (see [stat_kernels]);
#'   `"epanechnikov"` is refused, as its kernel is not positive definite.
#' @param sigma The kernel's scale (a positive number, in the units of the data), or
#'   `"median"` for the median heuristic of [mmd()].
#' @param grad If `TRUE`, also return the gradient with respect to `x` (with `sigma` held
#'   fixed, also when it comes from the median heuristic), so that the norm can serve as
#'   a loss.
#' @param dtype `"float64"` (default) or `"float32"`, passed to the reductions (see
#'   [kernel_op()]).
#' @param backend `"auto"`, `"cpu"` or `"cuda"`, passed to the reductions.
#' @return The squared norm, a number (with attribute `"sigma"`, the scale used); with
#'   `grad = TRUE` a list with `value` (that number) and `gradient`, an `nrow(x)` x
#'   `ncol(x)` matrix.
#' @seealso [mmd()], [mmd_test()], [stat_kernels] for the kernels, [kernops_conditions]
#'   for the errors.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(200), 100, 2)
#' y <- matrix(rnorm(100, mean = 1), 50, 2)
#' kernel_norm(x, y = y, sigma = 1)
#' # the same with dense kernel matrices (possible for small sizes only)
#' k <- function(u, v) exp(-outer(rowSums(u^2), rowSums(v^2), "+") / 2 + tcrossprod(u, v))
#' a <- rep(1 / 100, 100); b <- rep(1 / 50, 50)
#' sum(a * (k(x, x) %*% a)) - 2 * sum(a * (k(x, y) %*% b)) + sum(b * (k(y, y) %*% b))
#' # as a loss: one gradient step moves x towards y
#' g <- kernel_norm(x, y = y, sigma = 1, grad = TRUE)
#' kernel_norm(x - 10 * g$gradient, y = y, sigma = 1)
kernel_norm <- function(x, a = NULL, y, b = NULL, kernel = "gaussian", sigma, grad = FALSE,
                        dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- sys.call()
  s <- stat_setup(x, y, kernel, if (missing(sigma)) NULL else sigma, dtype, backend, min_n = 1L, call = call)
  a <- check_weights(a, s$n, "a", call)
  b <- check_weights(b, s$m, "b", call)
  check_flag(grad, "grad", call)
  parts <- norm_parts(s, a, b)
  value <- structure(parts$xx - 2 * parts$xy + parts$yy, sigma = s$sigma)
  if (!grad) return(value)
  list(value = value, gradient = norm_gradient(s, a, b, 1))
}

#' Maximum mean discrepancy between two samples
#'
#' `mmd()` estimates the squared maximum mean discrepancy between the distributions of
#' two samples, \eqn{MMD^2 = E k(X, X') - 2 E k(X, Y) + E k(Y, Y')}, from \eqn{n} points
#' `x` and \eqn{m} points `y`, by kernel reductions that never store a kernel matrix:
#' \eqn{O((n + m) d)} memory, and about \eqn{(n^2 + m^2) / 2 + nm} kernel evaluations (the
#' symmetric within-sample terms are reduced by blocks of rows, each pair of blocks once).
#'
#' With `unbiased = TRUE` (the default) it is the U-statistic of Gretton et al. (2012),
#' \deqn{\frac{1}{n(n-1)} \sum_{i \ne i'} k(x_i, x_{i'}) + \frac{1}{m(m-1)} \sum_{j \ne j'}
#' k(y_j, y_{j'}) - \frac{2}{nm} \sum_{i, j} k(x_i, y_j),}
#' unbiased and possibly negative; with `unbiased = FALSE` the V-statistic (all pairs,
#' with weights \eqn{1/n}, \eqn{1/m}), which is [kernel_norm()] with uniform weights, is
#' biased upwards and never negative. With `weights`, each sample's weights are
#' normalised to sum 1; the V-statistic is then [kernel_norm()] of the normalised
#' measures, and the U-statistic drops the \eqn{i = i'} terms of each within-sample sum
#' and divides it by \eqn{1 - \sum_i a_i^2} (which is \eqn{(n - 1)/n} for uniform
#' weights).
#'
#' kernlab's [kernlab::kmmd()] reports, in `mmdstats(.)[1]`, the square root of the
#' V-statistic, with `kernel = "rbfdot"` and `kpar = list(sigma = 1 / (2 * sigma^2))`;
#' its `mmdstats(.)[2]` is another U-statistic, for \eqn{n = m}, which also leaves out
#' the pairs \eqn{(x_i, y_i)} of the cross term.
#'
#' @section The median heuristic:
#' `sigma = "median"` sets \eqn{\sigma} to the median of the Euclidean distances between
#' the points of the pooled sample (`rbind(x, y)`), the usual choice for MMD tests
#' (Gretton et al., 2012). When \eqn{n + m > 1000} it is the median over a random
#' subsample of 1000 pooled points (drawn with R's random numbers, so `set.seed()` makes
#' it reproducible): its cost is then that of the \eqn{499500} distances of the
#' subsample, \eqn{O(10^6 d)}, whatever \eqn{n} and \eqn{m}, and the \eqn{(n + m)^2}
#' distances are never computed nor stored. A median of 0 (more than half the pairs are
#' duplicates) is an error: pass `sigma`.
#'
#' @inheritParams kernel_norm
#' @param x,y The two samples: numeric matrices with the same number of columns (rows are
#'   points), or vectors, or numeric data frames; at least 2 points each, finite values.
#' @param sigma The kernel's scale, a positive number in the units of the data (for the
#'   Gaussian, its standard deviation: see [stat_kernels]), or `"median"` (the default)
#'   for the median heuristic.
#' @param unbiased `TRUE` for the U-statistic, `FALSE` for the V-statistic.
#' @param weights `NULL` (uniform weights) or a list of two vectors of non-negative
#'   weights, for the points of `x` and of `y` (either may be `NULL`).
#' @param grad If `TRUE`, also return the gradient of the estimate with respect to `x`
#'   (with `sigma` and the weights held fixed), so that `mmd()` can serve as a loss.
#' @return The estimate, a number named `"MMD^2"` with attribute `"sigma"` (the scale
#'   used); with `grad = TRUE` a list with `value` (that number) and `gradient`, an
#'   `nrow(x)` x `ncol(x)` matrix.
#' @references Gretton, A., Borgwardt, K. M., Rasch, M. J., Schoelkopf, B. and Smola, A.
#'   (2012). A kernel two-sample test. *Journal of Machine Learning Research*, 13,
#'   723--773.
#' @seealso [mmd_test()] for the test, [kernel_norm()], [stat_kernels].
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(400), 200, 2)
#' y <- matrix(rnorm(400, mean = 0.3), 200, 2)
#' mmd(x, y)                       # median heuristic, U-statistic
#' mmd(x, y, sigma = 1, unbiased = FALSE)
#' # kernlab's statistic: the square root of the V-statistic
#' if (requireNamespace("kernlab", quietly = TRUE)) {
#'   km <- kernlab::kmmd(x, y, kpar = list(sigma = 1 / (2 * 1^2)))
#'   kernlab::mmdstats(km)[1]^2
#' }
#' # as a loss: the gradient with respect to x
#' str(mmd(x, y, sigma = 1, grad = TRUE))
mmd <- function(x, y, kernel = "gaussian", sigma = "median", unbiased = TRUE, weights = NULL,
                grad = FALSE, dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- sys.call()
  s <- stat_setup(x, y, kernel, sigma, dtype, backend, min_n = 2L, call = call)
  check_flag(unbiased, "unbiased", call)
  check_flag(grad, "grad", call)
  if (!is.null(weights) && !(is.list(weights) && length(weights) == 2))
    abort_kernops(sprintf("`weights` must be NULL or a list of two weight vectors (for `x` and `y`), not %s.",
                          if (is.list(weights)) sprintf("a list of length %d", length(weights)) else describe_type(weights)),
                  "kernops_error_input", call = call)
  a <- normalise_weights(check_weights(weights[[1]], s$n, "weights[[1]]", call), "weights[[1]]", call)
  b <- normalise_weights(check_weights(weights[[2]], s$m, "weights[[2]]", call), "weights[[2]]", call)
  parts <- norm_parts(s, a, b)
  cx <- cy <- 1
  if (unbiased) {
    # k(x, x) = 1 for every kernel allowed here: the diagonal of a^T K a is sum(a^2).
    sa <- sum(a^2)
    sb <- sum(b^2)
    for (w in list(list(sa, "weights[[1]]", "x"), list(sb, "weights[[2]]", "y")))
      if (w[[1]] >= 1 - 1e-12)
        abort_kernops(sprintf("The U-statistic needs two points of `%s` with positive weight; `%s` has only one (use unbiased = FALSE).",
                              w[[3]], w[[2]]), "kernops_error_input", call = call)
    cx <- 1 / (1 - sa)
    cy <- 1 / (1 - sb)
    parts$xx <- (parts$xx - sa) * cx
    parts$yy <- (parts$yy - sb) * cy
  }
  value <- structure(c("MMD^2" = parts$xx - 2 * parts$xy + parts$yy), sigma = s$sigma)
  if (!grad) return(value)
  list(value = value, gradient = norm_gradient(s, a, b, cx))
}

#' Kernel two-sample test
#'
#' `mmd_test()` tests whether two samples come from the same distribution with the
#' maximum mean discrepancy of [mmd()] as the statistic, and returns an `"htest"` like
#' [stats::t.test()].
#'
#' `method = "permutation"` (the default) compares the statistic with its values for
#' `n_perm` random relabellings of the pooled sample (drawn with R's random numbers: use
#' `set.seed()` for reproducible p-values); the p-value is \eqn{(1 + \#\{MMD^2_\pi \ge
#' MMD^2\}) / (1 + n_{perm})}, exact under the null hypothesis of exchangeability. The
#' permutations do not cost one pass over the pairs each: the labellings are the columns
#' of one weight matrix \eqn{S} (\eqn{(n + m)} x \eqn{n_{perm}}), and \eqn{K S} is ONE
#' Sum reduction (`Sum_Reduction(GaussKernel(g, x, y, S), 0)`), computed by blocks of
#' columns so that \eqn{S} takes at most about 32 MB; the engine evaluates each kernel
#' value once per pair and block and folds it into all the columns. Only the quadratic
#' forms \eqn{s^T K s} are needed and \eqn{K} is symmetric, so each pair of blocks of
#' rows is reduced once (about half the pairs). The median heuristic is computed once on
#' the pooled sample, which the permutations leave unchanged. Progress is reported through \pkg{progressr} when it is
#' installed (wrap the call in `progressr::with_progress()`).
#'
#' `method = "gamma"` is Gretton et al.'s (2009) approximation of the null distribution
#' of \eqn{n \cdot MMD^2_b} (the V-statistic) by a Gamma distribution with the mean and
#' variance estimated from the data: no permutations, one pass more than the statistic;
#' it needs \eqn{n = m}, and tests the V-statistic (`unbiased` is ignored). It is fast
#' but only approximate, and can be anti-conservative for small samples.
#'
#' @inheritParams mmd
#' @param method `"permutation"` (default) or `"gamma"`.
#' @param n_perm Number of permutations (`method = "permutation"`).
#' @return An object of class `"htest"`: `statistic` (`c("MMD^2" = )`), `parameter`
#'   (`c(sigma = )`, the scale used), `p.value`, `null.value` (`c("MMD^2" = 0)`),
#'   `alternative` (`"greater"`), `method`, `data.name`, and `replicates` (`n_perm`, for the
#'   permutation method).
#' @references Gretton, A., Borgwardt, K. M., Rasch, M. J., Schoelkopf, B. and Smola, A.
#'   (2012). A kernel two-sample test. *Journal of Machine Learning Research*, 13,
#'   723--773.
#'
#'   Gretton, A., Fukumizu, K., Harchaoui, Z. and Sriperumbudur, B. K. (2009). A fast,
#'   consistent kernel two-sample test. *Advances in Neural Information Processing
#'   Systems*, 22.
#' @seealso [mmd()], [stat_kernels]; [kernlab::kmmd()] for kernlab's test (no p-value).
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(200), 100, 2)
#' y <- matrix(rnorm(200, mean = 0.5), 100, 2)
#' mmd_test(x, y, n_perm = 200)
#' mmd_test(x, matrix(rnorm(200), 100, 2), n_perm = 200)$p.value
#' mmd_test(x, y, method = "gamma")
mmd_test <- function(x, y, kernel = "gaussian", sigma = "median", unbiased = TRUE,
                     method = c("permutation", "gamma"), n_perm = 1000,
                     dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- sys.call()
  data_name <- paste(deparse1(substitute(x)), "and", deparse1(substitute(y)))
  method <- match_choice(method, c("permutation", "gamma"), "method", call)
  s <- stat_setup(x, y, kernel, sigma, dtype, backend, min_n = 2L, call = call)
  check_flag(unbiased, "unbiased", call)
  if (method == "permutation" &&
      (!is.numeric(n_perm) || length(n_perm) != 1 || is.na(n_perm) || n_perm < 1 || n_perm != round(n_perm) ||
       n_perm > 1e7))
    abort_kernops(sprintf("`n_perm` must be a whole number of permutations between 1 and 1e7 (got %s).",
                          if (is.numeric(n_perm) && length(n_perm) == 1) format(n_perm) else describe_type(n_perm)),
                  "kernops_error_input", call = call)
  kname <- paste0(toupper(substring(s$kernel$name, 1, 1)), substring(s$kernel$name, 2))
  res <- if (method == "permutation") {
    perm <- permutation_null(s, unbiased, as.integer(n_perm))
    list(statistic = perm$statistic, p.value = (1 + sum(perm$null >= perm$statistic)) / (1 + n_perm),
         method = sprintf("Kernel two-sample test (%s MMD^2, %s kernel, %d permutations)",
                          if (unbiased) "unbiased" else "biased", kname, as.integer(n_perm)),
         replicates = as.integer(n_perm))
  } else {
    g <- gamma_null(s, call)
    list(statistic = g$statistic, p.value = g$p.value,
         method = sprintf("Kernel two-sample test (biased MMD^2, %s kernel, Gamma approximation)", kname))
  }
  out <- list(statistic = c("MMD^2" = unname(res$statistic)), parameter = c(sigma = s$sigma),
              p.value = res$p.value, null.value = c("MMD^2" = 0), alternative = "greater",
              method = res$method, data.name = data_name)
  out$replicates <- res$replicates
  structure(out, class = "htest")
}

# ---- shared set-up ------------------------------------------------------------------

# The checked samples, kernel, scale, dtype and backend, with the kernel's parameter g.
stat_setup <- function(x, y, kernel, sigma, dtype, backend, min_n, call) {
  if (identical(kernel, "epanechnikov"))
    abort_kernops("`kernel` = \"epanechnikov\" is not positive definite, so it defines no kernel norm or MMD; use \"gaussian\", \"laplace\" or \"cauchy\".",
                  "kernops_error_input", call = call)
  kern <- stat_kernel(kernel, allowed = c("gaussian", "laplace", "cauchy"), call = call)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
  x <- check_sample(x, "x", min_n, call)
  y <- check_sample(y, "y", min_n, call)
  if (ncol(x) != ncol(y))
    abort_kernops(sprintf("`x` and `y` must have the same number of columns (dimensions): `x` has %d, `y` has %d.",
                          ncol(x), ncol(y)), "kernops_error_dimension", call = call)
  if (is.null(sigma))
    abort_kernops("Argument `sigma` is missing: give the kernel's scale (see ?stat_kernels) or \"median\".",
                  "kernops_error_input", call = call)
  if (identical(sigma, "median")) {
    sigma <- median_heuristic(x, y)
    if (!(sigma > 0))
      abort_kernops("The median heuristic gave `sigma` = 0: more than half of the pairs of points are equal. Give `sigma`.",
                    "kernops_error_input", call = call)
  } else if (is.character(sigma)) {
    abort_kernops(sprintf("`sigma` must be a positive number or \"median\", not \"%s\".", sigma[1]),
                  "kernops_error_input", call = call)
  }
  check_bandwidth(sigma, "sigma", call)
  list(x = x, y = y, n = nrow(x), m = nrow(y), d = ncol(x), kernel = kern, sigma = sigma,
       g = kern$g(sigma), dtype = dtype, backend = backend)
}

# A double matrix with at least `min_n` finite rows, or a kernops_error_input naming `name`
# (also used by sinkhorn.R).
check_sample <- function(x, name, min_n, call) stat_points(x, name, min_n = min_n, call = call)

# Weights of `n` points: NULL -> 1/n each; else n finite non-negative numbers.
check_weights <- function(w, n, name, call) {
  if (is.null(w)) return(rep(1 / n, n))
  if (!(is.double(w) || is.integer(w)) || is.factor(w) || length(w) != n || (is.matrix(w) && ncol(w) != 1))
    abort_kernops(sprintf("`%s` must be a numeric vector of %d weights (one per point), not %s of length %d.",
                          name, n, describe_type(w), length(w)), "kernops_error_input", call = call)
  w <- as.double(w)
  bad <- which(!is.finite(w) | w < 0)
  if (length(bad))
    abort_kernops(sprintf("`%s` must hold finite non-negative weights; element %d is %s.", name, bad[1], format(w[bad[1]])),
                  "kernops_error_input", call = call)
  w
}

normalise_weights <- function(w, name, call) {
  total <- sum(w)
  if (!(total > 0))
    abort_kernops(sprintf("`%s` are all 0: at least one weight must be positive.", name), "kernops_error_input", call = call)
  w / total
}

check_flag <- function(v, name, call) {
  if (!is.logical(v) || length(v) != 1 || is.na(v))
    abort_kernops(sprintf("`%s` must be TRUE or FALSE.", name), "kernops_error_input", call = call)
}

# The median of the pairwise distances of the pooled sample, on a random subsample of
# `size` points when the pooled sample is larger (see ?mmd, "The median heuristic").
median_heuristic <- function(x, y, size = 1000L) {
  z <- rbind(x, y)
  if (nrow(z) > size) z <- z[sort(sample.int(nrow(z), size)), , drop = FALSE]
  stats::median(stats::dist(z))
}

# ---- the reductions -----------------------------------------------------------------

# sum_j k(x_i, y_j) b_j with b of `p` columns, and its gradient with respect to x: compiled
# once per kernel, dimension, width, dtype and backend (stat_op() in stat_kernels.R).
stat_sum_op <- function(s, p) stat_op(stat_sum_formula(s$kernel$formula), stat_sum_args(s$d, p), s$dtype, s$backend)

# sum_j Grad_x k(x_i, y_j) b_j e_i: the gradient of <e, K b> with respect to x.
mmd_grad_op <- function(s) stat_grad_op(stat_sum_formula(s$kernel$formula), stat_sum_args(s$d, 1L), s$dtype, s$backend, "x")

# a' K a for the symmetric K = K(x, x) (all pairs, i = j included), for each column of the
# weight matrix `a`: stat_pair_sum(), each pair of distinct blocks of rows once.
self_quad <- function(s, x, a) {
  pairs <- stat_pair_sum(s$kernel$formula, s$d, 1L, s$dtype, s$backend, diagonal = TRUE, params = "g = Pm(1)")
  as.vector(pairs(x, a, par = list(g = s$g)))
}

# a' Kxx a, a' Kxy b and b' Kyy b: three reductions (the symmetric ones by blocks).
norm_parts <- function(s, a, b) {
  list(xx = self_quad(s, s$x, a), xy = sum(a * stat_sum_op(s, 1L)(s$x, s$y, b, s$g)), yy = self_quad(s, s$y, b))
}

# The gradient with respect to x of cx a'Kxx a - 2 a'Kxy b + b'Kyy b: x appears on both
# sides of the symmetric first term, so it is 2 a_i sum_z w_z Grad_1 k(x_i, z) with z
# the pooled points and w = (cx a, -b), one reduction. (A constant diagonal term of the
# U-statistic has no gradient.)
norm_gradient <- function(s, a, b, cx) {
  mmd_grad_op(s)(s$x, rbind(s$x, s$y), c(cx * a, -b), s$g, 2 * a)
}

# The statistic and its permutation null. Each labelling is the 0/1 indicator e of the
# points labelled "x" in the pooled sample z: Sxx = e'Ke, a quadratic form computed for all
# the labellings of a block at once (self_quad: one reduction per block of rows, the
# symmetric pairs once), and with r = K 1 (one reduction), Sxy = e'r - Sxx and
# Syy = (1-e)'r - Sxy. Column 1 of the first block is the observed labelling, so the
# statistic and its null are computed alike.
permutation_null <- function(s, unbiased, n_perm, block_values = 2^22) {
  z <- rbind(s$x, s$y)
  n <- s$n
  m <- s$m
  N <- n + m
  r <- as.vector(stat_sum_op(s, 1L)(z, z, rep(1, N), s$g))
  stat <- function(e, sxx) {
    er <- colSums(e * r)
    sxy <- er - sxx
    syy <- sum(r) - er - sxy
    if (unbiased) (sxx - n) / (n * (n - 1)) + (syy - m) / (m * (m - 1)) - 2 * sxy / (n * m)
    else sxx / n^2 + syy / m^2 - 2 * sxy / (n * m)
  }
  total <- n_perm + 1L
  block <- max(1L, min(total, floor(block_values / N)))   # S of at most 2^22 values (32 MB)
  starts <- seq(1L, total, by = block)
  progress <- if (length(starts) > 1 && requireNamespace("progressr", quietly = TRUE)) {
    progressr::progressor(steps = length(starts))
  } else function(...) NULL
  values <- numeric(total)
  # Every block has `block` columns (the last one padded with zero labellings, whose values
  # are dropped), so one compiled operation serves every block and every n_perm: the op
  # cache is keyed by the width and never emptied.
  for (k0 in starts) {
    cols <- k0:min(total, k0 + block - 1L)
    e <- matrix(0, N, block)
    for (k in seq_along(cols)) {
      idx <- if (cols[k] == 1L) seq_len(n) else sample.int(N, n)
      e[idx, k] <- 1
    }
    used <- seq_along(cols)
    values[cols] <- stat(e[, used, drop = FALSE], self_quad(s, z, e)[used])
    progress()
  }
  list(statistic = values[1], null = values[-1])
}

# Gretton et al. (2009): n MMD_b^2 under H0 is approximately Gamma with
#   mean  = (2/n) (1 - (1/n) sum_i k(x_i, y_i)),
#   var   = 2 / (n (n-1))^2 sum_{i != j} h_ij^2,  h_ij = k(x_i,x_j) + k(y_i,y_j) - k(x_i,y_j) - k(x_j,y_i),
# shape = mean^2 / var, scale = n var / mean. The sum of h^2 is one reduction over the
# pairs (i, j) of the paired points (x_i, y_i); its i = j terms are removed in R.
gamma_null <- function(s, call) {
  n <- s$n
  if (s$m != n)
    abort_kernops(sprintf("method = \"gamma\" needs samples of equal sizes (here %d and %d); use method = \"permutation\".",
                          n, s$m), "kernops_error_unsupported", call = call)
  parts <- norm_parts(s, rep(1 / n, n), rep(1 / n, n))
  stat <- parts$xx - 2 * parts$xy + parts$yy
  kdiag <- kernel_pairs(s)
  k <- function(u, v) {
    f <- sub("x,y", paste0(u, ",", v), s$kernel$formula, fixed = TRUE)
    if (identical(f, s$kernel$formula))
      abort_kernops("Internal error: a kernel formula without 'x,y'.", "kernops_error_internal", call = call)
    f
  }
  op <- stat_op(sprintf("Sum_Reduction(Square(%s+%s-%s-%s),0)", k("xi", "xj"), k("yi", "yj"), k("xi", "yj"), k("xj", "yi")),
                c(sprintf("xi = Vi(%d)", s$d), sprintf("yi = Vi(%d)", s$d), sprintf("xj = Vj(%d)", s$d),
                  sprintf("yj = Vj(%d)", s$d), "g = Pm(1)"), s$dtype, s$backend)
  h2 <- sum(op(s$x, s$y, s$x, s$y, s$g)) - sum((2 - 2 * kdiag)^2)
  mean0 <- 2 / n * (1 - mean(kdiag))
  var0 <- 2 / (n * (n - 1))^2 * h2
  p <- if (var0 > 0 && mean0 > 0) {
    stats::pgamma(n * stat, shape = mean0^2 / var0, scale = n * var0 / mean0, lower.tail = FALSE)
  } else 1
  list(statistic = stat, p.value = p)
}

# k(x_i, y_i) for the paired points: the kernel's formula of the table with x and y both
# indexed by i, reduced over one dummy j (n values, no n^2 work).
kernel_pairs <- function(s) {
  op <- stat_op(stat_sum_formula(s$kernel$formula),
                c(sprintf("x = Vi(%d)", s$d), sprintf("y = Vi(%d)", s$d), "b = Vj(1)", "g = Pm(1)"), s$dtype, s$backend)
  as.vector(op(s$x, s$y, 1, s$g))
}

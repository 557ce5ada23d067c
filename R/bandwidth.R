# bandwidth.R -- bandwidth selectors of kde(), computed exactly: every sum over pairs of
# points is a kernops reduction (no n x n matrix, no binning), and leave-one-out sums drop
# the pair i = j inside the reduction, with index variables (Step(|i - j| - 1/2)), rather
# than by subtracting the diagonal afterwards, which loses every digit of a leave-one-out
# density far in the tails.

#' Bandwidth selectors for kernel density estimation
#'
#' `kde_bandwidth()` selects the bandwidth matrix `H` of a Gaussian kernel density
#' estimate (see [kde()] and the convention of [stat_kernels]: `H` is the covariance of
#' the kernel, `h = sqrt(H)` its standard deviation in 1-D). The selectors follow `ks`,
#' but compute their sums over pairs of points exactly, as kernops reductions, where `ks`
#' and `stats` bin the data:
#'
#' * `"pi"` (1-D): the two-stage direct plug-in of Sheather and Jones (1991) as in
#'   `ks::hpi()` (`KernSmooth::dpik()`) and `stats::bw.SJ(method = "dpi")`: the pilot
#'   functionals \eqn{\psi_6} and \eqn{\psi_4} are sums of Gaussian derivatives over all
#'   pairs, the scale is `min(sd, IQR / 1.349)`.
#' * `"pi"` (2-D): the full (unconstrained) plug-in `H` of `ks::Hpi()` with its defaults
#'   there, the default selector of `ks::kde()` in 2-D: the data are sphered
#'   (\eqn{Z = X S^{-1/2}}), the five 4th-order density derivative functionals
#'   \eqn{\psi_r} are estimated at SAMSE pilot bandwidths (two stages, as below), and the
#'   estimated AMISE \eqn{(4\pi)^{-1} |H|^{-1/2} / n + vec(H)' \Psi_4 vec(H) / 4} is
#'   minimised over \eqn{H = M M} (M symmetric) by [stats::optim()] (BFGS) from the
#'   normal-scale `H`, as ks does; `H` is then transformed back.
#' * `"pi_diag"` (2-D; in 1-D the same as `"pi"`): the diagonal plug-in `H` of
#'   `ks::Hpi.diag()` with its defaults there (two stages, SAMSE pilot bandwidths, data
#'   scaled by their standard deviations): the estimated density derivative functionals
#'   \eqn{\psi_r} of orders 6 and 4 are sums of products of Hermite polynomials times
#'   \eqn{\exp(-|X_i - X_j|^2 / 2g^2)} over all pairs (each pair once, by symmetry), one
#'   pass per stage; `H` is then in closed form.
#'
#' * `"pi"`, `"pi_diag"` (d > 2): `ks::Hpi()` (sphered data) and `ks::Hpi.diag()`
#'   (scaled data) with their default pilot there, "dscalar" (two stages): a
#'   normal-scale pilot for the functional \eqn{\sum_{i,j} \Delta^3 \phi_g(X_i - X_j)}
#'   (one reduction) gives one scalar pilot bandwidth for all the 4th-order functionals
#'   (one reduction of \eqn{\binom{d+3}{4}} sums), and the estimated AMISE is minimised by
#'   [stats::optim()] (BFGS) from the normal-scale `H` as in ks. Equal to
#'   `ks::Hpi(binned = FALSE)` and `ks::Hpi.diag(binned = FALSE)` to 5e-13 relative
#'   (d = 3, 4, 6). Its R-side set-up grows quickly with d (about 3 s in d = 4, 40 s in
#'   d = 6 at n = 200 on a loaded machine).
#' * `"ns"`: the normal-scale rule of `ks::hns()` / `ks::Hns()` (Scott's rule),
#'   \eqn{H = (4 / (n (d + 2)))^{2/(d+4)} \hat\Sigma}.
#' * `"silverman"`: `stats::bw.nrd0()` squared in 1-D; in d dimensions the diagonal of
#'   the normal-scale `H` (Silverman's rule applied to each coordinate).
#' * `"lscv"`: least-squares cross-validation, minimising
#'   \eqn{\int \hat f^2 - \frac{2}{n} \sum_i \hat f_{-i}(X_i)}, with the integral in closed
#'   form (the convolution of two Gaussians is a Gaussian of covariance 2H), as
#'   `ks::hlscv(binned = FALSE, bw.ucv = FALSE)` in 1-D and `ks::Hlscv.diag()` (a diagonal
#'   H) in d dimensions.
#' * `"lcv"`: likelihood cross-validation, maximising \eqn{\sum_i \log \hat f_{-i}(X_i)}
#'   (a scalar h in 1-D, a diagonal H in d dimensions). The leave-one-out log-densities
#'   are LogSumExp reductions, finite even for isolated points.
#'
#' One-dimensional searches use [stats::optimise()] on \eqn{\log h} over
#' \eqn{[h_{ns}/50, 4 h_{ns}]}; diagonal ones first search along the normal-scale `H`,
#' then minimise over the log standard deviations: `"lscv"` by Newton's method with its
#' exact gradient and Hessian, all from one pass over the pairs, stopping when the
#' predicted gain falls below \eqn{10^{-3}/n} of the objective (LSCV's own sampling noise
#' is of relative order \eqn{1/n}: the data fix its minimiser only to a relative
#' \eqn{O(n^{-1/10})}, over which the MISE, of order \eqn{n^{-4/5}}, changes by
#' \eqn{O(1/n)}); BFGS, which it replaces, crawled on this flat objective at large n.
#' `"lcv"` uses Nelder-Mead (relative tolerance 1e-6, within about 2% of the minimiser).
#' At n = 2e4 in 2-D (bench/w3_lscv_search.R) LSCV makes 9 line-search evaluations and 2
#' Newton passes, and reaches a lower objective than BFGS did with 15 evaluations (the
#' same `H` to 4 digits); see bench/RESULTS.md for times at 2e4 and 1e5. Each evaluation runs
#' compiled reductions on rescaled data, so the whole search compiles once. When the
#' `progressr` package is installed, the cross-validation searches report each evaluation
#' through it (shown inside `progressr::with_progress()` or with global handlers).
#'
#' Agreement measured (normal mixtures 0.6 N(0,1) + 0.4 N(3, 0.7^2), n = 100 and 1000,
#' five seeds each, ks 1.15.1): `"pi"` within 0.7% of
#' `stats::bw.SJ(method = "dpi")` and within 1.9% of `ks::hpi()` (both bin the data; at
#' n = 1000 within 0.3% and 0.13%), and 3-27% from `stats::bw.SJ()`'s default
#' solve-the-equation method, a different selector. `"ns"` equals `ks::hns()` /
#' `ks::Hns()`. `"lscv"` is within 3e-7 of `ks::hlscv(binned = FALSE, bw.ucv = FALSE)`
#' (the same objective) and within 1.1% of the default `ks::hlscv()` (which calls the
#' binned `stats::bw.ucv()`). In 2-D, the LSCV objective equals ks' (`ks:::lscv.mat`) to
#' rounding, and the diagonal `H` is within 0.1% of `ks::Hlscv.diag()` at n = 100;
#' at n = 1000 the two differ by 4-36% in some entries because LSCV has several local
#' minima: there kernops' `H` has the lower objective (e.g. -0.047878 against -0.047854).
#' In 2-D, `"pi"` equals `ks::Hpi(binned = FALSE)` to 2e-13 relative (correlated normal
#' and two-cluster samples, n = 100 and 1000, five seeds, ks 1.14.0: the same functionals
#' and the same BFGS path), see bench/w3_hpi.R and bench/RESULTS.md for its time and its
#' distance to the binned default `ks::Hpi()`. `"pi_diag"` equals
#' `ks::Hpi.diag(binned = FALSE)` to 1e-15 relative (a
#' correlated normal and a two-cluster sample, n = 100 to 5000, five seeds, ks 1.14.0;
#' kernops reproduces ks' choice of 6th-order functionals in its second pilot stage, see
#' the source), and is within 1% of the default `ks::Hpi.diag()`, which bins for n > 500.
#' It costs two passes over the n(n - 1)/2 pairs (1.1 s at n = 2e4 on 2 cores at load
#' 1.8, where the binned `ks::Hpi.diag()` takes 0.8 s; the time grows as n^2).
#'
#' @section Weighted samples:
#' `ks`' selectors have no weights (`ks::kde(w = )` selects its bandwidth from the
#' unweighted sample); kernops' use them, as for the estimate
#' \eqn{\hat f = \sum_j w_j K_H(\cdot - X_j)} with \eqn{\sum_j w_j = 1}, and reduce to
#' the unweighted selectors for equal weights. Points of weight 0 are dropped. Moments are
#' weighted: the mean \eqn{\sum_i w_i X_i}, the covariance
#' \eqn{\sum_i w_i (X_i - \bar X)(X_i - \bar X)' / (1 - \sum_i w_i^2)} (that of
#' `stats::cov.wt()`), quantiles interpolating the sorted points placed at the midpoints
#' of their weights (R's default type 7 for equal weights); the sample size becomes the
#' effective one, \eqn{n_{eff} = 1 / \sum_i w_i^2}. So `"ns"` and `"silverman"` are the
#' rules above with these; `"pi"` estimates its functionals by
#' \eqn{\sum_{i,j} w_i w_j D^r \phi_G(X_i - X_j)}; `"lscv"` and `"lcv"` use the weighted
#' leave-one-out estimate \eqn{\hat f_{-i} = \sum_{j \ne i} w_j K_H(\cdot - X_j) / (1 - w_i)}:
#' LSCV minimises \eqn{\int \hat f^2 - 2 \sum_i w_i \hat f_{-i}(X_i)}, LCV maximises
#' \eqn{\sum_i w_i \log \hat f_{-i}(X_i)}. The weighted LSCV costs about twice the
#' unweighted one (its cross-validation term is a bilinear form).
#'
#' @param x The sample: a numeric vector, or a matrix / data frame with one row per point.
#' @param method The selector: `"pi"`, `"pi_diag"`, `"ns"`, `"silverman"`, `"lscv"` or `"lcv"`.
#' @param weights `NULL` (uniform) or non-negative weights of the points (not all 0),
#'   normalised to sum to 1; see "Weighted samples".
#' @param dtype,backend Passed to the reductions (see [kernel_op()]).
#' @return The d x d bandwidth matrix `H` (1 x 1 in 1-D, where `h = sqrt(H)`).
#' @references Sheather, S. J. and Jones, M. C. (1991). A reliable data-based bandwidth
#'   selection method for kernel density estimation. JRSS B 53, 683-690.
#' @seealso [kde()]
#' @export
#' @examples
#' set.seed(4)
#' x <- c(rnorm(150), rnorm(50, 3, 0.5))
#' sqrt(kde_bandwidth(x, "pi"))     # h
#' sqrt(kde_bandwidth(x, "lscv"))
#' y <- cbind(rnorm(100), rnorm(100, sd = 2))
#' kde_bandwidth(y, "ns")
#' kde(x, H = "lscv")
#' # weighted: points 151-200 count double
#' sqrt(kde_bandwidth(x, "pi", weights = rep(1:2, c(150, 50))))
kde_bandwidth <- function(x, method = c("pi", "pi_diag", "ns", "silverman", "lscv", "lcv"), weights = NULL,
                          dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- sys.call()
  methods <- c("pi", "pi_diag", "ns", "silverman", "lscv", "lcv")
  method <- match_choice(method, methods, "method", call)
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
  X <- stat_points(x, "x", call = call)
  w <- normalise_weights(check_weights(weights, nrow(X), "weights", call), "weights", call)
  # points of weight 0 take no part in any estimate: dropped, so that they cost nothing
  if (any(w == 0)) { X <- X[w > 0, , drop = FALSE]; w <- w[w > 0] }
  n <- nrow(X)
  d <- ncol(X)
  if (n < 2)
    abort_kernops(sprintf("`x` must have at least 2 points (rows) of positive weight, not %d.", n), "kernops_error_input", call = call)
  S <- weighted_var(X, w)
  n_eff <- 1 / sum(w^2)
  if (any(diag(S) <= 0))
    abort_kernops("`x` has a constant column: its normal-scale bandwidth is 0.", "kernops_error_input", call = call)
  Hns <- (4 / (n_eff * (d + 2)))^(2 / (d + 4)) * S
  H <- switch(method,
    ns = Hns,
    silverman = if (d == 1) matrix(bw_silverman(X[, 1], w)^2) else diag(diag(Hns), d),
    pi = ,
    pi_diag = {
      if (d == 1) matrix(bw_dpi(X[, 1], w, dtype, backend)^2)
      else if (d == 2) {
        if (method == "pi") hpi_full2(X, w, dtype, backend) else hpi_diag2(X, w, dtype, backend)
      } else hpi_dscalar(X, w, full = method == "pi", dtype, backend)
    },
    lscv = cv_search(X, Hns, lscv_objective(X, w, dtype, backend), if (d > 1) lscv_gradient(X, w, dtype, backend),
                     hessian = if (d > 1) lscv_hessian(X, w, dtype, backend)),
    lcv = cv_search(X, Hns, lcv_objective(X, w, dtype, backend)))
  dimnames(H) <- NULL
  H
}

# The weighted covariance with the unbiased ("reliability weights") divisor 1 - sum(w^2),
# w summing to 1: stats::var(X) for uniform weights.
weighted_var <- function(X, w) {
  if (all(w == w[1])) return(stats::var(X))
  Xc <- sweep(X, 2, colSums(w * X))
  crossprod(Xc * sqrt(w)) / (1 - sum(w^2))
}

# Weighted quantiles (w summing to 1) interpolating the sorted points placed at the
# midpoints of their weights, rescaled so that the extremes sit at 0 and 1: positions
# (k - 1) / (n - 1), R's default type 7, for uniform weights.
weighted_quantile <- function(x, w, probs) {
  if (all(w == w[1])) return(stats::quantile(x, probs, names = FALSE))
  o <- order(x)
  x <- x[o]; w <- w[o]
  n <- length(x)
  pos <- (cumsum(w) - w / 2 - w[1] / 2) / (1 - w[1] / 2 - w[n] / 2)
  stats::approx(pos, x, probs, ties = "ordered", rule = 2)$y
}

# stats::bw.nrd0() with weighted moments and the effective sample size 1 / sum(w^2).
bw_silverman <- function(x, w) {
  hi <- sqrt(weighted_var(matrix(x), w)[1, 1])
  iqr <- diff(weighted_quantile(x, w, c(1 / 4, 3 / 4)))
  if (!(lo <- min(hi, iqr / 1.34)))
    (lo <- hi) || (lo <- abs(x[1L])) || (lo <- 1)
  0.9 * lo * (1 / sum(w^2))^(-0.2)
}

# Index variables of the leave-one-out reductions: Step(|i - j| - 1/2) is 0 on the
# diagonal only.
loo_args <- function(d) c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), "g = Pm(1)", "i = Vi(1)", "j = Vj(1)")

# The indices 1..n of the leave-one-out reductions; float32 holds whole numbers exactly
# only up to 2^24, beyond which two indices could compare equal.
loo_index <- function(n, dtype) {
  if (dtype == "float32" && n > 2^24)
    abort_kernops(sprintf("Leave-one-out selectors in float32 take at most 2^24 points, not %d; use dtype = \"float64\".", n),
                  "kernops_error_input", call = NULL)
  as.double(seq_len(n))
}

# LSCV(H) = int f^2 - 2 sum_i w_i f_{-i}(X_i) for the Gaussian kernel, with the weighted
# leave-one-out estimate f_{-i} = sum_{j != i} w_j K_H(. - X_j) / (1 - w_i) (w summing to 1;
# the usual one for w = 1/n), as a function of the standard deviations s (H = diag(s^2)):
#   |H|^{-1/2} [ (4 pi)^{-d/2} (sum_i w_i^2 + S2) - 2 (2 pi)^{-d/2} S1 ],
# S2 = sum_{i != j} w_i w_j exp(-|z_i - z_j|^2 / 4), S1 = sum_{i != j} u_i w_j
# exp(-|z_i - z_j|^2 / 2), u_i = w_i / (1 - w_i), z = x / s. For uniform weights u is a
# multiple of w and both are quadratic forms of w; otherwise S1 is a bilinear form.
lscv_objective <- function(X, w, dtype, backend) {
  d <- ncol(X)
  pw <- cv_pair_weights(w)
  pair_sum <- stat_pair_sum("GaussKernel(g,x,y,1)", d, 1L, dtype, backend, params = "g = Pm(1)")
  function(s) {
    Z <- sweep(X, 2, s, "/")
    S1 <- pw$cv * sum(pair_sum(Z, pw$P, pw$Q, par = list(g = 0.5))[, pw$k])
    S2 <- sum(pair_sum(Z, w, par = list(g = 0.25)))
    exp(-sum(log(s))) * ((4 * pi)^(-d / 2) * (sum(w^2) + S2) - 2 * (2 * pi)^(-d / 2) * S1)
  }
}

# The pair weights of LSCV's cross-validation term sum_{i != j} u_i w_j k_ij: `cv` times
# column `k` of stat_pair_sum(Z, P, Q). Uniform weights: u = w / (1 - w_1), a quadratic
# form of w (P = w, Q = NULL); otherwise P = (w, u), Q = (w, w), whose first column is
# int f^2's quadratic form (for lscv_gradient's one pass).
cv_pair_weights <- function(w) {
  if (all(w == w[1])) list(P = w, Q = NULL, k = 1L, cv = 1 / (1 - w[1]))
  else list(P = cbind(w, w / (1 - w)), Q = cbind(w, w), k = 2L, cv = 1)
}

# LSCV and its gradient in t = log(s), for the diagonal search: one pass over the pairs
# (i != j, each pair once, by stat_pair_sum) sums exp(-|dz|^2 / 2) and exp(-|dz|^2 / 4),
# each also times the squared coordinate differences dz_k^2, since d S1 / d log s_k =
# sum u_i w_j exp(-|dz|^2 / 2) dz_k^2 and d S2 / d log s_k = sum w_i w_j exp(-|dz|^2 / 4)
# dz_k^2 / 2. The pass costs about what the two value-only sums cost, and gives BFGS the
# gradient.
lscv_gradient <- function(X, w, dtype, backend) {
  d <- ncol(X)
  pw <- cv_pair_weights(w)
  body <- "Concat(Concat(Exp(-0.5*SqDist(x,y)),Exp(-0.5*SqDist(x,y))*Square(x-y)),Concat(Exp(-0.25*SqDist(x,y)),Exp(-0.25*SqDist(x,y))*Square(x-y)))"
  pair_sums <- stat_pair_sum(body, d, 2L * d + 2L, dtype, backend)
  function(s) {
    o <- pair_sums(sweep(X, 2, s, "/"), pw$P, pw$Q)
    S1 <- pw$cv * o[1, pw$k]; T1 <- pw$cv * o[2:(d + 1), pw$k]
    S2 <- o[d + 2, 1]; T2 <- o[(d + 3):(2 * d + 2), 1]
    scale <- exp(-sum(log(s)))
    value <- scale * ((4 * pi)^(-d / 2) * (sum(w^2) + S2) - 2 * (2 * pi)^(-d / 2) * S1)
    structure(value, gradient = -value + scale * ((4 * pi)^(-d / 2) * T2 / 2 - 2 * (2 * pi)^(-d / 2) * T1))
  }
}

# LSCV with its gradient and Hessian in t = log(s), for Newton's method in the diagonal
# search: one pass over the pairs (as lscv_gradient, with the products dz_k^2 dz_l^2 too).
# With f = e^{-sum t} G: f_k = e^{-sum t} (G_k - G), f_kl = e^{-sum t} (G_kl - G_k - G_l + G),
# and, since d dz_k^2 / dt_l = -2 dz_k^2 delta_kl,
#   d^2 S1 / dt_k dt_l = sum u_i w_j exp(-|dz|^2 / 2) (dz_k^2 dz_l^2 - 2 delta_kl dz_k^2),
#   d^2 S2 / dt_k dt_l = sum w_i w_j exp(-|dz|^2 / 4) (dz_k^2 dz_l^2 / 4 - delta_kl dz_k^2).
lscv_hessian <- function(X, w, dtype, backend) {
  d <- ncol(X)
  pw <- cv_pair_weights(w)
  e2 <- "Exp(-0.5*SqDist(x,y))"; e4 <- "Exp(-0.25*SqDist(x,y))"; sq <- "Square(x-y)"
  body <- sprintf("Concat(Concat(Concat(%s,%s*%s),Concat(%s,%s*%s)),Concat(%s*TensorProd(%s,%s),%s*TensorProd(%s,%s)))",
                  e2, e2, sq, e4, e4, sq, e2, sq, sq, e4, sq, sq)
  pair_sums <- stat_pair_sum(body, d, 2L * d + 2L + 2L * d^2, dtype, backend)
  A <- (4 * pi)^(-d / 2); B <- (2 * pi)^(-d / 2)
  function(s) {
    o <- pair_sums(sweep(X, 2, s, "/"), pw$P, pw$Q)
    k <- seq_len(d)
    S1 <- pw$cv * o[1, pw$k]; T1 <- pw$cv * o[1 + k, pw$k]
    S2 <- o[d + 2, 1]; T2 <- o[d + 2 + k, 1]
    Q1 <- matrix(pw$cv * o[2 * d + 2 + seq_len(d^2), pw$k], d)
    Q2 <- matrix(o[2 * d + 2 + d^2 + seq_len(d^2), 1], d)
    G <- A * (sum(w^2) + S2) - 2 * B * S1
    Gk <- A * T2 / 2 - 2 * B * T1
    Gkl <- A * (Q2 / 4 - diag(T2, d)) - 2 * B * (Q1 - 2 * diag(T1, d))
    scale <- exp(-sum(log(s)))
    structure(scale * G, gradient = scale * (Gk - G),
              hessian = scale * (Gkl - outer(Gk, rep(1, d)) - outer(rep(1, d), Gk) + G))
  }
}

# Newton's method on t = log(s) from s1, with the exact Hessian and a backtracking line
# search; NULL when the Hessian is not positive definite on the way (the caller then runs
# BFGS). It stops when the Newton decrement's predicted gain, -g' step / 2, is below
# reltol * |f|, and takes that last step, which costs no pass: near the minimum the error
# squares at each step.
newton_search <- function(s1, f, reltol, maxit = 30L) {
  t <- rep(0, length(s1))
  cur <- f(s1)
  for (it in seq_len(maxit)) {
    H <- attr(cur, "hessian"); g <- attr(cur, "gradient")
    R <- tryCatch(chol(H), error = function(e) NULL)
    if (is.null(R)) return(NULL)
    step <- -backsolve(R, forwardsolve(t(R), g))
    gain <- -sum(g * step) / 2
    if (gain <= reltol * abs(as.numeric(cur))) return(s1 * exp(t + step))
    a <- 1
    repeat {
      nxt <- f(s1 * exp(t + a * step))
      if (as.numeric(nxt) <= as.numeric(cur) - 1e-4 * a * 2 * gain) break
      a <- a / 2
      if (a < 1e-3) return(NULL)
    }
    t <- t + a * step
    cur <- nxt
  }
  s1 * exp(t)
}

# Minus the weighted leave-one-out log-likelihood, sum_i w_i log f_{-i}(X_i) (f_{-i} as in
# lscv_objective; n times smaller than the usual sum for w = 1/n, the same minimiser), for
# H = diag(s^2). Per point, so it cannot use the symmetry of stat_pair_sum(); a LogSumExp
# (weights w_j, zero for j = i) keeps isolated points' terms finite.
lcv_objective <- function(X, w, dtype, backend) {
  n <- nrow(X); d <- ncol(X); idx <- loo_index(n, dtype)
  op <- stat_op("LogSumExp_Reduction(-g*SqDist(x,y), 0, Step(Abs(i-j)-0.5)*w)", c(loo_args(d), "w = Vj(1)"), dtype, backend)
  function(s) {
    Z <- sweep(X, 2, s, "/")
    lse <- op(x = Z, y = Z, g = 0.5, i = idx, j = idx, w = w)
    -(sum(w * (lse - log1p(-w))) - d / 2 * log(2 * pi) - sum(log(s)))
  }
}

# Minimises objective(s) over a scalar h (1-D) or the diagonal standard deviations (d > 1).
# In d dimensions a search along the normal-scale direction (s = c * s_ns) comes first, so
# that Nelder-Mead starts near the minimum and needs few of the costly evaluations.
# `gradient` (d > 1, optional): s -> the objective with attribute "gradient" (in log s),
# for BFGS instead of Nelder-Mead: fewer evaluations of about the same cost.
cv_search <- function(X, Hns, objective, gradient = NULL, hessian = NULL, reltol = lscv_reltol(nrow(X))) {
  s0 <- sqrt(diag(Hns))
  # progress through progressr when installed: one message per evaluation (their number
  # is not known in advance), finished when this function returns
  if (requireNamespace("progressr", quietly = TRUE)) {
    p <- progressr::progressor(steps = 1L)
    evals <- 0L
    report <- function(f) if (!is.null(f)) function(s) {
      v <- f(s)
      evals <<- evals + 1L
      p(sprintf("cross-validation: evaluation %d, objective %.6g", evals, v), amount = 0)
      v
    }
    objective <- report(objective)
    gradient <- report(gradient)
    hessian <- report(hessian)
  }
  line <- stats::optimise(function(t) objective(s0 * exp(t)), c(log(1 / 50), log(4)),
                          tol = if (ncol(X) == 1) 1e-6 else 1e-2)
  if (ncol(X) == 1) return(matrix((s0 * exp(line$minimum))^2))
  s1 <- s0 * exp(line$minimum)
  if (!is.null(gradient)) {
    # BFGS asks for the value and the gradient at the same points: one pass gives both
    last <- NULL
    at <- function(t) {
      if (is.null(last) || !identical(attr(last, "t"), t)) last <<- structure(gradient(s1 * exp(t)), t = t)
      last
    }
    if (!is.null(hessian)) {
      s_hat <- newton_search(s1, hessian, reltol)
      if (!is.null(s_hat)) return(diag(s_hat^2, ncol(X)))
    }
    opt <- stats::optim(rep(0, ncol(X)), function(t) as.numeric(at(t)), function(t) attr(at(t), "gradient"),
                        method = "BFGS", control = list(reltol = 1e-10, maxit = 100))
    return(diag((s1 * exp(opt$par))^2, ncol(X)))
  }
  # relative to s1: Nelder-Mead's first simplex then changes each s by 10%
  opt <- stats::optim(rep(0, ncol(X)), function(t) objective(s1 * exp(t)), control = list(reltol = 1e-6, maxit = 500))
  diag((s1 * exp(opt$par))^2, ncol(X))
}

# The stopping tolerance of the LSCV search, relative to |LSCV|: 1e-3 / n. LSCV(H) is
# MISE(H) - int f^2 plus sampling noise: the data fix its minimiser only to a relative
# O(n^{-1/10}) (Hall and Marron, 1987), over which MISE ~ n^{-4/5} changes by
# O(n^{-4/5} n^{-1/5}) = O(1/n), against |LSCV| ~ int f^2 = O(1). Gains below 1/n relative
# are therefore noise, and a thousandth of that is a safe margin; the fixed 1e-10 it
# replaces asked BFGS for gains below the objective's meaning at large n, and it crawled
# (389 s at n = 1e5).
lscv_reltol <- function(n) 1e-3 / n

# The two-stage direct plug-in bandwidth (KernSmooth::dpik, level 2, without binning), for
# a weighted sample: weighted scale estimates, functionals sum_{i,j} w_i w_j (...), and the
# effective sample size 1 / sum(w^2) in place of n (all equal to the unweighted ones for
# w = 1/n).
bw_dpi <- function(x, w, dtype, backend) {
  n <- 1 / sum(w^2)
  q <- weighted_quantile(x, w, c(1 / 4, 3 / 4))
  scale <- min((q[2] - q[1]) / 1.349, sqrt(weighted_var(matrix(x), w)[1, 1]))
  if (!(scale > 0))
    abort_kernops("`x` has a zero scale estimate (min(sd, IQR/1.349) = 0).", "kernops_error_input", call = NULL)
  sx <- (x - sum(w * x)) / scale
  alpha <- (2 * sqrt(2)^9 / (7 * n))^(1 / 9)
  psi6 <- psi_functional(sx, w, 6L, alpha, dtype, backend)
  alpha <- (-3 * sqrt(2 / pi) / (psi6 * n))^(1 / 7)
  psi4 <- psi_functional(sx, w, 4L, alpha, dtype, backend)
  scale * (1 / (2 * sqrt(pi) * psi4 * n))^(1 / 5)
}

# psi_r = sum_{i,j} w_i w_j phi_a^(r)(x_i - x_j) (diagonal included), phi_a^(r)(u) =
# a^{-r-1} phi^(r)(u / a), with phi^(4)(u) = (u^4 - 6u^2 + 3) phi(u) and
# phi^(6)(u) = (u^6 - 15u^4 + 45u^2 - 15) phi(u): one reduction over the pairs i <= j
# (stat_pair_sum), the polynomial's coefficients a Pm.
psi_functional <- function(x, w, r, a, dtype, backend) {
  pairs <- stat_pair_sum("(Elem(c,0)+SqDist(x,y)*(Elem(c,1)+SqDist(x,y)*(Elem(c,2)+SqDist(x,y)*Elem(c,3))))*Exp(-0.5*SqDist(x,y))",
                         1L, 1L, dtype, backend, diagonal = TRUE, params = "c = Pm(4)")
  coef <- switch(as.character(r), "4" = c(3, -6, 1, 0), "6" = c(-15, 45, -15, 1))
  sum(pairs(matrix(x / a), w, par = list(c = coef))) / (a^(r + 1) * sqrt(2 * pi))
}

# The diagonal plug-in H of ks::Hpi.diag() in 2-D (its default there: two stages, SAMSE
# pilots, data scaled by the standard deviations), with the kernel functional estimates
# psi_r = sum_{i,j} w_i w_j D^r phi_{g^2 I}(X_i - X_j) (diagonal included, as ks; n^-2
# sum_{i,j} for uniform weights) computed exactly by samse_psi4(); H is then in closed form.
hpi_diag2 <- function(X, w, dtype, backend) {
  n <- 1 / sum(w^2)   # the effective sample size (n for uniform weights)
  s <- sqrt(diag(weighted_var(X, w)))
  Z <- sweep(X, 2, s, "/")
  p4 <- samse_psi4(Z, w, list(c(4, 0), c(2, 2), c(0, 4)), dtype, backend)
  h1 <- (p4[3]^(3 / 4) / (4 * pi) / (p4[1]^(3 / 4) * (sqrt(p4[1] * p4[3]) + p4[2]) * n))^(1 / 6)
  h2 <- (p4[1] / p4[3])^(1 / 4) * h1
  if (!all(is.finite(c(h1, h2))) || h1 <= 0 || h2 <= 0)
    abort_kernops("The plug-in selector failed (its 4th-order functional estimates are not positive); use \"lscv\" or \"ns\".",
                  "kernops_error_input", call = NULL)
  diag((s * c(h1, h2))^2, 2)
}

# The 4th-order functionals psi_r (multi-indices `rs`) of the 2-D plug-in selectors at the
# SAMSE pilot bandwidth of ks (ks:::psifun2, two stages) for the pre-transformed data Z:
# stage 1 picks the pilot g6 from normal-scale functionals of order 8; stage 2 picks g4
# from the estimated 6th-order functionals; the functionals are estimated at g4.
samse_psi4 <- function(Z, w, rs, dtype, backend) {
  n <- 1 / sum(w^2)
  S <- weighted_var(Z, w)
  r6 <- list(c(6, 0), c(4, 2), c(2, 4), c(0, 6))
  psi8 <- vapply(r6, function(r) normal_deriv0(r + c(2, 0), 2 * S) + normal_deriv0(r + c(0, 2), 2 * S), 0)
  g6 <- samse_pilot(n, 6L, psi8)
  p6 <- hermite_functionals(Z, w, list(c(6, 0), c(5, 1), c(4, 2)), g6, dtype, backend)
  # ks (1.14.0) looks the functionals psi_{r + 2 e_j} up by their row in its list of
  # distinct 6th-order indices (6,0), (5,1), ..., (0,6), but in the vector of all 2^6
  # ordered indices; the entries it reads are psi_60, psi_51, psi_51, psi_42. kernops
  # reads the same ones, so that H agrees with ks'; the pilot stays a consistent
  # order-n^{-1/10} bandwidth either way (the correct entries change H by 6-20%).
  g4 <- samse_pilot(n, 4L, c(p6[1] + p6[2], 2 * p6[2], p6[2] + p6[3]))
  hermite_functionals(Z, w, rs, g4, dtype, backend)
}

# The full (unconstrained) plug-in H of ks::Hpi() in 2-D, its defaults there: the data
# sphered (Z = X S^{-1/2}), the 4th-order functionals at the SAMSE pilot (samse_psi4(), all
# five distinct ones, psi_31 and psi_13 included), then the AMISE
#   (4 pi)^{-1} |H|^{-1/2} / n + vec(H)' Psi4 vec(H) / 4
# minimised over H = M M, M symmetric, by stats::optim(BFGS) on vech(M) from the
# normal-scale H, as ks does (so that the result agrees with ks' to the optimiser's
# rounding, not only to its tolerance), and H = S^{1/2} H_Z S^{1/2}.
hpi_full2 <- function(X, w, dtype, backend) {
  n <- 1 / sum(w^2)
  S <- weighted_var(X, w)
  S12 <- sym_sqrt(S)
  Z <- X %*% sym_sqrt(chol2inv(chol(S)))
  p4 <- samse_psi4(Z, w, list(c(4, 0), c(3, 1), c(2, 2), c(1, 3), c(0, 4)), dtype, backend)
  # Psi4[k, l] = psi of the ordered 4-index (a, b) + (c, e) with k = 1 + a + 2b, l = 1 + c + 2e
  # (indices in {0, 1}: the number of 2s is the bits set): it only depends on the count of 2s
  twos <- vapply(0:3, function(k) sum(bitwAnd(k, c(1L, 2L)) > 0), 0)
  Psi <- matrix(p4[outer(twos, twos, "+") + 1], 4, 4)
  unvech <- function(v) matrix(v[c(1, 2, 2, 3)], 2, 2)
  amise <- function(v) {
    M <- unvech(v)
    H <- M %*% M
    vH <- as.vector(H)
    (4 * pi)^(-1) / (sqrt(det(H)) * n) + sum(vH * (Psi %*% vH)) / 4
  }
  M0 <- sym_sqrt((4 / (n * 4))^(2 / 6) * weighted_var(Z, w))
  opt <- stats::optim(M0[c(1, 2, 4)], amise, method = "BFGS")
  M <- unvech(opt$par)
  H <- S12 %*% (M %*% M) %*% S12
  ev <- eigen(H, symmetric = TRUE, only.values = TRUE)$values
  if (!all(is.finite(ev)) || min(ev) <= 0)
    abort_kernops("The plug-in selector failed (no positive definite minimiser of its AMISE estimate); use \"pi_diag\", \"lscv\" or \"ns\".",
                  "kernops_error_input", call = NULL)
  (H + t(H)) / 2
}

# The symmetric square root of a symmetric positive semi-definite matrix, by the SVD as
# ks:::matrix.sqrt (the same rounding as ks).
sym_sqrt <- function(A) {
  sv <- svd(A)
  sv$u %*% diag(sqrt(sv$d), nrow(A)) %*% t(sv$v)
}

# D^r phi_Sigma(0) for a multi-index r of even order m: (-1)^{m/2} phi_Sigma(0) times the
# hafnian of Sigma^{-1} over the indices repeated r_k times (Isserlis' theorem).
normal_deriv0 <- function(r, Sigma) {
  A <- solve(Sigma)
  idx <- rep(seq_along(r), r)
  haf <- function(B) {
    if (nrow(B) == 0) return(1)
    sum(vapply(2:nrow(B), function(k) B[1, k] * haf(B[-c(1, k), -c(1, k), drop = FALSE]), 0))
  }
  (-1)^(length(idx) / 2) * haf(A[idx, idx, drop = FALSE]) / sqrt(det(2 * pi * Sigma))
}

# ks' SAMSE pilot bandwidth (ks:::gsamse) for the functionals of even order `modr` in
# 2-D, given psi = sum_j psi_{r + 2 e_j} for the even indices r = (modr, 0), ..., (0, modr).
samse_pilot <- function(n, modr, psi) {
  d <- 2
  K <- vapply(seq(modr, 0, by = -2), function(a) normal_deriv0(c(a, modr - a), diag(d)), 0)
  B1 <- (2 * modr + 2 * d) * sum(K^2)
  B2 <- (modr + d - 2) * sum(K * psi)
  gamma1 <- (-B2 + sqrt(B2^2 + 4 * B1 * sum(psi^2))) / (2 * B1)
  (gamma1 * n)^(-1 / (modr + d + 2))
}

# psi_r = sum_{i,j} w_i w_j D^r phi_{g^2 I}(X_i - X_j) (n^-2 sum_{i,j} for uniform
# weights) for several multi-indices r (in d dimensions) in one reduction over the pairs
# i <= j (stat_pair_sum; the terms are even in X_i - X_j): with t = (X_i - X_j) / g,
# D^r phi_{g^2 I} = g^{-|r|-d} prod_k He_{r_k}(t_k) phi(t) (|r| even), He the Hermite
# polynomials.
hermite_functionals <- function(Z, w, rs, g, dtype, backend) {
  # He_k(t) as formula text, by Horner in t^2 (odd k: t times a polynomial in t^2)
  he_coef <- list(1, 1, c(-1, 1), c(-3, 1), c(3, -6, 1), c(15, -10, 1), c(-15, 45, -15, 1))
  he_text <- function(k, v) {
    cf <- he_coef[[k + 1]]
    p <- sprintf("%.17g", cf[length(cf)])
    for (c0 in rev(cf[-length(cf)])) p <- sprintf("(%.17g+Square(%s)*%s)", c0, v, p)
    if (k %% 2 == 1) sprintf("%s*%s", v, p) else p
  }
  d <- ncol(Z)
  terms <- vapply(rs, function(r) paste(vapply(seq_len(d), function(k) he_text(r[k], sprintf("Elem(x-y,%d)", k - 1L)), ""),
                                        collapse = "*"), "")
  body <- sprintf("%s*Exp(-0.5*SqDist(x,y))", Reduce(function(a, b) sprintf("Concat(%s,%s)", a, b), terms))
  pairs <- stat_pair_sum(body, d, length(rs), dtype, backend, diagonal = TRUE)
  as.vector(pairs(Z / g, w)) / (g^(vapply(rs, sum, 0) + d) * (2 * pi)^(d / 2))
}

# The plug-in selectors of ks::Hpi() (full = TRUE; data sphered) and ks::Hpi.diag() (data
# scaled) in d > 2, with their default "dscalar" pilot there (ks:::gdscalar, two stages):
# a normal-scale pilot g6 for eta6 = sum_{i,j} w_i w_j Laplacian^3 phi_{g6^2 I}(X_i - X_j),
# which gives the one scalar pilot g4 of all the 4th-order functionals psi_r; the AMISE
# (4 pi)^{-d/2} |H|^{-1/2} / n + vec(H)' Psi4 vec(H) / 4 is then minimised by
# stats::optim(BFGS) from the normal-scale H as ks does (over vech(M), H = M M, or over
# the diagonal standard deviations), and H transformed back.
hpi_dscalar <- function(X, w, full, dtype, backend) {
  n <- 1 / sum(w^2)
  d <- ncol(X)
  S0 <- weighted_var(X, w)
  if (full) {
    S12 <- sym_sqrt(S0)
    Z <- X %*% sym_sqrt(chol2inv(chol(S0)))
  } else {
    S12 <- diag(sqrt(diag(S0)), d)
    Z <- sweep(X, 2, sqrt(diag(S0)), "/")
  }
  S <- weighted_var(Z, w)
  OF <- function(m) factorial(m) / (2^(m / 2) * factorial(m / 2))
  # stage 1 (ks:::gdscalar, nstage = 2): B3 = |sum_i psi^NS_{m + 2 e_i}|^2 over the ordered
  # 6-indices m, by the distinct ones with their multiplicities
  m6 <- multi_indices(6L, d)
  B3 <- sum(vapply(m6, function(m) {
    v <- sum(vapply(seq_len(d), function(i) normal_deriv0(m + 2 * (seq_len(d) == i), 2 * S), 0))
    factorial(6) / prod(factorial(m)) * v^2
  }, 0))
  B1 <- 2 * (2 * pi)^(-d) * OF(6) * prod(d + 2 * (0:3))
  B2 <- -(d + 4) * 2^(-d / 2 + 2) * (2 * pi)^(-d) * det(S)^(-1 / 2) * OF(6) * ks_nu(4L, chol2inv(chol(S)))
  g6 <- (2 * B1 / (-B2 + sqrt(B2^2 + 4 * B1 * B3)))^(1 / (d + 8)) * n^(-1 / (d + 8))
  eta6 <- laplacian3_functional(Z, w, g6, dtype, backend)
  L0 <- (2 * pi)^(-d / 2)
  A1 <- (2 * d + 8) * L0^2 * OF(4) * ks_nu(2L, diag(d))
  A2 <- (d + 2) * L0 * OF(4) * eta6
  A3 <- eta6^2
  g4 <- (2 * A1 / ((-A2 + sqrt(A2^2 + 4 * A1 * A3)) * n))^(1 / (d + 6))
  # the distinct 4th-order functionals, then Psi4[(i, j), (k, l)] = psi of the counts of (i, j, k, l)
  m4 <- multi_indices(4L, d)
  p4 <- hermite_functionals(Z, w, m4, g4, dtype, backend)
  key <- function(m) paste(m, collapse = ",")
  idx <- as.matrix(expand.grid(rep(list(seq_len(d)), 4)))   # (i, j, k, l), i fastest
  counts <- t(apply(idx, 1, function(r) tabulate(r, d)))
  Psi <- matrix(p4[match(apply(counts, 1, key), vapply(m4, key, ""))], d^2, d^2)
  lower <- lower.tri(diag(d), diag = TRUE)
  to_M <- if (full) function(v) { M <- matrix(0, d, d); M[lower] <- v; M + t(M) - diag(diag(M), d) } else function(v) diag(v, d)
  amise <- function(v) {
    M <- to_M(v)
    H <- M %*% M
    vH <- as.vector(H)
    (4 * pi)^(-d / 2) / (sqrt(det(H)) * n) + sum(vH * (Psi %*% vH)) / 4
  }
  M0 <- sym_sqrt((4 / (n * (d + 2)))^(2 / (d + 4)) * S)
  opt <- stats::optim(if (full) M0[lower] else diag(M0), amise, method = "BFGS")
  M <- to_M(opt$par)
  H <- S12 %*% (M %*% M) %*% S12
  ev <- eigen(H, symmetric = TRUE, only.values = TRUE)$values
  if (!all(is.finite(ev)) || min(ev) <= 0)
    abort_kernops("The plug-in selector failed (no positive definite minimiser of its AMISE estimate); use \"lscv\" or \"ns\".",
                  "kernops_error_input", call = NULL)
  (H + t(H)) / 2
}

# All multi-indices of order m in d dimensions (vectors of d counts summing to m).
multi_indices <- function(m, d) {
  if (d == 1) return(list(m))
  unlist(lapply(m:0, function(a) lapply(multi_indices(m - a, d - 1L), function(r) c(a, r))), recursive = FALSE)
}

# ks:::nu(r, A): r! 2^r times the r-th coefficient of the cumulant recursion in the traces
# tr(A^p) (the r-th moment-type functional of a quadratic form in normal variables).
ks_nu <- function(r, A) {
  ev <- eigen(A, symmetric = TRUE, only.values = TRUE)$values
  tr <- vapply(seq_len(r), function(p) sum(ev^p), 0)
  nu <- 1
  for (p in seq_len(r)) nu <- c(nu, sum(tr[1:p] * rev(nu)) / (2 * p))
  factorial(r) * 2^r * nu[r + 1]
}

# eta6 = sum_{i,j} w_i w_j Laplacian^3 phi_{g^2 I}(X_i - X_j) (diagonal included, as ks'
# Qr): with rho = |X_i - X_j|^2 / g^2, Laplacian^3 phi_{g^2 I} = g^{-d-6} (2 pi)^{-d/2}
# e^{-rho/2} (rho^3 - 3(d+4) rho^2 + 3(d+2)(d+4) rho - d(d+2)(d+4)); one reduction over
# the pairs i <= j, the polynomial's coefficients a Pm.
laplacian3_functional <- function(Z, w, g, dtype, backend) {
  d <- ncol(Z)
  pairs <- stat_pair_sum("(Elem(c,0)+SqDist(x,y)*(Elem(c,1)+SqDist(x,y)*(Elem(c,2)+SqDist(x,y)*Elem(c,3))))*Exp(-0.5*SqDist(x,y))",
                         d, 1L, dtype, backend, diagonal = TRUE, params = "c = Pm(4)")
  coef <- c(-d * (d + 2) * (d + 4), 3 * (d + 2) * (d + 4), -3 * (d + 4), 1)
  sum(pairs(Z / g, w, par = list(c = coef))) / (g^(d + 6) * (2 * pi)^(d / 2))
}

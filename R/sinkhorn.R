# sinkhorn.R -- entropic optimal transport between weighted point clouds (Sinkhorn in the log
# domain, with epsilon-scaling and the symmetrised updates of GeomLoss). Every update is one
# LogSumExp reduction, compiled once per cost, dimension, dtype and backend (stat_op() in
# stat_kernels.R): the potentials are data (Vj), eps a parameter (Pm), so annealing and
# iterating never recompile, and no n x m matrix is ever formed.

#' Entropic optimal transport and Sinkhorn divergences
#'
#' `sinkhorn()` solves the entropy-regularised optimal transport problem between the
#' measures \eqn{\alpha = \sum_i a_i \delta_{x_i}} and \eqn{\beta = \sum_j b_j \delta_{y_j}}
#' for the cost \eqn{C(x, y) = |x - y|^p / p} (\eqn{p = 1} or 2) or a cost of one's own
#' (`cost`), optionally with relaxed marginals (`reach`, "Unbalanced transport"),
#' \deqn{OT_\varepsilon(\alpha, \beta) = \min_{\pi \ge 0, \pi 1 = a, \pi^T 1 = b}
#' \sum_{ij} \pi_{ij} C(x_i, y_j) + \varepsilon KL(\pi | a \otimes b),}
#' by Sinkhorn's algorithm in the log domain on the dual potentials \eqn{f} (on `x`) and
#' \eqn{g} (on `y`), each update a soft-min
#' \deqn{f_i = -\varepsilon \log \sum_j b_j \exp((g_j - C(x_i, y_j)) / \varepsilon),}
#' one stabilised LogSumExp reduction (never the exponential of a large number).
#' The value is reported in GeomLoss' convention, \eqn{OT_\varepsilon = \sum_i a_i f_i +
#' \sum_j b_j g_j}. With `debias = TRUE` (the default) the result is the Sinkhorn divergence
#' \deqn{S_\varepsilon(\alpha, \beta) = OT_\varepsilon(\alpha, \beta) -
#' (OT_\varepsilon(\alpha, \alpha) + OT_\varepsilon(\beta, \beta)) / 2,}
#' which is non-negative, 0 when \eqn{\alpha = \beta}, and interpolates between
#' \eqn{W_p^p / p} (\eqn{\varepsilon \to 0}) and a kernel norm (\eqn{\varepsilon \to \infty})
#' (Feydy et al., 2019).
#'
#' @section Algorithm:
#' As in GeomLoss: \eqn{\varepsilon} starts at \eqn{D^p} (\eqn{D} the diagonal of the box
#' holding both clouds) and decreases geometrically by the factor `scaling^p` down to
#' `eps` (\eqn{= blur^p}); at each \eqn{\varepsilon} of this schedule \eqn{f} and \eqn{g}
#' are updated together from the previous values and averaged with them (the symmetrised
#' update), and the symmetric problems \eqn{OT(\alpha, \alpha)}, \eqn{OT(\beta, \beta)}
#' (one potential each) alike. Unlike GeomLoss, which stops after the schedule, the
#' iterations then go on at the target \eqn{\varepsilon} (alternating updates for
#' \eqn{(f, g)}, averaged ones for the symmetric problems) until the marginal error
#' \eqn{\sum_i |\pi_{i\cdot} - a_i| + \sum_j |\pi_{\cdot j} - b_j|} (summed over the
#' problems solved; the symmetric problems, which converge much faster, are left as they
#' are once their error is below `tol / 10`) is below `tol`, or `max_iter` iterations; a
#' warning of class
#' `kernops_warning_convergence` gives the error reached if it is not.
#' The alternating updates are over-relaxed, \eqn{f \leftarrow (1 - w) f + w\,
#' \mathrm{softmin}(g)} (Thibault et al., 2021): plain Sinkhorn contracts the error by a
#' rate \eqn{r} per iteration that tends to 1 as `blur` decreases (0.986 at blur 0.02 on
#' 2-D clouds in the unit square), and SOR theory gives the best factor
#' \eqn{w = 2 / (1 + \sqrt{1 - r})}. With `overrelax = TRUE`, \eqn{r} is estimated from the
#' observed rate whenever it is steady and \eqn{w} raised accordingly (up to 1.9; halved towards 1
#' and then kept if the error ever grows tenfold): at blur 0.02, 51 iterations instead of 389 to
#' `tol = 1e-4` on W5-like data (bench/RESULTS.md); at blur 0.1, where plain Sinkhorn is
#' fast, \eqn{w} stays near 1. The converged values do not depend on it.
#' Each iteration costs one reduction per potential: \eqn{O((n + m)^2 d)} operations and
#' \eqn{O((n + m) d)} memory.
#'
#' @section Unbalanced transport:
#' With `reach` given, the marginal constraints are relaxed into penalties
#' \eqn{\rho\, KL(\pi 1 | a) + \rho\, KL(\pi^T 1 | b)}, \eqn{\rho = reach^p}, with the
#' generalised \eqn{KL(p | q) = \sum p \log(p / q) - p + q} (Sejourne et al., 2019):
#' mass may be created or destroyed at a price, so `a` and `b` may have different totals,
#' and points farther than about `reach` from the other cloud are transported only in
#' part. Every soft-min update is damped by the factor \eqn{1 / (1 + \varepsilon / \rho)}
#' (GeomLoss), and after each update of \eqn{(f, g)} the constant shift
#' \eqn{(f + c, g - c)}, which leaves the plan unchanged, is set to its optimal value
#' \eqn{c = \rho/2 \log(\langle a, e^{-f/\rho}\rangle / \langle b, e^{-g/\rho}\rangle)}
#' (the translation-invariant Sinkhorn of Sejourne et al., 2022: without it a large `reach`
#' needs thousands of iterations). The values are GeomLoss' dual formulas:
#' \deqn{OT_{\varepsilon,\rho} = (\rho + \varepsilon/2) \left(\sum_i a_i (1 - e^{-f_i/\rho})
#' + \sum_j b_j (1 - e^{-g_j/\rho})\right),}
#' \deqn{S_{\varepsilon,\rho} = (\rho + \varepsilon/2) \left(\sum_i a_i (e^{-f^{aa}_i/\rho}
#' - e^{-f_i/\rho}) + \sum_j b_j (e^{-g^{bb}_j/\rho} - e^{-g_j/\rho})\right),}
#' that is \eqn{S = OT(\alpha, \beta) - (OT(\alpha, \alpha) + OT(\beta, \beta)) / 2}. Here
#' \eqn{OT_{\varepsilon,\rho}} is the primal minimum plus
#' \eqn{\varepsilon ((m_a + m_b)/2 - m_a m_b)} (\eqn{m_a = \sum a_i}; 0 for probability
#' measures), so that \eqn{S} includes the term \eqn{\varepsilon (m_a - m_b)^2 / 2} that
#' makes it non-negative. The marginal error compares the plan's marginals with their
#' optimal values \eqn{a_i e^{-f_i/\rho}} and \eqn{b_j e^{-g_j/\rho}}. As
#' `reach` grows the values tend to the balanced ones.
#'
#' @section Gradients:
#' With `grad = TRUE` the gradients of `value` come from the potentials (envelope theorem:
#' the potentials are optimal, so their own variation does not count). With respect to
#' the points, \eqn{\partial OT / \partial x_i = \sum_j \pi_{ij} \nabla_x C(x_i, y_j)}, one
#' reduction (through [kernel_grad()], so a custom `cost` is differentiated symbolically);
#' debiased, minus the same for \eqn{OT(\alpha, \alpha)} (twice its one-sided gradient, over
#' two). With respect to the weights, as in GeomLoss: \eqn{f} (`gradient_a`) and \eqn{g}
#' (`gradient_b`), debiased \eqn{f - f^{aa}} and \eqn{g - g^{bb}}; in balanced transport
#' only directions that keep the total mass are allowed, and along them these are the
#' derivatives (a constant added to them changes nothing). With `reach`: the exact
#' derivatives of the values above, \eqn{(\rho + \varepsilon)(1 - e^{-f_i/\rho}) -
#' \varepsilon/2} (GeomLoss' backward pass omits the constant \eqn{-\varepsilon/2}) and, debiased,
#' \eqn{(\rho + \varepsilon)(e^{-f^{aa}_i/\rho} - e^{-f_i/\rho})}, in any direction.
#'
#' @param x,y Numeric matrices (rows are points, the same number of columns), vectors
#'   (points on the line) or numeric data frames; finite values, at least one point each.
#' @param a,b Non-negative weights of the points of `x` and `y`; `NULL` (default) is
#'   uniform, \eqn{1/n} and \eqn{1/m}. Both must have the same total mass unless `reach`
#'   is given.
#' @param blur The length scale of the regularisation, in the units of the data:
#'   \eqn{\varepsilon = blur^p}.
#' @param eps The regularisation \eqn{\varepsilon} (default `blur^p`); give either.
#' @param p The exponent of the cost \eqn{|x - y|^p / p}: 1 or 2. With a custom `cost`, `p`
#'   still sets \eqn{\varepsilon = blur^p} and the schedule (as in GeomLoss).
#' @param cost `NULL` (default) for \eqn{|x - y|^p / p}, or a scalar cost \eqn{C(x, y)}:
#'   a formula string in the variables `x` and `y` (`"SqDist(x,y)/2"`,
#'   `"Sqrt(SqDist(x,y)+0.25)"`; see [kernel_op()]), a one-sided R formula or a
#'   `function(x, y)` written with the LazyTensor functions (`~ sqrt(sqdist(x, y) + 0.25)`),
#'   or a LazyTensor of one `Vi()` and one `Vj()` variable (their data are not used). It
#'   is compiled into the soft-min reduction once, like the default. With
#'   `debias = TRUE` it must be symmetric, \eqn{C(x, y) = C(y, x)} (checked on a few pairs
#'   of points): the symmetric problems are solved with one potential.
#' @param scaling The factor (in (0, 1)) by which `blur` decreases at each step of the
#'   schedule; closer to 1 is slower but starts the final iterations nearer convergence.
#' @param debias `TRUE` for the Sinkhorn divergence \eqn{S_\varepsilon}, `FALSE` for
#'   \eqn{OT_\varepsilon}.
#' @param reach `NULL` (default) for balanced transport, or the length scale (in the units
#'   of the data) of unbalanced transport, \eqn{\rho = reach^p}: see "Unbalanced transport".
#' @param tol Tolerance on the marginal error (see "Algorithm"). The error of the value is
#'   of second order in the marginal error: on the W5 benchmark (5000 + 5000 points,
#'   blur 0.1) `tol = 1e-2` already gives the converged value to 1e-6 relative.
#' @param max_iter Maximum number of iterations at the target \eqn{\varepsilon}, after the
#'   schedule. Progress (a step per \eqn{\varepsilon} of the schedule, then the marginal
#'   error of each iteration) is reported through \pkg{progressr} when it is installed:
#'   wrap the call in `progressr::with_progress()`.
#' @param overrelax `TRUE` (default) for the adaptive over-relaxation of the iterations at
#'   the target \eqn{\varepsilon} (see "Algorithm"), `FALSE` for plain alternating
#'   updates, or a fixed factor in \[1, 2).
#' @param grad If `TRUE`, also compute the gradient of the value with respect to `x` and
#'   the weights `a` and `b` (see "Gradients").
#' @param dtype `"float64"` (default) or `"float32"`, passed to the reductions
#'   ([kernel_op()]); the potentials are accumulated in R in double precision.
#' @param backend `"auto"`, `"cpu"` or `"cuda"`, passed to the reductions.
#' @return An object of class `kernops_ot`: a list with `value` (\eqn{S_\varepsilon} when
#'   `debias`, else \eqn{OT_\varepsilon}), `cost` (\eqn{OT_\varepsilon(\alpha, \beta)}),
#'   `divergence` (\eqn{S_\varepsilon} or `NA`), the potentials `f` (length n) and `g`
#'   (length m) of \eqn{OT_\varepsilon(\alpha, \beta)}, `f_aa` and `g_bb` (of the
#'   symmetric problems, or `NULL`), `eps`, `blur`, `p`, `reach`, `rho` (`Inf` when
#'   balanced), `eps_schedule`, `iterations`
#'   (after the schedule), `marginal_error`, `converged`, `overrelax` (the final factor), the inputs `x`, `y`, `a`, `b`,
#'   `dtype`, `backend`, and with `grad = TRUE` `gradient`, an `nrow(x)` x `ncol(x)` matrix,
#'   and `gradient_a`, `gradient_b`, vectors of lengths n and m.
#' @references Thibault, A., Chizat, L., Dossal, C. and Papadakis, N. (2021). Overrelaxed
#'   Sinkhorn-Knopp algorithm for regularized optimal transport. *Algorithms* 14(5), 143.
#'
#'   Sejourne, T., Feydy, J., Vialard, F.-X., Trouve, A. and Peyre, G. (2019).
#'   Sinkhorn divergences for unbalanced optimal transport. arXiv:1910.12958.
#'
#'   Sejourne, T., Vialard, F.-X. and Peyre, G. (2022). Faster unbalanced optimal transport:
#'   translation invariant Sinkhorn and 1-D Frank-Wolfe. *AISTATS 2022*, PMLR 151, 4995--5021.
#'
#'   Feydy, J., Sejourne, T., Vialard, F.-X., Amari, S., Trouve, A. and Peyre, G.
#'   (2019). Interpolating between optimal transport and MMD using Sinkhorn divergences.
#'   *AISTATS 2019*, PMLR 89, 2681--2690.
#' @seealso [barycentric_map()], [transport_plan()]; [mmd()] for kernel norms.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(runif(400), 200, 2)
#' y <- matrix(rnorm(300, 0.5, 0.1), 150, 2)
#' ot <- sinkhorn(x, y, blur = 0.1)
#' ot
#' summary(ot)
#' sinkhorn(x, y, blur = 0.1, debias = FALSE)$value
#' # one gradient step moves x towards y
#' gr <- sinkhorn(x, y, blur = 0.1, grad = TRUE)$gradient
#' sinkhorn(x - 50 * gr, y, blur = 0.1)$value
#' # unbalanced: unequal masses, relaxed marginals
#' sinkhorn(x, y, a = rep(1.2 / 200, 200), blur = 0.1, reach = 0.3)$value
#' # a custom cost, as a formula string or an R expression of x and y
#' sinkhorn(x, y, blur = 0.1, p = 1, cost = "Sqrt(SqDist(x,y))")$value
#' sinkhorn(x, y, blur = 0.1, cost = ~ sqdist(x, y) / 2)$value
#' # gradients with respect to the weights (GeomLoss' f - f_aa when balanced)
#' head(sinkhorn(x, y, blur = 0.1, grad = TRUE)$gradient_a)
sinkhorn <- function(x, y, a = NULL, b = NULL, blur = 0.05, eps = blur^p, p = 2, cost = NULL, scaling = 0.5,
                     debias = TRUE, reach = NULL, tol = 1e-4, max_iter = 1000L, overrelax = TRUE, grad = FALSE,
                     dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- sys.call()
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
  if (!(identical(p, 1) || identical(p, 2) || identical(p, 1L) || identical(p, 2L)))
    abort_kernops("`p` must be 1 or 2.", "kernops_error_input", call = call)
  p <- as.double(p)
  x <- check_sample(x, "x", 1L, call)
  y <- check_sample(y, "y", 1L, call)
  if (ncol(x) != ncol(y))
    abort_kernops(sprintf("`x` and `y` must have the same number of columns (dimensions): `x` has %d, `y` has %d.",
                          ncol(x), ncol(y)), "kernops_error_dimension", call = call)
  a <- check_weights(a, nrow(x), "a", call)
  b <- check_weights(b, nrow(y), "b", call)
  if (!(sum(a) > 0)) abort_kernops("`a` are all 0: at least one weight must be positive.", "kernops_error_input", call = call)
  if (!(sum(b) > 0)) abort_kernops("`b` are all 0: at least one weight must be positive.", "kernops_error_input", call = call)
  if (!is.null(reach)) check_bandwidth(reach, "reach", call)
  if (is.null(reach) && abs(sum(a) - sum(b)) > 1e-8 * max(sum(a), sum(b)))
    abort_kernops(sprintf("`a` and `b` must have the same total mass for balanced transport (sum(a) = %s, sum(b) = %s); give `reach` for unbalanced transport.",
                          format(sum(a)), format(sum(b))), "kernops_error_input", call = call)
  if (!missing(eps) && !missing(blur))
    abort_kernops("Give `blur` or `eps`, not both (eps = blur^p).", "kernops_error_input", call = call)
  if (missing(eps)) check_bandwidth(blur, "blur", call)
  check_bandwidth(eps, "eps", call)
  blur <- eps^(1 / p)
  # rho = Inf is the balanced case: the damping is 1 and exp(-f / rho) is 1
  rho <- if (is.null(reach)) Inf else as.double(reach)^p
  damp <- function(e) 1 / (1 + e / rho)
  # Unbalanced Sinkhorn is slow along (f + c, g - c), which leaves the plan unchanged but
  # moves the dual objective only through the KL terms (contraction 1 / (1 + eps / rho) per
  # iteration: thousands of iterations for a large reach). The best shift c has a closed
  # form, c = rho / 2 log(<a, exp(-f / rho)> / <b, exp(-g / rho)>) (the translation
  # invariant Sinkhorn of Sejourne et al., 2022); it is applied after each (f, g) update.
  lse_w <- function(w, v) { k <- w > 0; m <- max(v[k]); m + log(sum(w[k] * exp(v[k] - m))) }
  best_shift <- function(f, g) (rho / 2) * (lse_w(a, -f / rho) - lse_w(b, -g / rho))
  if (!is.numeric(scaling) || length(scaling) != 1 || is.na(scaling) || scaling <= 0 || scaling >= 1)
    abort_kernops(sprintf("`scaling` must be a number in (0, 1) (got %s).",
                          if (is.numeric(scaling) && length(scaling) == 1) format(scaling) else describe_type(scaling)),
                  "kernops_error_input", call = call)
  if (!is.numeric(tol) || length(tol) != 1 || is.na(tol) || tol <= 0)
    abort_kernops("`tol` must be a single positive number.", "kernops_error_input", call = call)
  if (!is.numeric(max_iter) || length(max_iter) != 1 || is.na(max_iter) || max_iter < 0 || max_iter != round(max_iter))
    abort_kernops("`max_iter` must be a single whole number >= 0.", "kernops_error_input", call = call)
  check_flag(debias, "debias", call)
  if (!(isTRUE(overrelax) || isFALSE(overrelax) ||
        (is.numeric(overrelax) && length(overrelax) == 1 && !is.na(overrelax) && overrelax >= 1 && overrelax < 2)))
    abort_kernops("`overrelax` must be TRUE (adaptive), FALSE (none) or a number in [1, 2).", "kernops_error_input", call = call)
  check_flag(grad, "grad", call)

  gc <- ot_ground_cost(cost, p, ncol(x), call)
  if (debias && !isTRUE(gc$symmetric)) ot_check_symmetric(gc, x, y, call)
  s <- list(d = ncol(x), p = p, dtype = dtype, backend = backend, cost = gc)
  sm <- ot_softmin(s)
  # g_j = softmin_i C(x_i, y_j): the same op for the default (symmetric) cost
  sm_t <- if (gc$default) sm else ot_softmin(s, transpose = TRUE)
  # The schedule: D^p, then blur_k^p for blur_k from D down to blur by the factor scaling.
  diam <- sqrt(sum((pmax(apply(x, 2, max), apply(y, 2, max)) - pmin(apply(x, 2, min), apply(y, 2, min)))^2))
  # (GeomLoss lists D^p twice, once more after its initialisation at D^p; once is enough.)
  schedule <- if (diam > blur) {
    c(exp(seq(p * log(diam), p * log(blur), by = p * log(scaling))), eps)
  } else eps

  e0 <- schedule[1]
  g <- damp(e0) * sm_t(y, x, a, NULL, e0)
  f <- damp(e0) * sm(x, y, b, NULL, e0)
  if (debias) {
    f_aa <- damp(e0) * sm(x, x, a, NULL, e0)
    g_bb <- damp(e0) * sm(y, y, b, NULL, e0)
  }
  # progress through progressr when installed: a step per eps of the schedule, a message per
  # iteration at the target eps (their number is not known in advance), a last step at the end
  progress <- if (requireNamespace("progressr", quietly = TRUE)) {
    progressr::progressor(steps = length(schedule) + 1L)
  } else function(...) NULL
  for (e in schedule) {           # symmetrised, averaged updates (GeomLoss)
    progress(sprintf("Sinkhorn: eps = %.3g", e))
    ft <- damp(e) * sm(x, y, b, g, e)
    gt <- damp(e) * sm_t(y, x, a, f, e)
    f <- (f + ft) / 2
    g <- (g + gt) / 2
    if (is.finite(rho)) { sh <- best_shift(f, g); f <- f + sh; g <- g - sh }
    if (debias) {
      f_aa <- (f_aa + damp(e) * sm(x, x, a, f_aa, e)) / 2
      g_bb <- (g_bb + damp(e) * sm(y, y, b, g_bb, e)) / 2
    }
  }
  # At the target eps until the marginals are met: alternating updates for (f, g),
  # over-relaxed (below), and averaged ones for the symmetric problems.
  # The marginal of the plan on x is w_i exp((pot_i - s_i) / eps) with s the (undamped)
  # soft-min of the other potential; its target is w_i exp(-pot_i / rho) (w_i when
  # balanced). Each soft-min gives the exact error of the current pair on its side, so the
  # error of (f, g) is that on x (from the f update) plus that on y (from the g update).
  marg <- function(w, pot, s) sum(abs(w * exp(-pot / rho) * expm1((pot - s) / eps + pot / rho)))
  de <- damp(eps)
  shift <- function() {
    if (is.finite(rho)) {
      sh <- best_shift(f, g)
      f <<- f + sh
      g <<- g - sh
      s_y <<- s_y - sh  # the plan is unchanged: so is g - s_y
    }
  }
  s_y <- sm_t(y, x, a, f, eps)   # a plain g update first: no error on y
  g <- de * s_y
  shift()
  err_y <- marg(b, g, s_y)
  # Over-relaxation, pot <- (1 - w) pot + w T(pot): plain Sinkhorn contracts the error by a
  # rate r per iteration, close to 1 at small blur (0.986 at blur 0.02 on W5); SOR theory
  # gives the best w = 2 / (1 + sqrt(1 - r)). r is estimated from the observed rate mu
  # whenever it is steady (two successive ratios within 2%), undoing the current w:
  # r = (mu + w - 1)^2 / (w^2 mu); w only grows, up to 1.9. If the error ever grows to 10
  # times its minimum (a change of w alone makes it jump by ~3: the relaxed g leaves an
  # error on y), w - 1 is halved and kept from then on.
  w <- if (is.numeric(overrelax)) as.double(overrelax) else 1
  adapt <- isTRUE(overrelax)
  errs <- numeric(0)
  last <- 0L
  # The symmetric problems converge much faster than (f, g): once their error is below
  # tol / 10 they are left as they are (their error kept in the total), saving half the
  # reductions of the remaining iterations.
  iter <- 0L
  err_sym <- if (debias) Inf else 0
  repeat {
    ft <- sm(x, y, b, g, eps)
    err_fg <- marg(a, f, ft) + err_y
    if (err_sym >= tol / 10) {
      ft_aa <- sm(x, x, a, f_aa, eps)
      gt_bb <- sm(y, y, b, g_bb, eps)
      err_sym <- marg(a, f_aa, ft_aa) + marg(b, g_bb, gt_bb)
      f_aa <- (f_aa + de * ft_aa) / 2
      g_bb <- (g_bb + de * gt_bb) / 2
    }
    err <- err_fg + err_sym
    progress(sprintf("Sinkhorn at eps = %.3g: iteration %d, marginal error %.3g", eps, iter, err), amount = 0)
    if (err < tol || iter >= max_iter) {
      # a last plain update of (f, g), as after every iteration without over-relaxation
      f <- de * ft
      s_y <- sm_t(y, x, a, f, eps)
      g <- de * s_y
      shift()
      break
    }
    errs[length(errs) + 1L] <- err_fg
    k <- length(errs)
    if (adapt && k >= 4L && k - last >= 3L) {
      mu <- errs[k] / errs[k - 1L]
      if (isTRUE(mu < 1 && abs(mu - errs[k - 1L] / errs[k - 2L]) < 0.02 * mu)) {  # (0 / 0 at convergence)
        r <- (mu + w - 1)^2 / (w^2 * mu)
        if (r < 1 && 2 / (1 + sqrt(1 - r)) > w) {
          w <- min(1.9, 2 / (1 + sqrt(1 - r)))
          last <- k
        }
      }
    }
    if (w != 1 && err_fg > 10 * min(errs)) {
      w <- 1 + (w - 1) / 2
      adapt <- FALSE
    }
    f <- (1 - w) * f + w * de * ft
    s_y <- sm_t(y, x, a, f, eps)
    g <- (1 - w) * g + w * de * s_y
    shift()
    err_y <- marg(b, g, s_y)
    iter <- iter + 1L
  }
  progress()
  converged <- err < tol
  if (!converged)
    warning(structure(class = c("kernops_warning_convergence", "kernops_warning", "warning", "condition"),
                      list(message = sprintf("Sinkhorn did not converge in %d iterations: marginal error %.3g > tol = %.3g. Increase `max_iter` or `blur`.",
                                             iter, err, tol), call = call, marginal_error = err)))
  if (is.finite(rho)) {
    # GeomLoss' dual formulas (Sejourne et al., 2019, Prop. 12): see "Unbalanced transport"
    wr <- rho + eps / 2
    cost <- wr * (sum(a * -expm1(-f / rho)) + sum(b * -expm1(-g / rho)))
    divergence <- if (debias) wr * (sum(a * (exp(-f_aa / rho) - exp(-f / rho))) + sum(b * (exp(-g_bb / rho) - exp(-g / rho))))
                  else NA_real_
  } else {
    cost <- sum(a * f) + sum(b * g)
    # OT(a, a) = sum(a f_aa) + sum(a f_aa) in the same convention, so S = cost - sum(a f_aa) - sum(b g_bb).
    divergence <- if (debias) cost - sum(a * f_aa) - sum(b * g_bb) else NA_real_
  }
  out <- list(value = if (debias) divergence else cost, cost = cost, divergence = divergence,
              f = f, g = g, f_aa = if (debias) f_aa, g_bb = if (debias) g_bb,
              eps = eps, blur = blur, p = p, reach = reach, rho = rho, debias = debias, eps_schedule = schedule,
              iterations = iter, marginal_error = err, converged = converged, tol = tol, overrelax = w,
              ground_cost = gc, x = x, y = y, a = a, b = b, dtype = dtype, backend = backend)
  if (grad) {
    # Envelope theorem: d OT(a,b)/dx_i = sum_j pi_ij Grad_1 C(x_i, y_j), which is -eps times
    # the gradient of <a, LSE_j(g_j/eps - C(x_i, y_j)/eps + log b_j)> in x_i (one reduction);
    # OT(a,a) has x on both sides of the symmetric C, hence twice its first-side gradient.
    # The direction is the plan's marginal on x, a_i exp(-f_i / rho) (a when balanced).
    gop <- stat_grad_op(ot_lse_formula(s), ot_lse_args(s), dtype, backend, "x")
    gr <- -eps * gop(x, y, g / eps, b, gc$scale / eps, a * exp(-f / rho))
    if (debias) gr <- gr + eps * gop(x, x, f_aa / eps, a, gc$scale / eps, a * exp(-f_aa / rho))
    out$gradient <- gr
    # The weights: the partial derivatives of the dual objective at the optimal potentials
    # (envelope theorem). Balanced: f (debiased: f - f_aa, OT(a, a) having a on both
    # sides), defined up to a constant since only mass-preserving directions are allowed.
    # Unbalanced: d/da_i of GeomLoss' value, (rho + eps) (1 - exp(-f_i / rho)) - eps / 2;
    # debiased the constants cancel: (rho + eps) (exp(-f_aa,i / rho) - exp(-f_i / rho)).
    wgrad <- function(pot, sym) {
      if (!is.finite(rho)) return(if (debias) pot - sym else pot)
      if (debias) (rho + eps) * (exp(-sym / rho) - exp(-pot / rho)) else -(rho + eps) * expm1(-pot / rho) - eps / 2
    }
    out$gradient_a <- wgrad(f, if (debias) f_aa)
    out$gradient_b <- wgrad(g, if (debias) g_bb)
  }
  structure(out, class = "kernops_ot")
}

# The ground cost in the engine: `term`, a KeOps formula in x (Vi) and y (Vj) of dimension
# 1, times `scale`; the reductions compute h - ie * term with ie = scale / eps a parameter.
# The default |x - y|^p / p keeps 1 / p in the parameter (one product less per pair).
ot_ground_cost <- function(cost, p, d, call) {
  if (is.null(cost)) {
    return(list(term = if (p == 2) "SqDist(x,y)" else "Norm2(x-y)", scale = 1 / p, default = TRUE,
                symmetric = TRUE, label = sprintf("|x - y|^%g / %g", p, p)))
  }
  term <- if (is.character(cost)) {
    if (length(cost) != 1 || is.na(cost) || !nzchar(trimws(cost)))
      abort_kernops("`cost` must be a single formula string in x and y, such as \"SqDist(x,y)/2\".",
                    "kernops_error_input", call = call)
    cost
  } else if (inherits(cost, "formula") || is.function(cost)) {
    ot_cost_from_r(cost, d, call)
  } else if (inherits(cost, "kernops_lazy")) {
    ot_cost_from_lazy(cost, call)
  } else {
    abort_kernops(sprintf("`cost` must be NULL, a formula string in x and y, a `~` formula, a function(x, y) or a LazyTensor, not %s.",
                          describe_type(cost)), "kernops_error_input", call = call)
  }
  decl <- c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d))
  op <- tryCatch(stat_op(sprintf("Sum_Reduction(%s,0)", term), decl, "float64", "cpu"),
                 kernops_error = function(e)
                   abort_kernops(c(sprintf("`cost` is not a formula in x and y (points of dimension %d): \"%s\".", d, term),
                                   conditionMessage(e)), "kernops_error_input", call = call))
  fd <- environment(op)$.kernops_state$formula_dim
  if (fd != 1)
    abort_kernops(sprintf("`cost` must be a scalar C(x, y) (dimension 1), but \"%s\" has dimension %d.", term, fd),
                  "kernops_error_dimension", call = call)
  list(term = term, scale = 1, default = FALSE, symmetric = NA, label = term)
}

# A `~` formula or a function(x, y) written with the LazyTensor functions, evaluated on
# symbolic x (Vi) and y (Vj): its formula string.
ot_cost_from_r <- function(cost, d, call) {
  xs <- symbolic_leaf("i", d, "x")
  ys <- symbolic_leaf("j", d, "y")
  res <- tryCatch({
    if (is.function(cost)) cost(xs, ys) else {
      if (length(cost) != 2)
        abort_kernops("`cost` as an R formula must be one-sided: ~ sqdist(x, y) / 2.", "kernops_error_input", call = call)
      vars <- new.env(parent = formula_helpers(environment(cost) %||% globalenv()))
      assign("x", xs, envir = vars)
      assign("y", ys, envir = vars)
      eval(cost[[2]], vars)
    }
  }, error = function(e) {
    if (inherits(e, "kernops_error")) stop(e)
    abort_kernops(c("Evaluating `cost` failed:", conditionMessage(e)), "kernops_error_input", call = call)
  })
  if (!inherits(res, "kernops_lazy") || inherits(res, "kernops_lazy_reduction"))
    abort_kernops(sprintf("`cost` must evaluate to a LazyTensor expression of x and y (no reduction), not %s.",
                          describe_type(res)), "kernops_error_input", call = call)
  ot_cost_from_lazy(res, call)
}

# A LazyTensor of one Vi variable (x) and one Vj variable (y): their data are not used (the
# ops run on the clouds given to sinkhorn()); numbers turned into parameters are written in.
ot_cost_from_lazy <- function(cost, call) {
  lv <- cost$leaves
  cats <- vapply(lv, function(l) l$cat, "")
  labels <- vapply(lv, function(l) {
    if (l$cat == "i") "x" else if (l$cat == "j") "y"
    else if (length(l$data) == 1) lazy_const(l$data)$f else NA_character_
  }, "")
  if (sum(cats == "i") > 1 || sum(cats == "j") > 1 || anyNA(labels))
    abort_kernops(c("`cost` must be an expression of one Vi variable (x) and one Vj variable (y) only.",
                    sprintf("It has %d Vi, %d Vj and %d vector parameter variable(s).", sum(cats == "i"),
                            sum(cats == "j"), sum(is.na(labels)))), "kernops_error_input", call = call)
  name_tokens(cost$f, labels)
}

# For debiasing the cost must be symmetric (OT(a, a) is solved with one potential, and its
# gradient is twice the one-sided one, as in GeomLoss): checked on the pairs (x_k, y_k).
ot_check_symmetric <- function(gc, x, y, call) {
  k <- seq_len(min(nrow(x), nrow(y), 256L))
  d <- ncol(x)
  op <- stat_op(sprintf("Sum_Reduction((%s)*u,0)", gc$term), c(sprintf("x = Vi(%d)", d), sprintf("y = Vi(%d)", d), "u = Vj(1)"),
                "float64", "cpu")
  xk <- x[k, , drop = FALSE]
  yk <- y[k, , drop = FALSE]
  c1 <- op(xk, yk, 1)
  c2 <- op(yk, xk, 1)
  if (any(abs(c1 - c2) > 1e-10 * pmax(abs(c1), abs(c2)) + 1e-300))
    abort_kernops(c(sprintf("`debias = TRUE` needs a symmetric cost, C(x, y) = C(y, x), but \"%s\" is not (e.g. %s against %s).",
                            gc$term, format(c1[which.max(abs(c1 - c2))], digits = 6), format(c2[which.max(abs(c1 - c2))], digits = 6)),
                    "Use `debias = FALSE` for the entropic transport cost OT_eps alone."),
                  "kernops_error_input", call = call)
}

ot_cost_expr <- function(gc) if (gc$default) gc$term else sprintf("(%s)", gc$term)
ot_lse_formula <- function(s) sprintf("LogSumExp_Reduction(h-ie*%s,0,w)", ot_cost_expr(s$cost))
# `transpose`: y indexed by i and x by j, for the update g_j = softmin_i C(x_i, y_j) of a
# cost that is not known to be symmetric.
ot_lse_args <- function(s, transpose = FALSE) {
  xy <- c(sprintf("x = Vi(%d)", s$d), sprintf("y = Vj(%d)", s$d))
  if (transpose) xy <- c(sprintf("y = Vi(%d)", s$d), sprintf("x = Vj(%d)", s$d))
  c(xy, "h = Vj(1)", "w = Vj(1)", "ie = Pm(1)")
}

# The soft-min: pot_i = -eps log sum_j w_j exp((h_j - C(x_i, y_j)) / eps) with h the
# potential on y (0 when NULL), one weighted LogSumExp reduction with h / eps as data and
# 1 / eps as a parameter (nothing recompiles when eps changes). With `transpose` the first
# argument is the cloud in the second slot of C (pot_j = softmin_i C(x_i, y_j)).
ot_softmin <- function(s, transpose = FALSE) {
  op <- stat_op(ot_lse_formula(s), ot_lse_args(s, transpose), s$dtype, s$backend)
  function(x, y, w, h, eps) {
    if (is.null(h)) h <- numeric(nrow(y))
    -eps * as.vector(op(x, y, h / eps, w, s$cost$scale / eps))
  }
}

# The dense cost matrix C(x_i, y_j) of a small problem (transport_plan()).
ot_dense_cost <- function(ot) {
  gc <- ot$ground_cost
  if (gc$default) {
    D2 <- pmax(outer(rowSums(ot$x^2), rowSums(ot$y^2), "+") - 2 * tcrossprod(ot$x, ot$y), 0)
    return(if (ot$p == 2) D2 / 2 else sqrt(D2))
  }
  d <- ncol(ot$x)
  op <- stat_op(sprintf("Sum_Reduction(%s,0)", gc$term), c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d)),
                "float64", "cpu")
  # one column per point of y: n x 1 reductions, O(n m) in all
  vapply(seq_len(nrow(ot$y)), function(j) as.vector(op(ot$x, ot$y[j, , drop = FALSE])), numeric(nrow(ot$x)))
}

#' @export
print.kernops_ot <- function(x, digits = getOption("digits"), ...) {
  cat(sprintf("Entropic optimal transport (Sinkhorn), cost %s, eps = %s (blur %s)\n",
              x$ground_cost$label, format(x$eps, digits = 4), format(x$blur, digits = 4)))
  cat(sprintf("  %d x %d points in dimension %d, %s, %s\n", nrow(x$x), nrow(x$y), ncol(x$x), x$dtype, x$backend))
  if (is.finite(x$rho %||% Inf))
    cat(sprintf("  unbalanced: reach %s (rho = %s), masses %s and %s\n", format(x$reach, digits = 4),
                format(x$rho, digits = 4), format(sum(x$a), digits = 4), format(sum(x$b), digits = 4)))
  if (x$debias) cat(sprintf("  Sinkhorn divergence S_eps: %s\n", format(x$divergence, digits = digits)))
  cat(sprintf("  OT_eps(a, b):              %s\n", format(x$cost, digits = digits)))
  cat(sprintf("  %s after %d iterations (+ %d-step eps schedule%s), marginal error %.3g\n",
              if (x$converged) "converged" else "NOT converged", x$iterations, length(x$eps_schedule),
              if (!is.null(x$overrelax) && x$overrelax != 1) sprintf(", over-relaxation %.3g", x$overrelax) else "",
              x$marginal_error))
  invisible(x)
}

#' @export
summary.kernops_ot <- function(object, ...) {
  structure(list(value = object$value, cost = object$cost, divergence = object$divergence,
                 eps = object$eps, blur = object$blur, p = object$p, n = nrow(object$x), m = nrow(object$y),
                 eps_schedule = object$eps_schedule, iterations = object$iterations,
                 marginal_error = object$marginal_error, converged = object$converged, tol = object$tol,
                 f = summary(object$f), g = summary(object$g)),
            class = "summary.kernops_ot")
}

#' @export
print.summary.kernops_ot <- function(x, digits = getOption("digits"), ...) {
  cat(sprintf("Sinkhorn: n = %d, m = %d, p = %g, eps = %s (blur %s)\n", x$n, x$m, x$p,
              format(x$eps, digits = 4), format(x$blur, digits = 4)))
  cat(sprintf("  value %s  (OT_eps %s, S_eps %s)\n", format(x$value, digits = digits),
              format(x$cost, digits = digits), format(x$divergence, digits = digits)))
  cat(sprintf("  eps schedule: %d steps from %s to %s; %d iterations at eps after it\n",
              length(x$eps_schedule), format(x$eps_schedule[1], digits = 4), format(x$eps, digits = 4), x$iterations))
  cat(sprintf("  marginal error %.3g (tol %.3g): %s\n", x$marginal_error, x$tol,
              if (x$converged) "converged" else "NOT converged"))
  cat("  potential f:\n"); print(x$f, digits = digits)
  cat("  potential g:\n"); print(x$g, digits = digits)
  invisible(x)
}

#' Barycentric map and transport plan of an entropic transport
#'
#' From the potentials of a [sinkhorn()] result, `barycentric_map()` sends each point
#' \eqn{x_i} to the \eqn{\pi}-weighted mean of the points of `y`,
#' \eqn{T(x_i) = \sum_j \pi_{ij} y_j / \sum_j \pi_{ij}} (the denominator is \eqn{a_i} at
#' convergence), with \eqn{\pi_{ij} = a_i b_j \exp((f_i + g_j - C(x_i, y_j)) /
#' \varepsilon)}: one SumSoftMaxWeight reduction, for any size. `transport_plan()` returns
#' \eqn{\pi} as a dense `nrow(x)` x `nrow(y)` matrix, only when it has at most `max_size`
#' entries.
#'
#' @param ot A `kernops_ot` result of [sinkhorn()].
#' @param max_size The largest number of entries of the dense plan (default 1e7, 80 MB);
#'   above it `transport_plan()` signals a `kernops_error_memory` error.
#' @return `barycentric_map()`: an `nrow(x)` x `ncol(x)` matrix. `transport_plan()`: the
#'   plan, an `nrow(x)` x `nrow(y)` matrix whose row sums are `a` and column sums `b` (up
#'   to the marginal error; \eqn{a_i e^{-f_i/\rho}} and \eqn{b_j e^{-g_j/\rho}} with
#'   `reach`).
#' @seealso [sinkhorn()]
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(rnorm(60), 30, 2)
#' y <- matrix(rnorm(40, mean = 2), 20, 2)
#' ot <- sinkhorn(x, y, blur = 0.5, debias = FALSE)
#' head(barycentric_map(ot))
#' P <- transport_plan(ot)
#' range(rowSums(P) - ot$a)
#' head(P %*% y / rowSums(P))    # the barycentric map, densely
barycentric_map <- function(ot) {
  check_ot(ot, sys.call())
  d <- ncol(ot$x)
  op <- stat_op(sprintf("SumSoftMaxWeight_Reduction(h-ie*%s,0,v)", ot_cost_expr(ot$ground_cost)),
                c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), "h = Vj(1)", sprintf("v = Vj(%d)", d + 1L), "ie = Pm(1)"),
                ot$dtype, ot$backend)
  # v = (b_j y_j, b_j): the ratio of the first d columns to the last is the b-weighted mean.
  r <- op(ot$x, ot$y, ot$g / ot$eps, cbind(ot$b * ot$y, ot$b), ot$ground_cost$scale / ot$eps)
  r[, seq_len(d), drop = FALSE] / r[, d + 1L]
}

#' @rdname barycentric_map
#' @export
transport_plan <- function(ot, max_size = 1e7) {
  call <- sys.call()
  check_ot(ot, call)
  n <- nrow(ot$x)
  m <- nrow(ot$y)
  if (as.double(n) * m > max_size)
    abort_kernops(sprintf("The dense plan would have %s entries, above `max_size` = %s; use barycentric_map() or raise `max_size`.",
                          format(as.double(n) * m, big.mark = ","), format(max_size)), "kernops_error_memory",
                  call = call)
  outer(ot$a, ot$b) * exp((outer(ot$f, ot$g, "+") - ot_dense_cost(ot)) / ot$eps)
}

check_ot <- function(ot, call) {
  if (!inherits(ot, "kernops_ot"))
    abort_kernops(sprintf("`ot` must be a result of sinkhorn() (class kernops_ot), not %s.", describe_type(ot)),
                  "kernops_error_input", call = call)
}

# spline_polyharmonic.R -- the polyharmonic (thin-plate) spline of kernel_spline(kernel =
# "polyharmonic"): the kernel as a formula, and the fit of its saddle-point system by a
# Krylov method whose every iteration is one kernel reduction (no n x n matrix), with the
# smoothing parameter optionally chosen by generalized cross-validation. Internal: called by
# kernel_spline() (spline.R), which checks the user's arguments.
#
# The model. f(u) = sum_i c_i phi(|u - x_i|) + d_0 + sum_k d_k u_k, with
#   phi(r) = A_2 r^2 log r  (d = 2, the thin-plate spline, order m = 2),
#   phi(r) = A_d r^3        (d != 2: the cubic smoothing spline for d = 1; in other
#                            dimensions the polyharmonic spline of Duchon's order
#                            m = (d + 3) / 2, still with an affine null space),
# minimising sum_i (y_i - f(x_i))^2 + lambda J(f), J the semi-norm whose reproducing
# (generalized) kernel is phi. The constants A_d are Duchon's/Wahba's (those of
# fields::radbas.constant(m, d)): A_2 = 1 / (8 pi), A_1 = 1 / 12, in general
# A_d = Gamma(d/2 - m) / (2^(2m) pi^(d/2) Gamma(m)) for r^3 (m = (d + 3) / 2). With them J is
# the usual energy, for d = 2 the bending energy
#   J(f) = integral of f_11^2 + 2 f_12^2 + f_22^2,
# and for d = 1 the integral of f''^2. The minimiser solves the saddle-point system
#   [K + lambda I,   P] [c]   [y]
#   [P^T,          0 ] [d] = [0],   K_ij = phi(|x_i - x_j|), P = [1, x] (n x (d + 1)).
#
# Mapping to fields::Tps (fields 14.1, read from its source: Tps -> Krig with Rad.cov, whose
# matrix includes radbas.constant, and the system (K + lambda_fields I) for unit weights):
# fields minimises sum_i (y_i - f(x_i))^2 + lambda_fields J(f), the sum, as kernops does, so
#   lambda_fields = lambda,
# and the system is (K + lambda I), as for every kernel of kernel_spline() and kernel_solve().
# Two more differences to compare like with like: Tps scales x by default (scale.type =
# "range": each column to [0, 1]), kernops does not, so compare with
# Tps(x, y, lambda = lambda, scale.type = "unscaled"), or fit kernops on the scaled x;
# and fields uses r^3 only for d = 1 (for d = 3 its default m = 2 gives phi = r), so outside
# d = 1, 2 the two are different splines. Tests: test-spline_polyharmonic.R.

# Duchon's constant A_d of phi (see the header): m = 2 for d = 2, m = (d + 3) / 2 for r^3.
polyharmonic_constant <- function(d) {
  if (d == 2) return(1 / (8 * pi))
  m <- (d + 3) / 2
  gamma(d / 2 - m) / (2^(2 * m) * pi^(d / 2) * gamma(m))
}

# The kernel phi(|x - y|) as a formula in x = Vi(d), y = Vj(d) (no reduction, no b), with
# Duchon's constant. With r2 = |x - y|^2, r^2 log r = r2 log(r2) / 2; at coincident points
# r2 log(r2) would be 0 * -Inf = NaN, so the logarithm's argument is IfElse(-r2, 1, r2):
# r2 where r2 > 0, 1 (log 1 = 0) where r2 = 0, and phi(0) = 0 exactly, in float32 too, with
# no threshold that data of a tiny scale could fall under. The guard is inside the Log, not
# around the product (IfElse(-r2, 0, r2 Log(r2))): that gives the right value, but its
# gradient (Grad, for predict(deriv = 1)) is NaN at a data point, as reverse mode multiplies
# the masked adjoint 0 by Log(0) = -Inf; here every factor stays finite, and the gradient is
# 0 there, phi's limit. r^3 = r2 Sqrt(r2) is 0 at r = 0 without help (and its gradient,
# like the engine's Sqrt(SqDist) elsewhere, 0).
polyharmonic_formula <- function(d) {
  a <- polyharmonic_constant(d)
  if (d == 2) {
    sprintf("%.17g*SqDist(x,y)*Log(IfElse(-SqDist(x,y),1,SqDist(x,y)))", a / 2)
  } else {
    sprintf("%.17g*SqDist(x,y)*Sqrt(SqDist(x,y))", a)
  }
}

# K %*% B for an n x k matrix B, as one reduction Sum_Reduction(F * b, 0) compiled once per
# (d, k, dtype, backend) and cached by stat_op() (stat_kernels.R).
polyharmonic_matvec <- function(x, dtype, backend) {
  d <- ncol(x)
  formula <- sprintf("Sum_Reduction((%s)*b,0)", polyharmonic_formula(d))
  function(B) {
    B <- as.matrix(B)
    op <- stat_op(formula, c(sprintf("x = Vi(%d)", d), sprintf("y = Vj(%d)", d), sprintf("b = Vj(%d)", ncol(B))),
                  dtype, backend)
    op(x, x, B)
  }
}

# Projected (preconditioned) conjugate gradients for the saddle-point system, several
# right-hand sides at once; `pre` a Nystrom preconditioner (ph_nystrom) or NULL.
#
# Why projected CG and not MINRES on the whole (n + d + 1) system: K is only conditionally
# positive definite, but c^T (K + s I) c > 0 for every c != 0 with P^T c = 0 (unisolvent
# points). Writing c = Pi c with Pi = I - Q Q^T (Q the thin QR factor of P, n x (d + 1)),
# the first block row projected by Pi is the symmetric positive definite system
#   Pi (K + s I) Pi c = Pi y   on range(Pi),
# for which CG is optimal (energy-norm minimal, monotone), and MINRES on the indefinite
# system needs about as many matrix products per step with a convergence governed by the
# square of the condition number in the worst case, and would need a preconditioner of the
# whole indefinite system, where projected CG takes the Nystrom preconditioner of the
# projected K (ph_nystrom) as it is. The projector is applied as
# V - Q (Q^T V), O(n (d + 1)) per column: never an n x n matrix. d then comes from the
# range(P) part of the residual, P d = y - (K + s I) c, by the QR of P.
#
# Each iteration is ONE reduction K %*% D for all k columns; each column has its own step
# lengths (independent CGs sharing the products). A column stops moving once its residual
# (relative to `bnorm`) is below tol. Warm start: X (in range(Pi)) with R = Pi (B - (K + s I) X)
# supplied by the caller (the true residual: one product).
# Returns X, R (the recursive residuals), iterations, res (relative residual per column) and
# breakdown (a direction of non-positive curvature: singular system, e.g. duplicated points
# at lambda = 0).
ph_cg <- function(kmv, Q, B, s, tol, max_iter, X = NULL, R = NULL, bnorm = sqrt(colSums(B^2)), pre = NULL) {
  proj <- ph_projector(Q)
  n <- nrow(B)
  if (is.null(X)) {
    X <- matrix(0, n, ncol(B))
    R <- proj(B)
  }
  bnorm[!(bnorm > 0)] <- 1
  prec <- if (is.null(pre)) function(V) V else function(V) ph_nystrom_apply(pre, V, s)
  res <- sqrt(colSums(R^2)) / bnorm
  Zr <- prec(R)
  rz <- colSums(R * Zr)
  D <- Zr
  it <- 0L
  breakdown <- FALSE
  while (any(res > tol) && it < max_iter) {
    act <- res > tol
    AD <- proj(kmv(D) + s * D)
    dAd <- colSums(D * AD)
    if (any(act & !(dAd > 0))) {
      breakdown <- TRUE
      break
    }
    alpha <- ifelse(act, rz / dAd, 0)
    X <- X + D * rep(alpha, each = n)
    R <- R - AD * rep(alpha, each = n)
    res <- sqrt(colSums(R^2)) / bnorm
    Zr <- prec(R)
    rz_new <- colSums(R * Zr)
    beta <- ifelse(act, rz_new / rz, 0)
    rz <- rz_new
    D <- Zr + D * rep(beta, each = n)
    it <- it + 1L
  }
  list(X = X, R = R, iterations = it, res = res, breakdown = breakdown)
}

# The Nystrom preconditioner of the projected system (Frangella, Tropp and Udell 2023, the
# preconditioner of FALKON's family), adapted to a conditionally positive definite kernel.
# Plain CG needs ~ sqrt(cond) iterations and the eigenvalues of Pi K Pi decay only like
# k^(-2m/d) (k^-2 for the thin plate in 2-D): hundreds of iterations at small lambda.
# With m centres S (a random subset of the points, set.seed), the native-space projection
# onto the splines centred on S that annihilate the polynomials (coefficients u = Z_S v,
# Z_S a basis of the null space of P_S^T) gives the rank-(m - d - 1) approximation
#   Pi K Pi ~ B B^T,  B = Pi K[, S] Z_S W^(-1/2),  W = Z_S^T K[S, S] Z_S (positive definite),
# whose eigendecomposition B B^T = U diag(l) U^T (from the small eigen(B^T B)) gives
#   P^-1 = (l_min + s) U diag(1 / (l + s)) U^T + (I - U U^T),
# symmetric positive definite, mapping range(Pi) to itself (U is in it). It flattens the top of
# the spectrum: CG then sees a condition number ~ (l_min + s) / s instead of (l_1 + s) / s.
# Cost: O(n m^2) to build (two n x m cross-products and two n x m by m x m products), one
# n x m buffer, O(n m k) per iteration for k columns. The n x m products go through Eigen
# (r_linalg.cpp): in R's reference BLAS they took 14 s to build and 1.4 s per iteration
# (k = 21) at n = 1e5, m = 200 (bench/RESULTS.md); the m x m eigen() stay in R.
ph_nystrom <- function(x, Q, m, block = 2048L) {
  n <- nrow(x)
  d <- ncol(x)
  S <- sort(sample.int(n, m))
  xs <- x[S, , drop = FALSE]
  qs <- qr(cbind(1, xs))
  if (qs$rank < d + 1) return(NULL)     # centres on a line: no preconditioner
  drop <- seq_len(d + 1)
  # One n x m' buffer G, filled and then transformed in place by blocks of rows (each row of
  # the results depends on the same row of G only), so that no second n x m matrix exists:
  # 8 n m bytes in all (158 MB at n = 1e5, m = 200). First G = K[, S] Z_S, with
  # Z_S^T v = (Q_S^T v)[-(1:(d + 1))] applied by Householder reflections (qr.qty, O(m d) a
  # column), and Q^T G on the way; then G <- Pi G = G - Q (Q^T G).
  blocks <- lapply(seq(1L, n, by = block), function(start) start:min(n, start + block - 1L))
  G <- matrix(0, n, m - d - 1)
  QtG <- 0
  for (i in blocks) {
    G[i, ] <- t(qr.qty(qs, ph_phi_dense(xs, x[i, , drop = FALSE]))[-drop, , drop = FALSE])
    QtG <- QtG + cpp_crossprod(Q[i, , drop = FALSE], G[i, , drop = FALSE])
  }
  for (i in blocks) G[i, ] <- G[i, , drop = FALSE] - cpp_matmul(Q[i, , drop = FALSE], QtG)
  W <- qr.qty(qs, t(qr.qty(qs, ph_phi_dense(xs, xs))[-drop, , drop = FALSE]))[-drop, , drop = FALSE]
  ew <- eigen((W + t(W)) / 2, symmetric = TRUE)
  keep <- ew$values > 1e-8 * ew$values[1]
  M <- ew$vectors[, keep, drop = FALSE] %*% diag(1 / sqrt(ew$values[keep]), sum(keep))   # W^(-1/2)
  # B = G M; B^T B = M^T (G^T G) M = V diag(l) V^T gives U = B V l^(-1/2) = G T
  GtG <- cpp_crossprod(G, G)
  eb <- eigen(crossprod(M, GtG %*% M), symmetric = TRUE)
  keep <- eb$values > 1e-8 * eb$values[1]
  T1 <- M %*% eb$vectors[, keep, drop = FALSE] %*% diag(1 / sqrt(eb$values[keep]), sum(keep))
  k <- ncol(T1)
  T1 <- cbind(T1, matrix(0, nrow(T1), ncol(G) - k))   # square, so that U fits in G's place
  for (i in blocks) G[i, ] <- cpp_matmul(G[i, , drop = FALSE], T1)
  if (k < ncol(G)) G <- G[, seq_len(k), drop = FALSE]   # (a copy only when directions were dropped)
  # U^T U = I only to ~1e-6 (the small l amplify rounding): a polar step U (U^T U)^(-1/2),
  # with U^T U computed from U itself, makes it I to rounding, so that P^-1 is positive
  # definite even where (l_min + s) / (l_1 + s) is that small (interpolation, s = 0).
  eu <- eigen(cpp_crossprod(G, G), symmetric = TRUE)
  T2 <- eu$vectors %*% (t(eu$vectors) / sqrt(eu$values))
  for (i in blocks) G[i, ] <- cpp_matmul(G[i, , drop = FALSE], T2)
  list(U = G, l = eb$values[keep], centres = S)
}

# Pi V = V - Q (Q'V): the projection onto the complement of the polynomials (Q: n x (d + 1)
# orthonormal columns spanning them).
ph_projector <- function(Q) function(V) V - Q %*% crossprod(Q, V)

ph_nystrom_apply <- function(pre, V, s) {
  lmin <- pre$l[length(pre$l)]
  cpp_lowrank_apply(pre$U, (lmin + s) / (pre$l + s) - 1, as.matrix(V))
}

# phi(|x_i - z_j|) densely (n x m, m small): the Nystrom columns. Same constants and the same
# phi(0) = 0 as polyharmonic_formula(). By blocks of rows, so that the temporaries stay
# small next to the n x m result.
ph_phi_dense <- function(x, z, block = 8192L) {
  d <- ncol(x)
  a <- polyharmonic_constant(d)
  out <- matrix(0, nrow(x), nrow(z))
  z2 <- rowSums(z^2)
  for (start in seq(1L, nrow(x), by = block)) {
    i <- start:min(nrow(x), start + block - 1L)
    xi <- x[i, , drop = FALSE]
    r2 <- pmax(outer(rowSums(xi^2), z2, "+") - 2 * tcrossprod(xi, z), 0)
    out[i, ] <- if (d == 2) (a / 2) * r2 * log(r2 + (r2 == 0)) else a * r2 * sqrt(r2)
  }
  out
}

# Fit of the polyharmonic spline at a given lambda (>= 0) or lambda = "gcv".
#   x: n x d double matrix (checked by the caller), y: n numbers.
#   lambda: the diagonal shift of K (see the header; equal to fields::Tps's lambda).
#   tol: on the relative residual |Pi (y - (K + lambda I) c)| / |y| of the system, which
#     is the full saddle-point residual |y - (K + lambda) c - P d| / |y| once d is the
#     least-squares solution (P^T c = 0 holds by construction). It is the TRUE residual,
#     recomputed with one more product after CG; if CG's recursive residual drifted from it,
#     CG restarts from there (while that still halves it). In float32 the products carry
#     ~1e-7 relative errors: ask for tol >= 1e-5 or so.
#   n_probes: Hutchinson probes of the GCV trace (lambda = "gcv" only).
#   centres: the size m of the Nystrom preconditioner (ph_nystrom; 0: plain projected CG).
#     Measured on W6 data, n = 2000, lambda = 1e-7: 309 iterations plain, 40 with m = 100,
#     18 with m = 300 (bench/RESULTS.md).
# Returns list(coefficients = c (n), poly = d (d + 1: intercept then slopes), lambda,
#   fitted = K c + P d, iterations (of the final solve), residual, converged, and with
#   "gcv" gcv = data.frame(lambda, gcv, edf, iterations, converged) of the evaluations).
polyharmonic_fit <- function(x, y, lambda, tol = 1e-8, max_iter = 1000, dtype = "float64", backend = "auto",
                             call = NULL, n_probes = 20L, centres = min(200L, nrow(x) %/% 5L)) {
  n <- nrow(x)
  d <- ncol(x)
  y <- as.double(y)
  gcv <- identical(lambda, "gcv")
  if (!gcv && (!is.numeric(lambda) || length(lambda) != 1 || !is.finite(lambda) || lambda < 0))
    abort_kernops(sprintf("`lambda` must be a single number >= 0 or \"gcv\" (got %s).",
                          if (is.numeric(lambda) && length(lambda) == 1) format(lambda) else describe_type(lambda)),
                  "kernops_error_input", call = call)
  P <- cbind(1, x)
  qrP <- qr(P)
  if (n <= d + 1 || qrP$rank < d + 1)
    abort_kernops(sprintf("The polyharmonic spline needs more than %d points not all on one affine %s (the affine part of the fit is not determined otherwise); got %d points%s.",
                          d + 1, if (d == 2) "line" else "hyperplane", n, if (n > d + 1) " on one" else ""),
                  "kernops_error_input", call = call)
  Q <- qr.Q(qrP)
  proj <- ph_projector(Q)
  kmv <- polyharmonic_matvec(x, dtype, backend)
  pre <- if (centres > d + 2) ph_nystrom(x, Q, min(centres, n))
  ynorm <- sqrt(sum(y^2))
  if (!(ynorm > 0)) ynorm <- 1

  sel <- NULL
  X0 <- NULL
  if (gcv) {
    sel <- ph_gcv(kmv, Q, y, n_probes, tol, max_iter, pre, call)
    lambda <- sel$lambda
    X0 <- sel$c
  }
  s <- lambda
  # The final solve, restarted from the true residual while CG's recursive one has drifted.
  R0 <- if (is.null(X0)) NULL else proj(y - kmv(X0) - s * X0)
  iters <- 0L
  prev <- Inf
  repeat {
    cg <- ph_cg(kmv, Q, matrix(y), s, tol, max_iter - iters, X = if (!is.null(X0)) matrix(X0), R = R0, bnorm = ynorm, pre = pre)
    iters <- iters + cg$iterations
    cf <- as.vector(proj(cg$X))       # P^T c = 0 to rounding, whatever CG's drift
    Ac <- as.vector(kmv(cf)) + s * cf
    R0 <- proj(y - Ac)
    res <- sqrt(sum(R0^2)) / ynorm
    if (res <= tol || iters >= max_iter || cg$breakdown || res > prev / 2) break
    prev <- res
    X0 <- cf
  }
  poly <- qr.coef(qrP, y - Ac)
  converged <- res <= tol
  if (!converged)
    warning(structure(class = c("kernops_warning_convergence", "kernops_warning", "warning", "condition"),
                      list(message = sprintf("The polyharmonic spline's solver did not converge in %d iterations: relative residual %.3g > tol = %.3g.%s",
                                             iters, res, tol,
                                             if (cg$breakdown) " The system is singular (duplicated points with lambda = 0?)."
                                             else " Increase `max_iter` or `lambda`, or use dtype = \"float64\"."),
                           call = call, residual = res)))
  out <- list(coefficients = cf, poly = unname(poly), lambda = lambda,
              fitted = as.vector(Ac - s * cf + P %*% poly),   # K c + P d
              iterations = iters, residual = res, converged = converged)
  if (gcv) out$gcv <- sel$table
  out
}

# lambda by generalized cross-validation (Craven and Wahba 1979), as fields::Tps's default:
# minimise V(lambda) = (1/n) RSS / (1 - tr(A)/n)^2, A the influence matrix (fitted = A y).
# With s = lambda and S = the map y -> c (S = Z (Z^T (K + s I) Z)^-1 Z^T, Z a basis of
# range(Pi)), fitted = y - s c, so RSS = s^2 |c|^2 and tr(I - A) = s tr(S), hence
#   V = n |c|^2 / tr(S)^2,   edf = tr(A) = n - s tr(S).
# tr(S) is estimated by Hutchinson's estimator, mean of z^T S z over n_probes Rademacher
# probes z (from R's RNG: set.seed), S z from the same CG as c (extra right-hand sides, the
# same one reduction per iteration). The same probes serve every lambda, so the estimated
# curve is smooth in lambda and the search sees no probe noise between neighbours.
# Search: a log grid of s, 2 per decade, from tr(Pi K Pi) (>= the largest eigenvalue of the
# projected K: edf near d + 1) downwards, each solve warm-started (see below); it stops 2
# points after the current minimum has stopped improving (or after 11 decades) -- small
# lambdas are the expensive solves (without the preconditioner, many times the others), and
# GCV curves rise steadily past their minimum. Then optimize() on
# log(s) between the grid neighbours of the minimum, to 10% in lambda (GCV is flat there:
# the Hutchinson noise moves the minimum more than that). Progress through progressr if installed.
# Warm starts: each solve starts from the last CONVERGED solution X0 (any X in range(Pi) is a
# valid start) with its true residual Pi (B - (K + s I) X0), one product: after a solve that
# stopped at max_iter, CG's recursive residual can be far from the true one, and starting
# from it gave wrong GCV values. (A shift changes the Krylov space's weights, not the space,
# so a warm start saves a few iterations, not most of them.)
ph_gcv <- function(kmv, Q, y, n_probes, tol, max_iter, pre, call = NULL) {
  n <- length(y)
  proj <- ph_projector(Q)
  Z <- matrix(sample(c(-1, 1), n * n_probes, replace = TRUE), n, n_probes)
  B <- cbind(y, Z)
  bnorm <- sqrt(colSums(B^2))
  # tr(Pi K Pi) = tr(K) - tr(Q^T K Q) = -tr(Q^T K Q) (phi(0) = 0): one product.
  top <- -sum(Q * kmv(Q))
  if (!(top > 0)) top <- 1
  grid <- top * 10^-seq(0, 11, by = 0.5)
  # progress: a step per grid point (the grid may stop early: the rest is stepped at the
  # end), a message without a step per refinement, as sinkhorn() does
  progress <- if (requireNamespace("progressr", quietly = TRUE)) {
    progressr::progressor(steps = length(grid) + 1L)
  } else function(...) NULL
  step <- 1L
  X0 <- NULL
  evals <- list()
  eval_at <- function(s) {
    for (e in evals) if (e$lambda == s) return(e$gcv)   # optimize() may ask twice
    cg <- if (is.null(X0)) {
      ph_cg(kmv, Q, B, s, tol, max_iter, bnorm = bnorm, pre = pre)
    } else {
      ph_cg(kmv, Q, B, s, tol, max_iter, X = X0, R = proj(B - kmv(X0) - s * X0), bnorm = bnorm, pre = pre)
    }
    if (all(cg$res <= tol)) X0 <<- cg$X
    cf <- cg$X[, 1]
    trS <- mean(colSums(Z * cg$X[, -1, drop = FALSE]))
    v <- n * sum(cf^2) / trS^2
    evals[[length(evals) + 1L]] <<- data.frame(lambda = s, gcv = v, edf = n - s * trS,
                                               iterations = cg$iterations, converged = all(cg$res <= tol))
    progress(sprintf("GCV: lambda = %.3g, V = %.4g, edf = %.1f (%d iterations)", s, v, n - s * trS, cg$iterations),
             amount = step)
    v
  }
  vals <- numeric(0)
  best <- 1L
  for (k in seq_along(grid)) {
    vals[k] <- eval_at(grid[k])
    if (is.finite(vals[k]) && (!is.finite(vals[best]) || vals[k] < vals[best])) best <- k
    if (k - best >= 2) break
  }
  step <- 0L
  lo <- log(grid[min(best + 1L, length(vals))])
  hi <- log(grid[max(best - 1L, 1L)])
  opt <- stats::optimize(function(ls) eval_at(exp(ls)), c(lo, hi), tol = 0.1)
  if (opt$objective > vals[best]) opt <- list(minimum = log(grid[best]), objective = vals[best])
  s <- exp(opt$minimum)
  progress(amount = length(grid) + 1L - length(vals))
  table <- do.call(rbind, evals)
  if (!all(table$converged))
    warning(structure(class = c("kernops_warning_convergence", "kernops_warning", "warning", "condition"),
                      list(message = sprintf("%d of the %d GCV solves did not converge in `max_iter` = %d iterations (smallest lambda %.3g): their GCV values are approximate.",
                                             sum(!table$converged), nrow(table), max_iter, min(table$lambda[!table$converged])),
                           call = call, residual = NA_real_)))
  list(lambda = s, c = if (!is.null(X0)) X0[, 1], table = table)  # c: a warm start for the final solve
}

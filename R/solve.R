# solve.R -- kernel linear systems (K_xx + lambda I) a = b by preconditioned conjugate
# gradients, where every product with K is one reduction (all right-hand sides at once) and
# the n x n kernel matrix is never stored.
#
# The preconditioner is the Nystrom approximation of K on m centres drawn uniformly from
# the points, as in FALKON (Rudi, Carratino and Rosasco, 2017) and Cutajar et al. (2016):
#   K ~ Q Q',  Q = K_nm L^{-T},  L L' = K_mm (+ jitter),
#   P = Q Q' + mu I,  P^{-1} r = (r - Q (mu I + Q'Q)^{-1} Q' r) / mu     (Woodbury).
# Why centres rather than the randomized Nystrom PCG of Frangella, Tropp and Udell (2021),
# whose Gaussian sketch K Omega is one multi-RHS reduction: that sketch leaves an n x r
# orthonormal basis U to hold and apply at every iteration (1e5 x 1000 doubles = 800 MB,
# over our memory budget), and costs a full n^2 r reduction. With centres, Q is never held:
# Q' r = L^{-1} (K_mn r) and Q w = K_nm (L^{-T} w) are reductions of n m (not n^2) terms, and
# only m x m matrices are stored; Q'Q is accumulated block by block of rows (n m^2 work, in
# Eigen). Unlike FALKON we solve the full n-dimensional system, so the fit is the exact
# kernel ridge regression, not its Nystrom restriction: the preconditioner only changes how
# many iterations it takes (about sqrt of cond(P^{-1}(K + lambda I)) ~ 1 + |K - QQ'| / mu).

#' Solve a kernel linear system by preconditioned conjugate gradients
#'
#' `kernel_solve()` solves \eqn{(K_{xx} + \lambda I) a = b} for a positive definite kernel
#' matrix \eqn{K_{xx} = [k(x_i, x_j)]}, the system of kernel ridge regression, Gaussian
#' process posterior means and interpolating splines, by conjugate gradients in which
#' each product with \eqn{K_{xx}} is one kernops reduction: memory stays \eqn{O(n)} (the
#' kernel matrix, 80 GB at \eqn{n = 10^5}, is never formed) and all the columns of `b` are
#' solved together, one reduction per iteration for all of them.
#'
#' @section Preconditioner:
#' Plain CG needs a number of iterations that grows like the square root of the condition
#' number of \eqn{K + \lambda I}, hundreds or thousands when \eqn{\lambda} is small. With
#' `precond = "nystrom"` (the default) the system is preconditioned by the Nystrom
#' approximation of \eqn{K} on `m` centres drawn at random among the points (as in FALKON,
#' Rudi et al., 2017): \eqn{P = K_{nm} K_{mm}^{-1} K_{mn} + \mu I} with \eqn{\mu = \lambda}
#' (\eqn{10^{-6}} when \eqn{\lambda = 0}), applied with the Woodbury identity by two
#' reductions of \eqn{n m} terms and triangular solves of size \eqn{m}; the \eqn{m \times m}
#' factorisations are done with Eigen. The \eqn{n \times m} matrix \eqn{K_{nm}} is never
#' stored, so memory is \eqn{O(n + m^2)}. Smooth kernels (Gaussian, Matern 5/2) then
#' converge in tens of iterations; the centres follow `set.seed()`.
#'
#' @param kernel The kernel: a name from [stat_kernels] (`"gaussian"`, `"laplace"`,
#'   `"cauchy"`, `"matern32"`, `"matern52"`, `"imq"`), with scale `sigma`; or a kernel
#'   operation from [kernel_op()] computing \eqn{\sum_j k(x_i, y_j) b_j}, whose first three
#'   arguments are the points `x` (a `Vi`), the points `y` (a `Vj` of the same dimension)
#'   and the weights `b` (a `Vj` with `ncol(b)` columns), the reduction a `Sum_Reduction`
#'   over j; its further arguments (parameters) are given in `...`.
#' @param x The points: a numeric matrix (one row per point), vector (d = 1) or numeric
#'   data frame; finite values.
#' @param b The right-hand side(s): a vector of length `nrow(x)` or a matrix with
#'   `nrow(x)` rows, one system per column.
#' @param lambda The ridge \eqn{\lambda \ge 0} added to the diagonal. With
#'   \eqn{\lambda = 0} the points must be distinct (else \eqn{K} is singular).
#' @param sigma The kernel's scale (a positive number, see [stat_kernels]); unused for a
#'   kernel operation.
#' @param ... Further arguments of a kernel operation `kernel` (its parameters, by name).
#' @param tol Tolerance on the relative residual \eqn{|b - (K + \lambda I) a| / |b|} of
#'   each column: `1e-6`, or `1e-5` in `float32`, whose rounding of the products with
#'   \eqn{K} puts residuals much below that out of reach (CG stops when, near that
#'   floor, 25 iterations have not reduced the residual by 10%).
#' @param max_iter Maximum number of CG iterations.
#' @param x0 A starting point (warm start) with the shape of `b`, e.g. the solution for a
#'   nearby `lambda`; `NULL` starts from 0.
#' @param precond `"nystrom"` (the default for named kernels) or `"none"` (plain CG; the
#'   only choice for a kernel operation).
#' @param m The number of Nystrom centres (default `min(n, 300)`).
#' @param dtype `"float64"` (default) or `"float32"`: the precision of the reductions
#'   (see [kernel_op()]); the CG recurrences run in double precision.
#' @param backend `"auto"`, `"cpu"` or `"cuda"`, passed to the reductions.
#' @return An object of class `kernops_solve`: a list with `coefficients` (the solution
#'   \eqn{a}, a vector if `b` was a vector, else a matrix), `iterations`, `residual` (the
#'   final relative residual of each column, recomputed from the solution),
#'   `residual_history` (the largest relative residual over the columns, before the
#'   first and after each iteration), `converged`, and `lambda`, `kernel`, `sigma`,
#'   `precond`, `m`, `tol`, `dtype`, `backend`, `call`. If the tolerance is not reached in
#'   `max_iter` iterations, a warning of class `kernops_warning_convergence` carries the
#'   relative residual reached (field `residual`). Progress (one step per iteration) is
#'   reported through \pkg{progressr} when it is installed.
#' @references Rudi, A., Carratino, L. and Rosasco, L. (2017). FALKON: an optimal large
#'   scale kernel method. *NeurIPS 30*.
#'
#'   Cutajar, K., Osborne, M., Cunningham, J. and Filippone, M. (2016). Preconditioning
#'   kernel matrices. *ICML*.
#' @seealso [kernel_spline()] for splines and kernel ridge regression built on it,
#'   [stat_kernels] for the kernels.
#' @export
#' @examples
#' set.seed(1)
#' x <- matrix(runif(400), 200, 2)
#' b <- cbind(sin(4 * x[, 1]), cos(3 * x[, 2]))
#' sol <- kernel_solve("gaussian", x, b, lambda = 1e-3, sigma = 0.3, tol = 1e-10)
#' sol
#' # the same with the dense kernel matrix (possible for small n only)
#' K <- exp(-as.matrix(dist(x))^2 / (2 * 0.3^2))
#' max(abs(sol$coefficients - solve(K + 1e-3 * diag(200), b)))
#' # plain CG takes many more iterations
#' kernel_solve("gaussian", x, b, lambda = 1e-3, sigma = 0.3, tol = 1e-10,
#'              precond = "none", max_iter = 2000)$iterations
kernel_solve <- function(kernel = "gaussian", x, b, lambda, sigma, ...,
                         tol = if (identical(dtype, "float32")) 1e-5 else 1e-6, max_iter = 500L,
                         x0 = NULL, precond = c("nystrom", "none"), m = NULL,
                         dtype = c("float64", "float32"), backend = c("auto", "cpu", "cuda")) {
  call <- match.call()
  ecall <- sys.call()
  ks <- solve_kernel(kernel, if (missing(sigma)) NULL else sigma, list(...), dtype, backend, ecall)
  X <- check_sample(x, "x", 1L, ecall)
  B <- solve_rhs(b, nrow(X), "b", ecall)
  if (missing(lambda))
    abort_kernops("Argument `lambda` is missing: give the ridge (0 for interpolation).", "kernops_error_input", call = ecall)
  check_lambda(lambda, X, ecall)
  check_positive_number(tol, "tol", ecall)
  check_count(max_iter, "max_iter", ecall, min = 0)
  X0 <- if (is.null(x0)) NULL else solve_rhs(x0, nrow(X), "x0", ecall, ncol(B))
  precond <- if (identical(precond, eval(formals(kernel_solve)$precond)) && is.null(ks$kern)) "none" else
    match_choice(precond, c("nystrom", "none"), "precond", ecall)
  if (precond == "nystrom" && is.null(ks$kern))
    abort_kernops("`precond = \"nystrom\"` needs a named kernel; with a kernel operation use `precond = \"none\"`.",
                  "kernops_error_unsupported", call = ecall)
  m <- if (precond == "nystrom") nystrom_m(m, nrow(X), ecall) else NA_integer_
  pre <- if (precond == "nystrom") nystrom_setup(ks, X, m, ecall) else NULL
  progress <- if (requireNamespace("progressr", quietly = TRUE)) progressr::progressor(steps = max_iter) else function(...) NULL
  res <- solve_cg(ks, X, B, lambda, tol, max_iter, X0, pre, ecall, progress)
  cg_warning(res, tol, precond, ecall)
  coef <- if (is.matrix(b)) res$a else as.vector(res$a)
  structure(list(coefficients = coef, iterations = res$iterations, residual = res$residual,
                 residual_history = res$history, converged = res$converged, lambda = lambda,
                 kernel = ks$name, sigma = ks$sigma, precond = precond, m = m, tol = tol,
                 dtype = ks$dtype, backend = ks$backend, call = call),
            class = "kernops_solve")
}

# ---- set-up and checks -------------------------------------------------------------------

# The kernel as a product: ks$prod(X, Y, B) = K(X, Y) B, one reduction (compiled once per
# width of B and cached), with the checked dtype and backend.
solve_kernel <- function(kernel, sigma, dots, dtype, backend, call) {
  dtype <- match_choice(dtype, c("float64", "float32"), "dtype", call)
  backend <- resolve_backend(match_choice(backend, c("auto", "cpu", "cuda"), "backend", call), call)
  if (inherits(kernel, "kernops_op")) {
    state <- environment(kernel)$.kernops_state
    v <- state$vars
    if (state$reduction != "Sum_Reduction" || state$axis != 0 || nrow(as.data.frame(v)) < 3 ||
        !identical(v$index[1:3], c("i", "j", "j")) || v$dim[1] != v$dim[2])
      abort_kernops(c("A kernel operation for `kernel` must be a Sum_Reduction over j whose first three arguments are",
                      "x = Vi(d), y = Vj(d) and b = Vj(k), e.g. kernel_op(\"Sum_Reduction(Exp(-s*SqDist(x,y))*b, 0)\", ",
                      "c(\"x = Vi(2)\", \"y = Vj(2)\", \"b = Vj(1)\", \"s = Pm(1)\"))."),
                    "kernops_error_input", call = call)
    prod <- function(X, Y, B) {
      if (ncol(B) != v$dim[3])
        abort_kernops(sprintf("The kernel operation's `%s` is declared with %d column%s, but the system has %d right-hand side%s.",
                              v$name[3], v$dim[3], if (v$dim[3] > 1) "s" else "", ncol(B), if (ncol(B) > 1) "s" else ""),
                      "kernops_error_dimension", call = call)
      do.call(kernel, c(list(X, Y, B), dots))
    }
    return(list(prod = prod, prod64 = prod, name = "kernel_op", kern = NULL, sigma = NULL, d = v$dim[1],
                dtype = state$dtype, backend = state$backend))
  }
  check_no_dots(dots, call)
  if (identical(kernel, "epanechnikov"))
    abort_kernops("`kernel` = \"epanechnikov\" is not positive definite; use \"gaussian\", \"matern52\", \"matern32\", \"laplace\", \"cauchy\" or \"imq\".",
                  "kernops_error_input", call = call)
  kern <- stat_kernel(kernel, allowed = solve_kernels, call = call)
  if (is.null(sigma))
    abort_kernops("Argument `sigma` is missing: give the kernel's scale (see ?stat_kernels).", "kernops_error_input", call = call)
  check_bandwidth(sigma, "sigma", call)
  g <- kern$g(sigma)
  formula <- sprintf("Sum_Reduction(%s, 0)", sub(",1)$", ",b)", kern$formula))
  prod_in <- function(dt) function(X, Y, B) {
    op <- stat_op(formula, c(sprintf("x = Vi(%d)", ncol(X)), sprintf("y = Vj(%d)", ncol(X)),
                             sprintf("b = Vj(%d)", ncol(B)), "g = Pm(1)"), dt, backend)
    op(x = X, y = Y, b = B, g = g)
  }
  # prod64: the preconditioner's reductions (n m terms, not n^2) stay in float64 whatever
  # `dtype`: its Cholesky factors amplify float32 rounding of K_mm into a preconditioner that
  # is no longer positive definite, and CG then stalls. The true residual is computed in
  # float64 too (see solve_cg()).
  list(prod = prod_in(dtype), prod64 = prod_in("float64"), name = kern$name, kern = kern, sigma = sigma, g = g,
       dtype = dtype, backend = backend)
}

solve_kernels <- c("gaussian", "laplace", "cauchy", "matern32", "matern52", "imq")

# A right-hand side (or warm start) as an n x k double matrix.
solve_rhs <- function(b, n, name, call, k = NULL) {
  if (is.data.frame(b)) b <- as.matrix(b)
  if (!(is.double(b) || is.integer(b)) || is.factor(b) || (!is.null(dim(b)) && length(dim(b)) != 2))
    abort_kernops(sprintf("`%s` must be a numeric vector or matrix, not %s.", name, describe_type(b)),
                  "kernops_error_input", call = call)
  B <- if (is.matrix(b)) b else matrix(b, ncol = 1)
  storage.mode(B) <- "double"
  if (nrow(B) != n)
    abort_kernops(sprintf("`%s` must have %d %s (one per point of `x`), not %d.", name, n,
                          if (is.matrix(b)) "rows" else "elements", nrow(B)), "kernops_error_dimension", call = call)
  if (!is.null(k) && ncol(B) != k)
    abort_kernops(sprintf("`%s` must have %d column%s (those of `b`), not %d.", name, k, if (k > 1) "s" else "", ncol(B)),
                  "kernops_error_dimension", call = call)
  if (ncol(B) == 0)
    abort_kernops(sprintf("`%s` has no columns.", name), "kernops_error_input", call = call)
  bad <- which(!is.finite(B))
  if (length(bad))
    abort_kernops(sprintf("`%s` has a non-finite value (%s) in row %d.", name, format(B[bad[1]]), (bad[1] - 1L) %% n + 1L),
                  "kernops_error_input", call = call)
  dimnames(B) <- NULL
  B
}

# lambda >= 0, and distinct points when lambda = 0 (K is singular with a repeated point).
check_lambda <- function(lambda, X, call) {
  if (!is.numeric(lambda) || length(lambda) != 1 || !is.finite(lambda) || lambda < 0)
    abort_kernops(sprintf("`lambda` must be a single finite number >= 0, not %s.",
                          if (is.numeric(lambda) && length(lambda) == 1) format(lambda) else describe_type(lambda)),
                  "kernops_error_input", call = call)
  if (lambda == 0) {
    dup <- anyDuplicated(X)
    if (dup)
      abort_kernops(sprintf("Point %d of `x` repeats an earlier point: with `lambda` = 0 (interpolation) the kernel matrix is singular. Remove duplicates or use `lambda` > 0.",
                            dup), "kernops_error_input", call = call)
  }
  invisible(lambda)
}

check_positive_number <- function(v, name, call) {
  if (!is.numeric(v) || length(v) != 1 || !is.finite(v) || v <= 0)
    abort_kernops(sprintf("`%s` must be a single positive number.", name), "kernops_error_input", call = call)
}

check_count <- function(v, name, call, min = 1) {
  if (!is.numeric(v) || length(v) != 1 || !is.finite(v) || v < min || v != round(v))
    abort_kernops(sprintf("`%s` must be a single whole number >= %d.", name, min), "kernops_error_input", call = call)
}

nystrom_m <- function(m, n, call) {
  if (is.null(m)) return(as.integer(min(n, 300L)))
  check_count(m, "m", call)
  as.integer(min(m, n))
}

# ---- the preconditioner ---------------------------------------------------------------------

# The lower Cholesky factor of A + jitter I (the smallest jitter, from `jitter` up by tens,
# that makes it numerically positive definite), through Eigen.
chol_jitter <- function(A, jitter, call) {
  for (k in 0:8) {
    f <- cpp_chol_lower(A + diag(jitter * 10^k, nrow(A)))
    if (f$ok) return(f$L)
  }
  abort_kernops("The Nystrom preconditioner's kernel matrix could not be factored (it is not positive definite): use `precond = \"none\"`.",
                "kernops_error_internal", call = call)
}

# The parts of the Nystrom preconditioner (see the head of this file) that do not depend on
# lambda: the centres C, L = chol(K_mm + jitter) and Q'Q, accumulated by blocks of rows of
# K(x, C) (each one reduction with b = I, then a triangular solve in Eigen).
nystrom_setup <- function(ks, X, m, call, block_entries = 2^21) {
  n <- nrow(X)
  C <- X[sort(sample.int(n, m)), , drop = FALSE]
  I <- diag(m)
  L <- chol_jitter(ks$prod64(C, C, I), 1e-8, call)
  S <- matrix(0, m, m)
  bs <- max(1L, floor(block_entries / m))
  for (s in seq(1L, n, by = bs)) {
    rows <- s:min(n, s + bs - 1L)
    S <- cpp_nystrom_accumulate(S, ks$prod64(X[rows, , drop = FALSE], C, I), L)
  }
  list(C = C, L = L, S = S)
}

# r -> P^{-1} r for P = Q Q' + mu I (one m x m Cholesky factorisation per mu).
nystrom_precond <- function(setup, ks, X, mu, call) {
  L <- setup$L
  C <- setup$C
  R <- chol_jitter(setup$S + diag(mu, nrow(L)), 0, call)
  function(Rm) {
    V <- cpp_tri_solve(L, ks$prod64(C, X, Rm), FALSE)        # Q'r = L^{-1} K_mn r
    V <- cpp_tri_solve(L, cpp_chol_solve(R, V), TRUE)        # L^{-T} (mu I + Q'Q)^{-1} Q'r
    (Rm - ks$prod64(X, C, V)) / mu
  }
}

# mu of the preconditioner: lambda, or a small floor for interpolation (lambda = 0).
precond_mu <- function(lambda) if (lambda > 0) lambda else 1e-6

# ---- conjugate gradients ------------------------------------------------------------------------

# Preconditioned CG on the columns of B together (per-column step sizes, one product with K
# per iteration for all columns). K a is tracked along (Ka += alpha K P), so a warm start
# from a solution at another lambda needs no product (pass its `Ka`), and fitted values come
# free. The recursive residual drifts from the true one in long runs: with `verify`, the true
# residual is recomputed at the end (one product, in float64 whatever `dtype`), and CG
# restarts from the current solution if it is still above tol (and falling). In float32 this
# is mixed-precision iterative refinement: the products of the iterations are in float32
# (whose rounding, relative to |K| |a|, can exceed tol when K a nearly cancels), each
# restart corrects with a float64 residual.
# `pre`: a nystrom_setup() or NULL (no preconditioner); `progress`: a progressr progressor.
solve_cg <- function(ks, X, B, lambda, tol, max_iter, X0, pre, call, progress = function(...) NULL,
                     KX0 = NULL, verify = TRUE) {
  n <- nrow(X)
  k <- ncol(B)
  Pinv <- if (!is.null(pre)) nystrom_precond(pre, ks, X, precond_mu(lambda), call) else identity
  bnorm <- sqrt(colSums(B^2))
  bnorm[bnorm == 0] <- 1
  cols <- function(v) rep(v, each = n)
  a <- if (is.null(X0)) matrix(0, n, k) else X0
  Ka <- if (is.null(X0)) matrix(0, n, k) else if (!is.null(KX0)) KX0 else ks$prod(X, X, a)
  R <- B - Ka - lambda * a
  res <- sqrt(colSums(R^2)) / bnorm
  history <- max(res)
  iter <- 0L
  best <- Inf
  while (any(res > tol) && iter < max_iter && max(res) < best) {
    best <- max(res)
    Z <- Pinv(R)
    rz <- colSums(R * Z)
    P <- Z
    repeat {
      active <- res > tol
      KP <- ks$prod(X, X, P)
      AP <- KP + lambda * P
      alpha <- ifelse(active, rz / colSums(P * AP), 0)
      a <- a + P * cols(alpha)
      Ka <- Ka + KP * cols(alpha)
      R <- R - AP * cols(alpha)
      res <- sqrt(colSums(R^2)) / bnorm
      iter <- iter + 1L
      history <- c(history, max(res))
      progress(sprintf("kernel_solve: iteration %d, relative residual %.3g", iter, max(res)))
      if (all(res <= tol) || iter >= max_iter || stalled(history, ks$dtype)) break
      Z <- Pinv(R)
      rz_new <- colSums(R * Z)
      beta <- ifelse(res > tol, rz_new / rz, 0)
      P <- Z * cols(res > tol) + P * cols(beta)
      rz <- rz_new
    }
    if (!verify) break
    Ka <- ks$prod64(X, X, a)  # the true residual
    R <- B - Ka - lambda * a
    res <- sqrt(colSums(R^2)) / bnorm
  }
  list(a = a, Ka = Ka, iterations = iter, residual = res, history = history, converged = all(res <= tol))
}

# CG has stalled at the accuracy that the rounding of the products allows when its residual
# is already near that floor (1e-4 in float32, 1e-10 in float64) and 25 iterations have not
# cut the best residual by 10%. Far above the floor a plateau is CG's normal course on an
# ill-conditioned system (its residual is not monotone), not a stall.
stalled <- function(history, dtype, window = 25L) {
  h <- length(history)
  best <- min(history[1:max(1L, h - window)])
  h > 2L * window && best < (if (dtype == "float32") 1e-4 else 1e-10) &&
    min(history[(h - window + 1L):h]) > 0.9 * best
}

# The classed warning of a CG run that stopped before its tolerance.
cg_warning <- function(res, tol, precond, call, what = "kernel_solve") {
  if (res$converged) return(invisible())
  warning(structure(class = c("kernops_warning_convergence", "kernops_warning", "warning", "condition"),
                    list(message = sprintf("%s: CG did not converge in %d iterations: relative residual %.3g > tol = %.3g. Increase `max_iter` or `lambda`%s.",
                                           what, res$iterations, max(res$residual), tol,
                                           if (precond == "none") ", or use `precond = \"nystrom\"`" else ""),
                         call = call, residual = max(res$residual))))
}

#' @export
print.kernops_solve <- function(x, ...) {
  cat("Kernel system (K + lambda I) a = b solved by conjugate gradients (kernops)\n")
  cat(sprintf("n = %d, %d right-hand side%s, %s kernel%s, lambda = %s, %s\n", NROW(x$coefficients),
              NCOL(x$coefficients), if (NCOL(x$coefficients) > 1) "s" else "", x$kernel,
              if (!is.null(x$sigma)) sprintf(" (sigma = %s)", format(signif(x$sigma, 4))) else "",
              format(signif(x$lambda, 4)), x$dtype))
  cat(sprintf("preconditioner: %s; %d iteration%s, relative residual %.3g (tol %.3g): %s\n",
              if (x$precond == "nystrom") sprintf("Nystrom, m = %d centres", x$m) else "none",
              x$iterations, if (x$iterations != 1) "s" else "", max(x$residual), x$tol,
              if (x$converged) "converged" else "NOT converged"))
  invisible(x)
}

# bench/w6_polyharmonic.R -- cost of the polyharmonic (thin-plate) spline fit, W6 data
# (WORKLOADS.md: uniform [0,1]^2, f = sin(4 x1) cos(3 x2) + N(0, 0.05^2)): iterations and time of
# one fit at a fixed lambda (projected CG, one reduction per iteration, Nystrom preconditioner
# of --centres points, 0 for none),
# and the time of one reduction. Usage:
#   Rscript bench/w6_polyharmonic.R --n 1e4 --dtype float32 --lambda 1e-6,1e-7 --tol 1e-5 [--max_iter 1000] [--centres 200]
#   Rscript bench/w6_polyharmonic.R --n 2e3 --lambda gcv --tol 1e-6 --fields
# prints one "W6PH key=value ..." line per fit.
source("bench/common.R")
argv <- commandArgs(TRUE)
n <- as.numeric(bench_arg(argv, "--n", "1e4"))
dtype <- bench_arg(argv, "--dtype", "float64")
# --lambda gcv: lambda chosen by GCV (Hutchinson trace); --fields: also fields::Tps with its
# GCV on the same data (scale.type = "unscaled", lambda_fields = lambda), same test points
lambdas <- strsplit(bench_arg(argv, "--lambda", "1e-6"), ",")[[1]]
lambdas <- if (identical(lambdas, "gcv")) list("gcv") else as.list(as.numeric(lambdas))
tol <- as.numeric(bench_arg(argv, "--tol", "1e-8"))
max_iter <- as.numeric(bench_arg(argv, "--max_iter", "1000"))
centres <- as.numeric(bench_arg(argv, "--centres", "200"))
kernops_threads(2)
set.seed(20)
x <- matrix(runif(2 * n), n, 2)
y <- sin(4 * x[, 1]) * cos(3 * x[, 2]) + rnorm(n, sd = 0.05)
xt <- matrix(runif(2e4), 1e4, 2)
ft <- sin(4 * xt[, 1]) * cos(3 * xt[, 2])
kmv <- kernops:::polyharmonic_matvec(x, dtype, "cpu")
b <- matrix(rnorm(n))
invisible(kmv(b))
t0 <- now(); invisible(kmv(b)); t_red <- now() - t0
for (lambda in lambdas) {
  t0 <- now()
  fit <- suppressWarnings(kernops:::polyharmonic_fit(x, y, lambda, tol = tol, max_iter = max_iter, dtype = dtype, backend = "cpu", centres = centres))
  t_fit <- now() - t0
  # test RMSE on 1e4 points: one reduction from the data to the test points
  op <- kernel_op(sprintf("Sum_Reduction((%s)*b,0)", kernops:::polyharmonic_formula(2)),
                  c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)"), dtype = dtype)
  pred <- as.vector(op(xt, x, fit$coefficients)) + cbind(1, xt) %*% fit$poly
  cat(sprintf("W6PH n=%g centres=%g dtype=%s lambda=%s%g tol=%g iterations=%d%s residual=%.3g converged=%d fit_s=%.2f reduction_s=%.3f test_rmse=%.5f peak_mb=%.0f load=%s\n",
              n, centres, dtype, if (identical(lambda, "gcv")) "gcv:" else "", fit$lambda, tol, fit$iterations,
              if (is.null(fit$gcv)) "" else sprintf(" gcv_evals=%d gcv_iterations=%d", nrow(fit$gcv), sum(fit$gcv$iterations)),
              fit$residual, fit$converged, t_fit, t_red,
              sqrt(mean((pred - ft)^2)), proc_status_kb("VmHWM") / 1024, gsub(" ", "/", loadavg())))
}
if ("--fields" %in% argv) {
  t0 <- now()
  tps <- fields::Tps(x, y, scale.type = "unscaled")
  t_tps <- now() - t0
  cat(sprintf("W6PH_FIELDS n=%g lambda=%g (fields %g) eff_df=%.1f fit_s=%.2f test_rmse=%.5f load=%s\n", n, tps$lambda,
              tps$lambda, tps$eff.df, t_tps, sqrt(mean((predict(tps, xt) - ft)^2)), gsub(" ", "/", loadavg())))
}

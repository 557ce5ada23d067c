# spline_polyharmonic.R -- PLACEHOLDER on this branch: the polyharmonic (thin-plate) spline
# of kernel_spline(kernel = "polyharmonic") is written on another branch, whose file of the
# same name replaces this one at the merge. Its interface, as kernel_spline() and
# predict.kernops_spline() use it:
#   polyharmonic_fit(x, y, lambda, tol, max_iter, dtype, backend, call) ->
#     list(coefficients = n-vector, poly = d + 1 vector (intercept, slopes), lambda,
#          iterations, residual, converged)      (lambda: a number >= 0 or "gcv")
#   polyharmonic_formula(d) -> the kernel F(x, y) as a formula string in x (Vi) and y (Vj)

polyharmonic_fit <- function(x, y, lambda, tol, max_iter, dtype, backend, call = NULL) {
  abort_kernops("The \"polyharmonic\" kernel is not available in this build.", "kernops_error_unsupported", call = call)
}

polyharmonic_formula <- function(d) {
  abort_kernops("The \"polyharmonic\" kernel is not available in this build.", "kernops_error_unsupported")
}

# lazy_formula.R -- kernel_op() formulas written in R: `~ sum(exp(-s * sqdist(x, y)) * b,
# index = "j")` or `~ sum_j(...)`. The expression is evaluated with the LazyTensor
# functions on symbolic variables (the declared ones, without data); the reduction then
# returns its KeOps string instead of computing, and kernel_op() compiles that string.

#' Kernel formulas written in R
#'
#' Besides a KeOps string, [kernel_op()] accepts the formula as a one-sided R formula
#' `~ expr` (or a quoted call), written with the [LazyTensor][lazytensor] functions. The
#' names in `expr` are the variables declared in `args`; numbers are constants of the
#' formula (declare a `Pm()` variable for a value that changes between calls); other
#' names are looked up where the formula was written. `expr` must end with a reduction:
#'
#' * the verbs of [lazy_reductions], e.g. `sum(F, index = "j")`, `argkmin(F, 5, index = "j")`;
#' * or their short forms, available inside such formulas only: `sum_j(F)` (reduce over
#'   j, one row per i) and `sum_i(F)`, and likewise `min_`, `max_`, `argmin_`, `argmax_`,
#'   `min_argmin_`, `max_argmax_`, `kmin_(F, k)`, `argkmin_(F, k)`, `kmin_argkmin_(F, k)`,
#'   `logsumexp_(F, weight = NULL)` and `sumsoftmaxweight_(F, v)` with the suffix `i` or `j`.
#'
#' @name kernel_formula
#' @seealso [kernel_op()], [lazytensor]
#' @examples
#' op <- kernel_op(~ sum_j(exp(-s * sqnorm2(x - y)) * b),
#'                 c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
#' op   # prints the equivalent KeOps formula
#' x <- matrix(runif(30), 10, 3)
#' y <- matrix(runif(60), 20, 3)
#' b <- runif(20)
#' op(x = x, y = y, b = b, s = 2)
#' # the same, written with a KeOps string
#' op2 <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)",
#'                  c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
#' all.equal(op(x, y, b, 2), op2(x, y, b, 2))
NULL

# Translates an R formula / call / expression to a KeOps string with its reduction.
lazy_formula_string <- function(formula, args, env, call) {
  if (inherits(formula, "formula")) {
    if (length(formula) != 2)
      abort_kernops("kernel_op(): an R formula must be one-sided: ~ sum_j(...), without a left-hand side.",
                    "kernops_error_input", call = call)
    expr <- formula[[2]]
    env <- environment(formula) %||% env
  } else if (is.expression(formula)) {
    if (length(formula) != 1)
      abort_kernops("kernel_op(): the expression must hold a single formula.", "kernops_error_input", call = call)
    expr <- formula[[1]]
  } else {
    expr <- formula
  }
  if (!is.character(args) || anyNA(args))
    abort_kernops("`args` must be a character vector of declarations such as \"x = Vi(3)\".",
                  "kernops_error_input", call = call)
  decls <- parse_decls_r(args, call)
  vars <- new.env(parent = formula_helpers(env))
  for (k in seq_len(nrow(decls)))
    assign(decls$name[k], symbolic_leaf(decls$cat[k], decls$dim[k], decls$name[k]), envir = vars)
  # base R's own errors from the formula's R code (sum(2, index = "j"), kmin_j(x) without
  # k, sum_j(x) + 1) are the user's formula mistakes: classed, with R's message
  res <- tryCatch(eval(expr, vars), error = function(e) {
    if (inherits(e, "kernops_error")) stop(e)
    abort_kernops(c("kernel_op(): evaluating the R formula failed:", conditionMessage(e)),
                  "kernops_error_input", call = call)
  })
  if (!inherits(res, "kernops_lazy_reduction")) {
    what <- if (inherits(res, "kernops_lazy")) {
      "a LazyTensor without a reduction: end it with a reduction such as sum(F, index = \"j\") or sum_j(F)"
    } else {
      sprintf("%s; it must be built from the declared variables and end with a reduction such as sum_j(F)",
              describe_type(res))
    }
    abort_kernops(sprintf("kernel_op(): the R formula evaluates to %s.", what), "kernops_error_input", call = call)
  }
  labels <- vapply(res$leaves, function(l) l$name, "")
  name_tokens(res$f, labels)
}

# Names, categories and dimensions of declarations "x = Vi(3)" / "x = Vi(0, 3)".
parse_decls_r <- function(args, call) {
  re <- "^\\s*([A-Za-z_][A-Za-z0-9_.]*)\\s*=\\s*(Vi|Vj|Pm)\\s*\\(\\s*([0-9]+)\\s*(,\\s*([0-9]+)\\s*)?\\)\\s*$"
  ok <- grepl(re, args, perl = TRUE)
  # the core parser checks every declaration (positions, dimensions and their limits) and
  # explains what is wrong with one
  core_call(cpp_canonical("Sum_Reduction(1,0)", args), call = call)
  if (!all(ok)) {
    abort_kernops(sprintf("Cannot read the declaration \"%s\" (expected the form \"x = Vi(3)\").", args[!ok][1]),
                  "kernops_error_parse", call = call)
  }
  name <- sub(re, "\\1", args, perl = TRUE)
  kind <- sub(re, "\\2", args, perl = TRUE)
  n1 <- as.integer(sub(re, "\\3", args, perl = TRUE))
  n2 <- sub(re, "\\5", args, perl = TRUE)
  dim <- ifelse(nzchar(n2), suppressWarnings(as.integer(n2)), n1)
  data.frame(name = name, cat = c(Vi = "i", Vj = "j", Pm = "p")[kind], dim = dim, stringsAsFactors = FALSE)
}

# The LazyTensor functions, and the short reduction forms sum_j(), argkmin_i(), ..., as an
# environment whose parent is `env` (where the formula was written).
formula_helpers <- function(env) {
  h <- new.env(parent = env)
  fns <- c("sqnorm2", "norm2", "normalize", "sqdist", "scalprod", "concat", "elem", "extract",
           "relu", "heaviside", "clamp", "minimum", "maximum", "if_else", "grad",
           "gaussian_kernel", "laplace_kernel", "cauchy_kernel", "inverse_multiquadric_kernel",
           "matern32_kernel", "matern52_kernel", "argmin", "argmax", "min_argmin", "max_argmax",
           "kmin", "argkmin", "kmin_argkmin", "logsumexp", "sumsoftmaxweight")
  ns <- asNamespace("kernops")
  for (f in fns) assign(f, get(f, envir = ns), envir = h)
  for (ix in c("i", "j")) {
    local({
      index <- ix
      # sum_j(F) and the others: F must be a LazyTensor (base R's sum(2, index = "j")
      # failed on the character index with an unclassed error)
      short <- function(name, f) {
        fn <- paste0(name, "_", index)
        assign(fn, function(x, ...) {
          if (!inherits(x, "kernops_lazy"))
            abort_kernops(sprintf("%s() needs a LazyTensor built from the declared variables, not %s.",
                                  fn, describe_type(x)), "kernops_error_input", call = NULL)
          f(x, ...)
        }, envir = h)
      }
      short("sum", function(x) sum(x, index = index))
      short("min", function(x) min(x, index = index))
      short("max", function(x) max(x, index = index))
      short("argmin", function(x) argmin(x, index = index))
      short("argmax", function(x) argmax(x, index = index))
      short("min_argmin", function(x) min_argmin(x, index = index))
      short("max_argmax", function(x) max_argmax(x, index = index))
      short("kmin", function(x, k) kmin(x, k, index = index))
      short("argkmin", function(x, k) argkmin(x, k, index = index))
      short("kmin_argkmin", function(x, k) kmin_argkmin(x, k, index = index))
      short("logsumexp", function(x, weight = NULL) logsumexp(x, index = index, weight = weight))
      short("sumsoftmaxweight", function(x, v) sumsoftmaxweight(x, v, index = index))
    })
  }
  h
}

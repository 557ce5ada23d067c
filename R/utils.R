# utils.R -- small argument checks shared by the exported functions.

check_string <- function(x, name, call = NULL) {
  if (!is.character(x) || length(x) != 1 || is.na(x))
    abort_kernops(sprintf("`%s` must be a single string, not %s.", name, describe_type(x)),
                  "kernops_error_input", call = call)
}

match_choice <- function(x, choices, name, call = NULL) {
  if (identical(x, choices)) return(choices[1])
  if (!is.character(x) || length(x) != 1 || !(x %in% choices))
    abort_kernops(sprintf("`%s` must be one of %s.", name, paste0("\"", choices, "\"", collapse = ", ")),
                  "kernops_error_input", call = call)
  x
}

# "a logical matrix", "an integer vector", "a factor", "an object of class lm": for a
# plain matrix, the class alone ("matrix") hid the type at fault.
describe_type <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.factor(x)) return("a factor")
  if (!is.atomic(x) || is.object(x) && !inherits(x, c("matrix", "array")))
    return(sprintf("an object of class %s", class(x)[1]))
  shape <- if (is.matrix(x)) "matrix" else if (is.array(x)) "array" else "vector"
  sprintf("%s %s %s", if (typeof(x) == "integer") "an" else "a", typeof(x), shape)
}

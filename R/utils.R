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

describe_type <- function(x) {
  if (is.null(x)) return("NULL")
  cls <- class(x)[1]
  if (is.factor(x)) return("a factor")
  if (!is.atomic(x) || !is.null(dim(x))) return(sprintf("an object of class %s", cls))
  sprintf("%s %s vector", if (typeof(x) == "integer") "an" else "a", typeof(x))
}

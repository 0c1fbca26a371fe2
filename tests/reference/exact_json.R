# A small JSON writer with exact doubles, shared by the reference scripts
# mice_pool.R, mitml_tests.R and amelia_em.R (each does
# source(file.path("tests", "reference", "exact_json.R")) and so, like them,
# is run from the repository root).
#
# jsonlite caps numbers at 15 significant digits, which does not round-trip
# every IEEE double.  Here numbers are formatted with 17 significant digits
# ("%.17g", enough to round-trip any double) by sprintf and spliced into the
# output verbatim; everything else (strings, logicals, plain numbers such as
# counts) goes through jsonlite.  Needs library(jsonlite) to be attached.
#
# lavaan_fiml.R keeps its own writer: it writes the shortest of 15-17 digits
# that round-trips (also for boys.csv) and indents its output, so its fixture
# would change if it used this one.
#
# Markers (the writer, to_json, recognises them by their class):
#   exact(x)  numbers anywhere in x (recursively through lists) become JSON
#             arrays of exact numbers; non-finite numbers have no JSON form
#             and are refused.
#   num(x)    a numeric vector as a JSON array of exact numbers, NA as null.
#   scalar(x) one finite number as a bare exact JSON number (not an array).
# to_json(x): named lists become objects (one member per line), unnamed lists
# arrays, NULL null, anything else jsonlite's toJSON (auto-unboxed if of
# length 1).

exact <- function(x) {
  if (is.list(x)) {
    return(lapply(x, exact))
  }
  if (is.numeric(x)) {
    stopifnot(all(is.finite(x)))
    return(structure(sprintf("%.17g", x), class = "exact_number"))
  }
  x
}

num <- function(x) {
  x <- as.numeric(x)
  out <- ifelse(is.na(x), "null", sprintf("%.17g", x))
  structure(out, class = "exact_number")
}

scalar <- function(x) {
  stopifnot(length(x) == 1L, is.finite(x))
  structure(sprintf("%.17g", as.numeric(x)), class = "exact_scalar")
}

to_json <- function(x) {
  if (inherits(x, "exact_scalar")) {
    return(unclass(x))
  }
  if (inherits(x, "exact_number")) {
    return(paste0("[", paste(unclass(x), collapse = ", "), "]"))
  }
  if (is.list(x) && !is.null(names(x))) {
    parts <- mapply(function(key, value) paste0(toJSON(key, auto_unbox = TRUE), ": ", to_json(value)),
                    names(x), x, USE.NAMES = FALSE)
    return(paste0("{\n", paste(parts, collapse = ",\n"), "\n}"))
  }
  if (is.list(x)) {
    return(paste0("[", paste(vapply(x, to_json, ""), collapse = ", "), "]"))
  }
  if (is.null(x)) {
    return("null")
  }
  as.character(toJSON(x, auto_unbox = length(x) == 1L))
}

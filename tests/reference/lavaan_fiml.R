# Reference values for emimpute.EMImputer from lavaan's FIML, and the
# boys data set with its factor columns for a pipeline test.
#
# Made with R 4.2.2 (2022-11-10 r83330), lavaan 0.6.14, mice 3.15.0 and
# jsonlite 1.8.4 (Debian packages r-base-core, r-cran-lavaan, r-cran-mice).
# Regenerate from the repository root with
#
#     Rscript tests/reference/lavaan_fiml.R
#
# which overwrites tests/reference/lavaan_fiml.json and
# tests/reference/boys.csv.  The tests (tests/test_reference_lavaan.py) read
# only those files and never need R.
#
# What is fitted.  For each data set, the saturated normal model (every
# mean, variance and covariance free) by full-information maximum
# likelihood, lavaan(..., missing = "ml"): lavaan maximises the
# observed-data likelihood directly with nlminb (quasi-Newton on the
# variances, covariances and means), which is an independent route to the
# maximum likelihood estimate that EMImputer reaches by EM.  With
# missing = "ml" lavaan's likelihood is the normal one (divisor n, not n - 1).
# Columns are first standardised by their observed mean and SD (R's sd(),
# divisor n_obs - 1): lavaan's defaults stop short on badly scaled columns
# (e.g. boys' tv against age).  The centre and scale are stored so that the
# test standardises the same doubles in the same way.
#
# Accuracy.  lavaan's objective for missing = "ml" is the log-likelihood
# relative to its own EM estimate of the saturated model, which is 0 at the
# optimum; nlminb's default abs.tol (10 eps) therefore stops it early.  We
# set abs.tol = 0 and rel.tol = 1e-14 so nlminb runs until its relative
# criterion or rounding in the objective stops it (in the latter case nlminb
# says "false convergence (8)", no step lowers the objective any further,
# and lavaan warns; the warning is stored); optim.force.converged keeps
# lavaan from discarding that optimum.  Rather than trusting a flag,
# the script stores what the optimum is worth: the largest gradient of
# lavaan's objective and the largest component of the Newton step
# solve(Hessian, gradient), the distance to the exact optimum to second
# order (on the standardised scale, since every free parameter is a mean or
# a (co)variance of standardised columns).  lavaan's own EM estimate of the
# saturated model (used for unrestricted.logl) is stored too, run to
# em.h1.tol = 1e-13 (its largest absolute parameter change per iteration).

suppressPackageStartupMessages({
  library(lavaan)
  library(mice)
  library(jsonlite)
})

json_path <- file.path("tests", "reference", "lavaan_fiml.json")
boys_path <- file.path("tests", "reference", "boys.csv")

# ---------------------------------------------------------------------------
# Exact numbers: the shortest of 15-17 significant digits that reads back as
# the same double (so 22.7 stays "22.7" and computed values keep every bit).

exact_format <- function(x) {
  out <- rep(NA_character_, length(x))
  known <- !is.na(x)
  out[known] <- sprintf("%.15g", x[known])
  for (digits in 16:17) {
    redo <- known & as.numeric(ifelse(known, out, "0")) != x
    out[redo] <- sprintf(paste0("%.", digits, "g"), x[redo])
  }
  stopifnot(all(as.numeric(out[known]) == x[known]))
  out
}

# A small JSON writer: named lists become objects, unnamed lists arrays,
# numeric vectors arrays of exact numbers (NA as null), matrices arrays of
# rows, character and logical scalars go through jsonlite.
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.matrix(x)) {
    rows <- vapply(seq_len(nrow(x)), function(i) to_json(unname(x[i, ])), "")
    return(paste0("[\n", inner, paste(rows, collapse = paste0(",\n", inner)), "\n", indent, "]"))
  }
  if (is.list(x) && !is.null(names(x))) {
    parts <- vapply(names(x), function(key) {
      paste0(inner, toJSON(key, auto_unbox = TRUE), ": ", to_json(x[[key]], inner))
    }, "")
    return(paste0("{\n", paste(parts, collapse = ",\n"), "\n", indent, "}"))
  }
  if (is.list(x)) {
    return(paste0("[", paste(vapply(x, to_json, "", indent = inner), collapse = ", "), "]"))
  }
  if (is.numeric(x) && !inherits(x, "scalar")) {
    text <- exact_format(as.double(x))
    text[is.na(x)] <- "null"
    return(paste0("[", paste(text, collapse = ", "), "]"))
  }
  if (is.numeric(x)) {
    stopifnot(length(x) == 1L, is.finite(x))
    return(exact_format(as.double(unclass(x))))
  }
  as.character(toJSON(x, auto_unbox = length(x) == 1L))
}
scalar <- function(x) structure(x, class = "scalar")

# ---------------------------------------------------------------------------
# The saturated model and its fit.

saturated_model <- function(columns) {
  pairs <- outer(columns, columns, paste, sep = " ~~ ")
  paste(c(pairs[upper.tri(pairs, diag = TRUE)], paste(columns, "~ 1")), collapse = "\n")
}

nlminb_control <- list(abs.tol = 0, rel.tol = 1e-14)
em_h1_tol <- 1e-13

fiml_case <- function(data, source, store_data = TRUE) {
  data <- as.data.frame(lapply(data, as.double))
  center <- vapply(data, mean, 0, na.rm = TRUE)
  scale <- vapply(data, sd, 0, na.rm = TRUE)
  z <- as.data.frame(mapply(function(x, m, s) (x - m) / s, data, center, scale))
  fit <- lavaan(saturated_model(names(z)), data = z, missing = "ml",
                estimator = "ML", likelihood = "normal", meanstructure = TRUE,
                fixed.x = FALSE, baseline = FALSE, se = "none",
                control = nlminb_control, optim.force.converged = TRUE,
                em.h1.tol = em_h1_tol, em.h1.iter.max = 100000L)
  implied <- lavInspect(fit, "implied")
  h1 <- lavInspect(fit, "sampstat.h1")
  optim <- lavInspect(fit, "optim")
  gradient <- lavInspect(fit, "gradient")
  newton <- solve(lavInspect(fit, "hessian"), gradient)
  measures <- fitMeasures(fit, c("logl", "unrestricted.logl", "ntotal"))
  case <- list(
    source = source,
    columns = names(z),
    n = scalar(measures[["ntotal"]]),
    center = unname(center),
    scale = unname(scale),
    mean = unname(as.vector(implied$mean)),
    covariance = unname(unclass(implied$cov)),
    logl = scalar(measures[["logl"]]),
    unrestricted_logl = scalar(measures[["unrestricted.logl"]]),
    h1_mean = unname(as.vector(h1$mean)),
    h1_covariance = unname(unclass(h1$cov)),
    optimizer = list(
      iterations = scalar(optim$iterations),
      warning = if (length(optim$warn.txt) && nzchar(optim$warn.txt)) optim$warn.txt else "none",
      max_abs_gradient = scalar(max(abs(gradient))),
      max_abs_newton_step = scalar(max(abs(newton)))
    )
  )
  if (store_data) {
    case$data <- lapply(data, unname)
  }
  case
}

# ---------------------------------------------------------------------------
# Data.  boys' numeric columns are read back from boys.csv by the test, so
# its data are not repeated in the JSON.

boys_numeric <- c("age", "hgt", "wgt", "bmi", "hc", "tv")
cases <- list(
  nhanes = fiml_case(mice::nhanes[, c("age", "bmi", "hyp", "chl")], "mice::nhanes"),
  airquality = fiml_case(datasets::airquality, "datasets::airquality"),
  boys = fiml_case(mice::boys[, boys_numeric], "mice::boys (numeric columns; data in boys.csv)",
                   store_data = FALSE)
)

meta <- list(
  R = R.version.string,
  lavaan = as.character(packageVersion("lavaan")),
  mice = as.character(packageVersion("mice")),
  command = "Rscript tests/reference/lavaan_fiml.R",
  model = "saturated normal, lavaan(missing = 'ml', estimator = 'ML', likelihood = 'normal', meanstructure = TRUE)",
  standardisation = "z = (x - center) / scale; center = mean, scale = sd (divisor n_obs - 1) of the observed values",
  nlminb_control = lapply(nlminb_control, scalar),
  em_h1_tol = scalar(em_h1_tol),
  logl = "observed-data log-likelihood with the log(2 pi) constant, on the standardised data"
)
writeLines(to_json(list(meta = meta, cases = cases)), json_path)

# ---------------------------------------------------------------------------
# boys.csv: all 748 rows and 9 columns of mice::boys, factors as their
# labels, NA as an empty field, numbers in the exact format above.

boys <- mice::boys
text <- as.data.frame(lapply(boys, function(column) {
  if (is.factor(column)) as.character(column) else exact_format(column)
}), stringsAsFactors = FALSE)
text[is.na(boys)] <- ""
stopifnot(!any(grepl("[,\"]", unlist(text))))
write.table(text, boys_path, sep = ",", quote = FALSE, row.names = FALSE, na = "")

# Read it back: every number and label must come back as it was.
back <- read.csv(boys_path, na.strings = "")
stopifnot(nrow(back) == 748L, identical(names(back), names(boys)))
for (column in names(boys)) {
  if (is.factor(boys[[column]])) {
    stopifnot(identical(back[[column]], as.character(boys[[column]])))
  } else {
    stopifnot(identical(as.double(back[[column]]), as.double(boys[[column]])))
  }
}
cat("wrote", json_path, "and", boys_path, "\n")

# Reference values for emimpute.pooling.pool from R's mice::pool.
#
# Made with R 4.2.2 (2022-11-10 r83330), mice 3.15.0, broom 1.0.3 and
# jsonlite 1.8.4 (Debian packages r-base-core, r-cran-mice).
# Regenerate from the repository root with
#
#     Rscript tests/reference/mice_pool.R
#
# which overwrites tests/reference/mice_pool.json.  The tests
# (tests/test_reference_pooling.py) read only the JSON and never need R.
#
# For each case the per-imputation estimates and squared standard errors
# (broom::tidy of each fit, exactly what mice::pool averages) are stored
# together with mice's pooled table (pool(fit)$pooled) and its summary with
# intervals (summary(pool(fit), conf.int = TRUE)), so that our pool() can be
# fed the same inputs without reproducing mice's imputations.
#
# Numbers are written with 17 significant digits ("%.17g"), which
# round-trips IEEE doubles exactly; jsonlite caps numbers at 15 digits.

suppressPackageStartupMessages({
  library(mice)
  library(jsonlite)
})

out_path <- file.path("tests", "reference", "mice_pool.json")

source(file.path("tests", "reference", "exact_json.R"))  # exact, num, scalar, to_json

one_case <- function(fit, description) {
  tidy <- summary(fit, type = "tidy", exponentiate = FALSE)
  terms <- unique(as.character(tidy$term))
  m <- length(fit$analyses)
  estimates <- matrix(tidy$estimate, nrow = m, byrow = TRUE)
  variances <- matrix(tidy$std.error^2, nrow = m, byrow = TRUE)
  pooled <- pool(fit)
  table <- pooled$pooled
  s <- summary(pooled, conf.int = TRUE)
  stopifnot(identical(as.character(table$term), terms))
  list(
    description = description,
    terms = I(terms),
    m = m,
    dfcom = table$dfcom[1],
    estimates = exact(lapply(seq_len(m), function(l) estimates[l, ])),
    variances = exact(lapply(seq_len(m), function(l) variances[l, ])),
    pooled = exact(list(
      estimate = table$estimate, ubar = table$ubar, b = table$b, t = table$t,
      df = table$df, riv = table$riv, lambda = table$lambda, fmi = table$fmi
    )),
    summary = exact(list(
      estimate = s$estimate, std_error = s$std.error, statistic = s$statistic,
      df = s$df, p_value = s$p.value, ci_low = s[["2.5 %"]], ci_high = s[["97.5 %"]]
    ))
  )
}

imp <- mice(nhanes, m = 5, seed = 20240512, printFlag = FALSE)
imp2 <- mice(nhanes2, m = 10, seed = 20240513, printFlag = FALSE)

cases <- list(
  lm_nhanes = one_case(
    with(imp, lm(bmi ~ age + chl)),
    "mice(nhanes, m = 5, seed = 20240512); with(imp, lm(bmi ~ age + chl)); pool()"
  ),
  glm_nhanes2 = one_case(
    with(imp2, glm(hyp ~ bmi + chl, family = binomial)),
    "mice(nhanes2, m = 10, seed = 20240513); with(imp2, glm(hyp ~ bmi + chl, family = binomial)); pool()"
  ),
  # age is never missing in nhanes: every imputation gives the same mean, so
  # b = 0 and lambda = 0, where mice 3.15's barnard.rubin floors lambda at
  # 1e-4 before computing df (the floor shows in df, fmi, p and the interval).
  lm_complete_column = one_case(
    with(imp, lm(age ~ 1)),
    "mice(nhanes, m = 5, seed = 20240512); with(imp, lm(age ~ 1)) (b = 0); pool()"
  )
)

# pool.scalar with a between-imputation variance so small that lambda is
# below mice 3.15's floor of 1e-4 (lambda = 1.2 * 1e-12 / 0.04 = 3e-11).
q <- 1 + c(-1, 0, 1, 2, -2) * 1e-6 / sqrt(2.5)  # var(q) = 1e-12
u <- rep(0.04, 5)
ps <- pool.scalar(q, u, n = 30, k = 2)
cases$scalar_tiny_b <- list(
  description = "pool.scalar(Q, U = rep(0.04, 5), n = 30, k = 2), var(Q) = 1e-12",
  terms = I("x0"),
  m = 5L,
  dfcom = 28,
  estimates = exact(lapply(q, identity)),
  variances = exact(lapply(u, identity)),
  pooled = exact(list(
    estimate = ps$qbar, ubar = ps$ubar, b = ps$b, t = ps$t, df = ps$df,
    riv = ps$r, fmi = ps$fmi
  ))
)

meta <- list(
  r_version = R.version.string,
  mice = as.character(packageVersion("mice")),
  broom = as.character(packageVersion("broom")),
  command = "Rscript tests/reference/mice_pool.R"
)
writeLines(to_json(list(meta = meta, cases = cases)), out_path)
cat("wrote", out_path, "\n")

# Reference values for emimpute.pooling.pooled_wald_test (D1) and
# pooled_chi2_test (D2) from R's mitml::testModels (and mice::D1, which calls it).
#
# Made with R 4.2.2 (2022-11-10 r83330), mice 3.15.0, mitml 0.4.4 and
# jsonlite 1.8.4 (Debian packages r-base-core, r-cran-mice, r-cran-mitml).
# Regenerate from the repository root with
#
#     Rscript tests/reference/mitml_tests.R
#
# which overwrites tests/reference/mitml_tests.json.  The tests
# (tests/test_reference_pooling.py) read only the JSON and never need R.
#
# Each case imputes a data set with mice, fits a model and a nested null
# model to every imputed data set, and stores what mitml's testModels works
# on: the estimates Qhat (m x k) and covariance matrices Uhat (m x k x k) of
# the k parameters in the model but not in the null model (taken with
# mitml's own extractor, as testModels takes them), the m Wald statistics
# and the m likelihood-ratio statistics that D2 pools, and testModels'
# result (F, df1, df2, p, RIV) for D1 without and with df.com (Reiter 2007),
# D2 on the Wald statistics and D2 on the likelihood-ratio statistics.
# mice::D1(fit1, fit0, dfcom) is checked here to give D1's numbers exactly.
#
# Numbers are written with 17 significant digits ("%.17g"), which
# round-trips IEEE doubles exactly; jsonlite caps numbers at 15 digits.

suppressPackageStartupMessages({
  library(mice)
  library(mitml)
  library(jsonlite)
})

out_path <- file.path("tests", "reference", "mitml_tests.json")

source(file.path("tests", "reference", "exact_json.R"))  # exact, num, scalar, to_json

result_of <- function(test) {
  row <- test$test[1, ]
  lapply(list(F = row[["F.value"]], df1 = row[["df1"]], df2 = row[["df2"]],
              p = row[["P(>F)"]], riv = row[["RIV"]]), scalar)
}

one_case <- function(imp, formula1, formula0, dfcom, description) {
  fit1 <- as.mitml.result(lapply(complete(imp, "all"), function(d) lm(formula1, data = d)))
  fit0 <- as.mitml.result(lapply(complete(imp, "all"), function(d) lm(formula0, data = d)))
  m <- length(fit1)
  # The parameters tested, exactly as testModels selects them.
  est <- mitml:::.extractParameters(fit1, diagonal = FALSE)
  est0 <- mitml:::.extractParameters(fit0, diagonal = FALSE)
  tested <- match(est$nms[!(est$nms %in% est0$nms)], est$nms)
  Qhat <- est$Qhat[tested, , drop = FALSE]
  Uhat <- est$Uhat[tested, tested, , drop = FALSE]
  wald <- sapply(seq_len(m), function(l) drop(t(Qhat[, l]) %*% solve(Uhat[, , l]) %*% Qhat[, l]))
  lr <- -2 * (sapply(fit0, logLik) - sapply(fit1, logLik))
  d1 <- testModels(fit1, fit0, method = "D1")
  d1_dfcom <- testModels(fit1, fit0, method = "D1", df.com = dfcom)
  d2_wald <- testModels(fit1, fit0, method = "D2", use = "wald")
  d2_lr <- testModels(fit1, fit0, method = "D2", use = "likelihood")
  # mice::D1 is testModels(method = "D1") with mice's dfcom.
  fits1 <- as.mira(lapply(complete(imp, "all"), function(d) lm(formula1, data = d)))
  fits0 <- as.mira(lapply(complete(imp, "all"), function(d) lm(formula0, data = d)))
  stopifnot(identical(unname(mice::D1(fits1, fits0, dfcom = dfcom)$result),
                      unname(d1_dfcom$test)))
  list(
    description = description,
    terms = I(est$nms[tested]),
    m = m,
    k = length(tested),
    dfcom = dfcom,
    estimates = exact(lapply(seq_len(m), function(l) Qhat[, l])),
    covariances = exact(lapply(seq_len(m), function(l)
      lapply(seq_along(tested), function(i) Uhat[i, , l]))),
    wald_statistics = exact(wald),
    lr_statistics = exact(lr),
    D1 = result_of(d1),
    D1_dfcom = result_of(d1_dfcom),
    D2_wald = result_of(d2_wald),
    D2_likelihood = result_of(d2_lr)
  )
}

imp5 <- mice(nhanes, m = 5, seed = 20240514, printFlag = FALSE)
imp20 <- mice(nhanes, m = 20, seed = 20240515, printFlag = FALSE)
impair <- mice(airquality, m = 10, seed = 20240516, printFlag = FALSE)

cases <- list(
  nhanes_m5_k2 = one_case(
    imp5, bmi ~ age + hyp + chl, bmi ~ age, 21,
    "mice(nhanes, m = 5, seed = 20240514); bmi ~ age + hyp + chl against bmi ~ age, df.com = 21"
  ),
  nhanes_m5_k3 = one_case(
    imp5, bmi ~ age + hyp + chl, bmi ~ 1, 21,
    "mice(nhanes, m = 5, seed = 20240514); bmi ~ age + hyp + chl against bmi ~ 1, df.com = 21"
  ),
  nhanes_m20_k3 = one_case(
    imp20, bmi ~ age + hyp + chl, bmi ~ 1, 21,
    "mice(nhanes, m = 20, seed = 20240515); bmi ~ age + hyp + chl against bmi ~ 1, df.com = 21"
  ),
  airquality_m10_k2 = one_case(
    impair, Ozone ~ Solar.R + Wind + Temp, Ozone ~ Temp, 149,
    "mice(airquality, m = 10, seed = 20240516); Ozone ~ Solar.R + Wind + Temp against Ozone ~ Temp, df.com = 149"
  ),
  airquality_m10_k3_small_dfcom = one_case(
    impair, Ozone ~ Solar.R + Wind + Temp + Month, Ozone ~ Temp, 30,
    "mice(airquality, m = 10, seed = 20240516); Ozone ~ Solar.R + Wind + Temp + Month against Ozone ~ Temp, df.com = 30 (as if n were 35)"
  )
)

# mitml:::.D1 called directly on small constructed inputs: b = 0 (r = 0),
# and inputs outside the domain of Reiter's expression, where mitml returns
# a df2 of exactly 4 or NaN (t = k (m - 1) = 4, so c0 = 1 / (t - 4) is
# infinite) or a df2 below 4, even negative (nu* < 4 (1 + a), so c2 < 0):
# emimpute refuses those with an error.
# A NaN df2 is written as null.
direct <- function(Q, U, dfcom, description) {
  k <- nrow(Q)
  m <- ncol(Q)
  Uhat <- array(unlist(U), dim = c(k, k, m))
  D <- mitml:::.D1(Qhat = Q, Uhat = Uhat, df.com = dfcom)
  list(
    description = description,
    m = m, k = k, dfcom = dfcom,
    estimates = exact(lapply(seq_len(m), function(l) Q[, l])),
    covariances = exact(lapply(seq_len(m), function(l)
      lapply(seq_len(k), function(i) Uhat[i, , l]))),
    F = scalar(D$F), r = scalar(D$r),
    df2 = if (is.finite(D$v)) scalar(D$v) else NULL
  )
}
Q2 <- rbind(c(1.0, 1.3, 0.8, 1.1, 1.2), c(-0.5, -0.2, -0.6, -0.4, -0.1))
U2 <- lapply(1:5, function(l) matrix(c(0.05, 0.01, 0.01, 0.04), 2, 2))
Q3 <- rbind(Q2, c(2.0, 3.1, 1.2, 2.6, 1.4))
U3 <- lapply(1:5, function(l) diag(c(0.05, 0.04, 0.06)))
direct_cases <- list(
  no_between_variance = direct(
    matrix(c(1, -0.5), 2, 5), U2, 21,
    "identical estimates (B = 0, r = 0): df2 = 4 + nu*"
  ),
  in_domain = direct(Q2, U2, 40, "k = 2, m = 5, dfcom = 40"),
  t_equals_4 = direct(Q2[1, , drop = FALSE], lapply(U2, function(u) u[1, 1, drop = FALSE]), 21,
    "k = 1, m = 5: t = 4, c0 infinite, mitml gives df2 = 4"),
  c2_negative = direct(Q3, U3, 21, "k = 3, m = 5, dfcom = 21, r large: nu* < 4 (1 + a)"),
  dfcom_3 = direct(Q2, U2, 3, "k = 2, m = 5, dfcom = 3: nu* = 1.5 < 4 (1 + a)")
)

meta <- list(
  r_version = R.version.string,
  mice = as.character(packageVersion("mice")),
  mitml = as.character(packageVersion("mitml")),
  command = "Rscript tests/reference/mitml_tests.R"
)
writeLines(to_json(list(meta = meta, cases = cases, direct_D1 = direct_cases)), out_path)
cat("wrote", out_path, "\n")

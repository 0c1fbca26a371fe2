# Reference values for emimpute.EMImputer from Amelia's EM algorithm:
# Amelia's estimate of the mean and covariance of datasets::airquality,
# without a prior (empri = 0) and with Amelia's ridge prior (empri = 5).
#
# Made with R 4.2.2 (2022-11-10 r83330), Amelia 1.8.1 (built 2022-11-18;
# its src/em.cpp is that of upstream commit 168b9b3, 2022-11-16) and
# jsonlite 1.8.4 (Debian packages r-base-core, r-cran-amelia).
# Regenerate from the repository root with
#
#     Rscript tests/reference/amelia_em.R
#
# which overwrites tests/reference/amelia_em.json.  The tests
# (tests/test_reference_amelia.py) read only that file and never need R.
#
# What Amelia does (read from Amelia:::amelia.default, Amelia:::amelia.prep,
# Amelia:::scalecenter, Amelia:::amstack, Amelia:::startval, Amelia:::emarch
# and the C++ routine emcore in src/em.cpp):
# * amelia.prep standardises every column by its observed mean and R's sd()
#   (divisor n_obs - 1) in scalecenter, then amstack sorts the rows by
#   missingness pattern and the COLUMNS by their number of missing cells
#   (prepped$p.order).  EM runs on that standardised, reordered matrix.
# * With boot.type = "none", bootx returns the data unchanged, so the one
#   EM chain (m = 1) sees the data themselves.
# * emarch starts from the complete cases' mean and covariance (startval,
#   startvals = 0) and calls emcore, which iterates until every element of
#   the upper triangle of the swept parameter matrix theta = [-1, mu'; mu,
#   Sigma] (standardised scale) changes by at most `tolerance` in one
#   iteration; emburn = c(0, 0) sets no maximum number of iterations.
# * a.out$mu and a.out$covMatrices are theta[-1, 1] and theta[-1, -1]: on
#   the standardised scale AND in the reordered column order (p.order),
#   while their dimnames are the original column names in the original
#   order (Amelia 1.8.1, R/emb.r, and still upstream): with airquality the
#   row labelled "Ozone" is Wind.  This script therefore un-permutes by
#   p.order and checks the result against a run on columns given already in
#   Amelia's order (where the permutation is the identity).
# * The M-step with empri = e > 0 (emcore; see tests/test_reference_amelia.py
#   for the derivation) is Sigma = (n S + e I) / (n + e + p + 2) on the
#   standardised scale, with e read as a C++ int (truncated).  The case with
#   empri = 5.7 is stored to show the truncation: it equals empri = 5.
#
# Stored per case: the data (JSON null for NA), the centre and scale Amelia
# used (scaled.mu, scaled.sd), p.order, Amelia's raw output (mu and
# covMatrices as returned, with the labels it gave them), the estimate
# un-permuted and un-scaled to the raw scale in the original column order
# (mean = centre + scale * mu, covariance = diag(scale) Sigma diag(scale)),
# the number of EM iterations and the flags of iter.hist.  Numbers are
# written with 17 significant digits ("%.17g"), which round-trips IEEE
# doubles exactly; jsonlite caps numbers at 15 digits.

suppressPackageStartupMessages({
  library(Amelia)
  library(jsonlite)
})

out_path <- file.path("tests", "reference", "amelia_em.json")
tolerance <- 1e-10

# ---------------------------------------------------------------------------
# A JSON writer with exact doubles (shared, see exact_json.R).

source(file.path("tests", "reference", "exact_json.R"))  # exact, num, scalar, to_json
rows_of <- function(m) lapply(seq_len(nrow(m)), function(i) num(m[i, ]))

# ---------------------------------------------------------------------------
# One EM fit by amelia() and what it means on the raw scale.

run_amelia <- function(d, empri) {
  a <- amelia(d, m = 1, boot.type = "none", tolerance = tolerance,
              empri = empri, p2s = 0)
  stopifnot(a$code == 1)
  a
}

fit_case <- function(d, empri) {
  prepped <- Amelia:::amelia.prep(x = d, m = 1, empri = empri,
                                  tolerance = tolerance, boot.type = "none")
  p_order <- prepped$p.order
  a <- run_amelia(d, empri)
  mu <- a$mu[, 1]
  sigma <- a$covMatrices[, , 1]
  # Undo Amelia's column order: element i of mu belongs to column p_order[i].
  back <- order(p_order)
  mu_std <- unname(mu[back])
  sigma_std <- unname(sigma[back, back])
  # The same fit with the columns given in Amelia's order needs no
  # un-permuting; it must agree with the un-permuted estimate.
  a_sorted <- run_amelia(d[, p_order], empri)
  check <- max(abs(a_sorted$mu[back, 1] - mu_std),
               abs(a_sorted$covMatrices[back, back, 1] - sigma_std))
  stopifnot(check < 1e-12)
  stopifnot(all.equal(unname(prepped$scaled.mu), unname(colMeans(d, na.rm = TRUE)), tolerance = 0))
  center <- unname(prepped$scaled.mu)
  scale <- unname(prepped$scaled.sd)
  hist <- a$iterHist[[1]]
  list(
    empri = scalar(empri),
    center = num(center),
    scale = num(scale),
    p_order = num(p_order),
    amelia_mu = num(mu),
    amelia_mu_labels = names(mu),
    amelia_covMatrices = rows_of(sigma),
    mean_standardised = num(mu_std),
    covariance_standardised = rows_of(sigma_std),
    mean = num(center + scale * mu_std),
    covariance = rows_of(sigma_std * outer(scale, scale)),
    n_iter = scalar(nrow(hist)),
    n_nonmonotone = scalar(sum(hist[, 2])),
    n_singular = scalar(sum(hist[, 3])),
    sorted_input_max_difference = scalar(check)
  )
}

column_sets <- list(
  airquality4 = c("Ozone", "Solar.R", "Wind", "Temp"),
  airquality6 = c("Ozone", "Solar.R", "Wind", "Temp", "Month", "Day")
)
empris <- c(0, 5, 5.7)

cases <- list()
for (set in names(column_sets)) {
  columns <- column_sets[[set]]
  d <- datasets::airquality[, columns]
  fits <- lapply(empris, function(e) fit_case(d, e))
  names(fits) <- sprintf("empri_%s", empris)
  cases[[set]] <- list(
    columns = columns,
    n = scalar(nrow(d)),
    data = lapply(columns, function(column) num(d[[column]])),
    fits = fits
  )
}

meta <- list(
  r_version = R.version.string,
  amelia_version = as.character(packageVersion("Amelia")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  call = "amelia(d, m = 1, boot.type = \"none\", tolerance = 1e-10, empri = e, p2s = 0)",
  tolerance = scalar(tolerance),
  regenerate = "Rscript tests/reference/amelia_em.R"
)
writeLines(to_json(list(meta = meta, cases = cases)), out_path)

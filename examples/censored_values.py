"""Values censored at a detection limit, and top-coded incomes.

A cohort of 3,000 people with four columns: blood lead (log-normal; the
assay reports "< 1.0" for about 40% of them), household income
(log-normal; the survey top-codes the top 10% at 120,000), age, and a 1-5
self-rated health.
All four are related (a latent correlation of 0.5), and 10% of every
column is missing on top of the censoring.

The censored values are not missing: a lead value "< 1.0" says the value
is below 1.0.  We estimate the mean and the standard deviation of log lead
and of log income with:

- the usual substitutions: the limit over 2 for lead (over sqrt(2) is as
  common, and as arbitrary), the top code kept as it is for income;
- the censored values treated as missing (GaussianCopulaImputer without
  the limits);
- GaussianCopulaImputer with the limits (``detection_limits``), by multiple
  imputation (``MultipleImputer``, 10 imputations, on the DataFrame, whose
  dtypes come back unchanged);

against the truth (the simulated values before censoring).

Run it with ``python examples/censored_values.py``.
"""

import numpy as np
import pandas as pd

from emimpute import GaussianCopulaImputer, MultipleImputer

N = 3000
LEAD_LIMIT = 1.0
INCOME_TOP_CODE = 120_000.0


def simulate(seed=0):
    """(the cohort as recorded, the true lead and income)."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(4), 0.5 * np.eye(4) + 0.5, size=N)
    lead = np.exp(0.25 + 0.9 * z[:, 0])  # 40% below 1.0
    income = np.exp(np.log(55_000) + 0.6 * z[:, 1])  # 10% above 120,000
    truth = pd.DataFrame({"lead": lead, "income": income})
    cohort = pd.DataFrame(
        {
            "lead": np.maximum(lead, LEAD_LIMIT),  # "< 1.0" recorded as 1.0
            "income": np.minimum(income, INCOME_TOP_CODE),  # the top code
            "age": np.round(45 + 12 * z[:, 2]),
            "health": pd.array(np.digitize(z[:, 3], [-1.2, -0.4, 0.4, 1.2]) + 1,
                               dtype="Int64"),
        }
    )  # fmt: skip
    for column in cohort.columns:
        cohort.loc[rng.random(N) < 0.1, column] = None
    return cohort, truth


def log_moments(values, rows):
    logs = np.log(np.asarray(values, float)[rows])
    return logs.mean(), logs.std()


def main():
    cohort, truth = simulate()
    lead_censored = cohort["lead"] <= LEAD_LIMIT
    income_censored = cohort["income"] >= INCOME_TOP_CODE
    print(
        f"{N} people, 10% of every column missing; of those measured, lead "
        f"below {LEAD_LIMIT} for {lead_censored.sum() / cohort['lead'].count():.0%}"
        f", income top-coded for "
        f"{income_censored.sum() / cohort['income'].count():.0%}"
    )
    rows = {c: cohort[c].notna().to_numpy() for c in ("lead", "income")}
    results = {}

    def record(name, lead, income):
        results[name] = [
            *log_moments(lead, rows["lead"]),
            *log_moments(income, rows["income"]),
        ]

    record("truth", truth["lead"], truth["income"])
    record(
        "limit / 2, top code kept",
        cohort["lead"].where(~lead_censored, LEAD_LIMIT / 2),
        cohort["income"],
    )
    as_missing = cohort.copy()
    as_missing.loc[lead_censored, "lead"] = None
    as_missing.loc[income_censored, "income"] = None
    ignored = GaussianCopulaImputer(sample_posterior=True, random_state=0)
    filled = ignored.fit_transform(as_missing)
    record("censored as missing", filled["lead"], filled["income"])
    limits = {"lead": LEAD_LIMIT, "income": (None, INCOME_TOP_CODE)}
    multiple = MultipleImputer(
        GaussianCopulaImputer(detection_limits=limits),
        n_imputations=10,
        random_state=0,
    ).fit(cohort)
    completed = multiple.multiple_transform(cohort)
    assert all((each.dtypes == cohort.dtypes).all() for each in completed)
    per_imputation = [
        [
            *log_moments(each["lead"], rows["lead"]),
            *log_moments(each["income"], rows["income"]),
        ]
        for each in completed
    ]
    results["copula with the limits (MI, 10)"] = list(np.mean(per_imputation, axis=0))
    table = pd.DataFrame(
        results,
        index=["mean log lead", "SD log lead", "mean log income", "SD log income"],
    ).T
    print(table.round(3).to_string())
    below = completed[0].loc[lead_censored.to_numpy(), "lead"]
    above = completed[0].loc[income_censored.to_numpy(), "income"]
    print(
        f"In the first imputation the {len(below)} censored lead values lie "
        f"between {below.min():.2f} and {LEAD_LIMIT} "
        f"({'all' if (below < LEAD_LIMIT).all() else 'NOT all'} below it), "
        f"the {len(above)} top-coded incomes between {INCOME_TOP_CODE:,.0f} and "
        f"{above.max():,.0f} "
        f"({'all' if (above > INCOME_TOP_CODE).all() else 'NOT all'} above it)."
    )
    return table


if __name__ == "__main__":
    main()

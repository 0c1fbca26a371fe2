"""Look before you impute: missingness diagnostics on R's airquality data.

New York, May to September 1973: daily ozone, solar radiation, wind and
temperature; 37 ozone and 7 solar-radiation values are missing.  The steps:

1. the missingness patterns (R: ``mice::md.pattern``);
2. Little's MCAR test (R: ``naniar::mcar_test``);
3. where MCAR fails, what the missingness tracks: missing rates by month,
   and each incomplete column's missingness against the other columns;
4. impute with EMImputer (MAR given the observed columns, Month included)
   and compare the observed and imputed distributions;
5. a sanity check of the test itself with ``ampute``: on the complete rows,
   made incomplete under MCAR and under MAR, Little's test should reject
   only the second.

Figures go to ``examples/output/`` (or the folder given as the first
argument).  Run it with ``python examples/airquality_diagnostics.py``.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window

import pandas as pd  # noqa: E402

from emimpute import EMImputer  # noqa: E402
from emimpute.ampute import ampute  # noqa: E402
from emimpute.datasets import load_airquality  # noqa: E402
from emimpute.diagnostics import (  # noqa: E402
    little_mcar_test,
    missing_patterns,
    missing_rate_by,
    missingness_associations,
)
from emimpute.plotting import (  # noqa: E402
    plot_imputed_distributions,
    plot_loglik_trace,
    plot_missing_patterns,
)


def main(output_dir="examples/output"):
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 120)
    air = load_airquality()

    print("1. Missingness patterns (1 = observed, 0 = missing)\n")
    print(missing_patterns(air).round(3).to_string(), "\n")
    plot_missing_patterns(air).figure.savefig(output / "airquality_patterns.png")

    print("2.", little_mcar_test(air), "\n")
    print(
        "   A small p-value: the rows missing ozone or radiation differ from the\n"
        "   others on what we can see, so the values are not MCAR.\n"
    )

    print("3a. Missing rate by month\n")
    print(missing_rate_by(air, "Month").round(3).to_string(), "\n")
    print("3b. Missingness against the other columns (largest differences first)\n")
    associations = missingness_associations(air)
    shown = ["missing_column", "other_column", "n_missing", "std_difference", "p_value"]
    print(associations[shown].head(5).round(4).to_string(index=False), "\n")
    print(
        "   Ozone is missing on 70% of June days: missingness tracks Month, so a\n"
        "   MAR model must condition on Month. Solar.R's few gaps (7) show no\n"
        "   clear pattern. Whether ozone also went missing because of its own\n"
        "   level (MNAR) cannot be seen in these data.\n"
    )

    imputer = EMImputer().fit(air)
    completed = imputer.transform(air)
    draws = EMImputer(sample_posterior=True, random_state=0).fit_transform(air)
    print(
        f"4. EMImputer: converged in {imputer.n_iter_} iterations, "
        f"log-likelihood {imputer.loglik_:.2f}"
    )
    means = pd.DataFrame(
        {
            "observed": air[["Ozone", "Solar.R"]].mean(),
            "imputed (conditional means)": pd.DataFrame(completed, columns=air.columns)[
                ["Ozone", "Solar.R"]
            ][air[["Ozone", "Solar.R"]].isna()].mean(),
            "EM mean": pd.Series(imputer.mean_, index=air.columns)[
                ["Ozone", "Solar.R"]
            ],
        }
    )
    print(means.round(2).to_string(), "\n")
    negative = int((draws[air["Ozone"].isna().to_numpy(), 0] < 0).sum())
    print(
        f"   Drawn (sample_posterior=True) ozone values below zero: {negative}. The\n"
        "   normal model does not know that ozone is positive and skewed; impute\n"
        "   log(Ozone) instead if that matters for the analysis.\n"
    )
    plot_imputed_distributions(air, draws).savefig(output / "airquality_imputed.png")
    plot_loglik_trace(imputer).figure.savefig(output / "airquality_loglik.png")

    complete = air.dropna()
    n_runs = 100
    print(
        f"5. Little's test on the {len(complete)} complete rows, amputed {n_runs} "
        "times (40% of rows lose Ozone):"
    )
    for mechanism in ("MCAR", "MAR"):
        rejected = 0
        for run in range(n_runs):
            amputed = ampute(
                complete,
                0.4,
                mechanism=mechanism,
                patterns=[["Ozone"]],
                weights=[0, 0, 0, 1, 0, 0],  # MAR: hotter days lose Ozone
                random_state=run,
            )
            rejected += little_mcar_test(amputed).p_value < 0.05
        print(f"   {mechanism}: rejected at the 5% level in {rejected} of {n_runs}")
    print(
        "   Under MCAR the test rejects about as often as its 5% level says;\n"
        "   under MAR driven by Temp, most of the time. Weaker dependence or\n"
        "   fewer rows lower that power: a large p-value is no proof of MCAR."
    )
    print(f"\nFigures written to {output}/")


if __name__ == "__main__":
    main(*sys.argv[1:2])

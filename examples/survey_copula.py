"""Mixed survey data: the Gaussian copula against the normal model.

The 1996 American National Election Study extract that ships with
statsmodels (944 respondents): population of the respondent's place
(skewed), days a week watching TV news (0-7), self-placement and placement
of Clinton and Dole on a 1-7 left-right scale, party identification (0-6),
age, education (1-7), income (24 brackets) and the vote (Clinton or Dole).
The data are complete, so we hide 20% of the cells at random, impute them,
and score each imputer on the hidden cells:

- the kinds the copula infers, and that its imputations are valid values
  (a level seen in the data, an integer age, a vote that is True or False);
- mean absolute error on ordinal columns (in levels), RMSE on the
  continuous ones (in standard deviations), error rate on the vote;
- observed against imputed distributions per column (a figure, when
  matplotlib is installed);
- a downstream model: predicting the vote from the other, incomplete,
  answers with each imputer in a Pipeline, by cross-validation;
- categories: the occupations of wife and husband in statsmodels' ``fair``
  survey (6,366 rows, six unordered categories each, beside ratings,
  counts and a skewed number of affairs), imputed as categories against
  the mode and IterativeImputer on the codes.

Run it with ``python examples/survey_copula.py`` (needs statsmodels, for
the data).
"""

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emimpute import EMImputer, GaussianCopulaImputer

HIDDEN = 0.2
OUTPUT = Path(__file__).resolve().parent / "output"


def load_survey():
    """The ANES 1996 extract in the dtypes a survey has: integer answers
    (nullable Int64), the vote as a flag, population as a float."""
    from statsmodels.datasets import anes96

    data = anes96.load_pandas().data.drop(columns="logpopul")
    answers = ["TVnews", "selfLR", "ClinLR", "DoleLR", "PID", "age", "educ", "income"]
    survey = data[answers].astype("Int64")
    survey.insert(0, "popul", data["popul"].astype(float))
    survey["vote_dole"] = data["vote"].astype(bool).astype("boolean")
    return survey


def hide(frame, seed=0):
    rng = np.random.default_rng(seed)
    return frame.mask(rng.random(frame.shape) < HIDDEN)


def imputers():
    return {
        "GaussianCopulaImputer": GaussianCopulaImputer(random_state=0),
        "EMImputer": EMImputer(),
        "IterativeImputer": IterativeImputer(max_iter=10, random_state=0),
        "median": SimpleImputer(strategy="median"),
    }


def scores(truth, holes, imputed, kinds):
    """Error on the hidden cells per kind of column."""
    as_float = truth.astype("Float64").to_numpy(np.float64, na_value=np.nan)
    filled = np.asarray(pd.DataFrame(imputed).astype("Float64"), dtype=np.float64)
    hidden = holes.isna().to_numpy()
    result = {}
    for kind in ("ordinal", "continuous", "binary"):
        columns = [j for j, k in enumerate(kinds) if k == kind]
        errors = []
        for j in columns:
            rows = hidden[:, j]
            gap = filled[rows, j] - as_float[rows, j]
            if kind == "continuous":
                errors.append(np.sqrt(np.mean(gap**2)) / np.nanstd(as_float[:, j]))
            elif kind == "binary":
                errors.append(np.mean(np.round(filled[rows, j]) != as_float[rows, j]))
            else:
                errors.append(np.mean(np.abs(gap)))
        result[kind] = float(np.mean(errors))
    return result


def downstream(truth, holes):
    """Cross-validated accuracy of predicting the vote from the other
    (incomplete) answers, each imputer first in the Pipeline."""
    features = holes.drop(columns="vote_dole")
    y = truth["vote_dole"].to_numpy(bool)
    accuracy = {}
    for name, imputer in imputers().items():
        model = make_pipeline(
            imputer, StandardScaler(), LogisticRegression(max_iter=1000)
        )
        if name != "GaussianCopulaImputer":  # the others take floats only
            model = make_pipeline(_to_float(), model)
        accuracy[name] = cross_val_score(model, features, y, cv=5).mean()
    return accuracy


def _to_float():
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(
        lambda frame: frame.astype("Float64").to_numpy(np.float64, na_value=np.nan)
    )


def occupations(seed=0):
    """Accuracy on the hidden occupations (wife, husband) of the copula
    (categories in, categories out), the mode, and IterativeImputer on the
    codes rounded to the nearest code."""
    from statsmodels.datasets import fair

    data = fair.load_pandas().data
    frame = data.drop(columns=["occupation", "occupation_husb"])
    for column in ("occupation", "occupation_husb"):
        frame[column] = pd.Categorical(data[column].astype(int))
    holes = hide(frame, seed)
    hidden = holes.isna().to_numpy()
    columns = [frame.columns.get_loc(c) for c in ("occupation", "occupation_husb")]
    truth = frame.iloc[:, columns].apply(lambda c: c.cat.codes).to_numpy()
    codes = holes.apply(
        lambda c: c.cat.codes.replace(-1, np.nan) if c.dtype == "category" else c
    )
    codes = codes.to_numpy(np.float64)
    copula = GaussianCopulaImputer(random_state=0).fit_transform(holes)
    copula = copula.iloc[:, columns].apply(lambda c: c.cat.codes).to_numpy()
    mode = SimpleImputer(strategy="most_frequent").fit_transform(codes)[:, columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iterative = IterativeImputer(max_iter=10, random_state=0).fit_transform(codes)
    iterative = np.clip(np.round(iterative[:, columns]), 0, 5)
    result = {}
    for name, imputed in [("GaussianCopulaImputer", copula), ("mode", mode),
                          ("IterativeImputer (rounded codes)", iterative)]:  # fmt: skip
        result[name] = [
            np.mean(imputed[hidden[:, j], k] == truth[hidden[:, j], k])
            for k, j in enumerate(columns)
        ]
    return result


def main(output=OUTPUT):
    """Print the comparisons, save the figure in ``output``; return the
    scores (for tests/test_examples.py)."""
    truth = load_survey()
    holes = hide(truth)
    copula = GaussianCopulaImputer(random_state=0)
    start = time.perf_counter()
    completed = copula.fit_transform(holes)
    seconds = time.perf_counter() - start
    kinds = [
        "binary" if pd.api.types.is_bool_dtype(dtype) else kind
        for kind, dtype in zip(copula.kinds_, truth.dtypes, strict=True)
    ]
    print("Kinds inferred:", dict(zip(truth.columns, copula.kinds_, strict=True)))
    print(f"Fitted in {seconds:.2f} s, {copula.n_iter_} SAEM iterations.")
    print("Dtypes kept:", (completed.dtypes == truth.dtypes).all())
    valid = all(
        set(completed[c].dropna()) <= set(holes[c].dropna()) for c in truth.columns[1:]
    )
    print("Every imputed answer is a level seen in the data:", valid)

    print("\nHidden cells (ordinal: MAE in levels; continuous: RMSE in SD;")
    print("vote: error rate):")
    print(f"{'imputer':<24}{'ordinal':>9}{'continuous':>12}{'vote':>8}{'time':>8}")
    numeric = holes.astype("Float64").to_numpy(np.float64, na_value=np.nan)
    results = {"valid": valid, "dtypes": bool((completed.dtypes == truth.dtypes).all())}
    for name, imputer in imputers().items():
        start = time.perf_counter()
        data = holes if name == "GaussianCopulaImputer" else numeric
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IterativeImputer's convergence note
            imputed = imputer.fit_transform(data)
        seconds = time.perf_counter() - start
        s = results[name] = scores(truth, holes, imputed, kinds)
        print(
            f"{name:<24}{s['ordinal']:>9.3f}{s['continuous']:>12.3f}"
            f"{s['binary']:>8.3f}{seconds:>7.2f}s"
        )

    print("\nPredicting the vote from the other incomplete answers (5-fold CV):")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results["downstream"] = downstream(truth, holes)
    for name, accuracy in results["downstream"].items():
        print(f"  {name:<24}accuracy {accuracy:.3f}")

    print("\nUnordered categories (fair: occupations), share imputed right:")
    results["occupations"] = occupations()
    for name, accuracy in results["occupations"].items():
        print(f"  {name:<34}" + "  ".join(f"{a:.3f}" for a in accuracy))

    try:
        from emimpute.plotting import plot_imputed_distributions
    except ImportError:
        return results
    draws = GaussianCopulaImputer(sample_posterior=True, random_state=0)
    figure = plot_imputed_distributions(
        holes.astype("Float64").astype(float),
        draws.fit_transform(holes).astype("Float64").astype(float),
        columns=["popul", "selfLR", "age", "income"],
        ncols=2,
    )
    output = Path(output)
    output.mkdir(exist_ok=True)
    figure.savefig(output / "survey_copula_distributions.png", dpi=80)
    print(f"\nObserved against imputed draws: {output}/survey_copula_distributions.png")
    return results


if __name__ == "__main__":
    main()

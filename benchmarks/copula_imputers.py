"""GaussianCopulaImputer against gcimpute and scikit-learn on mixed data (issue 15).

Side by side in one run, on the same amputed matrices:
GaussianCopulaImputer(random_state=0), gcimpute 0.0.4's GaussianCopula
(defaults, random_state=0), IterativeImputer (max_iter=10, random_state=0),
IterativeImputer with a RandomForestRegressor (the missForest recipe, kept
modest: 30 trees, max_iter=5, n_jobs=-1), KNNImputer(), SimpleImputer
(median) and EMImputer().

Data:

- simulated Gaussian copula data, p = 30: 10 log-normal, 10 ordinal with 5
  levels (probabilities .1 .2 .4 .2 .1) and 10 binary columns (P = 0.38)
  from a random 3-factor latent correlation, with 20%
  of cells hidden MCAR, or MAR (6 columns fully observed, two of each kind;
  each other column hidden with a logistic probability in the rank of one
  of them, calibrated so that 20% of all cells are hidden); n = 2,000, and
  n = 100,000 with ``--large``;
- real mixed data shipped in installed packages (nothing is downloaded):
  gcimpute's General Social Survey extract (its 8 tutorial columns, with
  its own missing cells), and statsmodels' ``fair`` (affairs), ``anes96``
  (without ``logpopul``, the log of ``popul``) and ``randhie`` (5,000 rows
  drawn with seed 0), each with 20% of its observed cells hidden MCAR
  (seed 0).  A row left with no observed cell keeps its first one.

Scores, on the hidden cells only, by the kind of each column in the
complete data (binary: 2 distinct values; ordinal: whole numbers with at
most 20 levels; else continuous):

- continuous: RMSE in standard deviations of the column (of its values
  before hiding), pooled over the hidden cells of those columns;
- ordinal: scaled MAE as gcimpute reports it (``get_smae``): a column's MAE
  divided by the MAE of imputing the column's observed median, averaged
  over the ordinal columns (below 1: better than the median);
- binary: the error rate, as mean |imputed - true| / (high - low), which is
  the error rate when the imputations are the column's two values and the
  expected error of a soft guess otherwise;
- time: wall seconds of one ``fit_transform``.

Imputers whose output is not a level of the column (EMImputer, Iterative,
KNN, a median half-way between two levels) are scored as given (what users
get), and again with each ordinal or binary imputation rounded to the
nearest observed level ("rounded" columns; "=" when nothing changes).

gcimpute 0.0.4 calls ``np.round_``, removed in NumPy 2; the script sets
``np.round_ = np.round`` before importing it.

Usage::

    python benchmarks/copula_imputers.py            # n = 2,000 + real data
    python benchmarks/copula_imputers.py --large    # n = 100,000, p = 30
    python benchmarks/copula_imputers.py --quick    # n = 500, GSS only
    python benchmarks/copula_imputers.py --nominal  # fair's two nominal columns

``--nominal``: statsmodels' ``fair`` with the same 20% MCAR cells hidden
(seed 0), its ``occupation`` and ``occupation_husb`` (codes 1-6, no order)
given to GaussianCopulaImputer as pandas unordered categoricals (inferred
nominal, imputed as categories); the error rate on their hidden cells
against the mode (SimpleImputer most_frequent), IterativeImputer on the
integer codes with each imputation rounded to the nearest code, and
gcimpute with the codes as ordinal.
"""

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from _report import machine_header, markdown_table, timed
from scipy import special, stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from emimpute import EMImputer, GaussianCopulaImputer

RATE = 0.2
GCIMPUTE_CAP_MINUTES = 15

# ---------------------------------------------------------------------------
# Data


@dataclass
class Problem:
    name: str
    X_complete: np.ndarray  # NaN where the source itself is missing
    X_missing: np.ndarray
    large: bool = False
    notes: str = ""

    @property
    def hidden(self):
        return np.isnan(self.X_missing) & ~np.isnan(self.X_complete)


def _random_correlation(p, rng):
    """A random 3-factor correlation: loadings N(0, 0.5) plus unit noise
    (latent correlations spread over about -0.7 to 0.7)."""
    W = rng.normal(scale=np.sqrt(0.5), size=(p, 3))
    S = W @ W.T + np.eye(p)
    d = np.sqrt(np.diag(S))
    return S / np.outer(d, d)


def copula_data(n, seed, p=30):
    """10 log-normal, 10 ordinal (5 levels), 10 binary columns."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(p), _random_correlation(p, rng), size=n)
    third = p // 3
    X = np.exp(z)
    cuts = stats.norm.ppf([0.1, 0.3, 0.7, 0.9])
    X[:, third : 2 * third] = np.searchsorted(cuts, z[:, third : 2 * third])
    X[:, 2 * third :] = z[:, 2 * third :] > 0.3
    return X


def _keep_one(hidden, X):
    """Un-hide the first observed cell of rows left with none."""
    empty = (hidden | np.isnan(X)).all(axis=1)
    first = np.argmax(~np.isnan(X[empty]), axis=1)
    hidden[np.flatnonzero(empty), first] = False
    return hidden


def mcar(X, seed):
    rng = np.random.default_rng(seed)
    hidden = _keep_one((rng.random(X.shape) < RATE) & ~np.isnan(X), X)
    return np.where(hidden, np.nan, X)


def mar(X, seed, p=30):
    """Columns 0, 1, 10, 11, 20, 21 fully observed; column j of the others
    hidden with probability expit(a + 2 r) in the standardised rank r of
    one of them (cycled), a calibrated by root finding so that RATE of all
    cells is hidden."""
    rng = np.random.default_rng(seed)
    third = p // 3
    drivers = [0, 1, third, third + 1, 2 * third, 2 * third + 1]
    others = [j for j in range(p) if j not in drivers]
    ranks = stats.rankdata(X[:, drivers], axis=0)
    ranks = (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)
    slopes = 2.0 * ranks[:, np.arange(len(others)) % len(drivers)]
    target = RATE * p / len(others)
    a = _bisect(lambda a: special.expit(a + slopes).mean() - target)
    hidden = np.zeros(X.shape, dtype=bool)
    hidden[:, others] = rng.random(slopes.shape) < special.expit(a + slopes)
    return np.where(_keep_one(hidden, X), np.nan, X)


def _bisect(f, lo=-20.0, hi=20.0):
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def simulated_problems(n):
    X = copula_data(n, seed=0)
    return [
        Problem(f"copula n={n:,} p=30 20% MCAR", X, mcar(X, 1), large=n > 10_000),
        Problem(f"copula n={n:,} p=30 20% MAR", X, mar(X, 1), large=n > 10_000),
    ]


def real_frames():
    """The real data sets: name -> float DataFrame (NaN where missing)."""
    import statsmodels.api as sm

    np.round_ = np.round  # noqa: NPY003, NPY201  (gcimpute 0.0.4, see above)
    from gcimpute.helper_data import load_GSS  # its tutorial's 8 columns

    randhie = sm.datasets.randhie.load_pandas().data
    rows = np.random.default_rng(0).choice(len(randhie), 5000, replace=False)
    return {
        "GSS (gcimpute)": load_GSS(),
        "fair (statsmodels)": sm.datasets.fair.load_pandas().data,
        "anes96 (statsmodels)": sm.datasets.anes96.load_pandas().data.drop(
            columns="logpopul"
        ),
        "randhie 5,000 rows (statsmodels)": randhie.iloc[np.sort(rows)],
    }


def real_problems():
    problems = []
    for name, frame in real_frames().items():
        X = frame.to_numpy(dtype=float)
        problems.append(Problem(f"{name} {X.shape[0]:,}x{X.shape[1]}", X, mcar(X, 0)))
    return problems


def column_kinds(X):
    """'binary', 'ordinal' or 'continuous' from the values of each column."""
    kinds = []
    for column in X.T:
        values = np.unique(column[~np.isnan(column)])
        if len(values) == 2:
            kinds.append("binary")
        elif len(values) <= 20 and np.all(values == np.round(values)):
            kinds.append("ordinal")
        else:
            kinds.append("continuous")
    return np.array(kinds)


# ---------------------------------------------------------------------------
# Competitors


def gcimpute_fit_transform(X):
    # gcimpute 0.0.4 calls np.round_, which NumPy 2 removed.
    np.round_ = np.round  # noqa: NPY003, NPY201
    from gcimpute.gaussian_copula import GaussianCopula

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The kinds by this script's rule: gcimpute's own (ordinal or
        # truncated when one value has >= 10% of a column) fails with an
        # empty ValueError on fair's `affairs` and anes96's `popul`.
        kinds = column_kinds(X)
        return GaussianCopula(random_state=0).fit_transform(
            X,
            continuous=list(np.flatnonzero(kinds == "continuous")),
            ordinal=list(np.flatnonzero(kinds != "continuous")),
        )


def _missforest():
    forest = RandomForestRegressor(n_estimators=30, n_jobs=-1, random_state=0)
    return IterativeImputer(estimator=forest, max_iter=5, random_state=0)


def _fit_transform(make):
    return lambda X: make().fit_transform(X)


@dataclass(frozen=True)
class Runner:
    name: str
    run: Callable[[np.ndarray], np.ndarray]
    on_large: str | None = None  # None: run at n = 100,000; else why not


RUNNERS = [
    Runner("GaussianCopulaImputer",
           _fit_transform(lambda: GaussianCopulaImputer(random_state=0))),
    Runner("gcimpute GaussianCopula", gcimpute_fit_transform),
    Runner("IterativeImputer",
           _fit_transform(lambda: IterativeImputer(max_iter=10, random_state=0))),
    Runner("IterativeImputer RF (missForest)", _fit_transform(_missforest),
           "skipped (time: > 5 min expected)"),
    Runner("KNNImputer", _fit_transform(KNNImputer),
           "skipped (time: O(n^2), > 5 min expected)"),
    Runner("SimpleImputer (median)",
           _fit_transform(lambda: SimpleImputer(strategy="median"))),
    Runner("EMImputer", _fit_transform(EMImputer)),
]  # fmt: skip


# ---------------------------------------------------------------------------
# Scores


def snap_to_levels(X_imputed, X_missing, kinds):
    """Each ordinal or binary column's values at its nearest observed level."""
    out = X_imputed.copy()
    for j in np.flatnonzero(kinds != "continuous"):
        levels = np.unique(X_missing[~np.isnan(X_missing[:, j]), j])
        at = np.clip(np.searchsorted(levels, out[:, j]), 1, len(levels) - 1)
        below, above = levels[at - 1], levels[at]
        out[:, j] = np.where(out[:, j] - below <= above - out[:, j], below, above)
    return out


def scores(problem, X_imputed, kinds):
    """(continuous RMSE in SDs, ordinal scaled MAE, binary error)."""
    truth, hidden = problem.X_complete, problem.hidden
    error = X_imputed - truth
    cont = kinds == "continuous"
    rmse = np.nan
    if cont.any():
        z = error[:, cont] / np.nanstd(truth[:, cont], axis=0)
        rmse = float(np.sqrt(np.mean(z[hidden[:, cont]] ** 2)))
    smae = []
    for j in np.flatnonzero(kinds == "ordinal"):
        rows = hidden[:, j]
        if not rows.any():  # a fully observed column (the MAR drivers)
            continue
        median = np.nanmedian(problem.X_missing[:, j])
        baseline = np.mean(np.abs(truth[rows, j] - median))
        smae.append(np.mean(np.abs(error[rows, j])) / baseline)
    binary = kinds == "binary"
    wrong = np.nan
    if binary.any():
        span = np.nanmax(truth[:, binary], axis=0) - np.nanmin(truth[:, binary], axis=0)
        wrong = float(np.mean((np.abs(error[:, binary]) / span)[hidden[:, binary]]))
    return rmse, float(np.mean(smae)) if smae else np.nan, wrong


@dataclass
class Result:
    seconds: float = np.nan
    given: tuple = (np.nan, np.nan, np.nan)
    rounded: tuple | None = None  # None: rounding changes nothing
    note: str = ""
    warnings: list = field(default_factory=list)


def run(runner, problem, kinds):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            seconds, X_imputed = timed(runner.run, problem.X_missing)
        except Exception as error:  # report it, keep going
            return Result(note=f"error: {type(error).__name__}: {error}")
    X_imputed = np.asarray(X_imputed, dtype=float)
    seen = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
    result = Result(seconds, scores(problem, X_imputed, kinds), warnings=seen)
    snapped = snap_to_levels(X_imputed, problem.X_missing, kinds)
    if not np.array_equal(snapped[problem.hidden], X_imputed[problem.hidden]):
        result.rounded = scores(problem, snapped, kinds)
    return result


# ---------------------------------------------------------------------------
# Nominal columns (--nominal)

NOMINAL = ["occupation", "occupation_husb"]


def _copula_on_categories(frame, imputer):
    """``imputer`` on fair with NOMINAL as unordered categoricals; the
    imputed codes as floats (the categories are the codes 1.0-6.0)."""
    import pandas as pd

    frame = frame.copy()
    for column in NOMINAL:
        frame[column] = pd.Categorical(frame[column], ordered=False)
    imputed = imputer.fit_transform(frame)
    return np.column_stack([np.asarray(imputed[c], dtype=float) for c in frame])


def _nearest_code(X_imputed, X_missing):
    return snap_to_levels(
        X_imputed, X_missing, np.array(["ordinal"] * X_imputed.shape[1])
    )


def nominal_rows():
    """Error rate on the hidden cells of fair's two nominal columns."""
    frame = real_frames()["fair (statsmodels)"]
    X = frame.to_numpy(dtype=float)
    X_missing = mcar(X, 0)
    hidden = np.isnan(X_missing) & ~np.isnan(X)
    masked = frame.copy()
    masked.loc[:, :] = X_missing
    cols = [frame.columns.get_loc(c) for c in NOMINAL]
    copula = GaussianCopulaImputer(random_state=0)
    runs = {
        "GaussianCopulaImputer (unordered categoricals)":
            lambda: _copula_on_categories(masked, copula),
        "SimpleImputer (most_frequent)":
            lambda: SimpleImputer(strategy="most_frequent").fit_transform(X_missing),
        "IterativeImputer, codes rounded to the nearest code":
            lambda: _nearest_code(IterativeImputer(max_iter=10, random_state=0)
                                  .fit_transform(X_missing), X_missing),
        "gcimpute GaussianCopula (codes as ordinal)":
            lambda: gcimpute_fit_transform(X_missing),
    }  # fmt: skip
    rows = []
    for name, make in runs.items():
        seconds, X_imputed = timed(make)
        rates = [
            np.mean(X_imputed[hidden[:, j], j] != X[hidden[:, j], j]) for j in cols
        ]
        rows.append([name, f"{seconds:.2f}", *[f"{r:.3f}" for r in rates]])
        print(f"  nominal / {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    counts = [int(hidden[:, j].sum()) for j in cols]
    return rows, counts, [str(copula.kinds_[j]) for j in cols]


def nominal_main():
    rows, counts, kinds = nominal_rows()
    print("## fair's nominal columns: error rate on hidden cells\n")
    print(machine_header())
    print(
        f"- hidden cells: occupation {counts[0]}, occupation_husb {counts[1]}; "
        f"GaussianCopulaImputer kinds_ of the two: {kinds}\n"
    )
    headers = ["imputer", "seconds", "occupation error", "occupation_husb error"]
    print(markdown_table(headers, rows, "lrrr"))


# ---------------------------------------------------------------------------
# Report


def _f(x, digits=3):
    return "—" if np.isnan(x) else f"{x:.{digits}f}"


def table_rows(problem, results):
    rows = []
    for name, r in results.items():
        if r.note:
            rows.append([problem.name, name, r.note, "", "", "", "", ""])
            continue
        rounded = (
            ["="] * 2 if r.rounded is None else [_f(r.rounded[1]), _f(r.rounded[2])]
        )
        rows.append([problem.name, name, f"{r.seconds:.2f}", _f(r.given[0]),
                     _f(r.given[1]), _f(r.given[2]), *rounded])  # fmt: skip
    return rows


def verdicts(all_results):
    """The issue's accuracy targets, per problem: is GaussianCopulaImputer
    at least as accurate as each named competitor on every score?"""
    lines = []
    for problem, results in all_results:
        ours = results["GaussianCopulaImputer"]
        if ours.note:
            lines.append(f"- {problem.name}: GaussianCopulaImputer {ours.note}")
            continue
        parts = []
        for other in ("gcimpute GaussianCopula", "IterativeImputer", "EMImputer"):
            theirs = results[other]
            if theirs.note:
                continue
            # EM and Iterative are judged on their better of given / rounded.
            best = [min(g, r) for g, r in zip(theirs.given, theirs.rounded or
                                               theirs.given, strict=True)]  # fmt: skip
            worse = [f"{label} (+{a - b:.3f})" for label, a, b in zip(
                     ("cont", "ord", "bin"), ours.given, best, strict=True)
                     if a > b]  # fmt: skip
            parts.append(f"vs {other.split()[0]}: "
                         + ("as accurate or better on all" if not worse
                            else "worse on " + ", ".join(worse)))  # fmt: skip
        speed = results["gcimpute GaussianCopula"]
        if not speed.note:
            parts.append(f"time gcimpute / ours {speed.seconds / ours.seconds:.2g}")
        lines.append(f"- {problem.name}: " + "; ".join(parts))
    return "\n".join(lines)


def problem_notes(problem, kinds):
    counts = {k: int((kinds == k).sum()) for k in ("continuous", "ordinal", "binary")}
    hidden = problem.hidden.sum() / (~np.isnan(problem.X_complete)).sum()
    return (f"- {problem.name}: {counts['continuous']} continuous, "
            f"{counts['ordinal']} ordinal, {counts['binary']} binary; "
            f"{hidden:.1%} of observed cells hidden")  # fmt: skip


def run_all(problem, kinds):
    """Every runner on one problem, or the reason it is skipped."""
    results = {}
    for runner in RUNNERS:
        if problem.large and runner.on_large:
            results[runner.name] = Result(note=runner.on_large)
        elif problem.large and "MAR" in problem.name and "gcimpute" in runner.name:
            results[runner.name] = Result(note="skipped (time: run once, on MCAR)")
        else:
            results[runner.name] = run(runner, problem, kinds)
        r = results[runner.name]
        print(f"  {problem.name} / {runner.name}: {r.seconds:.2f} s {r.note}",
              file=sys.stderr, flush=True)  # fmt: skip
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="n = 100,000, p = 30")
    parser.add_argument("--quick", action="store_true", help="n = 500 and GSS")
    parser.add_argument("--nominal", action="store_true", help="fair, nominal")
    args = parser.parse_args()
    if args.nominal:
        return nominal_main()
    if args.large:
        problems = simulated_problems(100_000)
    elif args.quick:
        problems = simulated_problems(500)[:1] + real_problems()[:1]
    else:
        problems = simulated_problems(2000) + real_problems()

    all_results, rows, notes = [], [], []
    for problem in problems:
        kinds = column_kinds(problem.X_complete)
        notes.append(problem_notes(problem, kinds))
        results = run_all(problem, kinds)
        gcimpute_seconds = results["gcimpute GaussianCopula"].seconds
        if gcimpute_seconds > 60 * GCIMPUTE_CAP_MINUTES:
            minutes = gcimpute_seconds / 60
            notes.append(f"- gcimpute took {minutes:.1f} minutes on {problem.name}")
        all_results.append((problem, results))
        rows += table_rows(problem, results)

    print("## GaussianCopulaImputer against gcimpute and scikit-learn, mixed data\n")
    print(machine_header())
    print("- gcimpute 0.0.4 with `np.round_ = np.round` set before importing it "
          "(NumPy 2 removed `np.round_`)\n")  # fmt: skip
    print("\n".join(notes) + "\n")
    headers = ["data", "imputer", "seconds", "cont RMSE (SD)", "ord scaled MAE",
               "bin error", "ord SMAE, rounded", "bin error, rounded"]  # fmt: skip
    print(markdown_table(headers, rows, "llrrrrrr") + "\n")
    print("### Targets, per data set\n")
    print(verdicts(all_results) + "\n")
    warned = [(p.name, name, w) for p, results in all_results
              for name, r in results.items() for w in r.warnings]  # fmt: skip
    if warned:
        print("### Warnings raised\n")
        for problem_name, name, w in warned:
            print(f"- {problem_name} / {name}: {w}")


if __name__ == "__main__":
    main()

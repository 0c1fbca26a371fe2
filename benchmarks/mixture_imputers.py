"""GaussianMixtureImputer against EMImputer and scikit-learn on clustered,
curved and real data, clustering of incomplete rows, and the cost of an
iteration (issue 16).

Imputation (RMSE on the hidden cells, in standard deviations of each
column, pooled; and time of one ``fit_transform``):

- GaussianMixtureImputer with ``n_components`` (1-6) and
  ``covariance_type`` (full or tied) chosen by 5-fold ``GridSearchCV`` on
  the held-out log-likelihood (``n_init=2``, ``random_state=0``; the time
  covers the search and the refit);
- GaussianMixtureImputer with ``n_components`` chosen by ``bic`` over 1-6
  (full covariances, ``n_init=2``, ``random_state=0``; the search stops
  once BIC has risen for two K in a row; the time covers all the fits);
- EMImputer(); IterativeImputer(max_iter=10, random_state=0);
  IterativeImputer with a RandomForestRegressor (missForest, kept modest:
  30 trees, max_iter=5); KNNImputer().

Problems, each with 20% of cells hidden MCAR and, for the simulated and
real ones, MAR (the first column always observed; each other cell hidden
with probability expit(a + 2 r), r the standardised rank of the first
column, a set so that 20% of all cells are hidden):

- "3 clusters": a mixture of three normals (weights .5 .3 .2) in 6
  correlated columns, n = 3,000;
- "curve": x2 = 2 sin(x1) + N(0, 0.2^2), x1 ~ U(-3, 3), and 8 columns of
  N(0, 0.3^2) noise, the 10 mixed by a random rotation (each column a
  linear mixture of the curve and the noise), n = 3,000;
- "normal": one multivariate normal, 10 columns, n = 2,000 (where the
  mixture must cost nothing: BIC should choose one component);
- scikit-learn's iris, wine and breast_cancer; with ``--digits`` also
  digits (its 61 columns that vary), left out by default: its CV searches
  took 9 and 48 minutes on 2 cores (60 fits each of up to six 61-column
  full components, many running their 500 iterations).

Clustering (``--cluster``): adjusted Rand index against the true labels of
``predict`` on the incomplete rows, with the true number of components,
against SimpleImputer(mean) then GaussianMixture and EMImputer then
GaussianMixture (each ``n_init=3``, ``random_state=0``), for 10-50% MCAR,
on iris, wine and the 3 clusters: the mean (standard error) over 10
draws of the hidden cells, since on 150-178 rows one draw moves the index
by more than the methods differ.

Speed (``--speed``): one E-step and M-step of the mixture with K = 5
components against one EM iteration of EMImputer on the same matrix
(n = 100,000, p = 30, 20% MCAR: five overlapping clusters, each with its
own correlated covariance), and whole fits with ``n_init=1`` on that
matrix and on one of one normal (where five components are four too many).

Usage::

    python benchmarks/mixture_imputers.py            # imputation table
    python benchmarks/mixture_imputers.py --digits   # ... with digits (slow)
    python benchmarks/mixture_imputers.py --cluster  # ARI table
    python benchmarks/mixture_imputers.py --speed    # iteration cost
    python benchmarks/mixture_imputers.py --quick    # a smoke run
"""

import argparse
import sys
import warnings

import numpy as np
from _report import machine_header, markdown_table, timed
from scipy import special, stats
from sklearn import datasets
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold

from emimpute import EMImputer, GaussianMixtureImputer

RATE = 0.2
K_RANGE = range(1, 7)


# ---------------------------------------------------------------------------
# Data


def three_clusters(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(3, 6))
    A = rng.normal(size=(3, 6, 6)) * 0.5
    covariances = np.einsum("kij,klj->kil", A, A) + 0.3 * np.eye(6)
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    factors = np.linalg.cholesky(covariances)[labels]
    X = means[labels] + np.einsum("nij,nj->ni", factors, rng.normal(size=(n, 6)))
    return X, labels


def curve(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-3, 3, n)
    x2 = 2 * np.sin(x1) + rng.normal(scale=0.2, size=n)
    noise = rng.normal(scale=0.3, size=(n, 8))
    rotation = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    return np.column_stack([x1, x2, noise]) @ rotation, None


def normal(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(10, 10))
    return rng.multivariate_normal(np.zeros(10), A @ A.T / 10 + np.eye(10), n), None


def real(name):
    loader = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
    }[name]
    data = loader()
    X = data.data.astype(float)
    X = X[:, X.std(axis=0) > 0]
    return X, data.target


def mcar(X, seed):
    rng = np.random.default_rng(seed)
    hide = rng.random(X.shape) < RATE
    hide[hide.all(axis=1), 0] = False
    return np.where(hide, np.nan, X)


def mar(X, seed):
    rng = np.random.default_rng(seed)
    rank = stats.rankdata(X[:, 0])
    r = (rank - rank.mean()) / rank.std()
    target = RATE * X.shape[1] / (X.shape[1] - 1)
    lo, hi = -20.0, 20.0
    for _ in range(60):
        a = 0.5 * (lo + hi)
        lo, hi = (a, hi) if special.expit(a + 2 * r).mean() < target else (lo, a)
    hide = rng.random(X.shape) < special.expit(a + 2 * r)[:, None]
    hide[:, 0] = False
    return np.where(hide, np.nan, X)


def problems(quick, digits=False):
    made = [("3 clusters", three_clusters()), ("curve", curve()), ("normal", normal())]
    names = ["iris"] if quick else ["iris", "wine", "breast_cancer"]
    names += ["digits"] if digits else []
    made += [(name, real(name)) for name in names]
    out = []
    for name, (X, labels) in made:
        out.append((f"{name} MCAR", X, mcar(X, 1), labels))
        if name != "curve":
            out.append((f"{name} MAR", X, mar(X, 1), labels))
    return out[:3] if quick else out


# ---------------------------------------------------------------------------
# Imputers


def mixture_by_bic(X):
    """The fit of lowest BIC over K = 1, 2, ... (at most 6), the search
    stopped once BIC has risen for two K in a row (on 30- and 61-column
    data a full covariance per component costs hundreds of parameters, and
    the larger K are both slow and never chosen)."""
    best, rises, last = None, 0, np.inf
    for k in K_RANGE:
        if k > len(X):
            break
        fit = GaussianMixtureImputer(n_components=k, n_init=2, random_state=0).fit(X)
        bic = fit.bic(X)
        if best is None or bic < best[0]:
            best = (bic, fit)
        rises = rises + 1 if bic > last else 0
        last = bic
        if rises == 2:
            break
    return best[1].transform(X), f"K = {best[1].n_components}"


CV_GRID = {"n_components": list(K_RANGE), "covariance_type": ["full", "tied"]}


def mixture_by_cv(X):
    """The fit of highest held-out log-likelihood (the estimator's
    ``score``, GridSearchCV's default) over K = 1-6 and full or tied
    covariances, 5-fold; diag and spherical are left out, since they drop
    the within-component correlations from which a cell is imputed."""
    search = GridSearchCV(
        GaussianMixtureImputer(n_init=2, random_state=0), CV_GRID,
        cv=KFold(5, shuffle=True, random_state=0),
    ).fit(X)  # fmt: skip
    chosen = search.best_params_
    note = f"K = {chosen['n_components']}, {chosen['covariance_type']}"
    return search.best_estimator_.transform(X), note


def _plain(make):
    def run(X):
        return make().fit_transform(X), None

    return run


RUNNERS = [
    ("GaussianMixtureImputer (K and type by CV)", mixture_by_cv),
    ("GaussianMixtureImputer (K by BIC)", mixture_by_bic),
    ("EMImputer", _plain(EMImputer)),
    ("IterativeImputer", _plain(lambda: IterativeImputer(max_iter=10, random_state=0))),
    ("IterativeImputer RF (missForest)", _plain(lambda: IterativeImputer(
        RandomForestRegressor(30, n_jobs=-1, random_state=0), max_iter=5,
        random_state=0))),
    ("KNNImputer", _plain(KNNImputer)),
]  # fmt: skip


def rmse(imputed, X, X_missing):
    hidden = np.isnan(X_missing)
    scale = X.std(axis=0)
    return float(np.sqrt(np.mean(((imputed - X) / scale)[hidden] ** 2)))


def imputation_table(quick, digits=False):
    rows, verdicts = [], []
    for name, X, X_missing, _ in problems(quick, digits):
        scores = {}
        for runner, run in RUNNERS:
            print(f"  {name} / {runner}", file=sys.stderr)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                seconds, (imputed, k) = timed(run, X_missing)
            scores[runner] = rmse(imputed, X, X_missing)
            note = "" if k is None else k
            rows.append([name, runner, f"{seconds:.2f}", f"{scores[runner]:.4f}", note])
            print("| " + " | ".join(rows[-1]) + " |", file=sys.stderr, flush=True)
        cv, bic = (scores[RUNNERS[i][0]] for i in (0, 1))
        others = min(v for k, v in scores.items() if not k.startswith("Gaussian"))
        verdicts.append(
            f"- {name}: by CV {cv:.4f}, by BIC {bic:.4f}; the best of the others "
            f"{others:.4f} (CV {100 * (cv / others - 1):+.1f}%, BIC "
            f"{100 * (bic / others - 1):+.1f}%); against EMImputer: CV "
            f"{100 * (cv / scores['EMImputer'] - 1):+.1f}%, BIC "
            f"{100 * (bic / scores['EMImputer'] - 1):+.1f}%"
        )
    headers = ["data", "imputer", "seconds", "RMSE (SD)", "chosen"]
    return markdown_table(headers, rows, "llrrl") + "\n\n" + "\n".join(verdicts)


# ---------------------------------------------------------------------------
# Clustering incomplete rows


CLUSTER_SEEDS = 10


def cluster_aris(X, labels, rate, seed):
    """ARI of GaussianMixtureImputer.predict, of mean fill then
    GaussianMixture and of EMImputer then GaussianMixture, on X with
    ``rate`` of its cells hidden MCAR (every row keeps a cell)."""
    K = len(np.unique(labels))
    rng = np.random.default_rng(seed)
    hide = rng.random(X.shape) < rate
    hide[hide.all(axis=1), 0] = False
    X_missing = np.where(hide, np.nan, X)
    ours = GaussianMixtureImputer(n_components=K, n_init=3, random_state=0)
    aris = [adjusted_rand_score(labels, ours.fit_predict(X_missing))]
    for fill in (SimpleImputer(), EMImputer()):
        filled = fill.fit_transform(X_missing)
        gm = GaussianMixture(K, n_init=3, random_state=0)
        aris.append(adjusted_rand_score(labels, gm.fit_predict(filled)))
    return aris


def cluster_table(quick):
    sets = [("iris", real("iris")), ("wine", real("wine")),
            ("3 clusters", three_clusters())]  # fmt: skip
    rates = [0.1, 0.3] if quick else [0.1, 0.2, 0.3, 0.4, 0.5]
    seeds = range(2 if quick else CLUSTER_SEEDS)
    rows = []
    for name, (X, labels) in sets[:1] if quick else sets:
        for rate in rates:
            aris = np.array([cluster_aris(X, labels, rate, seed) for seed in seeds])
            mean, se = aris.mean(axis=0), aris.std(axis=0, ddof=1) / np.sqrt(len(aris))
            # How often ours is at least the better of the two fills.
            wins = np.sum(aris[:, 0] >= aris[:, 1:].max(axis=1))
            cells = [f"{m:.3f} ({s:.3f})" for m, s in zip(mean, se, strict=True)]
            rows.append([name, f"{rate:.0%}", *cells, f"{wins} of {len(aris)}"])
    headers = [
        "data", "missing", "GaussianMixtureImputer.predict",
        "mean fill + GaussianMixture", "EMImputer + GaussianMixture",
        "ours >= both",
    ]  # fmt: skip
    return markdown_table(headers, rows, "lrrrrr")


# ---------------------------------------------------------------------------
# Cost of an iteration


def five_clusters(n, seed=0, spread=0.5):
    """Five overlapping clusters (weights .3 .25 .2 .15 .1) in 30 columns,
    each with its own random correlated covariance; the means' coordinates
    N(0, spread^2)."""
    rng = np.random.default_rng(seed)
    p, K = 30, 5
    means = rng.normal(scale=spread, size=(K, p))
    A = rng.normal(size=(K, p, p)) / np.sqrt(p)
    covariances = np.einsum("kij,klj->kil", A, A) + 0.5 * np.eye(p)
    labels = rng.choice(K, size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    factors = np.linalg.cholesky(covariances)[labels]
    return means[labels] + np.einsum("nij,nj->ni", factors, rng.normal(size=(n, p)))


def one_normal(n, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(30, 30))
    return rng.multivariate_normal(np.zeros(30), A @ A.T / 30 + np.eye(30), n)


def speed_table(quick):
    from emimpute.models._mixture import MixtureModel, initial_params, standardise

    n = 20_000 if quick else 100_000
    rng = np.random.default_rng(0)
    X = five_clusters(n)
    X[rng.random(X.shape) < 0.2] = np.nan
    Z, _, unit = standardise(X)
    start = initial_params(Z, 5, "kmeans", rng, 0.0, "full", unit)
    model = MixtureModel(Z, start, 0.0, "full", unit)

    def mixture_step():
        model.m_step(start, model.e_step(start))

    mixture_step()
    mixture = np.median([timed(mixture_step)[0] for _ in range(5)])

    def em(iterations):
        return EMImputer(max_iter=iterations, tol=0, accelerate=False).fit(X)

    def whole_fit(data):
        return GaussianMixtureImputer(n_components=5, random_state=0).fit(data)

    unclustered = one_normal(n)
    unclustered[rng.random(unclustered.shape) < 0.2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        em(1)
        one = np.median([timed(em, 1)[0] for _ in range(5)])
        eleven = np.median([timed(em, 11)[0] for _ in range(5)])
        normal_step = (eleven - one) / 10
        fits = [timed(whole_fit, data) for data in (X, unclustered)]
    rows = [
        [f"one EM iteration, {n:,} x 30, 20% MCAR", f"{mixture:.4f} s (K = 5)",
         f"{normal_step:.4f} s", f"{mixture / normal_step:.1f}x",
         f"{mixture / normal_step / 5:.2f}x"],
    ]  # fmt: skip
    for label, (seconds, fitted) in zip(
        ["five clusters", "one normal (K = 5 too many)"], fits, strict=True
    ):
        state = "converged" if fitted.converged_ else "not converged"
        rows.append([
            f"whole fit, K = 5, n_init = 1: {label}",
            f"{seconds:.1f} s ({fitted.n_iter_} iterations, {state})", "", "", "",
        ])  # fmt: skip
    headers = ["", "GaussianMixtureImputer", "EMImputer", "ratio", "ratio / K"]
    return markdown_table(headers, rows, "lrrrr")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument(
        "--digits", action="store_true", help="add scikit-learn's digits (slow)"
    )
    args = parser.parse_args()
    print("## GaussianMixtureImputer on clustered, curved and real data\n")
    print(machine_header())
    print()
    if args.speed:
        print(speed_table(args.quick))
    elif args.cluster:
        print(cluster_table(args.quick))
    else:
        print(imputation_table(args.quick, args.digits))


if __name__ == "__main__":
    main()

"""Rubin's rules: pool the results of m analyses of m imputed data sets.

:func:`pool` combines per-imputation estimates and their variances into one
estimate whose standard error counts the uncertainty about the missing
values (the between-imputation variance), with the degrees of freedom of
Barnard & Rubin (1999) when the complete-data degrees of freedom are known.
:func:`pooled_wald_test` (D1) and :func:`pooled_chi2_test` (D2) test several
parameters at once.  The formulas follow R's ``mice`` (``pool``,
``pool.scalar``, ``barnard.rubin``) and ``mitml`` (``testModels``).

References
----------
Rubin, D. B. (1987). *Multiple Imputation for Nonresponse in Surveys*.
Wiley, sec. 3.1.
Barnard, J. & Rubin, D. B. (1999). Small-sample degrees of freedom with
multiple imputation. *Biometrika* 86, 948-955.
Li, K. H., Raghunathan, T. E. & Rubin, D. B. (1991). Large-sample
significance levels from multiply imputed data using moment-based
statistics and an F reference distribution. *JASA* 86, 1065-1073.
Li, K. H., Meng, X.-L., Raghunathan, T. E. & Rubin, D. B. (1991).
Significance levels from repeated p-values with multiply-imputed data.
*Statistica Sinica* 1, 65-92.
Reiter, J. P. (2003). Inference for partially synthetic, public use
microdata sets. *Survey Methodology* 29, 181-188.
Reiter, J. P. (2007). Small-sample degrees of freedom for multi-component
significance tests with multiple imputation for missing data.
*Biometrika* 94, 502-508.
"""

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["PooledResult", "PooledTest", "pool", "pooled_chi2_test", "pooled_wald_test"]

RULES = ("rubin1987", "reiter2003")
DF_METHODS = ("auto", "barnard-rubin", "rubin1987")
SUMMARY_COLUMNS = [
    "estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high",
    "riv", "lambda", "fmi", "ubar", "b", "t",
]  # fmt: skip


@dataclass(frozen=True)
class PooledResult:
    """Pooled estimates, one entry per parameter (see :func:`pool`)."""

    names: list
    m: int
    estimate: np.ndarray
    ubar: np.ndarray  # mean within-imputation variance
    b: np.ndarray  # between-imputation variance
    t: np.ndarray  # total variance
    riv: np.ndarray  # relative increase in variance due to missingness
    lambda_: np.ndarray  # proportion of the total variance due to missingness
    fmi: np.ndarray  # fraction of missing information
    df: np.ndarray
    std_error: np.ndarray
    statistic: np.ndarray  # estimate / std_error
    p_value: np.ndarray  # two-sided, t reference with df
    ci_low: np.ndarray
    ci_high: np.ndarray
    dfcom: float
    alpha: float
    rule: str
    covariance_within: np.ndarray = None  # (k, k) when covariances were pooled
    covariance_between: np.ndarray = None

    def summary(self):
        """A DataFrame like R's ``summary(pool(fit))``, one row per parameter."""
        table = pd.DataFrame(
            {
                "estimate": self.estimate,
                "std_error": self.std_error,
                "statistic": self.statistic,
                "df": self.df,
                "p_value": self.p_value,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "riv": self.riv,
                "lambda": self.lambda_,
                "fmi": self.fmi,
                "ubar": self.ubar,
                "b": self.b,
                "t": self.t,
            },
            index=pd.Index(self.names, name="term"),
        )
        return table[SUMMARY_COLUMNS]

    def __repr__(self):
        level = f"{1 - self.alpha:.0%}"
        shown = self.summary()[
            ["estimate", "std_error", "df", "p_value", "ci_low", "ci_high", "fmi"]
        ]
        return (
            f"Pooled over m = {self.m} imputations (Rubin's rules, {self.rule}; "
            f"{level} intervals)\n{shown.to_string(float_format=lambda v: f'{v:.4g}')}"
        )


def barnard_rubin_df(m, lam, dfcom):
    """Degrees of freedom of Barnard & Rubin (1999), in the stable form of
    R ``mice``: with tmp = (1 - lam)(1 + nu) nu,
    df = (m - 1) tmp / ((nu + 3)(m - 1) + lam^2 tmp).

    It equals (m - 1) / lam^2 (Rubin 1987) for an infinite ``dfcom`` and
    tends to nu (nu + 1) / (nu + 3) as lam -> 0 (no missing information).
    """
    lam = np.asarray(lam, dtype=float)
    if np.isinf(dfcom):
        return _rubin_df(m, lam)
    tmp = (1.0 - lam) * (1.0 + dfcom) * dfcom
    return (m - 1) * tmp / ((dfcom + 3.0) * (m - 1) + lam**2 * tmp)


def _rubin_df(m, lam):
    """(m - 1) / lam^2 (Rubin 1987, eq. 3.1.6); infinite when lam = 0."""
    with np.errstate(divide="ignore"):
        return np.where(lam > 0, (m - 1) / np.where(lam > 0, lam, 1.0) ** 2, np.inf)


def pool(
    estimates,
    variances,
    *,
    dfcom=None,
    names=None,
    rule="rubin1987",
    df_method="auto",
    alpha=0.05,
):
    """Pool m estimates of k parameters with Rubin's rules.

    Parameters
    ----------
    estimates : array-like of shape (m, k) or (m,)
        The estimates from each of the m imputed data sets.
    variances : array-like of shape (m, k), (m,) or (m, k, k)
        Their squared standard errors, or full covariance matrices (which
        :func:`pooled_wald_test` can then use).
    dfcom : float, optional
        Degrees of freedom of the complete-data analysis (n - k for a
        regression); ``None`` or ``inf`` for a large sample.
    names : list of str, optional
        Parameter names; ``x0``, ``x1``, ... by default.
    rule : {"rubin1987", "reiter2003"}, default="rubin1987"
        Missing data (Rubin), or partially synthetic data (Reiter 2003:
        t = ubar + b / m, df = (m - 1)(1 + ubar / (b / m))^2), as in mice.
    df_method : {"auto", "barnard-rubin", "rubin1987"}, default="auto"
        "auto": Barnard & Rubin (1999) when ``dfcom`` is finite, else the
        large-sample df of Rubin (1987); "rubin1987" always gives
        (m - 1) / lambda^2, the default of SAS PROC MIANALYZE.
    alpha : float, default=0.05
        1 - confidence level of the intervals.

    Returns
    -------
    PooledResult

    Notes
    -----
    qbar = mean of the estimates; ubar = mean of the variances; b = sample
    variance of the estimates (divisor m - 1); t = ubar + (1 + 1/m) b;
    riv = (1 + 1/m) b / ubar; lambda = (1 + 1/m) b / t;
    fmi = (riv + 2 / (df + 3)) / (riv + 1) (Rubin 1987, sec. 3.1).
    With b = 0 (nothing is missing, or every imputation agrees) lambda = 0,
    the Rubin df is infinite (a normal reference) and the Barnard-Rubin df is
    dfcom (dfcom + 1) / (dfcom + 3).

    These equal R ``mice::pool`` (mice 3.15.0) to a few ulps on an lm and a
    glm (tests/reference/mice_pool.json), with one deliberate difference:
    mice 3.15's ``barnard.rubin`` computes df with lambda raised to 1e-4
    when it is smaller (the ``lambda`` column it reports is not raised).  We
    do not floor, like mice's development version.  The difference only
    exists where lambda < 1e-4, i.e. the imputations barely disagree, and
    is small there: mice's df are lower than ours by a relative
    (1e-4 - lambda) / (1 - lambda) + nu_obs 1e-8 / (m - 1), about 1e-4 (for
    ``lm(age ~ 1)`` on mice's nhanes imputations, b = 0 and dfcom = 24:
    22.2200 in mice, 22.2222 here); fmi, p-values and interval ends move by
    about a relative 1e-4 df / (df + 3), 1e-3 and 1e-5 of the half-width.
    With an infinite dfcom and lambda < 1e-4, mice's df are
    (m - 1) 1e8 where ours are (m - 1) / lambda^2, infinite for b = 0; both
    mean a normal reference.

    Examples
    --------
    >>> result = pool([1.0, 1.2, 0.9], [0.04, 0.05, 0.045], dfcom=50)
    >>> result.summary().loc["x0", ["estimate", "std_error", "df", "fmi"]].round(4)
    estimate     1.0333
    std_error    0.2759
    df           8.4249
    fmi          0.5123
    Name: x0, dtype: float64
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if df_method not in DF_METHODS:
        raise ValueError(f"df_method must be one of {DF_METHODS}, got {df_method!r}")
    dfcom = _check_dfcom(dfcom)
    alpha = _check_alpha(alpha)
    Q, U = _pool_inputs(estimates, variances)
    m, k = Q.shape
    full = U.ndim == 3
    names = _check_names(names, k)
    within = U.mean(axis=0)
    ubar = np.diagonal(within).copy() if full else within
    qbar = Q.mean(axis=0)
    between = np.cov(Q, rowvar=False, ddof=1).reshape(k, k)
    b = np.diagonal(between).copy()
    t, lam, riv, df, fmi = _total_variance(m, ubar, b, dfcom, rule, df_method)
    with np.errstate(divide="ignore", invalid="ignore"):
        std_error = np.sqrt(t)
        statistic = qbar / std_error
    p_value = 2 * stats.t.sf(np.abs(statistic), df)
    margin = stats.t.ppf(1 - alpha / 2, df) * std_error
    return PooledResult(
        names=names,
        m=m,
        estimate=qbar,
        ubar=ubar,
        b=b,
        t=t,
        riv=riv,
        lambda_=lam,
        fmi=fmi,
        df=np.asarray(df, dtype=float),
        std_error=std_error,
        statistic=statistic,
        p_value=p_value,
        ci_low=qbar - margin,
        ci_high=qbar + margin,
        dfcom=dfcom,
        alpha=alpha,
        rule=rule,
        covariance_within=within if full else None,
        covariance_between=between if full else None,
    )


def _pool_inputs(estimates, variances):
    """Estimates as (m, k) and variances as (m, k) or (m, k, k), checked."""
    Q = np.asarray(estimates, dtype=float)
    U = np.asarray(variances, dtype=float)
    if Q.ndim == 1:
        Q = Q[:, None]
        U = U.reshape(len(U), 1) if U.ndim == 1 else U
    if Q.ndim != 2:
        raise ValueError(f"estimates must be (m, k) or (m,), got shape {Q.shape}")
    m, k = Q.shape
    if m < 2:
        raise ValueError(f"pooling needs at least 2 imputations, got m = {m}")
    if U.shape not in ((m, k), (m, k, k)):
        raise ValueError(
            f"variances must have shape {(m, k)} or {(m, k, k)} to match "
            f"estimates {Q.shape}, got {U.shape}"
        )
    if not (np.all(np.isfinite(Q)) and np.all(np.isfinite(U))):
        raise ValueError("estimates and variances must be finite")
    if np.any((np.diagonal(U, axis1=1, axis2=2) if U.ndim == 3 else U) < 0):
        raise ValueError("variances must be non-negative")
    return Q, U


def _total_variance(m, ubar, b, dfcom, rule, df_method):
    """(t, lambda, riv, df, fmi) per parameter from the within variance
    ``ubar`` and the between variance ``b`` (formulas in :func:`pool`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = (1 + 1 / m) * b / ubar
        if rule == "reiter2003":
            t = ubar + b / m
            lam = np.where(t > 0, (1 + 1 / m) * b / t, 0.0)
            df = np.where(b > 0, (m - 1) * (1 + ubar / (b / m)) ** 2, np.inf)
            fmi = np.full(len(b), np.nan)  # not defined for synthetic data
            return t, lam, riv, df, fmi
        t = ubar + (1 + 1 / m) * b
        lam = np.where(t > 0, (1 + 1 / m) * b / t, 0.0)
        if df_method == "rubin1987" or (df_method == "auto" and np.isinf(dfcom)):
            df = _rubin_df(m, lam)
        else:
            if np.isinf(dfcom):
                raise ValueError("df_method='barnard-rubin' needs a finite dfcom")
            df = barnard_rubin_df(m, lam, dfcom)
        fmi = (riv + 2 / (df + 3)) / (riv + 1)
    return t, lam, riv, df, fmi


@dataclass(frozen=True)
class PooledTest:
    """A pooled multi-parameter test: F(df1, df2) statistic and p-value."""

    statistic: float
    df1: float
    df2: float
    p_value: float
    riv: float  # average relative increase in variance
    method: str

    def __repr__(self):
        return (
            f"{self.method}: F = {self.statistic:.4f} on {self.df1:g} and "
            f"{self.df2:.4g} df, p-value = {self.p_value:.4g} (riv = {self.riv:.4g})"
        )


def pooled_wald_test(estimates, covariances, *, null=None, dfcom=None, names=None):
    """D1: the pooled Wald test that k parameters equal ``null`` (0).

    Li, Raghunathan & Rubin (1991): r = (1 + 1/m) tr(B inv(Ubar)) / k,
    D1 = (qbar - q0)' inv((1 + r) Ubar) (qbar - q0) / k, referred to
    F(k, v); v from the same paper, or, when the complete-data degrees of
    freedom ``dfcom`` are given, from Reiter (2007)'s full second-order
    expression exactly as R ``mitml`` 0.4-4 (``testModels``, ``.D1``) and so
    ``mice::D1`` compute it (tests/reference/mitml_tests.json).

    Parameters
    ----------
    estimates : array-like of shape (m, k) or (m,)
        The estimates of the k tested parameters in each of the m imputed
        data sets (a vector for one parameter).
    covariances : array-like of shape (m, k, k)
        Their covariance matrices.
    null : array-like of shape (k,), optional
        The hypothesised values; zeros by default.
    dfcom : float, optional
        Complete-data degrees of freedom (n - number of coefficients for a
        regression); ``None`` or ``inf`` for the large-sample test.
    names : list of str, optional
        Parameter names, used in error messages; ``x0``, ``x1``, ... by default.

    Returns
    -------
    PooledTest

    Raises
    ------
    ValueError
        If the shapes disagree, an input is not finite, ``dfcom`` is not a
        positive number, the mean within-imputation covariance Ubar is
        singular (the message names the parameters whose combination has
        zero variance), or ``dfcom`` is given where Reiter's expression has
        no valid value (see Notes).

    Notes
    -----
    With t = k (m - 1), a = r t / (t - 2), nu* = (dfcom + 1) / (dfcom + 3)
    dfcom, c0 = 1 / (t - 4), c1 = nu* - 2 (1 + a), c2 = nu* - 4 (1 + a):

        z = 1/c2 + c0 a^2 c1 / ((1 + a)^2 c2)
            + c0 (8 a^2 c1 / ((1 + a) c2^2) + 4 a^2 / ((1 + a) c2))
            + c0 (4 a^2 / (c2 c1) + 16 a^2 c1 / c2^3) + c0 8 a^2 / c2^2,

    v = 4 + 1 / z (Reiter 2007, eq. 3 and appendix; mitml's ``.D1``).  The
    first two terms alone (what mitml computed before 0.4-0, and emimpute
    0.1.0) give larger df, and smaller p-values, mostly at small m: on mice's
    nhanes imputations with m = 5, k = 2 and dfcom = 21 (the fixture's
    ``nhanes_m5_k2``), df2 = 10.62 and p = 0.126 instead of mitml's 7.29 and
    0.146; with m = 20, 16.81 instead of 16.16.
    The expression is valid for t > 4 and c2 > 0, where every term is
    positive and v > 4.  Outside (few imputations for k parameters, e.g.
    k = 1 and m <= 5; or a ``dfcom`` small against the missing information)
    mitml returns 4, NaN or a df below 4, even negative; this function
    raises a ``ValueError`` instead.  Leave ``dfcom`` unset there for the
    large-sample df, or use more imputations.  With r = 0 (identical
    estimates in every imputation) v = 4 + nu* with ``dfcom``, infinite
    without, as in mitml.
    """
    Q = np.asarray(estimates, dtype=float)
    U = np.asarray(covariances, dtype=float)
    if Q.ndim == 1:  # one parameter: m estimates
        Q = Q[:, None]
    if Q.ndim != 2:
        raise ValueError(f"estimates must be (m, k) or (m,), got shape {Q.shape}")
    m, k = Q.shape
    if U.shape != (m, k, k):
        raise ValueError(
            f"covariances must have shape {(m, k, k)} to match estimates "
            f"{Q.shape}, got {U.shape}"
        )
    if m < 2:
        raise ValueError(f"pooling needs at least 2 imputations, got m = {m}")
    if not (np.all(np.isfinite(Q)) and np.all(np.isfinite(U))):
        raise ValueError("estimates and covariances must be finite")
    names = _check_names(names, k)
    dfcom = _check_dfcom(dfcom)
    if null is None:
        q0 = np.zeros(k)
    else:
        q0 = np.asarray(null, dtype=float)
        if q0.shape != (k,):
            raise ValueError(f"null must have shape {(k,)}, got {q0.shape}")
        if not np.all(np.isfinite(q0)):
            raise ValueError("null must be finite")
    ubar = U.mean(axis=0)
    _check_positive_definite(ubar, names)
    between = np.cov(Q, rowvar=False, ddof=1).reshape(k, k)
    r = (1 + 1 / m) * np.trace(np.linalg.solve(ubar, between)) / k
    d = Q.mean(axis=0) - q0
    statistic = float(d @ np.linalg.solve((1 + r) * ubar, d) / k)
    t = k * (m - 1)
    if np.isfinite(dfcom):
        v = _reiter_df(r, t, dfcom)
    elif r == 0:
        v = np.inf
    elif t > 4:
        v = 4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2
    else:
        v = t * (1 + 1 / k) * (1 + 1 / r) ** 2 / 2
    return PooledTest(
        statistic, float(k), float(v), _f_sf(statistic, k, v), float(r), "D1 (Wald)"
    )


def _reiter_df(r, t, dfcom):
    """Denominator df of D1 given dfcom: Reiter (2007), second order, in the
    arrangement of mitml 0.4-4's ``.D1`` term by term (so that the rounding
    agrees with R's to a few ulps)."""
    if t <= 4:
        raise ValueError(
            "Reiter's (2007) small-sample df for D1 need k (m - 1) > 4, got "
            f"k (m - 1) = {t}: use more imputations, or dfcom=None for the "
            "large-sample df of Li, Raghunathan & Rubin (1991)"
        )
    a = r * t / (t - 2)
    vstar = (dfcom + 1) / (dfcom + 3) * dfcom
    c0 = 1 / (t - 4)
    c1 = vstar - 2 * (1 + a)
    c2 = vstar - 4 * (1 + a)
    if c2 <= 0:
        raise ValueError(
            "dfcom is outside the range of Reiter's (2007) small-sample df for "
            f"D1: they need (dfcom + 1) / (dfcom + 3) dfcom = {vstar:.4g} to "
            f"exceed 4 (1 + a) = {4 * (1 + a):.4g}, a = r k (m - 1) / "
            f"(k (m - 1) - 2) with r = {r:.4g} the relative increase in "
            "variance; use more imputations, or dfcom=None for the "
            "large-sample df of Li, Raghunathan & Rubin (1991)"
        )
    z = (
        1 / c2
        + c0 * (a**2 * c1 / ((1 + a) ** 2 * c2))
        + c0 * (8 * a**2 * c1 / ((1 + a) * c2**2) + 4 * a**2 / ((1 + a) * c2))
        + c0 * (4 * a**2 / (c2 * c1) + 16 * a**2 * c1 / c2**3)
        + c0 * (8 * a**2 / c2**2)
    )
    return 4 + 1 / z


def pooled_chi2_test(chi2_statistics, k):
    """D2: pool m chi-square statistics of a k-degree-of-freedom test.

    Li, Meng, Raghunathan & Rubin (1991): r = (1 + 1/m) var(sqrt(d_l)),
    D2 = (mean(d)/k - (m + 1)/(m - 1) r) / (1 + r), referred to
    F(k, k^(-3/m) (m - 1) (1 + 1/r)^2), as R ``mitml`` (``.D2``).  Less
    accurate than D1, but needs only the statistics (likelihood-ratio or
    Wald) of each analysis.

    Parameters
    ----------
    chi2_statistics : array-like of shape (m,)
        Non-negative, finite.
    k : int
        Degrees of freedom of each chi-square statistic, a positive integer.

    Returns
    -------
    PooledTest
    """
    d = np.asarray(chi2_statistics, dtype=float)
    if d.ndim != 1:
        raise ValueError(
            f"chi2_statistics must be 1-D (one per imputation), got shape {d.shape}"
        )
    m = len(d)
    if m < 2:
        raise ValueError(f"pooling needs at least 2 imputations, got m = {m}")
    if not np.all(np.isfinite(d)):
        raise ValueError("chi-square statistics must be finite")
    if np.any(d < 0):
        raise ValueError("chi-square statistics must be non-negative")
    k = _check_k(k)
    r = (1 + 1 / m) * np.var(np.sqrt(d), ddof=1)
    statistic = (d.mean() / k - (m + 1) / (m - 1) * r) / (1 + r)
    v = np.inf if r == 0 else k ** (-3 / m) * (m - 1) * (1 + 1 / r) ** 2
    return PooledTest(
        float(statistic), float(k), float(v), _f_sf(statistic, k, v), float(r), "D2"
    )


def _check_dfcom(dfcom):
    """None -> inf; otherwise a positive number (inf allowed), as a float."""
    if dfcom is None:
        return np.inf
    if isinstance(dfcom, np.ndarray) and dfcom.ndim == 0:
        dfcom = dfcom.item()
    if isinstance(dfcom, bool) or not isinstance(dfcom, numbers.Real):
        raise TypeError(f"dfcom must be a number or None, got {type(dfcom).__name__}")
    dfcom = float(dfcom)
    if not dfcom > 0:  # also catches NaN
        raise ValueError(
            "dfcom must be a positive number (or None/inf for a large sample), "
            f"got {dfcom}"
        )
    return dfcom


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a number in (0, 1), got {type(alpha).__name__}")
    alpha = float(alpha)
    if not 0 < alpha < 1:  # also catches NaN
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def _check_k(k):
    """A positive integer; integral floats such as 3.0 are accepted."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"k must be a positive integer, got {k!r}")
    if isinstance(k, numbers.Integral):
        k = int(k)
    elif float(k).is_integer():
        k = int(k)
    else:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    return k


def _check_names(names, k):
    if names is None:
        return [f"x{j}" for j in range(k)]
    names = list(names)
    if len(names) != k:
        raise ValueError(
            f"got {len(names)} names for {k} parameters; give one per parameter"
        )
    return names


def _check_positive_definite(ubar, names):
    """Refuse a singular (or indefinite) mean within-imputation covariance,
    naming the parameters of the linear combination with (near) zero
    variance.  Singular means: smallest eigenvalue at most k eps times the
    largest, the rank tolerance of ``numpy.linalg.matrix_rank``."""
    k = len(ubar)
    eigenvalues, eigenvectors = np.linalg.eigh((ubar + ubar.T) / 2)
    largest = max(eigenvalues[-1], 0.0)
    if eigenvalues[0] > k * np.finfo(float).eps * largest:
        return
    direction = eigenvectors[:, 0]
    involved = np.flatnonzero(np.abs(direction) > np.sqrt(np.finfo(float).eps))
    listed = ", ".join(repr(names[j]) for j in involved)
    raise ValueError(
        "the mean within-imputation covariance Ubar of the tested parameters is "
        f"singular or not positive definite (smallest eigenvalue {eigenvalues[0]:.3g}, "
        f"largest {eigenvalues[-1]:.3g}): a linear combination of {listed} has zero "
        "variance in every imputation; drop aliased or fixed parameters from the test"
    )


def _f_sf(statistic, k, v):
    """P(F(k, v) > statistic); with v infinite, F(k, inf) = chi2(k) / k."""
    if np.isinf(v):
        return float(stats.chi2.sf(statistic * k, k))
    return float(stats.f.sf(statistic, k, v))

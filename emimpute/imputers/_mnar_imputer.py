"""MNARSelectionImputer: imputation under a selection model (estimator shell)."""

import numbers
import warnings
from functools import partial

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._registry import register_imputer
from emimpute.models._normal import observed_column_moments
from emimpute.models._selection import (
    PSI_LIMIT,
    SelectionCoefficients,
    SelectionEMResult,
    SelectionModel,
    SelectionParams,
    fit_selection_em,
)
from emimpute.models._selection_impute import selection_moments
from emimpute.utils._columns import (
    column_position,
    column_positions,
    describe_columns,
    feature_names,
)
from emimpute.utils._markdown import markdown_table
from emimpute.utils._random import child_seeds
from emimpute.utils._sklearn_compat import Hidden, StrOptions
from emimpute.utils._validation import finite_number

# PSI_LIMIT (emimpute.models._selection): the largest |psi| allowed, per
# standard deviation of the column's observed values, fixed or estimated.
# At 100, P(missing) goes from Phi(-5) to Phi(5) within a tenth of a standard
# deviation: a cut-off for every practical purpose.  (When the E-step had
# only Gauss-Hermite nodes, at most 1,000, psi = 2400 per sd did not converge
# in 500 iterations on 300 rows (39 s), psi = 8e7 ran 140 s to a wrong mean
# and 1e300 overflowed; steep rows now take a composite rule,
# emimpute.models._selection_cell, but the limit still marks a step.)

# Parameters renamed in 0.2 (one name per concept: the kernels' names), kept
# for one release as deprecated aliases: old name -> new name.
RENAMED = {"selection": "link", "mnar_coef": "psi"}
_NOT_GIVEN = Hidden(StrOptions({"deprecated"}))


@register_imputer(
    "mnar", "multivariate normal, missing not at random (selection model)"
)
class MNARSelectionImputer(BaseEMImputer):
    """Impute values that are missing not at random, with a selection model.

    The data are multivariate normal, and each column named in
    ``mnar_features`` goes missing with probability

        P(x_j missing | x) = F(alpha_j + psi_j x_j + gamma_j' x_c),

    F the probit or logistic link and x_c the columns that are never missing
    in ``fit``.  ``psi_j`` is the MNAR coefficient: 0 means missing at random
    (and then the mean and covariance equal :class:`EMImputer`'s); psi_j > 0
    means larger values of x_j go missing more often.  Both parts are fitted
    together by EM.  ``transform`` fills each missing cell with its
    conditional mean given the row's observed cells *and the fact that it is
    missing*, which is what moves MNAR imputations away from MAR ones.

    psi is identified only through the normality of the data model.  Fix it
    with ``psi`` over a grid of plausible values and report how the
    conclusions move: that sensitivity analysis is the defensible use of
    this model.

    Parameters
    ----------
    mnar_features : list of str or int, or None, default=None
        The columns with a missingness model (names for DataFrames, else
        positions).  None: every column with a missing value in ``fit``.
        The others are treated as missing at random.
    link : {"probit", "logit"}, default="probit"
        The link F.
    psi : float, dict or None, default=None
        Fix psi instead of estimating it: one number for every MNAR column,
        or a dict from column (name or position) to number, in the column's
        units (change of the selection index per unit of x_j).  Finite, and
        at most 100 in absolute value per standard deviation of the
        column's observed values (a deterministic cut-off already).
    gamma : bool, default=True
        Whether the missingness models include the never-missing columns.
    missing_values : float, default=np.nan
        The placeholder of missing cells.
    ridge : float, default=0.0
        Ridge prior on the covariance (pseudo-observations), as in
        EMImputer; where 0 gives no maximum likelihood estimate the smallest
        proper prior is added, with a
        :class:`~emimpute.exceptions.RegularisationWarning`.
    max_iter : int, default=500
    tol : float, default=1e-6
        Stop when the relative change of the log-likelihood and the largest
        change of the parameters (standardised scale) are below ``tol``.
    accelerate : bool, default=True
        SQUAREM acceleration with a monotone fallback.
    sample_posterior : bool, default=False
        In ``transform``, draw the missing cells from their distribution
        given the observed cells and the missingness instead of using its
        mean.
    random_state : int, RandomState instance or None, default=None
        Seeds the quasi-random nodes of rows with three or more missing MNAR
        cells under the logit link (four or more under the probit) and the
        draws of ``sample_posterior``.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the columns
        that had missing values in ``fit``.
    keep_empty_features : bool, default=True
        Columns with no observed value in ``fit`` are left out of the model
        (with a warning) and kept by ``transform``, filled with 0 (as in
        :class:`~sklearn.impute.SimpleImputer` with
        ``keep_empty_features=True``); with False they are dropped.  True
        by default, unlike :class:`EMImputer`: this imputer has always
        returned X's columns (one output column per input column).
    copy : bool, default=True
        If False, ``transform`` imputes in place when X is a writeable float
        NumPy array with NaN as the missing marker.
    verbose : int, default=0
    warm_start : bool, default=False
        As in scikit-learn's ``GaussianMixture``: when True, a second
        ``fit`` starts EM at the previous fit's solution (its means,
        covariance and missingness models; a held psi takes its new value)
        instead of the MAR start and the short fits over psi.  With psi
        estimated, that saves most of the iterations when the data changed
        a little; along a grid of fixed psi values
        (:func:`emimpute.sensitivity.sensitivity_analysis`) it saves the MAR
        start, as a held psi needs about as many iterations from either
        start (its EM converges in a few SQUAREM cycles).  Used only when
        the previous fit modelled the same columns: the same non-empty
        columns, MNAR columns, covariates and link; otherwise ``fit``
        starts from scratch, silently, as with False.  With psi estimated,
        a warm start climbs to the mode of the likelihood nearest the
        previous fit, where a cold fit would pick the best of its starts.
    selection : {"probit", "logit"}
        Deprecated alias of ``link`` (renamed in 0.2, removed in 0.3).
    mnar_coef : float, dict or None
        Deprecated alias of ``psi`` (renamed in 0.2, removed in 0.3).

    Attributes
    ----------
    mean_, covariance_ : ndarrays
        The normal data model (covariance with divisor n; NaN for columns
        with no observed value).
    selection_coef_ : pandas.DataFrame
        One row per MNAR column: ``intercept``, ``psi``, one ``gamma[...]``
        column per covariate, and ``psi_fixed``.
    mnar_features_ : ndarray of int
        Positions of the columns with a missingness model.
    covariates_ : ndarray of int
        Positions of the never-missing columns in those models.
    ridge_ : float
        The prior strength used (``ridge``, or the automatic one).
    loglik_ : float
        Observed-data log-likelihood (data and missingness) at the estimate.
    loglik_path_ : ndarray
    n_iter_ : int
    converged_ : bool
    indicator_ : MissingIndicator or None
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    See Also
    --------
    EMImputer : The same data model under MAR.

    Notes
    -----
    The E-step reweights each row's conditional normal by the missingness
    probabilities: exactly (Gauss-Hermite quadrature, error about 1e-10) for
    a row with one MNAR cell missing, on a product grid for two, with fixed
    scrambled Sobol points for more.  The M-step updates the normal part and
    each weighted probit/logit regression (see ``emimpute/models/_selection.py``).
    With one incomplete column and the probit link this is Heckman's (1979)
    selection model, and the fit is its maximum likelihood estimate.

    ``conditional_moments`` gives the mean and variance of each missing cell
    given the row's observed cells *and* its missingness (the reweighted
    distribution, whose means ``transform`` uses and which
    ``sample_posterior`` draws from).  ``score_samples`` gives each row's
    log-likelihood under the whole model: the normal density of its
    observed cells times the probability of its pattern of missingness
    given them; over the rows of ``fit`` it sums to ``loglik_``.  A
    covariate missing only at transform is MAR: its variance is the normal
    conditional one, and the missingness models are evaluated at its
    conditional mean (a plug-in).  Its
    likelihood can have several modes in psi: the fit starts from the best
    of short runs with psi held at -1, 0 and 1 standard deviations, and
    ``summary`` and a grid of ``psi`` values show how flat it is.

    References
    ----------
    Heckman, J. J. (1979). *Econometrica* 47, 153-161.
    Little, R. J. A. & Rubin, D. B. (2002). *Statistical Analysis with Missing
    Data*, 2nd ed., ch. 15.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import ndtr
    >>> from emimpute import MNARSelectionImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=4000)
    >>> X[rng.random(4000) < ndtr(X[:, 0]), 0] = np.nan  # high values hidden
    >>> imputer = MNARSelectionImputer(mnar_features=[0], gamma=False).fit(X)
    >>> round(float(imputer.mean_[0]), 2)  # EMImputer (MAR) gives -0.45
    -0.0
    >>> round(float(imputer.selection_coef_.loc["x0", "psi"]), 2)
    1.02

    Here the missingness depends on x0 alone, and the model says so
    (``gamma=False``).  With ``gamma=True`` the model may instead explain
    it through x1, which is correlated with x0: on these data the two
    explanations fit almost equally well (the log-likelihood at psi = 1 is
    only 4 below that at psi = 0), which is why psi should be varied, not
    trusted.
    """

    _parameter_constraints = {
        **BaseEMImputer._parameter_constraints,
        "mnar_features": [list, tuple, np.ndarray, None],
        "link": [StrOptions({"probit", "logit"})],
        "psi": [numbers.Real, dict, None],
        "gamma": ["boolean"],
        "warm_start": ["boolean"],
        "selection": [
            StrOptions({"probit", "logit"}),
            Hidden(StrOptions({"deprecated"})),
        ],
        "mnar_coef": [numbers.Real, dict, None, Hidden(StrOptions({"deprecated"}))],
    }
    # Variances and row log-likelihoods given the missingness
    # (emimpute.models._selection_impute.selection_moments).
    _provides = frozenset({"variance", "loglik"})
    _convergence_advice = (
        "Increase max_iter; if psi is barely identified (few rows, or little "
        "information in the shape of the observed values), fix it with psi."
    )
    _state_fields = BaseEMImputer._state_fields | {"mean_", "covariance_", "selection"}
    # Files of the first release have no empty_features (no empty column
    # was left out then) and name link and psi by their old names.
    _optional_state = frozenset({"ridge_", "empty_features"})
    _renamed_params = RENAMED

    def __init__(
        self,
        mnar_features=None,
        *,
        link="probit",
        psi=None,
        gamma=True,
        missing_values=np.nan,
        ridge=0.0,
        max_iter=500,
        tol=1e-6,
        accelerate=True,
        sample_posterior=False,
        random_state=None,
        add_indicator=False,
        keep_empty_features=True,
        copy=True,
        verbose=0,
        warm_start=False,
        selection="deprecated",
        mnar_coef="deprecated",
    ):
        super().__init__(
            missing_values=missing_values,
            ridge=ridge,
            max_iter=max_iter,
            tol=tol,
            accelerate=accelerate,
            sample_posterior=sample_posterior,
            random_state=random_state,
            add_indicator=add_indicator,
            keep_empty_features=keep_empty_features,
            copy=copy,
            verbose=verbose,
        )
        self.mnar_features = mnar_features
        self.link = link
        self.psi = psi
        self.gamma = gamma
        self.warm_start = warm_start
        self.selection = selection
        self.mnar_coef = mnar_coef

    # ------------------------------------------------------- parameters

    def _check_params(self):
        """Resolve the deprecated aliases; psi must be finite before any work
        on X (NaN failed deep in the quadrature, inf ran for minutes)."""
        self._psi = self.psi
        for old, new in RENAMED.items():
            value = getattr(self, old)
            if isinstance(value, str) and value == "deprecated":
                continue
            warnings.warn(
                f"{type(self).__name__}: the parameter {old!r} was renamed "
                f"{new!r} in 0.2 and will be removed in 0.3; use {new}=...",
                FutureWarning,
                stacklevel=4,
            )
            if new == "psi":
                self._psi = value
        if isinstance(self._psi, numbers.Real):
            finite_number(self._psi, "psi")

    def _resolved_link(self):
        """``link``, or the deprecated ``selection`` when given."""
        return self.link if self.selection == "deprecated" else self.selection

    def _mnar_positions(self, has_missing, valid, names):
        """Positions among the non-empty columns of the MNAR columns;
        ``has_missing`` says which of those columns have a missing cell."""
        if self.mnar_features is None:
            return np.flatnonzero(has_missing)
        positions = column_positions(names, self.mnar_features, "mnar_features")
        empty = [j for j in positions if not valid[j]]
        if empty:
            raise ValueError(
                f"no observed value in {describe_columns(self, empty)} of "
                "mnar_features: there is nothing to model; drop it."
            )
        among_valid = (np.cumsum(valid) - 1)[positions]
        complete = [
            j for j, v in zip(positions, among_valid, strict=True) if not has_missing[v]
        ]
        if complete:
            raise ValueError(
                f"no missing value in {describe_columns(self, complete)} of "
                "mnar_features: a missingness model needs missing cells to fit."
            )
        return among_valid

    def _fixed_psi(self, mnar, scale, valid, names):
        """{position among the non-empty columns: psi in data units}, each
        checked against :data:`PSI_LIMIT` per standard deviation."""
        if self._psi is None:
            return None
        columns = np.flatnonzero(valid)  # position among all, per valid one
        if isinstance(self._psi, numbers.Real):
            value = finite_number(self._psi, "psi")
            fixed = {int(v): value for v in mnar}
            where = dict.fromkeys(fixed, "psi")
        else:
            fixed, where = {}, {}
            for column, value in self._psi.items():
                value = finite_number(value, f"psi[{column!r}]")
                j = column_position(names, column, "psi")
                v = int((np.cumsum(valid) - 1)[j])
                if not valid[j] or v not in mnar:
                    raise ValueError(
                        f"psi[{column!r}] is given for "
                        f"{describe_columns(self, [j])}, which has no "
                        "missingness model (see mnar_features)."
                    )
                fixed[v], where[v] = value, f"psi[{column!r}]"
        for v, value in fixed.items():
            _check_psi_limit(
                value, scale[v], where[v], describe_columns(self, [columns[v]])
            )
        return fixed

    # ------------------------------------------------------- model hooks

    def _kernel(self, X, *, center, scale, rng):
        valid = ~self._empty_features
        has_missing = np.isnan(X).any(axis=0)
        names = feature_names(self)
        settings = self._selection_settings(has_missing, scale, valid, names, rng)
        init = self._warm_start_from(has_missing, valid, settings)
        return partial(fit_selection_em, **settings, init=init), {"X": X}

    def _warm_start_from(self, has_missing, valid, settings):
        """The previous fit's kernel result when ``warm_start`` applies to
        this fit (the same non-empty columns, MNAR columns, covariates and
        link), else None: a cold start."""
        previous = getattr(self, "_result", None)
        if not self.warm_start or previous is None:
            return None
        if not np.array_equal(getattr(self, "_valid_columns", None), valid):
            return None
        # The covariates the kernel will model: X's never-missing columns
        # (SelectionModel.from_data).  Checked here so that a change falls
        # back to a cold fit instead of the ValueError of
        # SelectionModel.warm_start.
        if settings["gamma"]:
            covariates = np.flatnonzero(~has_missing)
        else:
            covariates = np.zeros(0, dtype=int)
        same = (
            np.array_equal(previous.mnar, settings["mnar"])
            and np.array_equal(previous.covariates, covariates)
            and previous.link == settings["link"]
        )
        return previous if same else None

    def _selection_settings(self, has_missing, scale, valid, names, rng):
        """The arguments of the selection kernel (fit_selection_em,
        SelectionModel.from_data) other than X and ridge; ``has_missing``
        says which of the non-empty columns have a missing cell."""
        mnar = self._mnar_positions(has_missing, valid, names)
        return {
            "mnar": mnar,
            "link": self._resolved_link(),
            "psi": self._fixed_psi(mnar, scale, valid, names),
            "gamma": self.gamma,
            "random_state": child_seeds(rng),
        }

    def _build_model(self, X):
        """The selection model of X (float, NaN at missing cells, every
        column observed somewhere) and its start, with this estimator's
        settings: the model :meth:`fit` runs.  Columns are named as in
        ``fit`` when fitted on X's columns, else by position."""
        self._check_params()
        X = np.asarray(X, dtype=np.float64)
        p = X.shape[1]
        names = [f"x{j}" for j in range(p)]
        if getattr(self, "n_features_in_", None) == p:
            names = feature_names(self)
        _, _, scale, _, _ = observed_column_moments(X)
        settings = self._selection_settings(
            np.isnan(X).any(axis=0), scale, np.ones(p, dtype=bool), names,
            self.random_state,
        )  # fmt: skip
        model = SelectionModel.from_data(X, ridge=self.ridge, **settings)
        return model, model.start()

    def _store_result(self, result, valid):
        p, columns = len(valid), np.flatnonzero(valid)
        self.mean_ = np.full(p, np.nan)
        self.covariance_ = np.full((p, p), np.nan)
        self._result = result
        self._valid_columns = valid.copy()  # what warm_start checks
        if result is None:
            self.mnar_features_ = self.covariates_ = np.zeros(0, dtype=int)
            self.selection_coef_ = pd.DataFrame(
                columns=["intercept", "psi", "psi_fixed"]
            )
            return
        self.mean_[valid] = result.mean
        self.covariance_[np.ix_(valid, valid)] = result.covariance
        self.mnar_features_ = columns[result.mnar]
        self.covariates_ = columns[result.covariates]
        self.selection_coef_ = self._coefficient_table(result)
        if result.steep_pairs:
            self._warn_steep_pairs(result.steep_pairs, columns)

    def _warn_steep_pairs(self, steep_pairs, columns):
        """Say which pairs of MNAR columns the logit E-step integrated
        approximately (rows with both missing, a steep selection curve)."""
        names = feature_names(self)
        pairs = "; ".join(
            f"both {names[columns[a]]} and {names[columns[b]]} (psi s up to "
            f"{slope:.1f})"
            for a, b, slope in steep_pairs
        )
        warnings.warn(
            f"{type(self).__name__}: in rows missing {pairs}, the selection "
            "curve is too steep for the logit E-step's grid of at most 24 "
            "nodes per axis: those rows' log-likelihood terms are off by "
            "about 1e-5 each at psi s = 2, 4e-4 at 3 and 0.04 at 6, so "
            "loglik_ and the estimates are approximate. link='probit' "
            "integrates such rows in closed form.",
            UserWarning,
            stacklevel=4,
        )

    def _coefficient_table(self, result):
        names = feature_names(self)
        columns = np.flatnonzero(~self._empty_features)
        table = pd.DataFrame(
            {"intercept": result.intercept, "psi": result.psi},
            index=[names[j] for j in columns[result.mnar]],
        )
        for i, j in enumerate(columns[result.covariates]):
            table[f"gamma[{names[j]}]"] = result.gamma[:, i]
        table["psi_fixed"] = result.psi_fixed
        return table

    def _conditional(self, X, *, rng=None, want_variance=False, want_loglik=False):
        """Completed X (non-empty columns) given the observed cells and the
        missingness, with variances and row log-likelihoods on request
        (:func:`~emimpute.models._selection_impute.selection_moments`).  A
        covariate of the missingness models may be missing here, as in a
        test fold of cross-validation: those cells are imputed under MAR,
        and the missingness models use that value, with one warning naming
        the columns."""
        gaps = [
            j
            for j, v in zip(self.covariates_, self._result.covariates, strict=True)
            if np.isnan(X[:, v]).any()
        ]
        if gaps:
            # The selection models describe why the MNAR columns are
            # missing, not why a covariate is: MAR is the only assumption
            # the fit supports for it.  Refitting with such rows in the
            # training data models it instead.
            warnings.warn(
                f"{type(self).__name__}: missing values in "
                f"{describe_columns(self, gaps)}, never missing in fit and so a "
                "covariate of the missingness models, are imputed as missing "
                "at random from the fitted normal model (their conditional "
                "mean given each row's observed cells, which the missingness "
                "models then use, also in score_samples); fit on data with "
                "such rows to model them instead.",
                UserWarning,
                stacklevel=4,
            )
        moments = selection_moments(
            X, self._result, rng=rng, want_variance=want_variance,
            want_loglik=want_loglik,
        )  # fmt: skip
        moments.completed = moments.completed.astype(X.dtype, copy=False)
        return moments

    # ------------------------------------------------------------ summary

    def summary(self):
        """The fitted missingness models, one row per MNAR column.

        Returns
        -------
        pandas.DataFrame
            ``selection_coef_`` (``intercept``, ``psi``, ``gamma[...]``,
            ``psi_fixed``); ``attrs`` holds the link, the log-likelihood,
            the iterations and whether EM converged.  The same in words is
            the estimator's paragraph of :func:`emimpute.report.record`.
        """
        check_is_fitted(self)
        table = self.selection_coef_.copy()
        table.attrs.update(
            link=self._resolved_link(),
            loglik=float(self.loglik_),
            n_iter=int(self.n_iter_),
            converged=bool(self.converged_),
        )
        return table

    def _record(self):
        return "\n".join(
            [
                "**MNARSelectionImputer** (missing not at random, selection model)",
                "",
                _describe_fit(self),
                "",
                markdown_table(self.selection_coef_),
            ]
        )

    # ----------------------------------------------------- registry hooks

    def _fitted_state(self):
        r = self._result
        std = r.standardised
        return {
            **super()._fitted_state(),
            "mean_": self.mean_,
            "covariance_": self.covariance_,
            "selection": {
                "mnar": r.mnar.tolist(),
                "covariates": r.covariates.tolist(),
                "intercept": r.intercept,
                "psi": r.psi,
                "gamma": r.gamma,
                "psi_fixed": r.psi_fixed.tolist(),
                "link": r.link,
                "center": r.center,
                "scale": r.scale,
                "standardised": {
                    "mean": std.mean,
                    "covariance": std.covariance,
                    "intercept": std.coef.intercept,
                    "psi": std.coef.psi,
                    "gamma": std.coef.gamma,
                },
                "node_seed": r.node_seed,
            },
        }

    def _restore_fitted_state(self, state, check):
        super()._restore_fitted_state(state, check)
        valid = ~self._empty_features
        p = self.n_features_in_
        mean = check.array(state["mean_"], "mean_", (p,), allow_nan=~valid)
        covariance = check.covariance(state["covariance_"], "covariance_", p, valid)
        selection = _SelectionState(check, state["selection"], int(valid.sum()))
        self._store_result(
            selection.result(
                mean[valid],
                covariance[np.ix_(valid, valid)],
                self._resolved_link(),
                self.loglik_,
                self.n_iter_,
                self.converged_,
            ),
            valid,
        )

    @classmethod
    def _cli_options(cls, group):
        group.add_argument(
            "--mnar-features",
            help="comma-separated columns with a missingness model "
            "(--method mnar; default: all incomplete)",
        )
        group.add_argument(
            "--link",
            choices=["probit", "logit"],
            help="link of the missingness model (--method mnar; default probit)",
        )

    @classmethod
    def _params_from_cli(cls, args):
        features = getattr(args, "mnar_features", None)
        return {
            "mnar_features": features.split(",") if features else None,
            "link": getattr(args, "link", None) or "probit",
        }


def _check_psi_limit(value, scale, where, column):
    """ValueError when |psi| is beyond :data:`PSI_LIMIT` per standard
    deviation of the column's observed values (``scale``)."""
    # Per standard deviation of the observed values, the scale on which the
    # fit works; a non-finite scale (one value) is regularised elsewhere.
    per_sd = abs(value) * scale if np.isfinite(scale) else abs(value)
    if not per_sd <= PSI_LIMIT:
        raise ValueError(
            f"{where} = {value:g} for {column} is {per_sd:.3g} per standard "
            f"deviation of its observed values; use at most {PSI_LIMIT:g} "
            "there.  Beyond that the missingness is a deterministic cut-off in "
            "the value, which the quadrature of the E-step cannot resolve (EM "
            "stalls, or overflows)."
        )


def _describe_fit(imputer):
    """The assumed mechanism and the fitted coefficients, in words."""
    names = feature_names(imputer)
    link = imputer.summary().attrs["link"]
    lines = [
        f"MNAR selection model ({link} link), fitted by EM: "
        f"{'converged' if imputer.converged_ else 'NOT converged'} after "
        f"{imputer.n_iter_} iterations, log-likelihood {imputer.loglik_:.4f}.",
        f"Data model: multivariate normal over {imputer.n_features_in_} columns.",
    ]
    function = "Phi" if link == "probit" else "logistic"
    for name, row in imputer.selection_coef_.iterrows():
        lines.append(_describe_model(name, row, names, imputer.covariates_, function))
    mar = [
        names[j]
        for j in range(imputer.n_features_in_)
        if j not in imputer.mnar_features_
    ]
    if mar:
        lines.append(
            "Assumed missing at random (no missingness model): " + ", ".join(mar) + "."
        )
    lines.append(
        "psi is identified only through the normality of the data model: "
        "refit with psi over a range of values and report how the "
        "conclusions move."
    )
    return "\n".join(lines)


def _describe_model(name, row, names, covariates, function):
    """One sentence: the missingness model of one column."""
    terms = [f"{row['intercept']:.4g}", f"{row['psi']:+.4g} * {name}"]
    terms += [f"{row[f'gamma[{names[j]}]']:+.4g} * {names[j]}" for j in covariates]
    how = "fixed (sensitivity analysis)" if row["psi_fixed"] else "estimated"
    if row["psi"] > 0:
        direction = f"larger values of {name} are more likely to be missing"
    elif row["psi"] < 0:
        direction = f"smaller values of {name} are more likely to be missing"
    else:
        direction = f"{name} is missing at random given the covariates"
    return (
        f"Missingness of {name}: P(missing) = {function}({' '.join(terms)}); "
        f"psi {how}: {direction}."
    )


class _SelectionState:
    """The ``selection`` field of a model file, checked (every error names
    the field) and turned back into the kernel's result.  ``p`` counts the
    modelled (non-empty) columns, on which the positions are."""

    FIELDS = frozenset(
        {"mnar", "covariates", "intercept", "psi", "gamma", "psi_fixed", "link",
         "center", "scale", "standardised"}
    )  # fmt: skip
    STANDARDISED = frozenset({"mean", "covariance", "intercept", "psi", "gamma"})

    def __init__(self, check, node, p):
        # node_seed (the Sobol nodes' seed) is absent from files of 0.1.
        check.keys(node, "selection", self.FIELDS, {"node_seed"})
        check.keys(node["standardised"], "selection.standardised", self.STANDARDISED)
        self.check, self.node, self.p = check, node, p
        self.mnar = check.positions(node["mnar"], "selection.mnar", p)
        self.covariates = check.positions(node["covariates"], "selection.covariates", p)
        if np.intersect1d(self.mnar, self.covariates).size:
            raise check.error("selection.covariates", "overlaps selection.mnar")

    def vector(self, prefix, key, length):
        node = self.node if prefix == "selection" else self.node["standardised"]
        return self.check.array(node[key], f"{prefix}.{key}", (length,))

    def gamma(self, prefix):
        """A JSON array of k rows of c numbers ([[]] when c is 0)."""
        node = self.node if prefix == "selection" else self.node["standardised"]
        k, c = len(self.mnar), len(self.covariates)
        if c == 0 and node["gamma"] in ([], [[]] * k):  # no covariate
            return np.zeros((k, 0))
        return self.check.array(node["gamma"], f"{prefix}.gamma", (k, c))

    def coefficients(self, prefix):
        k = len(self.mnar)
        return (
            self.vector(prefix, "intercept", k),
            self.vector(prefix, "psi", k),
            self.gamma(prefix),
        )

    def result(self, mean, covariance, link, loglik, n_iter, converged):
        check, node, p = self.check, self.node, self.p
        if node["link"] != link:
            raise check.error(
                "selection.link", f"is {node['link']!r}; params.link is {link!r}"
            )
        scale = self.vector("selection", "scale", p)
        if (scale <= 0).any():
            raise check.error("selection.scale", "must be positive")
        std = "selection.standardised"
        standardised = SelectionParams(
            self.vector(std, "mean", p),
            check.covariance(
                node["standardised"]["covariance"], f"{std}.covariance", p
            ),
            SelectionCoefficients(*self.coefficients(std)),
        )
        seed = node.get("node_seed")
        if seed is not None:
            seed = check.integer(seed, "selection.node_seed")
        intercept, psi, gamma = self.coefficients("selection")
        return SelectionEMResult(
            mean=mean,
            covariance=covariance,
            mnar=self.mnar,
            covariates=self.covariates,
            intercept=intercept,
            psi=psi,
            gamma=gamma,
            psi_fixed=check.flags(node["psi_fixed"], "selection.psi_fixed", len(psi)),
            link=node["link"],
            center=self.vector("selection", "center", p),
            scale=scale,
            standardised=standardised,
            loglik=loglik,
            loglik_path=np.array([]),
            n_iter=n_iter,
            converged=converged,
            node_seed=seed,
        )

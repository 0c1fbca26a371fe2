"""MNARSelectionImputer: imputation under a selection model (estimator shell)."""

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from emimpute.engine._model import SingularCovarianceError
from emimpute.engine._regularise import (
    degenerate_columns,
    describe_problems,
    fit_with_automatic_ridge,
)
from emimpute.exceptions import RegularisationWarning
from emimpute.models._normal import observed_column_moments, standardising_scale
from emimpute.models._selection import fit_selection_em, impute_selection
from emimpute.utils._progress import iteration_reporter, report_end
from emimpute.utils._validation import (
    check_scale,
    describe_columns,
    feature_names,
    finite_number,
    is_nan_marker,
    validate_numeric,
)

# Largest |psi| allowed in mnar_coef, per standard deviation of the column's
# observed values.  At 100, P(missing) goes from Phi(-5) to Phi(5) within a
# tenth of a standard deviation: a cut-off for every practical purpose.
# Above about 1000 the Gauss-Hermite nodes (at most MAX_NODES in
# emimpute.models._selection_cell) no longer resolve the step: measured on 300 rows,
# psi = 2400 per sd did not converge in 500 iterations (39 s), psi = 8e7 ran
# 140 s to a wrong mean and 1e300 overflowed.
PSI_LIMIT = 100.0


class MNARSelectionImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
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
    with ``mnar_coef`` over a grid of plausible values and report how the
    conclusions move: that sensitivity analysis is the defensible use of
    this model.

    Parameters
    ----------
    mnar_features : list of str or int, or None, default=None
        The columns with a missingness model (names for DataFrames, else
        positions).  None: every column with a missing value in ``fit``.
        The others are treated as missing at random.
    selection : {"probit", "logit"}, default="probit"
        The link F.
    mnar_coef : float, dict or None, default=None
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
        Seeds the quasi-random nodes of rows with three or more MNAR cells
        and the draws of ``sample_posterior``.
    verbose : int, default=0

    Attributes
    ----------
    mean_, covariance_ : ndarrays
        The normal data model (covariance with divisor n).
    selection_coef_ : pandas.DataFrame
        One row per MNAR column: ``intercept``, ``psi``, one ``gamma[...]``
        column per covariate, and ``psi_fixed``.
    mnar_features_ : ndarray of int
        Positions of the columns with a missingness model.
    covariates_ : ndarray of int
        Positions of the never-missing columns in those models.
    loglik_ : float
        Observed-data log-likelihood (data and missingness) at the estimate.
    loglik_path_ : ndarray
    n_iter_ : int
    converged_ : bool
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
    selection model, and the fit is its maximum likelihood estimate.  Its
    likelihood can have several modes in psi: the fit starts from the best
    of short runs with psi held at -1, 0 and 1 standard deviations, and
    ``summary`` and a grid of ``mnar_coef`` values show how flat it is.

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
        "mnar_features": [list, tuple, np.ndarray, None],
        "selection": [StrOptions({"probit", "logit"})],
        "mnar_coef": [numbers.Real, dict, None],
        "gamma": ["boolean"],
        "missing_values": [numbers.Real],
        "ridge": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "accelerate": ["boolean"],
        "sample_posterior": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        mnar_features=None,
        *,
        selection="probit",
        mnar_coef=None,
        gamma=True,
        missing_values=np.nan,
        ridge=0.0,
        max_iter=500,
        tol=1e-6,
        accelerate=True,
        sample_posterior=False,
        random_state=None,
        verbose=0,
    ):
        self.mnar_features = mnar_features
        self.selection = selection
        self.mnar_coef = mnar_coef
        self.gamma = gamma
        self.missing_values = missing_values
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.sample_posterior = sample_posterior
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Fit the normal data model and the missingness models by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._validate_params()
        # Before any work on X: NaN failed deep in the quadrature ("cannot
        # convert float NaN to integer") and inf ran for minutes.
        if isinstance(self.mnar_coef, numbers.Real):
            finite_number(self.mnar_coef, "mnar_coef")
        X = validate_numeric(self, X, reset=True, copy=False)
        count, _, scale, minimum, maximum = observed_column_moments(X)
        degenerate = degenerate_columns(count, maximum - minimum)
        self._empty_features = count == 0
        if self._empty_features.any():
            # Nothing to model: the column is kept and filled with 0, as
            # SimpleImputer(keep_empty_features=True) does, so that the
            # output keeps X's columns (the transformer is one-to-one).  In
            # the fit it is a constant 0, which the automatic ridge handles.
            columns = describe_columns(self, np.flatnonzero(self._empty_features))
            warnings.warn(
                f"Skipping {columns}: no observed value, so nothing to model; "
                "transform fills it with 0. Drop it before imputing.",
                UserWarning,
                stacklevel=2,
            )
            X = X.copy()
            X[:, self._empty_features] = 0.0
            count, _, scale, minimum, maximum = observed_column_moments(X)
            degenerate = degenerate_columns(count, maximum - minimum)
        check_scale(feature_names(self), maximum - minimum)
        mnar = self._mnar_positions(np.isnan(X))
        psi = self._fixed_psi(mnar, scale)
        name = type(self).__name__
        seed = check_random_state(self.random_state).randint(2**31 - 1)

        def run(ridge, min_tol):
            return fit_selection_em(
                X,
                mnar,
                link=self.selection,
                psi=psi,
                gamma=self.gamma,
                ridge=ridge,
                max_iter=self.max_iter,
                tol=max(self.tol, min_tol),
                accelerate=self.accelerate,
                random_state=seed,
                callback=iteration_reporter(name, self.verbose),
            )

        try:
            fitted = fit_with_automatic_ridge(
                run,
                ridge=self.ridge,
                n_rows=X.shape[0],
                scale=standardising_scale(scale),
                known=degenerate,
            )
        except SingularCovarianceError as error:
            raise ValueError(f"{name} could not fit: {error}.") from None
        result = fitted.result
        self.ridge_ = fitted.ridge
        if fitted.problems:
            message = describe_problems(
                fitted.problems, feature_names(self), fitted.ridge
            )
            warnings.warn(f"{name}: {message}", RegularisationWarning, stacklevel=2)
        report_end(name, self.verbose, result.n_iter, result.converged)
        self._result = result
        self.mean_ = result.mean
        self.covariance_ = result.covariance
        self.mnar_features_ = result.mnar
        self.covariates_ = result.covariates
        self.selection_coef_ = self._coefficient_table(result)
        self.loglik_ = result.loglik
        self.loglik_path_ = result.loglik_path
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        if not result.converged and self.max_iter > 0:
            warnings.warn(
                f"{name} did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}). Increase max_iter; if psi is barely "
                "identified (few rows, or little information in the shape of "
                "the observed values), fix it with mnar_coef.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _position(self, column, what):
        names = feature_names(self)
        if isinstance(column, str):
            if column in names:
                return names.index(column)
        elif isinstance(column, numbers.Integral) and 0 <= column < len(names):
            return int(column)
        raise ValueError(f"{what} names {column!r}, which is not a column of X.")

    def _mnar_positions(self, mask):
        if self.mnar_features is None:
            return np.flatnonzero(mask.any(axis=0))
        positions = [self._position(c, "mnar_features") for c in self.mnar_features]
        complete = [j for j in positions if not mask[:, j].any()]
        if complete:
            raise ValueError(
                f"no missing value in {describe_columns(self, complete)} of "
                "mnar_features: a missingness model needs missing cells to fit."
            )
        return np.array(sorted(set(positions)), dtype=int)

    def _fixed_psi(self, mnar, scale):
        if self.mnar_coef is None:
            return None
        if isinstance(self.mnar_coef, numbers.Real):
            value = finite_number(self.mnar_coef, "mnar_coef")
            fixed = {int(j): value for j in mnar}
            where = dict.fromkeys(fixed, "mnar_coef")
        else:
            fixed, where = {}, {}
            for column, value in self.mnar_coef.items():
                value = finite_number(value, f"mnar_coef[{column!r}]")
                j = self._position(column, "mnar_coef")
                if j not in mnar:
                    raise ValueError(
                        f"mnar_coef fixes psi of {describe_columns(self, [j])}, "
                        "which has no missingness model (see mnar_features)."
                    )
                fixed[j], where[j] = value, f"mnar_coef[{column!r}]"
        for j, value in fixed.items():
            # Per standard deviation of the observed values, the scale on
            # which the fit works; a non-finite scale (one value) is
            # regularised elsewhere.
            per_sd = abs(value) * scale[j] if np.isfinite(scale[j]) else abs(value)
            if not per_sd <= PSI_LIMIT:
                raise ValueError(
                    f"{where[j]} = {value:g} for {describe_columns(self, [j])} is "
                    f"{per_sd:.3g} per standard deviation of its observed values; "
                    f"use at most {PSI_LIMIT:g} there.  Beyond that the "
                    "missingness is a deterministic cut-off in the value, "
                    "which the quadrature of the E-step cannot resolve (EM "
                    "stalls, or overflows)."
                )
        return fixed

    def _coefficient_table(self, result):
        names = feature_names(self)
        table = pd.DataFrame(
            {"intercept": result.intercept, "psi": result.psi},
            index=[names[j] for j in result.mnar],
        )
        for i, j in enumerate(result.covariates):
            table[f"gamma[{names[j]}]"] = result.gamma[:, i]
        table["psi_fixed"] = result.psi_fixed
        return table

    def transform(self, X):
        """Fill each missing cell given its row's observed cells and missingness.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A covariate of the missingness models (``covariates_``, never
            missing in ``fit``) may be missing here, as in a test fold of
            cross-validation: those cells are imputed under MAR, by their
            conditional mean given the row's observed cells under the
            fitted normal part (a draw with ``sample_posterior``), with one
            warning naming the columns.  The selection index of the row's
            MNAR cells then uses the imputed value.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, copy=True)
        # Columns empty in fit: 0, as in fit.  (Model files, which predate
        # this, carry no such columns: a loaded model has no attribute.)
        empty = getattr(self, "_empty_features", None)
        if empty is not None:
            X[:, empty] = 0.0
        mask = np.isnan(X)
        gaps = [j for j in self.covariates_ if mask[:, j].any()]
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
                "mean given each row's observed cells); fit on data with such "
                "rows to model them instead.",
                UserWarning,
                stacklevel=2,
            )
        rng = check_random_state(self.random_state) if self.sample_posterior else None
        completed = impute_selection(X, self._result, rng=rng)
        return completed.astype(X.dtype, copy=False)

    def summary(self):
        """The assumed mechanism and the fitted coefficients, in words.

        Returns
        -------
        str
        """
        check_is_fitted(self)
        names = feature_names(self)
        link = "Phi" if self.selection == "probit" else "logistic"
        lines = [
            f"MNAR selection model ({self.selection} link), fitted by EM: "
            f"{'converged' if self.converged_ else 'NOT converged'} after "
            f"{self.n_iter_} iterations, log-likelihood {self.loglik_:.4f}.",
            f"Data model: multivariate normal over {self.n_features_in_} columns.",
        ]
        for name, row in self.selection_coef_.iterrows():
            terms = [f"{row['intercept']:.4g}", f"{row['psi']:+.4g} * {name}"]
            terms += [
                f"{row[f'gamma[{names[j]}]']:+.4g} * {names[j]}"
                for j in self.covariates_
            ]
            how = "fixed (sensitivity analysis)" if row["psi_fixed"] else "estimated"
            if row["psi"] > 0:
                direction = f"larger values of {name} are more likely to be missing"
            elif row["psi"] < 0:
                direction = f"smaller values of {name} are more likely to be missing"
            else:
                direction = f"{name} is missing at random given the covariates"
            lines.append(
                f"Missingness of {name}: P(missing) = {link}({' '.join(terms)}); "
                f"psi {how}: {direction}."
            )
        mar = [
            names[j] for j in range(self.n_features_in_) if j not in self.mnar_features_
        ]
        if mar:
            lines.append(
                "Assumed missing at random (no missingness model): "
                + ", ".join(mar)
                + "."
            )
        lines.append(
            "psi is identified only through the normality of the data model: "
            "refit with mnar_coef over a range of values and report how the "
            "conclusions move."
        )
        return "\n".join(lines)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = is_nan_marker(self.missing_values)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

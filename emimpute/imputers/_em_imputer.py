"""EMImputer: maximum-likelihood multivariate-normal imputation (estimator shell)."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from emimpute.engine._model import SingularCovarianceError
from emimpute.engine._regularise import (
    degenerate_columns,
    describe_problems,
    fit_with_automatic_ridge,
)
from emimpute.exceptions import RegularisationWarning
from emimpute.gaussian._conditional import ConditionalMoments, conditional_moments
from emimpute.models._normal import (
    fit_normal_em,
    observed_column_moments,
    standardising_scale,
)
from emimpute.utils._progress import iteration_reporter, report_end
from emimpute.utils._validation import (
    check_scale,
    feature_names,
    is_nan_marker,
    validate_numeric,
    warn_empty_features,
)


class EMImputer(TransformerMixin, BaseEstimator):
    """Impute missing values from a multivariate normal fitted by EM.

    ``fit`` finds the maximum-likelihood mean and covariance of a multivariate
    normal from incomplete data (any pattern of missingness, missing at
    random) with the full EM algorithm: the E-step adds each row's conditional
    covariance to the expected cross-products, which the common "iterate the
    regression fill" shortcut omits (that shortcut shrinks variances and
    inflates correlations).  ``transform`` replaces each missing cell by its
    conditional mean given the observed cells of its row, or by a draw from
    the conditional normal with ``sample_posterior=True``.

    Parameters
    ----------
    missing_values : float, default=np.nan
        The placeholder of missing cells: ``np.nan`` (also catches ``pd.NA``
        in pandas nullable columns) or a number such as -1.
    ridge : float, default=0.0
        Strength, in pseudo-observations, of a ridge (inverse-Wishart) prior
        that shrinks correlations towards 0: each M-step is
        ``S = (n S_ml + ridge * diag(s**2)) / (n + ridge)``, with n the rows
        that have an observed cell, ``S_ml`` the complete-data MLE from the
        E-step and s each column's observed standard deviation (divisor
        n_obs).  This is not Amelia's ``empri``, whose M-step divides by
        ``n + e + p + 2`` and uses s of divisor n_obs - 1.  0 gives the maximum
        likelihood estimate; where that does not exist (constant or
        collinear columns, more columns than rows) the smallest proper
        prior is added and a
        :class:`~emimpute.exceptions.RegularisationWarning` names the
        columns.  Choose a larger value by cross-validation with
        :meth:`score`.
    max_iter : int, default=500
        Maximum number of iterations (a SQUAREM cycle counts as one).
    tol : float, default=1e-6
        Convergence threshold on both the relative change of the objective
        (log-likelihood, plus log prior when ``ridge > 0``) and the largest
        change of the parameters on the standardised scale.
    accelerate : bool, default=True
        Use SQUAREM (Varadhan & Roland 2008) with a fallback to the plain EM
        step whenever an extrapolation would lower the objective.
    sample_posterior : bool, default=False
        In ``transform``, draw each row's missing cells from their joint
        conditional normal instead of using the conditional mean.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws of ``sample_posterior``.  An int gives the same draws
        at every call of ``transform``.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the columns
        that had missing values in ``fit``.
    keep_empty_features : bool, default=False
        Columns with no observed value in ``fit`` are dropped by
        ``transform``; with True they are kept and filled with 0 (as in
        :class:`~sklearn.impute.SimpleImputer`).
    copy : bool, default=True
        If False, ``transform`` imputes in place when X is a writeable float
        NumPy array with NaN as the missing marker (the caller's array then
        changes); otherwise it works on a copy.
    verbose : int, default=0
        1 prints every 10th iteration, 2 every iteration.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,)
        Estimated mean (NaN for columns with no observed value).
    ridge_ : float
        The prior strength used: ``ridge``, or the automatic one where the
        maximum likelihood estimate does not exist.
    covariance_ : ndarray of shape (n_features_in_, n_features_in_)
        Estimated covariance, divisor n: the MLE when ``ridge=0``.
    loglik_ : float
        Observed-data log-likelihood at the estimate, constant included.
    loglik_path_ : ndarray of shape (n_iter_,)
        Observed-data log-likelihood after each iteration (non-decreasing
        when ``ridge=0``).
    n_iter_ : int
        Iterations run.
    n_em_steps_ : int
        EM steps (E-step plus M-step) run; with SQUAREM up to 3 per iteration.
    converged_ : bool
        Whether the tolerance was reached within ``max_iter``.
    indicator_ : MissingIndicator or None
        The indicator appended when ``add_indicator=True``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.

    See Also
    --------
    sklearn.impute.IterativeImputer : Round-robin regression imputation.
    sklearn.impute.SimpleImputer : Mean, median or constant imputation.

    Notes
    -----
    The E-step works through the precision matrix K = inv(S): for each
    incomplete row, the product of its k rows of K with the observed cells
    and a factorisation of the k x k block of K at its k missing cells, in a
    compiled kernel on all cores (``OMP_NUM_THREADS`` caps the threads), or in
    vectorised NumPy if the package was built without a C compiler.  Cost per
    iteration is O(n p^2 + n k^3), and rows with nothing missing cost O(1)
    after the first pass.  Rows with every cell missing carry no information
    and are skipped in ``fit``.

    References
    ----------
    Dempster, A. P., Laird, N. M. & Rubin, D. B. (1977). Maximum likelihood
    from incomplete data via the EM algorithm. *JRSS-B* 39, 1-38.
    Little, R. J. A. & Rubin, D. B. (2002). *Statistical Analysis with Missing
    Data*, 2nd ed., sec. 11.2.
    Varadhan, R. & Roland, C. (2008). *Scand. J. Stat.* 35, 335-353.

    Examples
    --------
    >>> import numpy as np
    >>> from emimpute import EMImputer
    >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0], [np.nan, 3.0], [4.0, 4.0]])
    >>> imputer = EMImputer().fit(X)
    >>> imputer.mean_.round(3)
    array([2.423, 3.423])
    >>> imputer.transform(X).round(3)
    array([[1.   , 2.   ],
           [2.   , 3.116],
           [3.   , 5.   ],
           [2.116, 3.   ],
           [4.   , 4.   ]])
    """

    _parameter_constraints = {
        "missing_values": [numbers.Real],
        "ridge": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "accelerate": ["boolean"],
        "sample_posterior": ["boolean"],
        "random_state": ["random_state"],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "copy": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        missing_values=np.nan,
        ridge=0.0,
        max_iter=500,
        tol=1e-6,
        accelerate=True,
        sample_posterior=False,
        random_state=None,
        add_indicator=False,
        keep_empty_features=False,
        copy=True,
        verbose=0,
    ):
        self.missing_values = missing_values
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.sample_posterior = sample_posterior
        self.random_state = random_state
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.copy = copy
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Estimate the mean and covariance by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric data with missing cells marked by ``missing_values``.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : EMImputer
        """
        self._validate_params()
        X = validate_numeric(self, X, reset=True, copy=False)
        count, center, scale, minimum, maximum = observed_column_moments(X)
        degenerate = degenerate_columns(count, maximum - minimum)
        self._empty_features = count == 0
        warn_empty_features(self, self._empty_features)
        valid = ~self._empty_features
        X_valid = X[:, valid] if self._empty_features.any() else X
        self._fit_and_store(
            fit_normal_em,
            valid,
            degenerate=degenerate,
            n_samples=X.shape[0],
            spread=(maximum - minimum)[valid],
            column_scale=scale[valid],
            X=X_valid,
            column_moments=(center[valid], scale[valid]),
        )
        self.indicator_ = None
        if self.add_indicator:
            self.indicator_ = MissingIndicator(error_on_new=False).fit(X)
        return self

    def _fit_and_store(
        self, fit, valid, *, degenerate, n_samples, spread, column_scale, **data
    ):
        """Run an EM kernel with this estimator's settings; store the result.

        ``fit`` is :func:`~emimpute.models._normal.fit_normal_em` (in memory) or
        :func:`~emimpute.models._normal.run_normal_em` (any E-step, e.g. the
        blockwise one of :class:`emimpute.dask.DaskEMImputer`), ``data`` its
        data arguments; the estimate covers the ``valid`` (non-empty) columns,
        whose observed ranges are ``spread`` and standard deviations
        ``column_scale``; the ``degenerate`` columns
        (:func:`~emimpute.engine._regularise.degenerate_columns`, positions among all
        columns) have no variance of their own.  With
        ``ridge=0`` and no maximum likelihood estimate, the smallest proper
        prior is added (:mod:`emimpute.engine._regularise`) and a
        :class:`~emimpute.exceptions.RegularisationWarning` names the columns.
        """
        name = type(self).__name__
        names = [feature_names(self)[j] for j in np.flatnonzero(valid)]
        check_scale(names, spread)
        p = len(valid)
        self.mean_ = np.full(p, np.nan)
        self.covariance_ = np.full((p, p), np.nan)
        if not valid.any():  # nothing observed: every column is dropped
            self._store_empty_fit()
            return
        position = np.cumsum(valid) - 1  # a column's position among the valid
        known = {reason: position[cols] for reason, cols in degenerate.items()}
        scale = standardising_scale(column_scale)

        def run(ridge, min_tol):
            return fit(
                ridge=ridge,
                max_iter=self.max_iter,
                tol=max(self.tol, min_tol),
                accelerate=self.accelerate,
                callback=iteration_reporter(name, self.verbose),
                **data,
            )

        try:
            fitted = fit_with_automatic_ridge(
                run, ridge=self.ridge, n_rows=n_samples, scale=scale, known=known
            )
        except SingularCovarianceError as error:
            raise ValueError(f"{name} could not fit: {error}.") from None
        result = fitted.result
        if fitted.problems:
            warnings.warn(
                f"{name}: {describe_problems(fitted.problems, names, fitted.ridge)}",
                RegularisationWarning,
                stacklevel=3,
            )
        report_end(name, self.verbose, result.n_iter, result.converged)
        self.mean_[valid] = result.mean
        self.covariance_[np.ix_(valid, valid)] = result.covariance
        self.ridge_ = fitted.ridge
        self.loglik_ = result.loglik
        self.loglik_path_ = result.loglik_path
        self.n_iter_ = result.n_iter
        self.n_em_steps_ = result.n_em_steps
        self.converged_ = result.converged
        if not result.converged and self.max_iter > 0:
            warnings.warn(
                f"{name} did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}). Increase max_iter or tol; if columns are "
                "nearly collinear or barely observed, a small ridge prior "
                "(ridge > 0) also speeds convergence.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _store_empty_fit(self):
        """The fitted state when no cell was observed (all columns dropped)."""
        self.ridge_ = float(self.ridge)
        self.loglik_ = 0.0
        self.loglik_path_ = np.zeros(0)
        self.n_iter_ = self.n_em_steps_ = 0
        self.converged_ = True

    # ------------------------------------------------------------ transform

    def transform(self, X):
        """Impute every missing cell from the fitted normal model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            Missing cells replaced by their conditional means (or draws, with
            ``sample_posterior=True``); columns empty in ``fit`` are dropped
            unless ``keep_empty_features=True``; indicator columns appended
            when ``add_indicator=True``.
        """
        check_is_fitted(self)
        inplace = not self.copy and is_nan_marker(self.missing_values)
        X = validate_numeric(self, X, reset=False, copy=not inplace)
        rng = check_random_state(self.random_state) if self.sample_posterior else None
        # The indicator must see the missing cells before they are filled in place.
        indicator = None if self.indicator_ is None else self.indicator_.transform(X)
        imputed = self._impute(X, rng=rng).completed
        if self._empty_features.any():
            if self.keep_empty_features:
                imputed[:, self._empty_features] = 0.0
            else:
                imputed = imputed[:, ~self._empty_features]
        if indicator is not None:
            imputed = np.hstack([imputed, indicator.astype(imputed.dtype)])
        return imputed

    def _impute(self, X, *, rng=None, want_variance=False, want_loglik=False):
        """Conditional moments over the non-empty columns, written into X."""
        valid = ~self._empty_features
        if not self._empty_features.any():
            return conditional_moments(
                X,
                self.mean_,
                self.covariance_,
                out=X,
                rng=rng,
                want_variance=want_variance,
                want_loglik=want_loglik,
            )
        if not valid.any():  # every column was empty in fit
            variance = np.zeros(X.shape) if want_variance else None
            loglik = np.zeros(X.shape[0]) if want_loglik else None
            return ConditionalMoments(X, variance, loglik)
        moments = conditional_moments(
            X[:, valid],
            self.mean_[valid],
            self.covariance_[np.ix_(valid, valid)],
            rng=rng,
            want_variance=want_variance,
            want_loglik=want_loglik,
        )
        X[:, valid] = moments.completed
        if want_variance:
            variance = np.zeros(X.shape)
            variance[:, valid] = moments.variance
            moments.variance = variance
        moments.completed = X
        return moments

    def conditional_moments(self, X):
        """Conditional mean and variance of every missing cell.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        mean : ndarray of shape (n_samples, n_features)
            X with each missing cell replaced by its conditional mean given
            the observed cells of its row (columns empty in ``fit``: NaN).
        variance : ndarray of shape (n_samples, n_features)
            The conditional variance of each missing cell: 0 at observed
            cells, NaN at columns empty in ``fit``.

        Examples
        --------
        >>> import numpy as np
        >>> from emimpute import EMImputer
        >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0],
        ...               [np.nan, 3.0], [4.0, 4.0]])
        >>> mean, variance = EMImputer().fit(X).conditional_moments(X)
        >>> variance.round(3)
        array([[0.   , 0.   ],
               [0.   , 0.534],
               [0.   , 0.   ],
               [0.534, 0.   ],
               [0.   , 0.   ]])
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, copy=True)
        moments = self._impute(X, want_variance=True)
        moments.completed[:, self._empty_features] = np.nan
        moments.variance[:, self._empty_features] = np.nan
        return moments.completed, moments.variance

    # -------------------------------------------------------------- scoring

    def score_samples(self, X):
        """Observed-data log-likelihood of each row under the fitted model.

        The log density of each row's observed cells (columns empty in
        ``fit`` ignored), constant included; 0 for a row with nothing observed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, copy=True)
        return self._impute(X, want_loglik=True).loglik

    def score(self, X, y=None):
        """Mean observed-data log-likelihood per row (higher is better).

        Lets :class:`~sklearn.model_selection.GridSearchCV` choose ``ridge``
        for the imputer alone, as with ``GaussianMixture.score``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    # -------------------------------------------------------------- metadata

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None
            Defaults to ``feature_names_in_``, else ``x0, x1, ...``.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if names is None:
                names = np.array(
                    [f"x{i}" for i in range(self.n_features_in_)], dtype=object
                )
            input_features = names
        else:
            input_features = np.asarray(input_features, dtype=object)
            if len(input_features) != self.n_features_in_:
                raise ValueError(
                    f"input_features has {len(input_features)} names, expected "
                    f"{self.n_features_in_}."
                )
            if names is not None and not np.array_equal(input_features, names):
                raise ValueError("input_features is not equal to feature_names_in_")
        kept = (
            input_features
            if self.keep_empty_features
            else input_features[~self._empty_features]
        )
        if self.indicator_ is None:
            return np.asarray(kept, dtype=object)
        indicator_names = self.indicator_.get_feature_names_out(input_features)
        return np.concatenate([kept, indicator_names]).astype(object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = is_nan_marker(self.missing_values)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

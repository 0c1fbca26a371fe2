"""MultipleImputer: proper multiple imputation and pooled inference (meta-estimator)."""

import copy
import numbers

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import special
from sklearn.base import BaseEstimator, TransformerMixin, clone, is_classifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from emimpute._data_augmentation import data_augmentation
from emimpute._em_imputer import EMImputer
from emimpute._normal_em import observed_column_moments
from emimpute._progress import progress_bar
from emimpute._validation import feature_names
from emimpute.pooling import pool

# Bootstrap resamples in which a column has no observed value are redrawn,
# up to this many times.
MAX_REDRAWS = 100


class MultipleImputer(TransformerMixin, BaseEstimator):
    """Proper multiple imputation, with pooled inference by Rubin's rules.

    Each of the ``n_imputations`` completed data sets comes from its own
    draw of the imputation model's parameters and then of the missing values
    given those parameters (bootstrap EM, as in Amelia: fit the imputer on a
    bootstrap resample of the rows, then draw the original rows' missing
    values from its conditional distribution).  Noise around one fit would
    ignore the uncertainty about the parameters and give intervals that are
    too narrow.

    With an ``estimator``, ``fit(X, y)`` fits a clone of it on each completed
    data set and pools its coefficients (``pooled_``, ``summary()``); its
    ``predict`` averages the clones' predictions, so the whole thing works in
    ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.

    Parameters
    ----------
    imputer : estimator, default=None
        An imputer that can draw: it has a ``sample_posterior`` parameter
        (EMImputer, MNARSelectionImputer, scikit-learn's IterativeImputer).
        ``None`` means ``EMImputer()``.
    n_imputations : int, default=20
    method : {"bootstrap", "data-augmentation"}, default="bootstrap"
        How each imputation draws the parameters.  "bootstrap": fit the
        imputer on a bootstrap resample (any imputer that can draw).
        "data-augmentation" (EMImputer only): the Bayesian posterior, by
        ``burn_in`` iterations of the data-augmentation sampler (Schafer
        1997, sec. 5.4; R ``norm::da.norm``) started at the EM estimate, one
        independent chain per imputation.
    burn_in : int, default=50
        Data-augmentation iterations per imputation.
    estimator : estimator, optional
        The analysis model, fitted on each completed data set.
    include_outcome : bool, default=True
        Impute from X and y together (as R's mice does): leaving y out of
        the imputation model attenuates the coefficients towards 0 and
        breaks the coverage of pooled intervals.  y may then have missing
        values too; they are imputed for the analysis.  At predict time y is
        unknown, so new rows are imputed from X alone under the same joint
        model (their y column is treated as missing).
    inference : callable, optional
        ``inference(X, y) -> (estimates, variances[, dfcom])`` for each
        completed data set, ``variances`` being squared standard errors or a
        covariance matrix.  Built in (when None) for scikit-learn's
        ``LinearRegression`` (OLS covariance, dfcom = n - k) and unpenalised
        ``LogisticRegression`` (``C=np.inf``; inverse Fisher information,
        two classes).
    random_state : int, RandomState instance or None, default=None
        Seeds each imputation's own generator, so results do not depend on
        ``n_jobs``.
    n_jobs : int, default=None
        Imputations run in parallel with joblib.
    verbose : int, default=0
        1: a progress bar of the imputations on standard error.

    Attributes
    ----------
    imputers_ : list of fitted imputers, one per imputation
    estimators_ : list of fitted estimators (with ``estimator``)
    pooled_ : PooledResult or None
        Rubin's rules over the estimators' coefficients (intercept first).
    n_features_in_, feature_names_in_

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from emimpute import MultipleImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=200)
    >>> X[rng.random((200, 2)) < 0.2] = np.nan
    >>> mi = MultipleImputer(n_imputations=10, estimator=LinearRegression(),
    ...                      random_state=0).fit(X, y)
    >>> table = mi.summary()
    >>> list(table.index)
    ['intercept', 'x0', 'x1']
    >>> bool(abs(table.loc["x0", "estimate"] - 2.0) < 3 * table.loc["x0", "std_error"])
    True
    """

    _parameter_constraints = {
        "imputer": [HasMethods(["fit", "transform"]), None],
        "n_imputations": [Interval(numbers.Integral, 2, None, closed="left")],
        "method": [StrOptions({"bootstrap", "data-augmentation"})],
        "burn_in": [Interval(numbers.Integral, 1, None, closed="left")],
        "estimator": [HasMethods(["fit"]), None],
        "include_outcome": ["boolean"],
        "inference": [callable, None],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        imputer=None,
        *,
        n_imputations=20,
        method="bootstrap",
        burn_in=50,
        estimator=None,
        include_outcome=True,
        inference=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.imputer = imputer
        self.n_imputations = n_imputations
        self.method = method
        self.burn_in = burn_in
        self.estimator = estimator
        self.include_outcome = include_outcome
        self.inference = inference
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Fit one imputer per imputation (and the estimator on each).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Needed with an ``estimator``; may have missing values when
            ``include_outcome``.

        Returns
        -------
        self
        """
        self._validate_params()
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        base = EMImputer() if self.imputer is None else self.imputer
        if base.get_params(deep=False).get("imputer", False) is None:
            base = clone(base).set_params(imputer=EMImputer())  # a wrapper's default
        if _drawing_key(base, "sample_posterior") is None:
            raise ValueError(
                f"{type(base).__name__} cannot draw imputations (it has no "
                "sample_posterior parameter): use an imputer that can, such as "
                "EMImputer, MNARSelectionImputer or IterativeImputer."
            )
        self._with_outcome = False
        data = X
        if self.estimator is not None:
            if y is None:
                raise ValueError("an estimator needs y: call fit(X, y)")
            y = np.asarray(y, dtype=np.float64).ravel()
            if len(y) != len(X):
                raise ValueError(f"y has {len(y)} values but X has {len(X)} rows")
            if np.isnan(y).any() and not self.include_outcome:
                raise ValueError(
                    "y has missing values: set include_outcome=True to impute "
                    "them with X, or drop those rows"
                )
            if self.include_outcome:
                data = np.column_stack([X, y])
                self._with_outcome = True
        seeds = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=(self.n_imputations, 2)
        )
        # Named columns reach the imputer (a DeltaAdjustedImputer's delta may
        # name them); the outcome, when included, is the last column.
        names = getattr(self, "feature_names_in_", None)
        self._columns = None
        if names is not None:
            self._columns = [str(c) for c in names]
            if self._with_outcome:
                self._columns.append("__outcome__")
        if self.method == "bootstrap":
            jobs = (
                delayed(_impute_once)(base, data, seed, self._columns) for seed in seeds
            )
        else:
            start = self._em_start(base, data)
            jobs = (
                delayed(_augment_once)(start, data, seed, self.burn_in)
                for seed in seeds
            )
        step = progress_bar(type(self).__name__, self.n_imputations, self.verbose)
        results = []
        for result in Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs):
            results.append(result)  # in order, whatever n_jobs
            step()
        self.imputers_ = [imputer for imputer, _ in results]
        self.estimators_ = []
        self.pooled_ = None
        if self.estimator is not None:
            self._analyse([draws for _, draws in results], y)
        return self

    def _analyse(self, completed, y):
        """Fit the estimator on each completed data set and pool the fits.

        ``completed`` holds the m imputed training sets (the outcome as last
        column when it was imputed with X); also used by
        :func:`emimpute.sensitivity.sensitivity_analysis` on delta-adjusted
        copies of the same draws.
        """
        p = self.n_features_in_
        self.estimators_, fits = [], []
        for draws in completed:
            X_l = draws[:, :p]
            y_l = draws[:, p] if self._with_outcome else y
            if is_classifier(self.estimator):
                y_l = _as_labels(y_l, y)  # imputed labels back to classes
            self.estimators_.append(clone(self.estimator).fit(X_l, y_l))
            fits.append((X_l, y_l))
        self.pooled_ = self._pool(fits)

    def _training_draws(self, X, y=None):
        """The m completed training sets (with the outcome column when it was
        imputed with X): each imputer draws with its fixed ``random_state``,
        so these are the draws ``fit`` analysed (bootstrap method)."""
        X = validate_data(
            self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64
        )
        data = X
        if self._with_outcome:
            data = np.column_stack([X, np.asarray(y, dtype=np.float64).ravel()])
        data = _frame(data, self._columns)
        return [np.asarray(imp.transform(data), dtype=float) for imp in self.imputers_]

    def _em_start(self, base, data):
        """The EM fit that every data-augmentation chain starts from."""
        if not isinstance(base, EMImputer):
            raise ValueError(
                "method='data-augmentation' needs an EMImputer (it draws from the "
                f"normal model's posterior); got {type(base).__name__}. Use "
                "method='bootstrap' for other imputers."
            )
        fitted = clone(base).set_params(add_indicator=False)
        fitted.fit(_frame(data, self._columns))
        if fitted._empty_features.any():
            raise ValueError(
                "method='data-augmentation' needs an observed value in every column"
            )
        return fitted

    def _pool(self, fits):
        """Rubin's rules over the estimators' coefficients, or None."""
        rows = []
        for (X_l, y_l), fitted in zip(fits, self.estimators_, strict=True):
            if self.inference is not None:
                out = self.inference(X_l, y_l)
            else:
                out = _builtin_inference(fitted, X_l, y_l)
                if out is None:
                    return None
            rows.append(out)
        estimates = np.array([row[0] for row in rows])
        variances = np.array([row[1] for row in rows])
        dfcom = rows[0][2] if len(rows[0]) > 2 else None
        names = feature_names(self)
        if estimates.shape[1] == len(names) + 1:
            names = ["intercept", *names]
        elif estimates.shape[1] != len(names):
            names = None
        return pool(estimates, variances, dfcom=dfcom, names=names)

    def summary(self):
        """The pooled coefficients, a DataFrame like R's ``summary(pool(fit))``."""
        check_is_fitted(self)
        if self.pooled_ is None:
            raise ValueError(
                "no pooled inference: fit with an estimator whose standard "
                "errors are built in (LinearRegression, unpenalised "
                "LogisticRegression) or pass inference=(X, y) -> (estimates, "
                "variances[, dfcom])"
            )
        return self.pooled_.summary()

    # ------------------------------------------------------------ transform

    def multiple_transform(self, X):
        """The m completed versions of X, one per imputation.

        Returns
        -------
        list of ndarrays (or DataFrames, with ``set_output(transform="pandas")``)
        """
        check_is_fitted(self)
        out = self._multiple_arrays(X)
        if getattr(self, "_sklearn_output_config", {}).get("transform") == "pandas":
            columns = feature_names(self)
            out = [pd.DataFrame(values, columns=columns) for values in out]
        return out

    def transform(self, X):
        """The average of the m imputations (a single array, as a transformer
        must return); see :meth:`multiple_transform` for the m data sets."""
        check_is_fitted(self)
        return np.mean(self._multiple_arrays(X), axis=0)

    def _multiple_arrays(self, X):
        """Each imputer's draws for X; with the outcome in the imputation
        model, y is unknown here and enters as a missing column."""
        X = validate_data(
            self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64
        )
        data = (
            np.column_stack([X, np.full(len(X), np.nan)]) if self._with_outcome else X
        )
        p = X.shape[1]
        data = _frame(data, self._columns)
        return [
            np.asarray(imputer.transform(data))[:, :p] for imputer in self.imputers_
        ]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.asarray(feature_names(self), dtype=object)

    # -------------------------------------------------------------- predict

    def _each(self, method, X):
        check_is_fitted(self, "estimators_")
        if not self.estimators_:
            raise ValueError(
                f"{method} needs an estimator: MultipleImputer(estimator=...)"
            )
        completed = self._multiple_arrays(X)
        return [
            getattr(fitted, method)(X_l)
            for fitted, X_l in zip(self.estimators_, completed, strict=True)
        ]

    @available_if(lambda self: self.estimator is not None)
    def predict(self, X):
        """Average prediction over the m imputations (majority of the averaged
        probabilities for a classifier)."""
        check_is_fitted(self)
        if is_classifier(self.estimator) and hasattr(self.estimator, "predict_proba"):
            proba = self.predict_proba(X)
            return self.estimators_[0].classes_[np.argmax(proba, axis=1)]
        return np.mean(self._each("predict", X), axis=0)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        """Average predicted probabilities over the m imputations."""
        return np.mean(self._each("predict_proba", X), axis=0)

    @available_if(lambda self: self.estimator is not None)
    def score(self, X, y):
        """R^2 (regression) or accuracy (classification) of :meth:`predict`."""
        from sklearn.metrics import accuracy_score, r2_score

        prediction = self.predict(X)
        if is_classifier(self.estimator):
            return accuracy_score(y, prediction)
        return r2_score(y, prediction)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        if self.estimator is not None:
            estimator_tags = self.estimator.__sklearn_tags__()
            tags.estimator_type = estimator_tags.estimator_type
            tags.target_tags.required = True
        return tags


def _frame(data, columns):
    """The array as a DataFrame with ``columns``, or itself when unnamed."""
    return data if columns is None else pd.DataFrame(data, columns=columns)


def _impute_once(base, data, seed, columns=None):
    """One proper imputation: fit on a bootstrap resample, draw for all rows."""
    rng = np.random.RandomState(seed[0])
    imputer = clone(base).set_params(
        **{
            _drawing_key(base, "sample_posterior"): True,
            _drawing_key(base, "random_state"): int(seed[1]),
        }
    )
    n = len(data)
    observed = ~np.isnan(data)
    for _ in range(MAX_REDRAWS):
        rows = rng.randint(n, size=n)
        if observed[rows].any(axis=0).all():
            break
    else:
        raise ValueError(
            "every bootstrap resample left a column without an observed value; "
            "the data are too sparse for bootstrap multiple imputation"
        )
    imputer.fit(_frame(data[rows], columns))
    return imputer, np.asarray(imputer.transform(_frame(data, columns)), float)


def _drawing_key(estimator, name):
    """The parameter ``name`` of an imputer, or of the imputer it wraps
    (``imputer__sample_posterior`` in a DeltaAdjustedImputer), or None."""
    found = [
        key
        for key in estimator.get_params(deep=True)
        if key == name or key.endswith("__" + name)
    ]
    return min(found, key=len) if found else None


def _augment_once(start, data, seed, burn_in):
    """One proper imputation by data augmentation from the EM estimate."""
    rng = np.random.RandomState(seed[0])
    prior_scatter, prior_df = None, 0.0
    if start.ridge > 0:  # the ridge as an inverse-Wishart prior, as in EM
        _, _, scale, _, _ = observed_column_moments(data)
        prior_scatter = start.ridge * np.diag(np.where(scale > 0, scale, 1.0) ** 2)
        prior_df = start.ridge
    completed, mean, covariance = data_augmentation(
        data, start.mean_, start.covariance_, burn_in, rng, prior_scatter, prior_df
    )
    imputer = copy.deepcopy(start)
    imputer.mean_, imputer.covariance_ = mean, covariance
    imputer.set_params(sample_posterior=True, random_state=int(seed[1]))
    return imputer, completed


def _as_labels(imputed, original):
    """Imputed class labels: the observed label nearest each draw."""
    labels = np.unique(original[~np.isnan(original)])
    nearest = np.abs(imputed[:, None] - labels[None, :]).argmin(axis=1)
    return labels[nearest]


def _unpenalised(model):
    """No penalty: ``C=np.inf`` (scikit-learn >= 1.8) or ``penalty=None``."""
    return model.penalty is None or np.isinf(model.C)


def _builtin_inference(fitted, X, y):
    """(estimates, covariance, dfcom) for OLS and unpenalised logistic fits."""
    if type(fitted) is LinearRegression and np.ndim(fitted.coef_) == 1:
        design = np.column_stack([np.ones(len(X)), X]) if fitted.fit_intercept else X
        coef = (
            np.r_[fitted.intercept_, fitted.coef_]
            if fitted.fit_intercept
            else fitted.coef_
        )
        residual = y - design @ coef
        dfcom = len(X) - design.shape[1]
        sigma2 = residual @ residual / dfcom
        return coef, sigma2 * np.linalg.inv(design.T @ design), dfcom
    if (
        type(fitted) is LogisticRegression
        and _unpenalised(fitted)
        and (len(fitted.classes_) == 2)
    ):
        design = np.column_stack([np.ones(len(X)), X]) if fitted.fit_intercept else X
        coef = (
            np.r_[fitted.intercept_, fitted.coef_.ravel()]
            if fitted.fit_intercept
            else fitted.coef_.ravel()
        )
        p = special.expit(design @ coef)
        information = (design * (p * (1 - p))[:, None]).T @ design
        return coef, np.linalg.inv(information), len(X) - design.shape[1]
    return None

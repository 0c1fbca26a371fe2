"""MultipleImputer: proper multiple imputation and pooled inference (meta-estimator)."""

import copy
import numbers

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin, clone, is_classifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._inference import (
    ADVICE,
    BUILT_IN,
    builtin_inference,
    inference_output,
)
from emimpute.imputers._registry import registered_imputers
from emimpute.pooling import pool
from emimpute.utils._column_types import (
    ColumnTypes,
    as_floats,
    column_types,
    encode_frame,
    has_typed_columns,
    restore_frame,
    typed_frame,
    typed_positions,
)
from emimpute.utils._columns import feature_names
from emimpute.utils._progress import progress_bar
from emimpute.utils._random import child_seeds
from emimpute.utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    validate_data,
)

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
    ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.  With a
    classifier it is a classifier too: ``classes_``, ``predict`` returning
    labels, and ``predict_proba``, ``predict_log_proba`` and
    ``decision_function`` when the classifier has them (the average over the
    m clones), so probability scorers such as ``scoring="roc_auc"`` work.

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
        "data-augmentation" (imputers whose model can draw its parameters:
        EMImputer, StudentTImputer, any imputer with a ``_draw_parameters``
        method): the Bayesian posterior, by ``burn_in`` iterations of the
        model's data-augmentation sampler (for the normal model Schafer
        1997, sec. 5.4; R ``norm::da.norm``) started at the EM estimate, one
        independent chain per imputation.
    burn_in : int, default=50
        Data-augmentation iterations per imputation.
    estimator : estimator, optional
        The analysis model, fitted on each completed data set.  A classifier
        receives the labels as given (strings, integers, ...; y is not cast
        to float).
    include_outcome : bool, default=True
        Impute from X and y together (as R's mice does): leaving y out of
        the imputation model attenuates the coefficients towards 0 and
        breaks the coverage of pooled intervals.  y may then have missing
        values too (NaN, or None for labels); they are imputed for the
        analysis.  A classifier's labels enter the imputation model as the
        indicators of all classes but the first (one 0/1 column for two
        classes), the usual coding of a nominal variable in a joint normal
        model (Schafer 1997, sec. 6.4; Amelia's ``noms``); an imputed label
        is the class whose indicator vector is nearest the drawn one (for two
        classes: the indicator rounded at 0.5).  At predict time y is
        unknown, so new rows are imputed from X alone under the same joint
        model (their y columns are treated as missing).
    inference : callable, optional
        ``inference(X, y) -> (estimates, variances)`` or ``(estimates,
        variances, dfcom)``, called on each completed data set (y as the
        estimator receives it).  ``estimates``: a scalar or k values;
        ``variances``: a scalar, k squared standard errors or a k x k
        covariance; ``dfcom``: the complete-data degrees of freedom.  When
        None, built in for scikit-learn's ``LinearRegression`` and
        unpenalised ``LogisticRegression``; see Notes.
    random_state : int, RandomState instance or None, default=None
        Seeds each imputation's own generator, so results do not depend on
        ``n_jobs``.
    n_jobs : int, default=None
        Imputations run in parallel with joblib.
    verbose : int, default=0
        1: a progress bar of the imputations on standard error.
    warm_start : bool, default=False
        With True (and ``method="bootstrap"``), a refit starts imputation
        l's imputer from a copy of the previous fit's ``imputers_[l]``,
        with the template ``imputer``'s current parameters set on it and
        its own ``warm_start`` switched on; the previous ``imputers_`` are
        not modified.  With an int ``random_state`` imputation l draws the
        same bootstrap resample in every fit, so the start is a fit to the
        same rows (another model, as another fixed psi, or the same);
        otherwise the start is merely near.  Only meaningful for imputers
        with a ``warm_start`` parameter (:class:`MNARSelectionImputer`;
        a wrapped imputer's ``imputer__warm_start`` counts); the others,
        an imputer of another class than before and the imputations beyond
        the previous ``n_imputations`` are fitted from scratch as with
        False.  :func:`emimpute.sensitivity.sensitivity_analysis` uses it
        along a grid of fixed psi values.

    Attributes
    ----------
    imputers_ : list of fitted imputers, one per imputation
    estimators_ : list of fitted estimators (with ``estimator``)
    pooled_ : PooledResult or None
        Rubin's rules over the estimators' coefficients (intercept first).
        None when there is no inference (see Notes); ``summary()`` then says
        why.
    classes_ : ndarray of shape (n_classes,)
        The class labels, with a classifier as ``estimator``.
    n_features_in_, feature_names_in_

    Notes
    -----
    **Built-in standard errors.**  Rubin's rules pool an estimate that is
    (asymptotically) unbiased for its target together with its complete-data
    sampling variance (Rubin 1987, sec. 3.1).  Two estimators have both in
    closed form and are built in:

    - ``LinearRegression`` (one output, ``positive=False``): OLS, covariance
      sigma^2 (X'X)^-1, dfcom = n - k.
    - ``LogisticRegression`` without penalty (``C=np.inf``, or
      ``penalty=None`` in scikit-learn < 1.8) and without ``class_weight``:
      maximum likelihood, covariance the inverse Fisher information,
      dfcom = n - k.  Two classes: the coefficients of ``classes_[1]``
      (intercept first).  More classes: the multinomial model's log-odds of
      each class against the first, ``classes_[0]`` (R's
      ``nnet::multinom`` parameterisation), named ``"label:x0"``.

    Everything else has no built-in inference and ``pooled_`` is None.  In
    particular the default ``LogisticRegression()`` is penalised (L2,
    ``C=1``), as are ``Ridge``, ``Lasso`` and the like: a penalised estimate
    is shrunk towards 0, biased by an amount that depends on the data, and
    has no classical standard error (Goeman, "penalized" R package
    vignette, 2010: standard errors "are not very meaningful for strongly
    biased estimates"), so pooled intervals would not cover.  For inference
    use the unpenalised model, or pass ``inference`` (for example a
    statsmodels fit on each completed data set).  Prediction needs no
    inference.

    **Predictions.**  ``predict_proba`` (and ``decision_function``) average
    the m clones' outputs: the predictive distribution averaged over the
    imputations' draws of the missing values and the imputation model's
    parameters, as recommended for predictions from multiply imputed data
    (Wood, Royston & White 2015, Biom. J. 57:614).  A classifier's
    ``predict`` is the class of highest averaged probability (or averaged
    decision value; a majority vote only if the classifier has neither).

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
        "warm_start": ["boolean"],
    }
    # Set on an instance to keep the fit's completed training sets (memory:
    # m copies of X), see fit.
    _keep_fit_draws = False

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
        warm_start=False,
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
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Fit one imputer per imputation (and the estimator on each).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Needed with an ``estimator``; may have missing values when
            ``include_outcome``.  Class labels of any type for a classifier.

        Returns
        -------
        self
        """
        self._validate_params()
        base = self._base_imputer()
        # A frame's dtypes are kept through an imputer that keeps them (its
        # ``_keeps_dtypes``: GaussianCopulaImputer); for the others the
        # frame is numbers, as before (a category is refused, not coded).
        self._column_types = ColumnTypes(None, {})
        if getattr(base, "_keeps_dtypes", False):
            self._column_types = column_types(X)
        X = validate_data(
            self, self._encoded(X), ensure_all_finite="allow-nan", dtype=np.float64
        )
        self._with_outcome, self._outcome_width = False, 0
        if self.estimator is not None:
            y = self._check_outcome(X, y)
            self._with_outcome = self.include_outcome
        data = self._imputation_data(X, y)
        self._refuse_empty_columns(data)
        step = progress_bar(type(self).__name__, self.n_imputations, self.verbose)
        results = []
        jobs = self._imputation_jobs(base, data)
        for result in Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs):
            results.append(result)  # in order, whatever n_jobs
            step()
        self.imputers_ = [imputer for imputer, _ in results]
        # The m completed training sets, for a caller that analyses them
        # itself (sensitivity_analysis with a callable analysis): the
        # multiple_transform of the training X, without drawing it again.
        self._fit_draws = None
        if self._keep_fit_draws:
            self._fit_draws = [draws[:, : self.n_features_in_] for _, draws in results]
        self.estimators_ = []
        self.pooled_ = None
        self._no_inference = "fit with an estimator: MultipleImputer(estimator=...)"
        if self.estimator is not None:
            self._analyse([draws for _, draws in results], y)
        return self

    @property
    def _types(self):
        """The dtypes of fit's frame (none for an array)."""
        return getattr(self, "_column_types", ColumnTypes(None, {}))

    def _encoded(self, X):
        """X as numbers: a frame's categories as codes, booleans as 0/1."""
        return encode_frame(X, self._types)

    def _analysis_input(self, values):
        """A completed data set as the analysis sees it: in fit's dtypes
        when fit had categorical, boolean or integer columns."""
        if has_typed_columns(self._types):
            return typed_frame(values, self._types, list(feature_names(self)))
        return values

    def _as_given(self, values, X):
        """Completed values (n, p) for the caller: a frame in fit's dtypes
        when fit had typed columns and X is a frame, else the array."""
        if has_typed_columns(self._types) and isinstance(X, pd.DataFrame):
            names = list(feature_names(self))
            return restore_frame(values, self._types, names, names, X.index)
        return values

    def _base_imputer(self):
        """The imputer each imputation clones, checked to be able to draw."""
        base = EMImputer() if self.imputer is None else self.imputer
        if base.get_params(deep=False).get("imputer", False) is None:
            base = clone(base).set_params(imputer=EMImputer())  # a wrapper's default
        if _drawing_key(base, "sample_posterior") is None:
            raise ValueError(
                f"{type(base).__name__} cannot draw imputations (it has no "
                "sample_posterior parameter): use an imputer that can, such as "
                "EMImputer, MNARSelectionImputer or IterativeImputer."
            )
        return base

    def _imputation_jobs(self, base, data):
        """One delayed job per imputation, each with its own two seeds."""
        seeds = child_seeds(self.random_state, size=(self.n_imputations, 2))
        if self.method == "bootstrap":
            labels = self._column_labels()
            starts = self._warm_starts(base)
            types = self._types
            return (
                delayed(_impute_once)(
                    base, data, seed, self._columns, labels, start, types
                )
                for seed, start in zip(seeds, starts, strict=True)
            )
        start = self._augmentation_start(base, data)
        return (
            delayed(_augment_once)(start, data, seed, self.burn_in) for seed in seeds
        )

    def _warm_starts(self, base):
        """Per imputation, the imputer to refit from (a copy of the previous
        fit's, with ``base``'s parameters and ``warm_start`` on), or None
        for a fresh clone of ``base`` (see ``warm_start``)."""
        starts = [None] * self.n_imputations
        key = _drawing_key(base, "warm_start")
        previous = getattr(self, "imputers_", None)
        if not self.warm_start or key is None or not previous:
            return starts
        # The template's parameters without its nested estimators, whose
        # own parameters are among them (``imputer__psi``): setting a nested
        # estimator would replace the fitted one inside the copy.
        params = {
            name: value
            for name, value in base.get_params(deep=True).items()
            if not hasattr(value, "get_params")
        }
        params[key] = True
        for i, fitted in enumerate(previous[: self.n_imputations]):
            if type(fitted) is type(base) and params.keys() <= set(
                fitted.get_params(deep=True)
            ):
                # A copy: the previous fit's imputers stay as they were (a
                # grid of sensitivity analyses starts several fits from one).
                starts[i] = copy.deepcopy(fitted).set_params(**params)
        return starts

    def _check_outcome(self, X, y):
        """y as a 1-d array: floats for a regressor, the labels as given for
        a classifier (whose ``classes_`` are set here)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} with an estimator requires y to be "
                "passed, but the target y is None: an estimator needs y, call "
                "fit(X, y)"
            )
        y = column_or_1d(y, warn=True)  # a column vector warns, as in sklearn
        if y.dtype.kind in "fc" and np.isinf(y).any():
            raise ValueError(
                "Input y contains infinity or a value too large for dtype('float64')."
            )
        if is_classifier(self.estimator):
            missing = np.asarray(pd.isna(y), dtype=bool)
            check_classification_targets(y[~missing])
            self.classes_ = np.unique(y[~missing])
            if len(self.classes_) == 0:
                raise ValueError("the outcome y has no observed value (no label)")
        else:
            y = y.astype(np.float64)
            missing = np.isnan(y)
        if len(y) != len(X):
            raise ValueError(f"y has {len(y)} values but X has {len(X)} rows")
        if missing.any() and not self.include_outcome:
            raise ValueError(
                "y has missing values: set include_outcome=True to impute "
                "them with X, or drop those rows"
            )
        return y

    def _outcome_columns(self, y):
        """y as the imputation model sees it: one float column for a
        regressor; for a classifier the indicators of ``classes_[1:]`` (a
        nominal variable in a normal model, Schafer 1997, sec. 6.4), NaN
        where the label is missing."""
        if not is_classifier(self.estimator):
            return np.asarray(y, dtype=np.float64).reshape(-1, 1)
        y = np.asarray(y).ravel()
        missing = np.asarray(pd.isna(y), dtype=bool)
        codes = np.zeros(len(y), dtype=np.intp)
        codes[~missing] = np.searchsorted(self.classes_, y[~missing])
        indicators = (codes[:, None] == np.arange(1, len(self.classes_))).astype(float)
        indicators[missing] = np.nan
        return indicators

    def _labels_from_draws(self, draws):
        """Class labels from drawn indicator columns: the class whose
        indicator vector (0 for ``classes_[0]``, e_k for ``classes_[k]``) is
        nearest.  The squared distance to e_k is |d|^2 - 2 d_k + 1 and to 0
        is |d|^2, so the nearest is the largest of (0.5, d_1, ..., d_K-1).
        Observed labels' indicators are exact and come back unchanged."""
        scores = np.column_stack([np.full(len(draws), 0.5), draws])
        return self.classes_[np.argmax(scores, axis=1)]

    def _imputation_data(self, X, y):
        """The matrix the imputers see: X, then the outcome's columns when it
        is imputed with X; sets the names used for DataFrame input."""
        outcome = np.empty((len(X), 0))
        if self._with_outcome:
            outcome = self._outcome_columns(y)
            self._outcome_width = outcome.shape[1]
        # Named columns reach the imputer (a DeltaAdjustedImputer's delta may
        # name them); the outcome, when included, is last.
        names = getattr(self, "feature_names_in_", None)
        self._columns = None
        if names is not None:
            self._columns = [str(c) for c in names] + self._outcome_names()
        return np.column_stack([X, outcome])

    def _outcome_names(self):
        if self._outcome_width == 0:
            return []
        if not is_classifier(self.estimator):
            return ["__outcome__"]
        return [f"__outcome__[{label}]" for label in self.classes_[1:]]

    def _column_labels(self):
        """How errors name the imputation model's columns: 'name' for a
        DataFrame's columns, x{j} (position j) for an array's."""
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            labels = [f"'{name}'" for name in names]
        else:
            labels = [f"x{j} (position {j})" for j in range(self.n_features_in_)]
        return labels + ["the outcome y"] * self._outcome_width

    def _refuse_empty_columns(self, data):
        """A column without an observed value cannot be drawn: no bootstrap
        resample (nor the posterior) says anything about it."""
        empty = np.flatnonzero(np.isnan(data).all(axis=0))
        if len(empty) == 0:
            return
        labels = list(dict.fromkeys(self._column_labels()[j] for j in empty))
        kind, verb = ("columns", "have") if len(labels) > 1 else ("column", "has")
        raise ValueError(
            f"{kind} {', '.join(labels)} {verb} no observed value: multiple "
            "imputation cannot draw values that nothing was observed of; drop "
            f"the {kind} first"
        )

    def _analyse(self, completed, y):
        """Fit the estimator on each completed data set and pool the fits.

        ``completed`` holds the m imputed training sets (the outcome's
        columns last when it was imputed with X); also used by
        :func:`emimpute.sensitivity.sensitivity_analysis` on delta-adjusted
        copies of the same draws.
        """
        p = self.n_features_in_
        classifier = is_classifier(self.estimator)
        self.estimators_, fits = [], []
        for draws in completed:
            X_l = self._analysis_input(draws[:, :p])
            if not self._with_outcome:
                y_l = y
            elif classifier:
                y_l = self._labels_from_draws(draws[:, p:])
            else:
                y_l = draws[:, p]
            fitted = clone(self.estimator).fit(X_l, y_l)
            if classifier and not np.array_equal(fitted.classes_, self.classes_):
                raise ValueError(
                    f"{type(fitted).__name__} found classes {fitted.classes_!r} "
                    f"in a completed data set; y has {self.classes_!r}"
                )
            self.estimators_.append(fitted)
            fits.append((X_l, y_l))
        self.pooled_ = self._pool(fits)

    def _training_draws(self, X, y=None):
        """The m completed training sets (with the outcome's columns when it
        was imputed with X): each imputer draws with its fixed
        ``random_state``, so these are the draws ``fit`` analysed (bootstrap
        method)."""
        X = validate_data(
            self, self._encoded(X), reset=False, ensure_all_finite="allow-nan",
            dtype=np.float64,
        )  # fmt: skip
        data = _frame(self._imputation_data(X, y), self._columns, self._types)
        return [as_floats(imp.transform(data), self._types) for imp in self.imputers_]

    def _augmentation_start(self, base, data):
        """The fit that every data-augmentation chain starts from (its
        estimate: burn-in is then short)."""
        if not _can_draw_parameters(base):
            able = [
                entry.estimator.__name__
                for entry in registered_imputers()
                if _can_draw_parameters(entry.estimator)
            ]
            raise ValueError(
                "method='data-augmentation' needs an imputer that can draw its "
                f"parameters from their posterior ({', '.join(able)}); "
                f"{type(base).__name__} cannot. Use method='bootstrap' for "
                "other imputers."
            )
        fitted = clone(base)
        if "add_indicator" in fitted.get_params(deep=False):
            fitted.set_params(add_indicator=False)
        # Every column has an observed value (_refuse_empty_columns), so the
        # chains draw every column.
        return fitted.fit(_frame(data, self._columns, self._types))

    def _pool(self, fits):
        """Rubin's rules over the estimators' coefficients, or None (the
        reason kept for :meth:`summary`)."""
        names = feature_names(self)
        rows = []
        for (X_l, y_l), fitted in zip(fits, self.estimators_, strict=True):
            if self.inference is not None:
                rows.append(inference_output(self.inference(X_l, y_l), rows))
                continue
            out = builtin_inference(fitted, X_l, y_l, names)
            if isinstance(out, str):
                self._no_inference = f"{out}. {BUILT_IN} Otherwise {ADVICE}."
                return None
            rows.append(out)
        estimates = np.array([row[0] for row in rows])
        variances = np.array([row[1] for row in rows])
        dfcom = rows[0][2]
        labels = rows[0][3] if self.inference is None else None
        if labels is None:  # a callable's parameters: named when they fit X
            if estimates.shape[1] == len(names) + 1:
                labels = ["intercept", *names]
            elif estimates.shape[1] == len(names):
                labels = names
        return pool(estimates, variances, dfcom=dfcom, names=labels)

    def summary(self):
        """The pooled coefficients, a DataFrame like R's ``summary(pool(fit))``.

        Raises
        ------
        ValueError
            When there is no pooled inference, saying why and what to pass.
        """
        check_is_fitted(self)
        if self.pooled_ is None:
            raise ValueError(f"no pooled inference: {self._no_inference}")
        return self.pooled_.summary()

    def _record(self):
        """This estimator's paragraph in :func:`emimpute.report.record`."""
        from emimpute.report import record

        if self.method == "bootstrap":
            how = " (imputer refitted on a bootstrap resample)"
        else:
            how = f" ({self.burn_in} iterations per chain)"
        lines = [
            f"**MultipleImputer**: {self.n_imputations} imputations, parameters "
            f"drawn by {self.method}{how}; random_state = {self.random_state!r}.",
            "",
            "Imputation model of each data set:",
            "",
            record(self.imputers_[0]),
        ]
        if self.estimator is not None:
            outcome = ", outcome included in the imputation model"
            lines += ["", f"Analysis: {self.estimator!r}, fitted on each data set"
                      + (outcome if self.include_outcome else "") + "."]  # fmt: skip
        if self.pooled_ is not None:
            lines += ["", record(self.pooled_)]
        return "\n".join(lines)

    # ------------------------------------------------------------ transform

    def multiple_transform(self, X):
        """The m completed versions of X, one per imputation.

        Returns
        -------
        list of ndarrays (or DataFrames, with ``set_output(transform="pandas")``)
        """
        check_is_fitted(self)
        out = self._multiple_arrays(X)
        if has_typed_columns(self._types) and isinstance(X, pd.DataFrame):
            return [self._as_given(values, X) for values in out]
        if getattr(self, "_sklearn_output_config", {}).get("transform") == "pandas":
            columns = feature_names(self)
            out = [pd.DataFrame(values, columns=columns) for values in out]
        return out

    def transform(self, X):
        """The average of the m imputations (a single array, as a transformer
        must return; for a frame fit with categorical, boolean or integer
        columns, a frame in its dtypes, those columns' cells the most
        frequent of the m values, so that each is a valid value); see
        :meth:`multiple_transform` for the m data sets."""
        check_is_fitted(self)
        draws = np.asarray(self._multiple_arrays(X))
        combined = np.mean(draws, axis=0)
        typed = typed_positions(self._types)
        if typed:
            combined[:, typed] = stats.mode(draws[:, :, typed], axis=0).mode
        return self._as_given(combined, X)

    def _multiple_arrays(self, X):
        """Each imputer's draws for X; with the outcome in the imputation
        model, y is unknown here and enters as missing columns."""
        X = validate_data(
            self, self._encoded(X), reset=False, ensure_all_finite="allow-nan",
            dtype=np.float64,
        )  # fmt: skip
        data = np.column_stack([X, np.full((len(X), self._outcome_width), np.nan)])
        p = X.shape[1]
        data = _frame(data, self._columns, self._types)
        return [
            as_floats(imputer.transform(data), self._types)[:, :p]
            for imputer in self.imputers_
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
            getattr(fitted, method)(self._analysis_input(X_l))
            for fitted, X_l in zip(self.estimators_, completed, strict=True)
        ]

    @available_if(lambda self: self.estimator is not None)
    def predict(self, X):
        """Average prediction over the m imputations; for a classifier, the
        class of highest averaged probability (see Notes)."""
        check_is_fitted(self)
        if not is_classifier(self.estimator):
            return np.mean(self._each("predict", X), axis=0)
        # The averaged probabilities are the predictive distribution over
        # the imputations (Wood, Royston & White 2015): their argmax is the
        # Bayes decision under it.  A majority vote of the m clones' labels
        # would discard how sure each clone is and tie for even m.
        if hasattr(self, "predict_proba"):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        if hasattr(self, "decision_function"):
            scores = self.decision_function(X)
            if scores.ndim == 1:  # binary: the score of classes_[1]
                return self.classes_[(scores > 0).astype(np.intp)]
            return self.classes_[np.argmax(scores, axis=1)]
        votes = np.asarray(self._each("predict", X))  # (m, n)
        codes = np.searchsorted(self.classes_, votes)
        counts = np.zeros((votes.shape[1], len(self.classes_)), dtype=np.intp)
        np.add.at(counts, (np.broadcast_to(np.arange(votes.shape[1]), votes.shape),
                           codes), 1)  # fmt: skip
        return self.classes_[np.argmax(counts, axis=1)]

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        """Average predicted probabilities over the m imputations (columns in
        the order of ``classes_``)."""
        return np.mean(self._each("predict_proba", X), axis=0)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba` (the average of probabilities, not of
        their logarithms)."""
        with np.errstate(divide="ignore"):  # log(0) = -inf, as scikit-learn
            return np.log(self.predict_proba(X))

    @available_if(lambda self: hasattr(self.estimator, "decision_function"))
    def decision_function(self, X):
        """Average decision function over the m imputations."""
        return np.mean(self._each("decision_function", X), axis=0)

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
            # The estimator's type decides what scikit-learn expects of us:
            # is_classifier (stratified CV folds, probability scorers) reads
            # estimator_type and classifier_tags.
            estimator_tags = self.estimator.__sklearn_tags__()
            tags.estimator_type = estimator_tags.estimator_type
            tags.classifier_tags = estimator_tags.classifier_tags
            tags.regressor_tags = estimator_tags.regressor_tags
            tags.target_tags.required = True
        return tags


def _frame(data, columns, types=None):
    """The array as a DataFrame with ``columns`` (the caller's columns in
    their own dtypes when ``types`` has categories, booleans or integers),
    or itself when unnamed."""
    if columns is None:
        return data
    if types is not None and has_typed_columns(types):
        return typed_frame(data, types, columns)
    return pd.DataFrame(data, columns=columns)


def _impute_once(base, data, seed, columns=None, labels=None, start=None, types=None):
    """One proper imputation: fit on a bootstrap resample, draw for all rows.

    ``labels`` name the columns in errors; ``start``: the imputer to refit
    (a warm start, see ``MultipleImputer.warm_start``) instead of a clone
    of ``base``; ``types``: the caller's column dtypes, which the imputer
    sees (:func:`_frame`)."""
    rng = np.random.RandomState(seed[0])
    imputer = clone(base) if start is None else start
    imputer.set_params(
        **{
            _drawing_key(base, "sample_posterior"): True,
            _drawing_key(base, "random_state"): int(seed[1]),
        }
    )
    n = len(data)
    observed = ~np.isnan(data)
    # A categorical column's resample must hold each of its observed
    # categories: an imputer fitted without one could not take the rows
    # that have it.
    categorical = sorted(types.categories) if types is not None else []
    seen = [np.unique(data[observed[:, j], j]) for j in categorical]
    for _ in range(MAX_REDRAWS):
        rows = rng.randint(n, size=n)
        lost = ~observed[rows].any(axis=0)
        for j, codes in zip(categorical, seen, strict=True):
            lost[j] |= len(np.unique(data[rows, j][observed[rows, j]])) < len(codes)
        if not lost.any():
            break
    else:
        lost = np.flatnonzero(lost)
        names = [labels[j] if labels else f"x{j}" for j in lost]
        counts = ", ".join(
            f"{name}: {observed[:, j].sum()}"
            for name, j in zip(names, lost, strict=True)
        )
        raise ValueError(
            f"every one of {MAX_REDRAWS} bootstrap resamples left a column "
            f"without an observed value, or without one of its categories "
            f"(observed values: {counts}); the data are too sparse for "
            "bootstrap multiple imputation: drop these columns, merge rare "
            "categories, or use method='data-augmentation'"
        )
    imputer.fit(_frame(data[rows], columns, types))
    completed = imputer.transform(_frame(data, columns, types))
    return imputer, as_floats(completed, types or ColumnTypes(None, {}))


def _drawing_key(estimator, name):
    """The parameter ``name`` of an imputer, or of the imputer it wraps
    (``imputer__sample_posterior`` in a DeltaAdjustedImputer), or None."""
    found = [
        key
        for key in estimator.get_params(deep=True)
        if key == name or key.endswith("__" + name)
    ]
    return min(found, key=len) if found else None


def _can_draw_parameters(estimator):
    """Whether an imputer (instance or class) offers data augmentation: its
    ``_draw_parameters`` hook (see :mod:`emimpute.imputers._registry`)."""
    return callable(getattr(estimator, "_draw_parameters", None))


def _augment_once(start, data, seed, burn_in):
    """One proper imputation by data augmentation from the fitted ``start``:
    ``burn_in`` steps of the model's own sampler (``_draw_parameters``)."""
    rng = np.random.RandomState(seed[0])
    imputer, completed = start._draw_parameters(data, n_steps=burn_in, rng=rng)
    imputer.set_params(sample_posterior=True, random_state=int(seed[1]))
    return imputer, completed

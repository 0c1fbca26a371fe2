"""BaseEMImputer: what every EM imputer shares (after scikit-learn's
``_BaseImputer`` and ``BaseMixture``).

How to add a model
------------------
A model is one kernel module (an :class:`~emimpute.engine._model.EMModel`
and a fit function on :func:`~emimpute.engine._driver.run_em`) plus one thin
shell here, registered with
:func:`~emimpute.imputers._registry.register_imputer`.  The shell is its
parameters plus the model it builds; it subclasses :class:`BaseEMImputer`
and implements

``_kernel(self, X, *, center, scale, rng) -> (fit, data)``
    ``fit(ridge=, max_iter=, tol=, accelerate=, callback=, **data)`` runs
    the model's EM on the validated data ``X`` (float, NaN at missing cells,
    only the columns with an observed value; ``center`` and ``scale`` their
    observed means and standard deviations, ``rng`` the fit's
    ``RandomState``).  Its result has ``loglik``, ``loglik_path``, ``n_iter``,
    ``converged`` and ``covariance`` (or ``dispersion``, the matrix whose
    eigenvalues the automatic ridge checks for collinearity), and the
    model's parameters.  The base runs it through the automatic ridge and
    issues the warnings.
``_store_result(self, result, valid)``
    Set the fitted attributes from that result (``valid``: the non-empty
    columns among all).  ``result`` is None when no cell was observed.
``_conditional(self, X, *, rng, want_variance, want_loglik)``
    A :class:`~emimpute.gaussian._conditional.ConditionalMoments` of the
    rows of ``X`` (a writeable float array over the non-empty columns,
    which it may fill in place): completed values (means, or draws when
    ``rng`` is given), variances and per-row log-likelihoods on request.
    Set the class attribute ``_provides`` to the subset of
    ``{"variance", "loglik"}`` it can give; ``conditional_moments`` and
    ``score_samples`` / ``score`` exist only where they are provided.
``_fitted_state(self)`` / ``_restore_fitted_state(self, state, check)``
    Extend the base's (``super()``): the model's fitted attributes to and
    from JSON-able values (``check`` is the model file's field checker,
    :class:`emimpute._model_io._Fields`).
``_record(self)``
    Its paragraph of Markdown for :func:`emimpute.report.record`.
``_build_model(self, X)``
    ``(EMModel, start)`` for validated data X over the non-empty columns.

and, where it has them, ``_cli_options(group)`` / ``_params_from_cli(args)``
(classmethods: its own command-line flags), ``_check_params()`` (checks of
parameters before any work on X), ``_draw_parameters(X, *, n_steps, rng)``
(data-augmentation draws for ``MultipleImputer``) and
``_convergence_advice`` (the second sentence of its ``ConvergenceWarning``).
Everything else (validation, empty and degenerate columns, the automatic
ridge, warnings, progress, the indicator, ``keep_empty_features``, ``copy``,
feature names, ``set_output``, tags) is here.
"""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import MissingIndicator
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from emimpute.engine._model import SingularCovarianceError
from emimpute.engine._regularise import (
    degenerate_columns,
    describe_problems,
    fit_with_automatic_ridge,
)
from emimpute.exceptions import RegularisationWarning
from emimpute.gaussian._conditional import ConditionalMoments
from emimpute.models._normal import observed_column_moments
from emimpute.utils._columns import feature_names
from emimpute.utils._progress import iteration_reporter, report_end
from emimpute.utils._random import resolve_random_state
from emimpute.utils._scale import standardising_scale
from emimpute.utils._sklearn_compat import (
    Interval,
    MissingValues,
    _fit_context,
)
from emimpute.utils._validation import (
    check_scale,
    is_nan_marker,
    validate_numeric,
    warn_empty_features,
)


def _if_provided(what):
    """``available_if`` check: the model gives ``what`` (see ``_provides``)."""

    def check(self):
        if what not in type(self)._provides:
            raise AttributeError(
                f"{type(self).__name__} does not provide {what} of missing cells"
            )
        return True

    return check


class BaseEMImputer(TransformerMixin, BaseEstimator):
    """Base class of the EM imputers: the shared parameters, the fit,
    transform and score skeleton, and the registry hooks.

    Not for direct use; see the module docstring for the hooks a model
    implements.

    Parameters
    ----------
    missing_values : float, default=np.nan
        The placeholder of missing cells: ``np.nan`` (also catches ``pd.NA``
        in pandas nullable columns) or a number such as -1.
    ridge : float, default=0.0
        Strength of the ridge prior on the covariance, in pseudo-observations.
    max_iter : int, default=500
    tol : float, default=1e-6
    accelerate : bool, default=True
    sample_posterior : bool, default=False
    random_state : int, RandomState instance or None, default=None
    add_indicator : bool, default=False
    keep_empty_features : bool, default=False
    copy : bool, default=True
    verbose : int, default=0
    """

    _parameter_constraints = {
        "missing_values": [MissingValues(numeric_only=True)],
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

    # Shared parameters a model has no use for (its __init__ leaves them
    # out): a stochastic EM has no SQUAREM to switch on.
    _inapplicable_params = frozenset()
    # What _conditional can give besides the completed values.
    _provides = frozenset({"variance", "loglik"})
    _convergence_advice = "Increase max_iter or tol."

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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric data with missing cells marked by ``missing_values``.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted imputer.
        """
        self._check_params()
        X = validate_numeric(self, X, reset=True, copy=False)
        count, center, scale, minimum, maximum = observed_column_moments(X)
        spread = maximum - minimum
        self._empty_features = count == 0
        warn_empty_features(self, self._empty_features, stacklevel=4)
        valid = ~self._empty_features
        X_valid = X[:, valid] if self._empty_features.any() else X
        fit, data = self._kernel(
            X_valid,
            center=center[valid],
            scale=scale[valid],
            rng=resolve_random_state(self.random_state),
        )
        self._fit_and_store(
            fit,
            valid,
            degenerate=degenerate_columns(count, spread),
            n_samples=X.shape[0],
            spread=spread[valid],
            column_scale=scale[valid],
            **data,
        )
        self._fit_indicator(X)
        return self

    def _check_params(self):
        """Checks of parameters beyond their constraints, before any work on
        X (none by default)."""

    def _fit_and_store(
        self, fit, valid, *, degenerate, n_samples, spread, column_scale, **data
    ):
        """Run an EM kernel with this estimator's settings; store the result.

        ``fit`` runs the model (``fit(ridge=, max_iter=, tol=, accelerate=,
        callback=, **data)``, see :meth:`_kernel`); the estimate covers the
        ``valid`` (non-empty) columns, whose observed ranges are ``spread``
        and standard deviations ``column_scale``; the ``degenerate`` columns
        (:func:`~emimpute.engine._regularise.degenerate_columns`, positions
        among all columns) have no variance of their own.  With ``ridge=0``
        and no maximum likelihood estimate, the smallest proper prior is
        added (:mod:`emimpute.engine._regularise`) and a
        :class:`~emimpute.exceptions.RegularisationWarning` names the
        columns.  :class:`emimpute.dask.DaskEMImputer` calls it with its
        blockwise E-step.
        """
        name = type(self).__name__
        names = self._estimate_names(valid)
        check_scale(names, spread)
        if not valid.any():  # nothing observed: every column is dropped
            self._store_empty_fit()
            return
        position = np.cumsum(valid) - 1  # a column's position among the valid
        known = {reason: position[cols] for reason, cols in degenerate.items()}
        fitted = self._run_with_ridge(
            fit, n_samples, standardising_scale(column_scale), known, data
        )
        result = fitted.result
        if fitted.problems:
            warnings.warn(
                f"{name}: {describe_problems(fitted.problems, names, fitted.ridge)}",
                RegularisationWarning,
                stacklevel=4,
            )
        report_end(name, self.verbose, result.n_iter, result.converged)
        self.ridge_ = fitted.ridge
        self.loglik_ = result.loglik
        self.loglik_path_ = result.loglik_path
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self._store_result(result, valid)
        stopped = getattr(result, "stopped", None)
        if stopped is not None:  # the model stopped it (EMModel.out_of_bounds)
            warnings.warn(
                f"{name} stopped after {result.n_iter} iterations without "
                f"converging: {stopped}. {self._convergence_advice}",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif not result.converged and self.max_iter > 0:
            warnings.warn(
                f"{name} did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}). {self._convergence_advice}",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _run_with_ridge(self, fit, n_samples, scale, known, data):
        """The kernel through :func:`fit_with_automatic_ridge`; a singular
        fit becomes a ValueError naming the estimator."""
        name = type(self).__name__

        def run(ridge, min_tol):
            return fit(
                ridge=ridge,
                max_iter=self.max_iter,
                tol=max(self.tol, min_tol),
                callback=iteration_reporter(name, self.verbose),
                **self._loop_options(),
                **data,
            )

        try:
            return fit_with_automatic_ridge(
                run, ridge=self.ridge, n_rows=n_samples, scale=scale, known=known
            )
        except SingularCovarianceError as error:
            raise ValueError(f"{name} could not fit: {error}.") from None

    def _estimate_names(self, valid):
        """Names of the rows of the estimate (warnings name them): the
        ``valid`` columns' names."""
        return [feature_names(self)[j] for j in np.flatnonzero(valid)]

    def _loop_options(self):
        """Options of the kernel's loop beyond ``max_iter`` and ``tol``:
        SQUAREM's switch for the EM models."""
        return {"accelerate": self.accelerate}

    def _store_empty_fit(self):
        """The fitted state when no cell was observed (all columns dropped)."""
        self.ridge_ = float(self.ridge)
        self.loglik_ = 0.0
        self.loglik_path_ = np.zeros(0)
        self.n_iter_ = 0
        self.converged_ = True
        self._store_result(None, ~self._empty_features)

    def _fit_indicator(self, X):
        """The missing indicator of the validated X (NaN at missing cells)."""
        self.indicator_ = None
        if self.add_indicator:
            self.indicator_ = MissingIndicator(error_on_new=False).fit(X)

    # ---------------------------------------------------- hooks of a model

    def _kernel(self, X, *, center, scale, rng):
        """``(fit, data)``: the model's EM and its data (module docstring)."""
        raise NotImplementedError

    def _store_result(self, result, valid):
        """Fitted attributes from the kernel's result (module docstring)."""
        raise NotImplementedError

    def _conditional(self, X, *, rng=None, want_variance=False, want_loglik=False):
        """Conditional moments over the non-empty columns (module docstring)."""
        raise NotImplementedError

    def _build_model(self, X):
        """``(EMModel, start)`` for validated data X over the non-empty
        columns (the model-contract tests run every model through it)."""
        raise NotImplementedError(f"{type(self).__name__} does not build a model")

    # ------------------------------------------------------------ transform

    def transform(self, X):
        """Impute every missing cell from the fitted model.

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
        rng = resolve_random_state(self.random_state) if self.sample_posterior else None
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
        """:meth:`_conditional` over the non-empty columns, written into X."""
        valid = ~self._empty_features
        if not valid.any():  # every column was empty in fit
            variance = np.zeros(X.shape) if want_variance else None
            loglik = np.zeros(X.shape[0]) if want_loglik else None
            return ConditionalMoments(X, variance, loglik)
        whole = not self._empty_features.any()
        X_valid = X if whole else X[:, valid]
        moments = self._conditional(
            X_valid, rng=rng, want_variance=want_variance, want_loglik=want_loglik
        )
        if whole:
            if moments.completed is not X:
                X[...] = moments.completed
        else:
            X[:, valid] = moments.completed
            if want_variance:
                variance = np.zeros(X.shape)
                variance[:, valid] = moments.variance
                moments.variance = variance
        moments.completed = X
        return moments

    @available_if(_if_provided("variance"))
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
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, copy=True)
        moments = self._impute(X, want_variance=True)
        moments.completed[:, self._empty_features] = np.nan
        moments.variance[:, self._empty_features] = np.nan
        return moments.completed, moments.variance

    # -------------------------------------------------------------- scoring

    @available_if(_if_provided("loglik"))
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

    @available_if(_if_provided("loglik"))
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

    # ------------------------------------------------- registry hooks

    def _fitted_state(self):
        """The fitted attributes every EM imputer has, JSON-able (model
        files); subclasses add theirs to this dict."""
        return {
            "loglik_": float(self.loglik_),
            "n_iter_": int(self.n_iter_),
            "converged_": bool(self.converged_),
            "ridge_": float(self.ridge_),
            "empty_features": self._empty_features.tolist(),
        }

    # The fields of _fitted_state (subclasses add theirs), those that files
    # of an older version may lack, and parameters renamed (old: new) that
    # model files may still carry under the old name.
    _state_fields = frozenset(
        {"loglik_", "n_iter_", "converged_", "ridge_", "empty_features"}
    )
    _optional_state = frozenset({"ridge_", "empty_features"})
    _renamed_params = {}

    def _restore_fitted_state(self, state, check):
        """Set the attributes of :meth:`_fitted_state` from a model file's
        ``state`` (its fields known to be present, optional ones excepted),
        each checked by ``check`` (errors name the field)."""
        p = self.n_features_in_
        loglik = state["loglik_"]
        if not (loglik is None or isinstance(loglik, numbers.Real)):
            raise check.error("loglik_", "must be a number")
        self.loglik_ = np.nan if loglik is None else float(loglik)
        self.n_iter_ = check.integer(state["n_iter_"], "n_iter_")
        if not isinstance(state["converged_"], bool):
            raise check.error("converged_", "must be true or false")
        self.converged_ = state["converged_"]
        if "ridge_" in state:
            ridge = check.array(state["ridge_"], "ridge_", ())
            if ridge < 0:
                raise check.error("ridge_", "must be >= 0")
            self.ridge_ = float(ridge)
        self.loglik_path_ = np.array([])
        self._empty_features = np.zeros(p, dtype=bool)
        if "empty_features" in state:
            self._empty_features = check.flags(
                state["empty_features"], "empty_features", p
            )
        self.indicator_ = None

    def _record(self):
        """A paragraph of Markdown for :func:`emimpute.report.record`."""
        state = "converged" if self.converged_ else "**did not converge**"
        return (
            f"**{type(self).__name__}**: {state} after {self.n_iter_} "
            f"iterations; log-likelihood {self.loglik_:.4f}."
        )

    @classmethod
    def _cli_options(cls, group):
        """Add this model's own flags to an ``argparse`` argument group (the
        shared ones, such as ``--ridge``, belong to the command line)."""

    @classmethod
    def _params_from_cli(cls, args):
        """This model's parameters from the parsed flags of
        :meth:`_cli_options` (a dict, empty by default)."""
        return {}

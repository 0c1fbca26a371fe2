"""StudentTImputer: multivariate-t imputation, robust to outliers (estimator
shell)."""

import argparse
import copy
import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._registry import register_imputer
from emimpute.models._normal import observed_column_moments
from emimpute.models._student_t import (
    StudentTModel,
    check_df,
    conditional_t,
    fit_student_t_em,
    prepare_t_problem,
    row_weights,
    t_covariance,
)
from emimpute.models._student_t_posterior import t_data_augmentation
from emimpute.utils._columns import feature_names
from emimpute.utils._scale import ridge_scatter
from emimpute.utils._sklearn_compat import Interval, StrOptions
from emimpute.utils._validation import validate_numeric


@register_imputer("t", "multivariate t, robust to outliers, missing at random (EM)")
class StudentTImputer(BaseEMImputer):
    """Impute missing values from a multivariate t fitted by EM.

    Heavy tails and gross outliers pull the normal model's mean and
    covariance, and so every imputation.  The multivariate t is a scale
    mixture of normals: each row gets a weight
    ``w = (df + p_obs) / (df + d_obs**2)``, with ``d_obs`` the Mahalanobis
    distance of its observed cells, so rows far from the centre count less
    in the mean and scale.  ``fit`` finds the maximum likelihood location,
    scale matrix and (by default) degrees of freedom; ``transform`` fills
    each missing cell with its conditional mean given the observed cells of
    its row (the same formula as the normal model's, under the robust
    estimate), or a draw from the conditional t with
    ``sample_posterior=True``.  With ``df`` large the t is the normal and the
    fit is :class:`EMImputer`'s.

    Parameters
    ----------
    df : "estimate" or float > 0, default="estimate"
        Degrees of freedom: estimated with the other parameters (ECME,
        bounded to [0.5, 1000]; at 1000 the t is practically normal) or
        held at the number given (small values, such as 4, make the fit
        more robust).
    missing_values : float, default=np.nan
        The placeholder of missing cells: ``np.nan`` (also catches ``pd.NA``
        in pandas nullable columns) or a number such as -1.
    ridge : float, default=0.0
        Strength, in pseudo-observations, of the ridge (inverse-Wishart)
        prior on the scale matrix, as in :class:`EMImputer`; where the
        maximum likelihood estimate does not exist the smallest proper prior
        is added and a :class:`~emimpute.exceptions.RegularisationWarning`
        names the columns.
    max_iter : int, default=500
        Maximum number of iterations (a SQUAREM cycle counts as one).
    tol : float, default=1e-6
        Convergence threshold on the relative change of the objective and
        the largest change of location and scale on the standardised scale.
    accelerate : bool, default=True
        SQUAREM (Varadhan & Roland 2008) with the fall-back to the plain EM
        step whenever an extrapolation would lower the objective.
    sample_posterior : bool, default=False
        In ``transform``, draw each row's missing cells from their joint
        conditional t instead of using the conditional mean.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws of ``sample_posterior``.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the columns
        that had missing values in ``fit``.
    keep_empty_features : bool, default=False
        Keep columns with no observed value in ``fit`` (filled with 0)
        instead of dropping them.
    copy : bool, default=True
        If False, impute in place when X is a writeable float NumPy array
        with NaN as the missing marker.
    verbose : int, default=0
        1 prints every 10th iteration, 2 every iteration.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,)
        Location (the mean, when ``df_ > 1``; NaN for empty columns).
    scale_ : ndarray of shape (n_features_in_, n_features_in_)
        Scale matrix S.
    df_ : float
        Degrees of freedom: ``df``, or the estimate.
    covariance_ : ndarray of shape (n_features_in_, n_features_in_)
        ``scale_ * df_ / (df_ - 2)``, the covariance of the fitted t; all NaN
        when ``df_ <= 2``, where the t has no finite variance.
    ridge_, loglik_, loglik_path_, n_iter_, n_em_steps_, converged_
        As in :class:`EMImputer`; ``loglik_`` is the observed-data
        log-likelihood of the t model, constant included.
    indicator_, n_features_in_, feature_names_in_
        As in :class:`EMImputer`.

    See Also
    --------
    EMImputer : The multivariate normal (the limit df -> infinity).

    Notes
    -----
    EM for the multivariate t with missing data (Liu & Rubin 1995; Little &
    Rubin 2002, sec. 12.2): the E-step is the normal one through the
    precision matrix (the same compiled kernel, which also returns each
    row's observed-part distance), then the df that maximises the
    observed-data likelihood at the current location and scale (ECME), then
    one weighted pass for the sums; the M-step is the weighted normal
    update.  One iteration costs about 1.4 times a normal one.
    :meth:`row_weights` gives each row's weight, a score of how much of an
    outlier it is.

    References
    ----------
    Liu, C. & Rubin, D. B. (1995). ML estimation of the t distribution using
    EM and its extensions, ECM and ECME. *Statistica Sinica* 5, 19-39.
    Little, R. J. A. & Rubin, D. B. (2002). *Statistical Analysis with
    Missing Data*, 2nd ed., sec. 12.2.

    Examples
    --------
    >>> import numpy as np
    >>> from emimpute import StudentTImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=300)
    >>> X[:15] += 8.0  # 5% gross outliers
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> imputer = StudentTImputer().fit(X)
    >>> bool(imputer.df_ < 10), bool(np.all(np.abs(imputer.mean_) < 0.2))
    (True, True)
    >>> weights = imputer.row_weights(X)
    >>> bool(weights[:15].mean() < 0.2 < weights[15:].mean())
    True
    """

    _parameter_constraints = {
        **BaseEMImputer._parameter_constraints,
        "df": [
            StrOptions({"estimate"}),
            Interval(numbers.Real, 0, None, closed="neither"),
        ],
    }
    _convergence_advice = (
        "Increase max_iter or tol; with few rows, a fixed df (for example "
        "df=4) or a small ridge prior (ridge > 0) also helps."
    )
    _state_fields = BaseEMImputer._state_fields | {"mean_", "scale_", "df_"}

    def __init__(
        self,
        *,
        df="estimate",
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
        self.df = df

    # ------------------------------------------------------- model hooks

    def _kernel(self, X, *, center, scale, rng):
        return fit_student_t_em, {"X": X, "df": self.df}

    def _store_result(self, result, valid):
        p = len(valid)
        self.mean_ = np.full(p, np.nan)
        self.scale_ = np.full((p, p), np.nan)
        self.df_ = float(self.df) if self.df != "estimate" else np.nan
        self.n_em_steps_ = 0
        if result is not None:
            self.mean_[valid] = result.mean
            self.scale_[np.ix_(valid, valid)] = result.scale
            self.df_ = float(result.df)
            self.n_em_steps_ = result.n_em_steps
        self.covariance_ = t_covariance(self.scale_, self.df_)

    def _valid_parameters(self):
        valid = ~self._empty_features
        return self.mean_[valid], self.scale_[np.ix_(valid, valid)], self.df_

    def _conditional(self, X, *, rng=None, want_variance=False, want_loglik=False):
        mean, scale, df = self._valid_parameters()
        return conditional_t(
            X,
            mean,
            scale,
            df,
            out=X,
            rng=rng,
            want_variance=want_variance,
            want_loglik=want_loglik,
        )

    def _build_model(self, X):
        """The t model of X (validated, non-empty columns) and its start,
        with this estimator's ridge and df: the model :meth:`fit` runs."""
        model = StudentTModel.in_memory(prepare_t_problem(X, self.ridge), self.df)
        return model, model.start()

    def row_weights(self, X):
        """Each row's weight in the fitted t: (df + p_obs) / (df + d_obs^2).

        Rows far from the fitted centre (outliers) get small weights; under
        the model the weights average about 1.  A row with nothing observed
        gets 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, copy=True)
        mean, scale, df = self._valid_parameters()
        return row_weights(X[:, ~self._empty_features], mean, scale, df)

    def _draw_parameters(self, X, *, n_steps, rng):
        """A copy of the fitted imputer with location and scale drawn from
        their posterior after ``n_steps`` steps of data augmentation on X
        (weights, cells, then parameters; Liu 1995), df held at ``df_``,
        and the completed X of the last step.  The ridge of the fit
        (``ridge_``) is the inverse-Wishart prior of the P-step."""
        if self._empty_features.any():
            raise ValueError(
                "data augmentation needs an observed value in every column"
            )
        prior_scatter, prior_df = None, 0.0
        if self.ridge_ > 0:
            _, _, scale, _, _ = observed_column_moments(X)
            prior_scatter, prior_df = ridge_scatter(scale, self.ridge_), self.ridge_
        completed, mean, scale = t_data_augmentation(
            X, self.mean_, self.scale_, self.df_, n_steps, rng, prior_scatter, prior_df
        )
        imputer = copy.deepcopy(self)
        imputer.mean_, imputer.scale_ = mean, scale
        imputer.covariance_ = t_covariance(scale, self.df_)
        return imputer, completed

    # ----------------------------------------------------- registry hooks

    def _fitted_state(self):
        return {
            **super()._fitted_state(),
            "mean_": self.mean_,
            "scale_": self.scale_,
            "df_": float(self.df_),
        }

    def _restore_fitted_state(self, state, check):
        super()._restore_fitted_state(state, check)
        p, empty = self.n_features_in_, self._empty_features
        self.mean_ = check.array(state["mean_"], "mean_", (p,), allow_nan=empty)
        self.scale_ = check.covariance(state["scale_"], "scale_", p, ~empty)
        df = check.array(state["df_"], "df_", ())
        try:
            self.df_ = check_df(float(df))
        except ValueError as error:
            raise check.error("df_", str(error)) from None
        self.covariance_ = t_covariance(self.scale_, self.df_)
        self.n_em_steps_ = 0

    def _record(self):
        how = "draws" if self.sample_posterior else "conditional means"
        state = "converged" if self.converged_ else "**did not converge**"
        df = "estimated" if self.df == "estimate" else "fixed"
        return "\n".join(
            [
                "**StudentTImputer** (missing at random, multivariate t, "
                "maximum likelihood by EM; robust to outliers)",
                "",
                f"Columns: {', '.join(feature_names(self))}; df = {self.df_:.4g} "
                f"({df}); ridge = {self.ridge:g}; {state} after "
                f"{self.n_iter_} iterations; log-likelihood {self.loglik_:.4f}; "
                f"imputation by {how}.",
            ]
        )

    @classmethod
    def _cli_options(cls, group):
        group.add_argument(
            "--df",
            type=_df_argument,
            help="degrees of freedom of the t (--method t): a number > 0, "
            "or 'estimate' (default)",
        )

    @classmethod
    def _params_from_cli(cls, args):
        df = getattr(args, "df", None)
        return {} if df is None else {"df": df}


def _df_argument(text):
    """``--df``: 'estimate' or a number > 0."""
    if text == "estimate":
        return text
    try:
        return check_df(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'estimate' or a number > 0, got {text!r}"
        ) from None

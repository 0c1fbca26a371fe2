"""EMImputer: maximum-likelihood multivariate-normal imputation (estimator shell)."""

import copy

import numpy as np

from emimpute.gaussian._conditional import conditional_moments
from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._registry import register_imputer
from emimpute.models._normal import (
    NormalModel,
    fit_normal_em,
    observed_column_moments,
    prepare_problem,
)
from emimpute.models._normal_posterior import data_augmentation
from emimpute.utils._columns import feature_names
from emimpute.utils._scale import ridge_scatter


@register_imputer("em", "multivariate normal, missing at random (EM)")
class EMImputer(BaseEMImputer):
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

    _parameter_constraints = {**BaseEMImputer._parameter_constraints}
    _convergence_advice = (
        "Increase max_iter or tol; if columns are nearly collinear or barely "
        "observed, a small ridge prior (ridge > 0) also speeds convergence."
    )
    _state_fields = BaseEMImputer._state_fields | {"mean_", "covariance_"}
    _optional_state = frozenset({"ridge_"})  # empty_features: always written

    # ------------------------------------------------------- model hooks

    def _kernel(self, X, *, center, scale, rng):
        return fit_normal_em, {"X": X, "column_moments": (center, scale)}

    def _store_result(self, result, valid):
        p = len(valid)
        self.mean_ = np.full(p, np.nan)
        self.covariance_ = np.full((p, p), np.nan)
        self.n_em_steps_ = 0
        if result is not None:
            self.mean_[valid] = result.mean
            self.covariance_[np.ix_(valid, valid)] = result.covariance
            self.n_em_steps_ = result.n_em_steps

    def _valid_moments(self):
        valid = ~self._empty_features
        return self.mean_[valid], self.covariance_[np.ix_(valid, valid)]

    def _conditional(self, X, *, rng=None, want_variance=False, want_loglik=False):
        mean, covariance = self._valid_moments()
        return conditional_moments(
            X,
            mean,
            covariance,
            out=X,
            rng=rng,
            want_variance=want_variance,
            want_loglik=want_loglik,
        )

    def _build_model(self, X):
        """The normal model of X (validated, non-empty columns) and its start,
        with this estimator's ridge: the model :meth:`fit` runs."""
        problem = prepare_problem(X, self.ridge)
        model = NormalModel.in_memory(problem)
        return model, model.start()

    def _draw_parameters(self, X, *, n_steps, rng):
        """A copy of the fitted imputer with (mean, covariance) drawn from
        their posterior after ``n_steps`` steps of data augmentation on X
        (Schafer 1997, sec. 5.4), and the completed X of the last step.

        The chain starts at the fitted estimate; the ridge the fit used
        (``ridge_``) is the inverse-Wishart prior of the P-step, as in EM.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Float, NaN at missing cells, every column observed somewhere.
        n_steps : int
            Data-augmentation iterations (I-steps), at least 1.
        rng : numpy.random.RandomState

        Returns
        -------
        imputer : EMImputer
        completed : ndarray of shape (n_samples, n_features)
        """
        if self._empty_features.any():
            raise ValueError(
                "data augmentation needs an observed value in every column"
            )
        prior_scatter, prior_df = None, 0.0
        ridge = getattr(self, "ridge_", self.ridge)
        if ridge > 0:
            _, _, scale, _, _ = observed_column_moments(X)
            prior_scatter, prior_df = ridge_scatter(scale, ridge), ridge
        completed, mean, covariance = data_augmentation(
            X, self.mean_, self.covariance_, n_steps, rng, prior_scatter, prior_df
        )
        imputer = copy.deepcopy(self)
        imputer.mean_, imputer.covariance_ = mean, covariance
        return imputer, completed

    # ----------------------------------------------------- registry hooks

    def _fitted_state(self):
        return {
            **super()._fitted_state(),
            "mean_": self.mean_,
            "covariance_": self.covariance_,
        }

    def _restore_fitted_state(self, state, check):
        super()._restore_fitted_state(state, check)
        p, empty = self.n_features_in_, self._empty_features
        # An empty column has no moments: NaN (null) there, and only there.
        self.mean_ = check.array(state["mean_"], "mean_", (p,), allow_nan=empty)
        self.covariance_ = check.covariance(
            state["covariance_"], "covariance_", p, ~empty
        )
        self.n_em_steps_ = 0

    def _record(self):
        how = "draws" if self.sample_posterior else "conditional means"
        state = "converged" if self.converged_ else "**did not converge**"
        return "\n".join(
            [
                "**EMImputer** (missing at random, multivariate normal, maximum "
                "likelihood by EM)",
                "",
                f"Columns: {', '.join(feature_names(self))}; ridge = "
                f"{self.ridge:g}; {state} after {self.n_iter_} iterations; "
                f"log-likelihood {self.loglik_:.4f}; imputation by {how}.",
            ]
        )

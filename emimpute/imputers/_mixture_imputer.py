"""GaussianMixtureImputer: a mixture of normals fitted by EM with the
missing cells integrated out, as an imputer and as a clusterer of
incomplete rows (estimator shell)."""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from emimpute.gaussian._conditional import ConditionalMoments
from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._registry import register_imputer
from emimpute.models._mixture import (
    COVARIANCE_TYPES,
    MixtureModel,
    MixtureParams,
    fit_mixture_em,
    initial_params,
    mixture_conditional,
    standardise,
)
from emimpute.utils._columns import feature_names
from emimpute.utils._random import resolve_random_state
from emimpute.utils._sklearn_compat import Interval, StrOptions
from emimpute.utils._validation import validate_numeric


@register_imputer(
    "mixture", "mixture of normals, clusters and curved relations, MAR (EM)"
)
class GaussianMixtureImputer(BaseEMImputer):
    """Impute missing values from a mixture of normals fitted by EM, and
    cluster incomplete rows.

    One multivariate normal imputes along straight lines; with clusters
    (segments, cell types, species) or bending relations its conditional
    mean is wrong.  A mixture of ``n_components`` normals fitted by
    maximum likelihood with the missing cells integrated out (Ghahramani &
    Jordan 1994) imputes each missing cell by sum_k tau_ik c_ik: the
    components' conditional means c_ik weighted by their responsibilities
    tau_ik given the row's observed cells.  The same fit clusters incomplete
    rows (:meth:`predict`, :meth:`predict_proba`), which scikit-learn's
    ``GaussianMixture`` cannot (it refuses NaN).

    Parameters
    ----------
    n_components : int, default=1
        Number of normal components; with 1 the fit is :class:`EMImputer`'s.
        Choose it by :meth:`bic` or by ``GridSearchCV`` on :meth:`score`.
    covariance_type : {"full", "diag", "spherical", "tied"}, default="full"
        As scikit-learn's ``GaussianMixture``: each component its own
        covariance, its own diagonal one, its own variance times the
        identity, or one covariance shared by all.  ``covariances_`` holds
        (n_components, n_features, n_features) matrices whatever the type
        (the imputations need the matrices), with the type's structure.
    init_params : {"kmeans", "random"}, default="kmeans"
        Starting responsibilities: k-means++ and Lloyd's iterations on the
        rows with their missing cells at one normal's conditional means
        (fitted by EM), or random ones.
    n_init : int, default=1
        Starts; the fit with the highest objective is kept.
    missing_values : float, default=np.nan
        The placeholder of missing cells: ``np.nan`` (also catches ``pd.NA``
        in pandas nullable columns) or a number such as -1.
    ridge : float, default=0.0
        Strength, in pseudo-observations, of the ridge (inverse-Wishart)
        prior on each component's covariance, as in :class:`EMImputer`, so
        that a small component cannot collapse onto a few rows; where the
        maximum likelihood estimate does not exist the smallest proper prior
        is added and a :class:`~emimpute.exceptions.RegularisationWarning`
        names the columns.
    max_iter : int, default=500
    tol : float, default=1e-6
        Stop when the largest change of a weight, mean or covariance entry
        on the standardised scale and the relative change of the objective
        are both below ``tol``.
    accelerate : bool, default=True
        SQUAREM (Varadhan & Roland 2008) on the unconstrained parameters,
        with the engine's fall-back to plain EM steps whenever an
        extrapolation would lower the objective: on clustered data 1.5-4
        times fewer E-steps.  Like plain EM it may reach another local
        maximum than plain EM from the same start.
    sample_posterior : bool, default=False
        Draw each row's missing cells (a component from its
        responsibilities, then the cells from that component's conditional
        normal) instead of filling the conditional means.
    random_state : int, RandomState instance or None, default=None
    add_indicator : bool, default=False
    keep_empty_features : bool, default=False
    copy : bool, default=True
    verbose : int, default=0

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray of shape (n_components, n_features, n_features)
        NaN at columns empty in fit.
    mean_, covariance_ : ndarray of shape (n_features,), (n_features, n_features)
        The mixture's own mean and covariance, sum_k w_k mu_k and
        sum_k w_k (S_k + mu_k mu_k') - mean mean' (with one component,
        :class:`EMImputer`'s).
    loglik_, loglik_path_, lower_bound_ : float, ndarray, float
        The observed-data log-likelihood of the fit, after each iteration,
        and the objective (with the prior).
    n_iter_, converged_, ridge_

    Notes
    -----
    Each EM iteration does the normal model's E-step once per component
    (the conditional means and covariances through the precision matrix)
    and weights the rows by their responsibilities, computed from the
    observed cells only; the objective never decreases (SQUAREM keeps only
    steps that raise it).  Mixtures have several local maxima: ``n_init``
    starts help.
    Labels of the components are arbitrary (label switching): it does not
    matter for imputation, nor for ``MultipleImputer``, whose bootstrap
    fits each impute on their own.

    References
    ----------
    Ghahramani, Z. & Jordan, M. I. (1994). Supervised learning from
    incomplete data via an EM approach. *NIPS* 6, 120-127.
    McLachlan, G. J. & Peel, D. (2000). *Finite Mixture Models*, Wiley,
    ch. 3.

    Examples
    --------
    >>> import numpy as np
    >>> from emimpute import GaussianMixtureImputer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal([-3, -3], 0.5, (150, 2)),
    ...                     rng.normal([3, 3], 0.5, (150, 2))])
    >>> X[::10, 1] = np.nan  # the second column of every tenth row
    >>> imputer = GaussianMixtureImputer(n_components=2, random_state=0).fit(X)
    >>> filled = imputer.transform(X)
    >>> bool(np.all(np.sign(filled[::10, 1]) == np.sign(X[::10, 0])))
    True
    >>> labels = imputer.predict(X)  # incomplete rows clustered too
    >>> len(set(labels[:150])), len(set(labels[150:]))
    (1, 1)
    """

    _parameter_constraints = {
        **BaseEMImputer._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "init_params": [StrOptions({"kmeans", "random"})],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
    }
    _state_fields = BaseEMImputer._state_fields | {
        "weights_", "means_", "covariances_", "lower_bound_",
    }  # fmt: skip
    _convergence_advice = (
        "Increase max_iter or tol; a small ridge prior (ridge > 0) keeps "
        "small components from collapsing."
    )

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        init_params="kmeans",
        n_init=1,
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
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.init_params = init_params
        self.n_init = n_init
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

    # ------------------------------------------------------- model hooks

    def _kernel(self, X, *, center, scale, rng):
        if self.n_components > len(X):
            raise ValueError(
                f"n_components={self.n_components} is more than the {len(X)} "
                "rows: each component needs rows to estimate it"
            )
        data = {
            "X": X,
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "n_init": self.n_init,
            "init_params": self.init_params,
            "rng": rng,
        }
        return fit_mixture_em, data

    def _store_result(self, result, valid):
        K, p = self.n_components, len(valid)
        self.weights_ = np.full(K, 1.0 / K)
        self.means_ = np.full((K, p), np.nan)
        self.covariances_ = np.full((K, p, p), np.nan)
        self.lower_bound_ = self.loglik_
        if result is not None:
            self.weights_ = result.params.weights
            self.means_[:, valid] = result.params.means
            self.covariances_[np.ix_(np.arange(K), valid, valid)] = (
                result.params.covariances
            )
            self.lower_bound_ = float(result.lower_bound)
        self._set_moments()

    def _set_moments(self):
        """``mean_`` and ``covariance_``: the mixture's own."""
        w, mu, S = self.weights_, self.means_, self.covariances_
        self.mean_ = w @ mu
        second = np.einsum("k,kij->ij", w, S + np.einsum("ki,kj->kij", mu, mu))
        self.covariance_ = second - np.outer(self.mean_, self.mean_)

    def _valid_params(self):
        valid = ~self._empty_features
        return MixtureParams(
            self.weights_,
            self.means_[:, valid],
            self.covariances_[np.ix_(np.arange(self.n_components), valid, valid)],
        )

    def _conditional(self, X, *, rng=None, want_variance=False, want_loglik=False):
        found = mixture_conditional(
            X, self._valid_params(), rng=rng, want_variance=want_variance
        )
        return ConditionalMoments(
            found.completed, found.variance, found.loglik if want_loglik else None
        )

    def _build_model(self, X):
        """The mixture model of X (validated, non-empty columns) on its
        standardised scale and a k-means start, with this estimator's
        ridge."""
        Z, center, unit = standardise(X)
        rng = resolve_random_state(self.random_state)
        start = initial_params(
            Z, self.n_components, self.init_params, rng, self.ridge,
            self.covariance_type, unit,
        )  # fmt: skip
        model = MixtureModel(
            Z, start, self.ridge, self.covariance_type, unit, center=center
        )
        return model, start

    # --------------------------------------------------------- clustering

    def predict_proba(self, X):
        """Each row's responsibilities: the posterior probability of each
        component given the row's observed cells (missing cells integrated
        out).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, copy=True)
        X = X[:, ~self._empty_features]
        return mixture_conditional(X, self._valid_params()).responsibilities

    def predict(self, X):
        """The most probable component of each row given its observed cells.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return np.argmax(self.predict_proba(X), axis=1)

    def fit_predict(self, X, y=None):
        """Fit, then :meth:`predict` the same rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.fit(X).predict(X)

    def _n_parameters(self):
        """Free parameters: weights, means and the type's covariances."""
        K, p = self.n_components, int((~self._empty_features).sum())
        covariance = {
            "full": K * p * (p + 1) // 2,
            "diag": K * p,
            "spherical": K,
            "tied": p * (p + 1) // 2,
        }[self.covariance_type]
        return (K - 1) + K * p + covariance

    def bic(self, X):
        """Bayesian information criterion of the fit on X (lower is
        better): -2 log L + k log n, L the observed-data likelihood of the
        incomplete rows, k the free parameters, n the rows (``aic``: the
        same with 2 k).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return self._criterion(X, lambda n: np.log(n))

    def aic(self, X):
        """Akaike information criterion of the fit on X (lower is better):
        -2 log L + 2 k (see :meth:`bic`)."""
        return self._criterion(X, lambda n: 2.0)

    def _criterion(self, X, penalty):
        """-2 log L + k penalty(n) on the rows of X."""
        n = len(validate_numeric(self, X, reset=False, copy=False))
        return -2.0 * self.score(X) * n + self._n_parameters() * penalty(n)

    # ----------------------------------------------------- registry hooks

    def _fitted_state(self):
        return {
            **super()._fitted_state(),
            "weights_": self.weights_,
            "means_": self.means_,
            "covariances_": self.covariances_,
            "lower_bound_": float(self.lower_bound_),
        }

    def _restore_fitted_state(self, state, check):
        super()._restore_fitted_state(state, check)
        K, p, empty = self.n_components, self.n_features_in_, self._empty_features
        weights = check.array(state["weights_"], "weights_", (K,))
        if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise check.error("weights_", "must be non-negative and sum to 1")
        self.weights_ = weights
        self.means_ = check.array(
            state["means_"], "means_", (K, p), allow_nan=np.broadcast_to(empty, (K, p))
        )
        self.covariances_ = np.array(
            [
                check.covariance(S, f"covariances_[{k}]", p, ~empty)
                for k, S in enumerate(state["covariances_"])
            ]
        )
        if self.covariances_.shape != (K, p, p):
            raise check.error("covariances_", f"must hold {K} covariances")
        self.lower_bound_ = float(
            check.array(state["lower_bound_"], "lower_bound_", ())
        )
        self._set_moments()

    def _record(self):
        how = "draws" if self.sample_posterior else "conditional means"
        state = "converged" if self.converged_ else "**did not converge**"
        weights = ", ".join(f"{w:.3f}" for w in self.weights_)
        return "\n".join(
            [
                "**GaussianMixtureImputer** (missing at random, mixture of "
                f"{self.n_components} normals, {self.covariance_type} "
                "covariances, maximum likelihood by EM)",
                "",
                f"Columns: {', '.join(feature_names(self))}; weights {weights}; "
                f"ridge = {self.ridge_:g}; {state} after {self.n_iter_} "
                f"iterations; log-likelihood {self.loglik_:.4f}; imputation "
                f"by {how}.",
            ]
        )

    @classmethod
    def _cli_options(cls, group):
        group.add_argument(
            "--n-components",
            type=int,
            help="number of normal components (--method mixture; default 1)",
        )

    @classmethod
    def _params_from_cli(cls, args):
        n = getattr(args, "n_components", None)
        return {} if n is None else {"n_components": n}

"""GaussianCopulaImputer: imputation of mixed data (continuous, ordinal,
binary, nominal and censored columns) under a Gaussian copula (estimator
shell)."""

import argparse

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from emimpute.gaussian._conditional import ConditionalMoments
from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._copula_columns import (
    column_margin,
    given_kinds,
    given_limits,
    margins_from_state,
    resolve_kinds,
)
from emimpute.imputers._registry import register_imputer
from emimpute.models._copula import saem_correlation
from emimpute.models._copula_impute import (
    FitChain,
    drawn_values,
    fit_tallies,
    posterior_imputations,
    quantile_values,
)
from emimpute.models._copula_loglik import latent_loglik
from emimpute.models._copula_margins import (
    KINDS,
    UnseenCategoryError,
    censored_cells,
    latent_bounds,
    margin_state,
    nominal_blocks,
)
from emimpute.models._copula_posterior import (
    GIBBS_BURN_IN,
    imputation_sweeps,
)
from emimpute.utils._column_types import (
    column_types,
    encode_frame,
    restore_frame,
    types_from_state,
    types_state,
)
from emimpute.utils._columns import describe_columns, feature_names
from emimpute.utils._random import child_seeds, resolve_random_state
from emimpute.utils._sklearn_compat import _fit_context
from emimpute.utils._validation import (
    is_nan_marker,
    validate_numeric,
    warn_empty_features,
)


@register_imputer(
    "copula",
    "Gaussian copula: continuous, ordinal, binary, nominal and censored "
    "columns of any margins (SAEM)",
)
class GaussianCopulaImputer(BaseEMImputer):
    """Impute mixed data (continuous, ordinal, binary, nominal and censored
    columns) from a Gaussian copula fitted by stochastic approximation EM.

    Each column keeps its own distribution (its margin, estimated from its
    observed values: skewed amounts, counts, 1-5 ratings, yes/no flags,
    categories); the dependence between columns is a latent correlation
    matrix R: column j is x_j = F_j^-1(Phi(z_j)) with z ~ N(0, R) (Hoff
    2007; Zhao & Udell 2020), a nominal column with K categories the
    argmax of K latent values (Zhao et al. 2022).  ``fit`` estimates R by
    maximum likelihood; ``transform`` fills each missing cell given the
    observed cells of its row with a valid value of its column: the
    posterior mean of the value for a continuous column (within the
    observed range, rounded when every observed value is a whole number),
    the posterior median level for an ordinal or binary one, the most
    probable category for a nominal one.

    Pandas in, pandas out: a DataFrame with float, integer (also nullable
    ``Int64``), boolean and categorical columns comes back with the same
    columns and dtypes.

    Parameters
    ----------
    kinds : dict, list or None, default=None
        The kind of each column, ``"continuous"``, ``"ordinal"`` (binary
        and ordered columns, counts with few values) or ``"nominal"``
        (unordered categories, given as codes in arrays): a list with one
        entry per column, or a dict from column names (or positions, for
        arrays) to kinds for some columns.  Columns not given are inferred:
        unordered categorical columns are nominal; boolean and ordered
        categorical columns are ordinal, and so are numeric columns whose
        observed values are whole numbers taking at most 20 distinct values
        (as in gcimpute); the rest are continuous.
    detection_limits : dict or None, default=None
        Detection limits of continuous columns (names, or positions for
        arrays): ``{column: limit}`` for a lower limit, ``{column: (lower,
        upper)}`` for either or both (None: no limit that side).  A value at
        or below its column's lower limit is censored, known only to lie
        below it (a lab value reported as "< limit"; record it as the limit
        itself, or any value below); a value at or above the upper limit is
        known only to lie above it (a top-coded income, an assay's upper
        limit; record it as the limit, or any value above).  Its latent
        value is an interval, so it informs the fit without a made-up
        number, and ``transform`` imputes it beyond the limit (see Notes for
        the assumption this needs).
    missing_values : float, default=np.nan
        The placeholder of missing cells: ``np.nan`` (also catches ``pd.NA``
        in pandas nullable columns) or a number such as -1.
    ridge : float, default=0.0
        Strength, in pseudo-observations, of a prior pulling R towards the
        identity.  Where the maximum likelihood estimate does not exist
        (exactly collinear columns, more columns than rows) the smallest
        proper prior is added and a
        :class:`~emimpute.exceptions.RegularisationWarning` names the
        columns.
    max_iter : int, default=2000
        Most SAEM iterations (one Gibbs sweep of the latent cells each).
    tol : float, default=0.005
        Stop when the estimated Monte Carlo standard error of every entry
        of the averaged latent cross-products is below ``tol``, or below a
        quarter of the sampling standard error of a correlation, 1/sqrt(n),
        if that is larger.
    sample_posterior : bool, default=False
        In ``transform``, impute a joint draw from each row's posterior
        (a valid value of each column) instead of its posterior mean.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gibbs sampler of ``fit`` and ``transform``: with None the
        fit and the imputations vary slightly from call to call (Monte
        Carlo error, see Notes).
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
        1 prints every 10th iteration, 2 every iteration (the Monte Carlo
        error in the place of the change of parameters).

    Attributes
    ----------
    correlation_ : ndarray of shape (n_latent, n_latent)
        The latent correlation R over the latent columns: one per column,
        K for a nominal column with K categories (identity within it, and
        its correlations with each other latent column centred, the part
        the model identifies); ``latent_feature_names_`` names them.  NaN
        for columns empty in ``fit`` and for constant columns, which are
        imputed by their one value.
    kinds_ : ndarray of str of shape (n_features_in_,)
        The kind of each column (``"empty"`` for a column with no observed
        value, ``"constant"`` for one with a single distinct value).
    monte_carlo_error_ : float
        The estimated Monte Carlo standard error of the latent
        cross-products at the end of the fit.
    ridge_ : float
        The prior strength used.
    n_iter_ : int
        SAEM iterations run.
    converged_ : bool
        Whether the stopping rule was met within ``max_iter``.
    loglik_ : float
        NaN: the observed-data likelihood of interval cells needs
        multivariate normal probabilities, which SAEM does without.
    indicator_ : MissingIndicator or None
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has feature names that are all strings.

    See Also
    --------
    EMImputer : The multivariate normal: the same model when every column
        is continuous and normal, and faster.

    Notes
    -----
    Margins: a continuous column's empirical distribution (scaled by
    n / (n + 1), linear between observed values, extended by straight
    lines in the latent scale beyond them so that new data transform); an
    ordinal column's cut points at its cumulative proportions.  An observed
    continuous value fixes its latent value; an observed level gives an
    interval.

    Fit: SAEM (Delyon, Lavielle & Moulines 1999): each iteration draws the
    latent values of the missing and interval cells by one Gibbs sweep
    under the current R, averages the latent cross-products with
    decreasing steps, and takes the correlation matrix that maximises the
    expected complete-data likelihood.  Deterministic approximations of
    this E-step (gcimpute's) attenuate correlations by more than their
    sampling error; the stochastic one converges to the maximum likelihood
    estimate, up to Monte Carlo error that ``tol`` controls.  A sweep costs
    O(n p^2).

    Censored values: their latent interval is z <= the limit's cut point,
    the censored values taking the lowest ranks (z > the cut point, and
    the highest ranks, above an upper limit).  Beyond a detection limit
    the margin is not observed: its shape there is assumed to continue
    that of the nearer half of the detected values, on the log scale when
    those are positive (a log-normal tail, as in the robust regression on
    order statistics of Helsel 2012, ch. 6).  With it the
    completed column's mean and standard deviation are unbiased on
    log-normal data, where substituting half the limit or treating the
    values as missing is not (``tests/imputers/test_copula_imputer.py``).

    Transform: a missing cell's latent posterior is exact (the normal
    conditional) in rows whose observed cells are all continuous, else the
    Rao-Blackwellised mixture of 30 to 200 Gibbs sweeps (more for fewer
    rows; after 20 of burn-in, or none in ``fit_transform``, which goes on
    from the fit's last state and counts the fit's sweeps after its
    burn-in);
    from it the posterior median level of an ordinal cell, and the
    posterior mean value of a continuous one by Gauss-Hermite quadrature
    through the margin (:mod:`emimpute.models._copula_impute`).  Rows are
    processed in blocks of 10,000 to 25,000 on threads.

    References
    ----------
    Hoff, P. D. (2007). Extending the rank likelihood for semiparametric
    copula estimation. *Ann. Appl. Stat.* 1, 265-283.
    Zhao, Y. & Udell, M. (2020). Missing value imputation for mixed data
    via Gaussian copula. *KDD*.
    Zhao, Y., Townsend, A. & Udell, M. (2022). Probabilistic missing value
    imputation for mixed categorical and ordered data. *NeurIPS*.
    Delyon, B., Lavielle, M. & Moulines, E. (1999). Convergence of a
    stochastic approximation version of the EM algorithm. *Ann. Statist.*
    27, 94-128.
    Helsel, D. R. (2012). *Statistics for Censored Environmental Data
    Using Minitab and R*, 2nd ed. Wiley.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from emimpute import GaussianCopulaImputer
    >>> rng = np.random.default_rng(0)
    >>> z = rng.multivariate_normal([0, 0, 0], [[1, .6, .5], [.6, 1, .4],
    ...                                         [.5, .4, 1]], size=500)
    >>> frame = pd.DataFrame({"income": np.exp(z[:, 0]),
    ...                       "stars": pd.array(np.digitize(z[:, 1], [-1, 0, 1]) + 1,
    ...                                         dtype="Int64"),
    ...                       "member": z[:, 2] > 0})
    >>> frame = frame.mask(rng.random(frame.shape) < 0.2)
    >>> frame["member"] = frame["member"].astype("boolean")
    >>> imputer = GaussianCopulaImputer(random_state=0).fit(frame)
    >>> list(imputer.kinds_)
    ['continuous', 'ordinal', 'ordinal']
    >>> out = imputer.transform(frame)
    >>> out.dtypes.astype(str).tolist()
    ['float64', 'Int64', 'boolean']
    >>> bool(out.notna().all().all()), sorted(out["stars"].unique().tolist())
    (True, [1, 2, 3, 4])
    """

    _parameter_constraints = {
        **{
            key: value
            for key, value in BaseEMImputer._parameter_constraints.items()
            if key != "accelerate"
        },
        "kinds": [None, dict, list, tuple],
        "detection_limits": [None, dict],
    }
    _inapplicable_params = frozenset({"accelerate"})
    # score_samples / score: the latent observation's log-likelihood
    # (GHK); no conditional variances on the columns' scales (see
    # conditional_quantiles).
    _provides = frozenset({"loglik"})
    _convergence_advice = (
        "Increase max_iter or tol; the imputations carry the Monte Carlo "
        "error given by monte_carlo_error_."
    )

    # MultipleImputer hands it a DataFrame in its own dtypes and gives its
    # completed data sets back in them.
    _keeps_dtypes = True

    def __init__(
        self,
        *,
        kinds=None,
        detection_limits=None,
        missing_values=np.nan,
        ridge=0.0,
        max_iter=2000,
        tol=0.005,
        sample_posterior=False,
        random_state=None,
        add_indicator=False,
        keep_empty_features=False,
        copy=True,
        verbose=0,
    ):
        self.kinds = kinds
        self.detection_limits = detection_limits
        self.missing_values = missing_values
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.sample_posterior = sample_posterior
        self.random_state = random_state
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.copy = copy
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the margins and the latent correlation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric, boolean or categorical data with missing cells marked
            by ``missing_values``.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted imputer.
        """
        self._column_types = column_types(X)
        X = validate_numeric(
            self, encode_frame(X, self._column_types), reset=True, copy=False
        )
        self._learn_columns([_observed(x) for x in X.T])
        latent = np.isin(self.kinds_, KINDS)
        part, margins = X[:, latent], self._latent_margins(latent)
        lower, upper = latent_bounds(part, margins)
        blocks = nominal_blocks(part, margins)
        tally = None
        if getattr(self, "_keep_fit_latent", False):  # for fit_transform
            self._fit_bounds = lower, upper
            if not self.sample_posterior:  # the fit's sweeps count as the imputation's
                impute = np.isnan(part) | censored_cells(part, margins)
                tally = fit_tallies(lower, upper, margins, impute, blocks)
        rng = np.random.default_rng(
            child_seeds(resolve_random_state(self.random_state))
        )
        q = lower.shape[1]
        self._fit_and_store(
            _fit_saem,
            latent,
            degenerate={},
            n_samples=X.shape[0],
            spread=np.ones(q),
            column_scale=np.ones(q),
            lower=lower,
            upper=upper,
            rng=rng,
            blocks=blocks,
            tally=tally,
        )
        self._fit_indicator(X)
        return self

    def _learn_columns(self, observed):
        """Each column's kind, margin and constant from its observed values
        (``observed``: one array per column): all ``fit`` needs of the data
        besides the latent bounds (a Dask fit gathers them by blocks)."""
        count = np.array([len(x) for x in observed])
        minimum = np.array([x.min() if len(x) else np.nan for x in observed])
        maximum = np.array([x.max() if len(x) else np.nan for x in observed])
        self._empty_features = count == 0
        warn_empty_features(self, self._empty_features, stacklevel=4)
        names = feature_names(self)
        limits = given_limits(self.detection_limits, names)
        self.kinds_ = resolve_kinds(
            observed, empty=self._empty_features, varies=maximum > minimum,
            given=given_kinds(self.kinds, names), limits=limits,
            types=self._column_types, names=names,
        )  # fmt: skip
        self._margins = [
            column_margin(x, kind, limits.get(j), names[j])
            for j, (x, kind) in enumerate(zip(observed, self.kinds_, strict=True))
        ]
        self._constant = np.where(self.kinds_ == "constant", minimum, np.nan)
        self._whole = np.array([_all_whole(x) for x in observed])

    def _latent_margins(self, latent):
        return [self._margins[j] for j in np.flatnonzero(latent)]

    def _latent_dims(self):
        """For each column, its latent columns in ``correlation_``: K for a
        nominal column with K categories, else one."""
        widths = [
            len(m.values) if m is not None and m.kind == "nominal" else 1
            for m in self._margins
        ]
        ends = np.cumsum(widths)
        return [np.arange(e - w, e) for e, w in zip(ends, widths, strict=True)]

    def _modelled_dims(self):
        """Boolean over the latent columns: those of modelled columns (not
        empty, not constant)."""
        dims = self._latent_dims()
        mask = np.zeros(dims[-1][-1] + 1 if dims else 0, dtype=bool)
        for j in np.flatnonzero(self._latent):
            mask[dims[j]] = True
        return mask

    def _estimate_names(self, valid):
        names = feature_names(self)
        dims, margins = self._latent_dims(), self._margins
        return [
            f"{names[j]}={margins[j].values[k]:g}" if len(dims[j]) > 1 else names[j]
            for j in np.flatnonzero(valid)
            for k in range(len(dims[j]))
        ]

    @property
    def latent_feature_names_(self):
        """Names of the rows and columns of ``correlation_``: a column's
        name, or ``name=code`` for each category of a nominal column (its
        code in the data: the category's position for pandas categories).
        """
        check_is_fitted(self)
        return np.array(self._estimate_names(np.ones(len(self._margins), bool)), object)

    def _loop_options(self):
        return {}

    def _store_result(self, result, latent):
        self._latent = np.isin(self.kinds_, KINDS)
        modelled = self._modelled_dims()
        self.correlation_ = np.full((len(modelled), len(modelled)), np.nan)
        self.monte_carlo_error_ = np.nan
        if result is not None:
            self.correlation_[np.ix_(modelled, modelled)] = result.correlation
            self.monte_carlo_error_ = float(result.monte_carlo_error)
            if getattr(self, "_keep_fit_latent", False) and not self.sample_posterior:
                self._fit_chain = FitChain(result.latent, result.tallies)

    # ------------------------------------------------------------ transform

    def transform(self, X):
        """Impute every missing cell from the fitted copula.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray or DataFrame of shape (n_samples, n_features_out)
            A DataFrame with the dtypes of ``fit`` when X is one, else an
            array; columns empty in ``fit`` dropped unless
            ``keep_empty_features=True``; indicator columns appended when
            ``add_indicator=True``.
        """
        check_is_fitted(self)
        imputed = super().transform(encode_frame(X, self._column_types))
        if not (self._column_types.is_frame and isinstance(X, pd.DataFrame)):
            return imputed
        if isinstance(imputed, pd.DataFrame):  # set_output(transform="pandas")
            imputed = imputed.to_numpy(np.float64)
        return restore_frame(
            imputed,
            self._column_types,
            list(feature_names(self)),
            list(self.get_feature_names_out()),
            X.index,
        )

    def _conditional(
        self, X, *, rng=None, want_variance=False, want_loglik=False, shift=None
    ):
        valid = ~self._empty_features
        if want_loglik:
            return ConditionalMoments(
                X, None, self._latent_loglik(X[:, self._latent[valid]])
            )
        missing = np.isnan(X)
        constant = self._constant[valid]
        X[:] = np.where(missing & ~np.isnan(constant), constant, X)
        latent = self._latent[valid]
        if latent.any():
            self._impute_latent(X, latent, draw=rng is not None, shift=shift)
        return ConditionalMoments(X, None, None)

    def score_samples(self, X):
        """Log-likelihood of each row's latent observation under the fitted
        copula: the normal log density of its continuous cells' latent
        values plus the log probability of its other observed cells'
        intervals given them (GHK simulator, 200 replicates; exact when a
        row has no interval cell).  The margins' density terms, which do
        not depend on R, are left out, so scores compare fits of R (for
        example ``ridge`` in ``GridSearchCV``) on the same margins.  0 for
        a row with nothing observed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return super().score_samples(encode_frame(X, self._column_types))

    def _bounds_and_blocks(self, part, margins):
        """The latent bounds and nominal blocks of the modelled columns
        ``part``; a category not seen in fit is refused naming its column.
        (In ``fit_transform`` the bounds are the fit's, of the same data.)"""
        try:
            fit_bounds = getattr(self, "_fit_bounds", None)
            lower, upper = fit_bounds or latent_bounds(part, margins)
            return lower, upper, nominal_blocks(part, margins)
        except UnseenCategoryError as error:
            names = [feature_names(self)[j] for j in np.flatnonzero(self._latent)]
            raise ValueError(
                f"categories not seen in fit in column '{names[error.column]}': "
                f"{error.values}"
            ) from None

    def _latent_loglik(self, part):
        """Each row's log-likelihood of its latent observation (the
        modelled columns ``part``; :mod:`emimpute.models._copula_loglik`)."""
        margins = self._latent_margins(self._latent)
        if not part.shape[1]:
            return np.zeros(len(part))
        lower, upper, blocks = self._bounds_and_blocks(part, margins)
        rng = np.random.default_rng(
            child_seeds(resolve_random_state(self.random_state))
        )
        modelled = self._modelled_dims()
        R = self.correlation_[np.ix_(modelled, modelled)]
        return latent_loglik(lower, upper, R, rng=rng, blocks=blocks)

    def _impute_latent(self, X, latent, *, draw, shift=None):
        """Fill the missing cells of the latent columns of X (over the
        non-empty columns) in place; ``shift`` (per column of X, optional)
        is added to the latent value of each missing cell first."""
        margins = self._latent_margins(self._latent)
        part = X[:, latent]
        impute = np.isnan(part) | censored_cells(part, margins)
        if not impute.any():
            return
        lower, upper, blocks = self._bounds_and_blocks(part, margins)
        rng = np.random.default_rng(
            child_seeds(resolve_random_state(self.random_state))
        )
        modelled = self._modelled_dims()
        R = self.correlation_[np.ix_(modelled, modelled)]
        if shift is not None:
            shift = np.where(np.isnan(part), shift[latent], 0.0)
        if draw:
            values = drawn_values(
                lower, upper, R, margins, rng=rng, impute=impute, blocks=blocks,
                shift=shift,
            )  # fmt: skip
        else:
            values = posterior_imputations(
                lower, upper, R, margins, rng=rng, impute=impute, blocks=blocks,
                n_sweeps=imputation_sweeps(len(X)), burn_in=GIBBS_BURN_IN,
                warm=getattr(self, "_fit_chain", None),  # from fit_transform
                shift=shift,
            )  # fmt: skip
        whole = self._whole[self._latent]
        values[:, whole] = np.round(values[:, whole])
        X[:, latent] = np.where(impute, values, part)

    def fit_transform(self, X, y=None):
        """Fit, then impute X; the Gibbs chain of the imputation goes on
        from the fit's last state of X's latent values, already at its
        target, so it needs no burn-in, and the fit's sweeps after its
        burn-in count among the imputation's sweeps: they are sweeps of the
        same chain, at the fit's running estimate of R (the imputations
        differ from those of ``fit`` then ``transform`` no more than two
        independent chains' do; :func:`~emimpute.models._copula_impute.fit_tallies`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        X_imputed : ndarray or DataFrame
            As :meth:`transform`.
        """
        self._keep_fit_latent = True
        try:
            return self.fit(X).transform(X)
        finally:
            for name in ("_keep_fit_latent", "_fit_chain", "_fit_bounds"):
                self.__dict__.pop(name, None)

    def _transform_with_latent_shift(self, X, shift):
        """:meth:`transform` of a float array X with ``shift`` (one number
        per column) added to the latent value of every missing cell before
        it is mapped back: the hook of
        ``DeltaAdjustedImputer(kind="latent")``.  Columns empty in ``fit``
        are kept (filled with 0) or dropped as ``transform`` does."""
        check_is_fitted(self)
        shift = np.asarray(shift, dtype=float)
        nominal = (self.kinds_ == "nominal") & (shift != 0)
        if nominal.any():
            raise ValueError(
                f"a latent shift needs an ordered latent scale; "
                f"{describe_columns(self, np.flatnonzero(nominal))} is nominal. "
                "Give it delta 0."
            )
        X = validate_numeric(self, X, reset=False, copy=True)
        valid = ~self._empty_features
        part = X[:, valid]
        rng = resolve_random_state(self.random_state) if self.sample_posterior else None
        X[:, valid] = self._conditional(part, rng=rng, shift=shift[valid]).completed
        if self.keep_empty_features:
            X[:, self._empty_features] = 0.0
            return X
        return X[:, valid]

    def conditional_quantiles(self, X, quantiles=(0.05, 0.5, 0.95)):
        """Quantiles of each imputed cell's distribution given its row, on
        the column's scale: intervals for every imputed cell.

        The latent posterior's quantiles map through the margin, which is
        increasing, so they are the quantiles of the column's value (for an
        ordinal column, levels; for whole-number columns, rounded).  The
        median is the imputation that minimises the expected absolute
        error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        quantiles : sequence of float in (0, 1), default=(0.05, 0.5, 0.95)

        Returns
        -------
        ndarray of shape (len(quantiles), n_samples, n_features)
            Observed cells keep their value in every slice; missing and
            censored cells get their quantiles; NaN for the missing cells
            of nominal columns (a category has no quantiles) and for
            columns empty in ``fit``.
        """
        check_is_fitted(self)
        probabilities = np.asarray(quantiles, dtype=float).ravel()
        if not len(probabilities) or np.any(
            ~((probabilities > 0) & (probabilities < 1))
        ):
            raise ValueError(
                f"quantiles must lie strictly between 0 and 1, got {quantiles!r}"
            )
        X = validate_numeric(
            self, encode_frame(X, self._column_types), reset=False, copy=True
        )
        constant = ~np.isnan(self._constant)
        X[:, constant] = np.where(np.isnan(X[:, constant]), self._constant[constant],
                                  X[:, constant])  # fmt: skip
        out = np.repeat(X[None], len(probabilities), axis=0)
        out[:, :, self._empty_features] = np.nan
        if self._latent.any():
            out[:, :, self._latent] = self._latent_quantiles(
                X[:, self._latent], probabilities
            )
        return out

    def _latent_quantiles(self, part, probabilities):
        """:meth:`conditional_quantiles` over the modelled columns."""
        margins = self._latent_margins(self._latent)
        lower, upper, blocks = self._bounds_and_blocks(part, margins)
        modelled = self._modelled_dims()
        state = resolve_random_state(self.random_state)
        found = quantile_values(
            part, lower, upper, self.correlation_[np.ix_(modelled, modelled)],
            margins, probabilities, rng=np.random.default_rng(child_seeds(state)),
            blocks=blocks,
        )  # fmt: skip
        whole = self._whole[self._latent]
        found[:, :, whole] = np.round(found[:, :, whole])
        return found

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = is_nan_marker(self.missing_values)
        tags.non_deterministic = self.random_state is None
        return tags

    # ----------------------------------------------------- registry hooks

    _state_fields = BaseEMImputer._state_fields | {
        "correlation_", "kinds_", "margins", "constant", "whole",
        "monte_carlo_error_", "column_types",
    }  # fmt: skip

    def _fitted_state(self):
        return {
            **super()._fitted_state(),
            "correlation_": self.correlation_,
            "kinds_": self.kinds_.tolist(),
            "margins": [None if m is None else margin_state(m) for m in self._margins],
            "constant": self._constant,
            "whole": self._whole.tolist(),
            "monte_carlo_error_": float(self.monte_carlo_error_),
            "column_types": types_state(self._column_types),
        }

    def _restore_fitted_state(self, state, check):
        super()._restore_fitted_state(state, check)
        p = self.n_features_in_
        kinds = state["kinds_"]
        known = (*KINDS, "empty", "constant")
        if not (
            isinstance(kinds, list) and len(kinds) == p and set(kinds) <= set(known)
        ):
            raise check.error("kinds_", f"must list one of {known} per column")
        self.kinds_ = np.array(kinds, dtype=object)
        self._empty_features = self.kinds_ == "empty"
        self._latent = np.isin(self.kinds_, KINDS)
        self._margins = margins_from_state(state["margins"], self.kinds_, check)
        is_constant = self.kinds_ == "constant"
        self._constant = check.array(
            state["constant"], "constant", (p,), allow_nan=~is_constant
        )
        self._whole = check.flags(state["whole"], "whole", p)
        modelled = self._modelled_dims()
        self.correlation_ = check.covariance(
            state["correlation_"], "correlation_", len(modelled), modelled
        )
        self.monte_carlo_error_ = float(
            check.array(state["monte_carlo_error_"], "monte_carlo_error_", (), True)
        )
        try:
            self._column_types = types_from_state(state["column_types"], p)
        except (ValueError, TypeError) as error:
            raise check.error("column_types", str(error)) from None

    @classmethod
    def _cli_options(cls, group):
        group.add_argument(
            "--kinds",
            type=_column_values(str),
            help="kinds of some columns (--method copula), as column=kind,... "
            "with kinds continuous, ordinal, nominal (default: inferred)",
        )
        group.add_argument(
            "--detection-limits",
            type=_column_values(_limits),
            help="detection limits (--method copula), as column=limit,... "
            "(lower), column=:limit (upper) or column=lower:upper: values at "
            "or below a lower limit, or at or above an upper one, are censored "
            "and imputed beyond it",
        )

    @classmethod
    def _params_from_cli(cls, args):
        params = {}
        if getattr(args, "kinds", None):
            params["kinds"] = args.kinds
        if getattr(args, "detection_limits", None):
            params["detection_limits"] = args.detection_limits
        return params

    def _record(self):
        how = "draws" if self.sample_posterior else "posterior means"
        state = "converged" if self.converged_ else "**did not converge**"
        kinds = ", ".join(
            f"{n} ({k})" for n, k in zip(feature_names(self), self.kinds_, strict=False)
        )
        return "\n".join(
            [
                "**GaussianCopulaImputer** (missing at random, Gaussian copula "
                "with estimated margins; latent correlation by SAEM)",
                "",
                f"Columns: {kinds}; ridge = {self.ridge_:g}; {state} after "
                f"{self.n_iter_} iterations (Monte Carlo error "
                f"{self.monte_carlo_error_:.2g}); imputation by {how}.",
            ]
        )


def _fit_saem(*, ridge, max_iter, tol, callback, lower, upper, rng, blocks, tally):
    """The kernel the base runs (through the automatic ridge)."""
    return saem_correlation(
        lower, upper, n_iter=max_iter, rng=rng, ridge=ridge, tol=tol,
        callback=callback, blocks=blocks, tally=tally,
    )  # fmt: skip


def _observed(x):
    return x[~np.isnan(x)]


def _all_whole(x):
    observed = _observed(x)
    return bool(len(observed)) and bool(np.all(observed == np.round(observed)))


def _limits(text):
    """A column's detection limits on the command line: ``L`` (lower),
    ``:U`` (upper) or ``L:U``, as ``detection_limits`` takes them."""
    if ":" not in text:
        return float(text)
    lower, upper = text.split(":")  # a second ":" is a ValueError too
    return tuple(float(v) if v.strip() else None for v in (lower, upper))


def _column_values(convert):
    """An ``argparse`` type: ``column=value,...`` as a dict, each value
    through ``convert``."""

    def parse(text):
        pairs = {}
        for item in filter(None, text.split(",")):
            column, equals, value = item.partition("=")
            if not equals or not column:
                raise argparse.ArgumentTypeError(f"expected column=value, got {item!r}")
            try:
                pairs[column] = convert(value)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{column}: cannot read {value!r}"
                ) from None
        return pairs

    return parse

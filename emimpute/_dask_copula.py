"""DaskGaussianCopulaImputer: the Gaussian copula fitted on Dask
collections, block by block (public as ``emimpute.dask``).

The copula's statistics add over rows, as EM's do, but its E-step is a
Markov chain (SAEM): each block of rows keeps its own chain of latent
values where it lives (persisted between iterations), every iteration
advances each block's chain by one Gibbs sweep under the current
correlation and returns the block's Z'Z, and only those q x q sums travel
to the client, where the M-step runs.

The margins need every column's observed values: one pass gathers each
block's distinct observed values and their counts (``np.unique``), merged
on the client, which gives the exact margins of the in-memory fit (its
size is the number of distinct values, not of rows).
"""

import dask
import numpy as np

from emimpute.imputers._copula_imputer import GaussianCopulaImputer
from emimpute.models._copula import (
    BURN_IN,
    CopulaSAEMResult,
    _initial_state,
    _precision,
    copula_m_step,
    free_cells,
    gibbs_sweep,
    run_copula_saem,
    single_blas_thread,
)
from emimpute.models._copula_margins import latent_bounds, nominal_blocks
from emimpute.models._copula_nominal import nominal_sweep
from emimpute.utils._column_types import ColumnTypes
from emimpute.utils._random import child_seeds, resolve_random_state


class DaskGaussianCopulaImputer(GaussianCopulaImputer):
    """:class:`~emimpute.GaussianCopulaImputer` for Dask arrays and
    DataFrames (numeric columns: give nominal columns as codes with
    ``kinds``).

    Same parameters and attributes; ``fit`` also accepts a
    ``dask.array.Array`` or ``dask.dataframe.DataFrame`` and ``transform``
    then returns a lazy Dask collection (:func:`blockwise_transform`).

    Attributes
    ----------
    n_blocks_ : int
        Blocks of rows the data came in (0 for in-memory input).

    Notes
    -----
    One pass gathers the margins (exact: the distinct observed values and
    their counts), one starts each block's chain, then each SAEM iteration
    is one pass: a Gibbs sweep of every block, whose latent values stay on
    its worker, and the sum of the blocks' Z'Z.  Each block's draws come
    from a seed of its own and of the iteration, so the fit is repeatable
    with ``random_state``; it is not the in-memory fit's, which draws in
    other blocks (the two agree within their Monte Carlo error).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from emimpute.dask import DaskGaussianCopulaImputer
    >>> rng = np.random.default_rng(0)
    >>> z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=2000)
    >>> X = np.column_stack([np.exp(z[:, 0]), z[:, 1] > 0]).astype(float)
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> imputer = DaskGaussianCopulaImputer(random_state=0)
    >>> imputer = imputer.fit(da.from_array(X, chunks=(500, 2)))
    >>> imputer.n_blocks_, list(imputer.kinds_)
    (4, ['continuous', 'ordinal'])
    >>> bool(abs(imputer.correlation_[0, 1] - 0.6) < 0.1)
    True
    """

    def fit(self, X, y=None):
        """Fit the copula, block by block for Dask input.

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like
        y : None
            Ignored.

        Returns
        -------
        self
        """
        # (emimpute.dask imports this module at its end: its names are
        # imported here, at the call.)
        from emimpute.dask import BlockwiseFitMixin, _DaskSource, is_dask_collection

        if not is_dask_collection(X):
            super().fit(X, y)
            self.n_blocks_ = 0
            return self
        self._validate_params()
        if self.add_indicator:
            raise ValueError(
                "DaskGaussianCopulaImputer does not take add_indicator=True "
                "on Dask input: add a MissingIndicator in the pipeline."
            )
        source = _DaskSource.of(X)
        blocks = source.float_blocks(self.missing_values)
        BlockwiseFitMixin._set_feature_names(self, source.names)
        self.n_features_in_ = source.n_features
        self.n_blocks_ = len(blocks)
        self._column_types = ColumnTypes(None, {})
        self._learn_columns(_observed_values(blocks, source.n_features))
        latent = np.isin(self.kinds_, ("continuous", "ordinal", "nominal"))
        margins = self._latent_margins(latent)
        n_rows = sum(dask.compute(*[dask.delayed(len)(block) for block in blocks]))
        q = sum(len(m.values) if m.kind == "nominal" else 1 for m in margins)
        seed = child_seeds(resolve_random_state(self.random_state))
        self._fit_and_store(
            _fit_blockwise,
            latent,
            degenerate={},
            n_samples=n_rows,
            spread=np.ones(q),
            column_scale=np.ones(q),
            blocks=blocks,
            latent=latent,
            margins=margins,
            seed=seed,
        )
        self.indicator_ = None
        return self

    def transform(self, X):
        """Impute every missing cell; lazily and block by block for Dask
        input (:func:`~emimpute.dask.blockwise_transform`).

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like

        Returns
        -------
        Dask collection or ndarray
        """
        from emimpute.dask import blockwise_transform, is_dask_collection

        if is_dask_collection(X):
            return blockwise_transform(self, X)
        return super().transform(X)

    def to_local(self):
        """The same fitted model as a plain
        :class:`~emimpute.GaussianCopulaImputer` (for model files, or for
        in-memory data without Dask).

        Returns
        -------
        GaussianCopulaImputer
        """
        from emimpute.dask import BlockwiseFitMixin

        return BlockwiseFitMixin.to_local(self)


def _observed_values(blocks, p):
    """Each column's observed values, rebuilt from the blocks' distinct
    values and counts (one pass)."""
    parts = dask.compute(*[dask.delayed(_value_counts)(block) for block in blocks])
    observed = []
    for j in range(p):
        values = np.concatenate([part[j][0] for part in parts])
        counts = np.concatenate([part[j][1] for part in parts])
        merged, where = np.unique(values, return_inverse=True)
        total = np.bincount(where.ravel(), weights=counts, minlength=len(merged))
        observed.append(np.repeat(merged, total.astype(np.int64)))
    return observed


def _value_counts(block):
    return [np.unique(x[~np.isnan(x)], return_counts=True) for x in block.T]


def _fit_blockwise(*, ridge, max_iter, tol, callback, blocks, latent, margins, seed):
    """The SAEM of ``saem_correlation`` with each block's chain on its
    worker (the kernel the estimator's base runs through the ridge)."""
    states = dask.persist(*[
        dask.delayed(_start_block)(block, latent, margins, _seed(seed, b, -1))
        for b, block in enumerate(blocks)
    ])  # fmt: skip
    n = sum(dask.compute(*[dask.delayed(_rows_of)(state) for state in states]))
    q = sum(len(m.values) if m.kind == "nominal" else 1 for m in margins)
    groups = list(_nominal_dims(margins))
    iteration = [0]

    def simulate(states, R):
        k, iteration[0] = iteration[0], iteration[0] + 1
        return dask.persist(*[
            dask.delayed(_sweep_block)(state, R, _seed(seed, b, k))
            for b, state in enumerate(states)
        ])  # fmt: skip

    def statistic_of(states):
        parts = dask.compute(*[dask.delayed(_statistic)(state) for state in states])
        return sum(parts) / n

    run = run_copula_saem(
        simulate, statistic_of, copula_m_step(n, ridge, groups), np.eye(q), states,
        n=n, n_iter=max_iter, tol=tol, burn_in=BURN_IN, callback=callback,
    )  # fmt: skip
    return CopulaSAEMResult(
        run.params, None, run.n_iter, run.converged, run.monte_carlo_error
    )


def _nominal_dims(margins):
    start = 0
    for margin in margins:
        width = len(margin.values) if margin.kind == "nominal" else 1
        if margin.kind == "nominal":
            yield np.arange(start, start + width)
        start += width


def _seed(seed, block, iteration):
    return np.random.SeedSequence([seed, block, iteration + 1]).generate_state(1)[0]


# Tasks (module functions, so that workers can unpickle them).  A block's
# state: its latent values, free cells and nominal blocks.


def _start_block(block, latent, margins, seed):
    part = block[:, latent]
    lower, upper = latent_bounds(part, margins)
    rng = np.random.default_rng(seed)
    return (
        _initial_state(lower, upper, rng),
        free_cells(lower, upper),
        (nominal_blocks(part, margins)),
    )


def _rows_of(state):
    return len(state[0])


def _sweep_block(state, R, seed):
    Z, cells, blocks = state
    Z = np.array(Z, order="F")  # a new state: the persisted one is not mutated
    rng = np.random.default_rng(seed)
    with single_blas_thread():
        precision = _precision(R)
        gibbs_sweep(Z, cells, precision, rng)
        nominal_sweep(Z, blocks, precision, rng)
    return Z, cells, blocks


def _statistic(state):
    Z = state[0]
    return Z.T @ Z

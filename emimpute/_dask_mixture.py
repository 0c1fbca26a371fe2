"""DaskGaussianMixtureImputer: the mixture of normals fitted on Dask
collections, block by block (public as ``emimpute.dask``).

The mixture's E-step statistics (per component: the sum of
responsibilities, of weighted completed rows and of weighted
cross-products plus conditional covariances) add over rows, so each
E-step sums them over the blocks where they live
(:func:`emimpute.models._mixture.block_statistics`) and only K x p x p
arrays travel.  The start is the in-memory one (k-means++ on the rows
with their holes at one normal's conditional means) on the first block of
rows.
"""

import functools

import dask
import numpy as np

from emimpute.dask import BlockwiseFitMixin, _add_statistics, _bundle, _reduce
from emimpute.imputers._mixture_imputer import GaussianMixtureImputer
from emimpute.models._mixture import (
    block_statistics,
    fit_mixture_from,
    initial_params,
    start_fill,
)
from emimpute.utils._random import resolve_random_state


class DaskGaussianMixtureImputer(BlockwiseFitMixin, GaussianMixtureImputer):
    """:class:`~emimpute.GaussianMixtureImputer` for Dask arrays and
    DataFrames.

    Same parameters, attributes and estimates as
    :class:`~emimpute.GaussianMixtureImputer`; ``fit`` also accepts a
    ``dask.array.Array`` or ``dask.dataframe.DataFrame`` of any size, and
    ``transform`` and the other methods return lazy Dask results for Dask
    input (see :class:`~emimpute.dask.DaskEMImputer`).

    Attributes
    ----------
    n_blocks_ : int
        Blocks of rows the data came in (0 for in-memory input).

    Notes
    -----
    Two passes over the data before the iterations (the columns' observed
    means and scales), then one pass per E-step.  Each of the ``n_init``
    starts comes from the first block of rows (k-means++ there), so with
    one block the fit is the in-memory one.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from emimpute import GaussianMixtureImputer
    >>> from emimpute.dask import DaskGaussianMixtureImputer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 1, (500, 2)), rng.normal(3, 1, (500, 2))])
    >>> X = X[rng.permutation(1000)]
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> imputer = DaskGaussianMixtureImputer(n_components=2, random_state=0)
    >>> imputer = imputer.fit(da.from_array(X, chunks=(250, 2)))
    >>> imputer.n_blocks_, np.round(np.sort(imputer.means_[:, 0]))
    (4, array([-3.,  3.]))
    """

    def _blockwise_kernel(self, blocks, columns):
        """``(fit, data)`` as :meth:`GaussianMixtureImputer._kernel`, with
        the E-step summed over the blocks."""
        n_rows = columns.n_samples
        if self.n_components > n_rows:
            raise ValueError(
                f"n_components={self.n_components} is more than the {n_rows} "
                "rows: each component needs rows to estimate it"
            )
        data = {
            "blocks": blocks,
            "columns": columns,
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "n_init": self.n_init,
            "init_params": self.init_params,
            "rng": resolve_random_state(self.random_state),
        }
        return fit_mixture_em_blockwise, data


def fit_mixture_em_blockwise(
    *, ridge, max_iter, tol, accelerate, callback, blocks, columns, n_components,
    covariance_type, n_init, init_params, rng,
):  # fmt: skip
    """The mixture's EM with every E-step summed over ``blocks``
    (:class:`~emimpute.dask.BlockColumns` ``columns``: the valid columns,
    their observed means ``center`` and standardising ``scale``)."""
    center, unit = columns.center, columns.scale
    (first,) = dask.compute(blocks[0])
    if columns.columns is not None:
        first = first[:, columns.columns]
    first = (np.asarray(first, float) - center) / unit
    first = first[~np.isnan(first).all(axis=1)]
    filled = start_fill(first, ridge)
    starts = [
        initial_params(
            first,
            n_components,
            init_params,
            rng,
            ridge,
            covariance_type,
            unit,
            filled,
        )  # fmt: skip
        for _ in range(n_init)
    ]
    evaluate = functools.partial(_e_step, blocks, columns)
    return fit_mixture_from(
        evaluate, starts, center=center, unit=unit,
        counts=columns.count[columns.valid], ridge=ridge,
        covariance_type=covariance_type, max_iter=max_iter, tol=tol,
        accelerate=accelerate, callback=callback,
    )  # fmt: skip


def _e_step(blocks, columns, params):
    """The statistics over all blocks (one pass), or None when a
    component's covariance is not positive definite."""
    shared = dask.delayed(_bundle, pure=True)(
        columns.columns, columns.center, columns.scale, params
    )
    try:
        return _reduce(
            [dask.delayed(_pass)(block, shared) for block in blocks], _add_statistics
        )
    except np.linalg.LinAlgError:
        return None


def _pass(block, shared):
    selected, center, unit, params = shared
    block = block if selected is None else block[:, selected]
    return block_statistics(block, center, unit, params)

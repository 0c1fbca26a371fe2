"""Imputation of Dask collections: data larger than one process's memory.

:class:`DaskEMImputer` is :class:`~emimpute.EMImputer` with a ``fit`` that
accepts a ``dask.array.Array`` or a ``dask.dataframe.DataFrame`` and never
brings the data together: EM needs only sums of per-row statistics (Little
& Rubin 2002, sec. 11.2), so every E-step computes them block by block where
the blocks live and adds them up in a tree, and only p x p matrices travel.
Its ``transform`` imputes lazily, block by block.  :func:`blockwise_transform`
does the same for any fitted imputer (every registered model,
:class:`~emimpute.DeltaAdjustedImputer`, ... fitted in memory, say on a
sample).  :class:`BlockwiseFitMixin` gives the blockwise fit to any model
whose E-step statistics add over row blocks: :class:`DaskStudentTImputer`
is the same for :class:`~emimpute.StudentTImputer`, and
:class:`DaskMNARSelectionImputer` for :class:`~emimpute.MNARSelectionImputer`
(its E-step, and the regressions of its start, summed over blocks by
:class:`DaskSelectionRows`).  A Dask version of another model is the mixin
on its imputer with one method, ``_blockwise_kernel`` (see the mixin).

The work runs on Dask's current scheduler: the local threads by default, or
a cluster once a ``distributed.Client`` is created.  Unless the collection
was persisted, every pass re-reads it from its source (files, say), so
memory stays bounded by a few blocks per worker whatever the data's size.

Needs the optional extra: ``pip install "emimpute[dask]"``.
"""

import copy
import functools
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emimpute.engine._model import sum_statistics

try:
    import dask
    import dask.array as da
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "emimpute.dask needs Dask: pip install 'emimpute[dask]'"
    ) from error

from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emimpute.engine._regularise import degenerate_columns
from emimpute.gaussian._conditional import conditional_moments, precision_and_logdet
from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._mnar_imputer import MNARSelectionImputer
from emimpute.imputers._t_imputer import StudentTImputer
from emimpute.models._binary_glm import _score_and_curvature
from emimpute.models._normal import (
    NormalParams,
    add_complete_rows,
    block_statistics,
    column_moments_from_sums,
    column_squares,
    column_sums,
    complete_row_sums,
    run_normal_em,
    standardising_scale,
)
from emimpute.models._selection import (
    START_NEWTON_STEPS,
    SelectionCoefficients,
    SelectionModel,
    fit_model,
)
from emimpute.models._selection import block_statistics as selection_block_statistics
from emimpute.models._student_t import block_distances as t_block_distances
from emimpute.models._student_t import block_statistics as t_block_statistics
from emimpute.models._student_t import profile_df, run_student_t_em
from emimpute.utils._columns import feature_names
from emimpute.utils._random import child_seeds, resolve_random_state
from emimpute.utils._validation import (
    _raise_for_non_numeric,
    is_nan_marker,
    mark_missing,
    warn_empty_features,
)

__all__ = [
    "BlockwiseFitMixin",
    "DaskEMImputer",
    "DaskGaussianCopulaImputer",
    "DaskGaussianMixtureImputer",  # noqa: F822 (found by __getattr__, below)
    "DaskMNARSelectionImputer",
    "DaskSelectionRows",
    "DaskStudentTImputer",
    "blockwise_transform",
    "fit_selection_em_blockwise",
    "is_dask_collection",
]

# Partial results are added up this many at a time, in a tree, so neither
# the client nor any worker receives one p x p matrix per block.
FAN_IN = 8


def is_dask_collection(X):
    """True for a Dask array, DataFrame or other Dask collection."""
    return dask.is_dask_collection(X)


class BlockwiseFitMixin:
    """Dask input for an EM imputer whose E-step statistics add over row
    blocks: ``fit`` on a Dask collection runs the model's EM with an E-step
    summed over the blocks where they live, and ``transform``,
    ``score_samples``, ``score`` and ``conditional_moments`` work block by
    block, lazily.  In-memory input goes to the imputer unchanged.

    A Dask version of a model is ``class DaskXImputer(BlockwiseFitMixin,
    XImputer)`` with one method, ``_blockwise_kernel(blocks, columns)``:
    ``(fit, data)`` as the imputer's ``_kernel`` gives them in memory, with
    ``blocks`` the Delayed float blocks of rows and ``columns`` their
    :class:`BlockColumns` (the passes before the iterations, the same for
    every model).
    """

    def fit(self, X, y=None):
        """Fit the model by EM, block by block for Dask input.

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like
            Numeric data with missing cells marked by ``missing_values``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        if not is_dask_collection(X):
            super().fit(X, y)
            self.n_blocks_ = 0
            return self
        self._validate_params()
        if hasattr(self, "_check_params"):  # checks beyond the constraints
            self._check_params()
        source = _DaskSource.of(X)
        blocks = source.float_blocks(self.missing_values)
        self._set_feature_names(source.names)
        self.n_features_in_ = source.n_features
        self.n_blocks_ = len(blocks)
        columns = column_passes(blocks)
        self._empty_features = columns.count == 0
        warn_empty_features(self, self._empty_features)
        # The model's own part: its EM with an E-step that adds up the
        # statistics of the blocks (as ``_kernel`` gives it in memory).
        fit, data = self._blockwise_kernel(blocks, columns)
        self._fit_and_store(
            fit,
            columns.valid,
            degenerate=columns.degenerate,
            n_samples=columns.n_samples,
            spread=columns.spread[columns.valid],
            column_scale=columns.observed_scale,
            **data,
        )
        self.indicator_ = None
        if self.add_indicator:
            self.indicator_ = _indicator_for(columns.count < columns.n_samples)
        return self

    def _set_feature_names(self, names):
        if names is not None and all(isinstance(name, str) for name in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def transform(self, X):
        """Impute every missing cell; lazily and block by block for Dask input.

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like

        Returns
        -------
        X_imputed : dask.array.Array, dask.dataframe.DataFrame or ndarray
            A Dask array for a Dask array, a Dask DataFrame (same index,
            columns from ``get_feature_names_out``) for a Dask DataFrame,
            and what :meth:`EMImputer.transform` returns otherwise.
        """
        if not is_dask_collection(X):
            return super().transform(X)
        return blockwise_transform(self.to_local(), X)

    def score_samples(self, X):
        """Observed-data log-likelihood of each row (lazy for Dask input).

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like

        Returns
        -------
        dask.array.Array or ndarray of shape (n_samples,)
        """
        if not is_dask_collection(X):
            return super().score_samples(X)
        check_is_fitted(self)
        source = _DaskSource.of(X, expected=self)
        local = self.to_local()
        return source.array.map_blocks(
            _score_block,
            local,
            source.names,
            drop_axis=1,
            dtype=np.float64,
        )

    def score(self, X, y=None):
        """Mean observed-data log-likelihood per row (computed for Dask input).

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like
        y : None
            Ignored.

        Returns
        -------
        float
        """
        if not is_dask_collection(X):
            return super().score(X, y)
        return float(self.score_samples(X).mean().compute())

    def conditional_moments(self, X):
        """Conditional mean and variance of every missing cell (lazy for Dask).

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame or array-like

        Returns
        -------
        mean, variance : dask.array.Array or ndarray of shape (n_samples, n_features)
            As :meth:`EMImputer.conditional_moments`.
        """
        if not is_dask_collection(X):
            return super().conditional_moments(X)
        check_is_fitted(self)
        source = _DaskSource.of(X, expected=self)
        p = self.n_features_in_
        both = source.array.map_blocks(
            _moments_block,
            self.to_local(),
            source.names,
            chunks=(source.array.chunks[0], (2 * p,)),
            dtype=np.float64,
        )
        return both[:, :p], both[:, p:]

    def to_local(self):
        """The same fitted model as the in-memory imputer this one extends
        (a plain :class:`~emimpute.EMImputer` for :class:`DaskEMImputer`).

        For saving (:mod:`emimpute.cli`'s model files), or for imputing
        in-memory data without Dask.

        Returns
        -------
        estimator
        """
        check_is_fitted(self)
        params = self.get_params()
        local = _in_memory_class(type(self))(**params)
        for key, value in vars(self).items():
            if key not in params and key not in ("n_blocks_", "_sklearn_output_config"):
                setattr(local, key, value)
        return local


class DaskEMImputer(BlockwiseFitMixin, EMImputer):
    """:class:`~emimpute.EMImputer` for Dask arrays and DataFrames.

    Same parameters, attributes and estimates as :class:`~emimpute.EMImputer`;
    ``fit`` also accepts a ``dask.array.Array`` or ``dask.dataframe.DataFrame``
    of any size, and ``transform``, ``score_samples`` and
    ``conditional_moments`` return lazy Dask results for Dask input.  NumPy
    and pandas input are handled exactly as by ``EMImputer``.

    Parameters
    ----------
    missing_values, ridge, max_iter, tol, accelerate, sample_posterior, \
random_state, add_indicator, keep_empty_features, copy, verbose
        As in :class:`~emimpute.EMImputer`.

    Attributes
    ----------
    mean_, covariance_, loglik_, loglik_path_, n_iter_, n_em_steps_, \
converged_, indicator_, n_features_in_, feature_names_in_
        As in :class:`~emimpute.EMImputer`.
    n_blocks_ : int
        Blocks of rows the data came in (0 for in-memory input).

    See Also
    --------
    blockwise_transform : Apply any fitted imputer to a Dask collection.

    Notes
    -----
    A fit makes two passes over the data before the iterations (column
    counts, sums and ranges; then the squared deviations and the sums of
    the rows with nothing missing, which stay fixed) and one pass per
    E-step after (up to three per SQUAREM iteration).  Each pass is one Dask
    graph: a task per block computes that block's sums (only the rows with
    missing cells are visited), and the partial sums are added
    ``FAN_IN`` at a time.  The estimate is the same as the in-memory fit's
    up to the order of floating-point additions.

    The compiled E-step runs single-threaded inside each task: Dask's
    workers provide the parallelism.  Persist the collection first
    (``X = X.persist()``) when it fits in the cluster's memory; otherwise
    each pass reads it again from its source.

    With ``sample_posterior=True`` each block draws from its own stream
    (seeded from ``random_state`` and the block's position), so draws are
    reproducible for an integer ``random_state`` and independent between
    blocks, but differ from those of the in-memory ``transform``.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from emimpute.dask import DaskEMImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=1000)
    >>> X[rng.random(1000) < 0.3, 1] = np.nan
    >>> X_dask = da.from_array(X, chunks=(250, 2))
    >>> imputer = DaskEMImputer().fit(X_dask)
    >>> imputer.n_blocks_
    4
    >>> imputer.covariance_.round(2)
    array([[1.02, 0.85],
           [0.85, 1.05]])
    >>> from emimpute import EMImputer
    >>> bool(np.allclose(imputer.covariance_, EMImputer().fit(X).covariance_))
    True
    >>> completed = imputer.transform(X_dask)   # lazy
    >>> bool(np.isnan(completed.compute()).any())
    False
    """

    def _blockwise_kernel(self, blocks, columns):
        """``(fit, data)`` as :meth:`EMImputer._kernel`, with the normal
        model's E-step summed over the blocks: ``run_normal_em`` with
        ``evaluate`` one pass over the data."""
        data = {
            "evaluate": functools.partial(_normal_e_step, blocks, columns),
            "n_rows": columns.n_rows,
            "center": columns.center,
            "scale": columns.scale,
        }
        return run_normal_em, data


class DaskStudentTImputer(BlockwiseFitMixin, StudentTImputer):
    """:class:`~emimpute.StudentTImputer` for Dask arrays and DataFrames.

    Same parameters, attributes and estimates as
    :class:`~emimpute.StudentTImputer`; ``fit`` also accepts a
    ``dask.array.Array`` or ``dask.dataframe.DataFrame`` of any size, and
    ``transform`` and the other methods return lazy Dask results for Dask
    input (see :class:`DaskEMImputer`).

    Attributes
    ----------
    n_blocks_ : int
        Blocks of rows the data came in (0 for in-memory input).

    Notes
    -----
    Two passes over the data before the iterations, as
    :class:`DaskEMImputer`.  With a fixed ``df`` each E-step is one pass
    (the t's statistics add over blocks at a given df).  With
    ``df="estimate"`` each E-step is two passes: the first gathers every
    row's observed-part distance and count of observed cells on the client
    (n floats and n small integers), where the df is profiled; the second
    sums the statistics at that df (:func:`student_t_e_step`).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from emimpute import StudentTImputer
    >>> from emimpute.dask import DaskStudentTImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_t(4.0, size=(1000, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
    >>> X[rng.random(1000) < 0.3, 1] = np.nan
    >>> imputer = DaskStudentTImputer(df=4.0).fit(da.from_array(X, chunks=(250, 2)))
    >>> local = StudentTImputer(df=4.0).fit(X)
    >>> bool(np.allclose(imputer.scale_, local.scale_, atol=1e-6))
    True
    """

    def _blockwise_kernel(self, blocks, columns):
        """``(fit, data)`` as :meth:`StudentTImputer._kernel`, with the t's
        E-step summed over the blocks."""
        data = {
            "evaluate": functools.partial(student_t_e_step, blocks, columns),
            "n_rows": columns.n_rows,
            "center": columns.center,
            "scale": columns.scale,
            "df": self.df,
        }
        return run_student_t_em, data


class DaskMNARSelectionImputer(BlockwiseFitMixin, MNARSelectionImputer):
    """:class:`~emimpute.MNARSelectionImputer` for Dask arrays and DataFrames.

    Same parameters, attributes and estimates as
    :class:`~emimpute.MNARSelectionImputer`; ``fit`` also accepts a
    ``dask.array.Array`` or ``dask.dataframe.DataFrame`` of any size, and
    ``transform`` and the other methods return lazy Dask results for Dask
    input (see :class:`DaskEMImputer`).

    Attributes
    ----------
    mean_, covariance_, selection_coef_, mnar_features_, covariates_, \
ridge_, loglik_, loglik_path_, n_iter_, converged_, indicator_, \
n_features_in_, feature_names_in_
        As in :class:`~emimpute.MNARSelectionImputer`.
    n_blocks_ : int
        Blocks of rows the data came in (0 for in-memory input).

    See Also
    --------
    fit_selection_em_blockwise : The kernel's fit on a Dask row source.

    Notes
    -----
    Two passes over the data before the iterations, as
    :class:`DaskEMImputer`.  The start is the in-memory fit's: the MAR fit
    (:class:`DaskEMImputer`'s E-step, one pass per E-step), then each
    missingness model's probit or logit regression on the covariates by
    Newton's method, one pass per Newton step (the gradient, Hessian and
    log-likelihood of every model summed over the blocks).  Then one pass
    per E-step: a task per block computes that block's statistics
    (:func:`emimpute.models._selection.block_statistics`) and they are
    added ``FAN_IN`` at a time.

    What travels differs by link.  Under the probit link a block's
    statistics are fixed-size sums (p x p for the normal part and a small
    matrix per missingness model), whatever the block's size.  Under the
    logit link the M-step is a binary regression over pseudo-rows, so the
    statistics carry every observed cell of an MNAR column and every node
    of every missing one (tens of nodes per missing cell) to the client:
    memory and traffic grow with the number of rows, which limits the logit
    link to data whose MNAR columns' pseudo-rows fit on the client.

    Pass an integer ``random_state`` for reproducible fits: it seeds the
    Sobol nodes of rows with four or more missing MNAR cells (three or more
    under the logit link), the same in every block.

    The short fits that rank the starting values of psi run on all rows;
    in memory they run on a systematic sample of about 20,000 rows when
    there are more than 40,000.  Both fits then climb to the same optimum,
    to the stopping rule's tolerance, unless the likelihood has two modes
    so close that the two rankings differ.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from scipy.special import ndtr
    >>> from emimpute import MNARSelectionImputer
    >>> from emimpute.dask import DaskMNARSelectionImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=1000)
    >>> X[rng.random(1000) < ndtr(X[:, 0]), 0] = np.nan
    >>> settings = dict(mnar_features=[0], psi=1.0, random_state=0)
    >>> imputer = DaskMNARSelectionImputer(**settings)
    >>> imputer = imputer.fit(da.from_array(X, chunks=(250, 2)))
    >>> local = MNARSelectionImputer(**settings).fit(X)
    >>> bool(np.allclose(imputer.mean_, local.mean_, atol=1e-5))
    True
    """

    def _blockwise_kernel(self, blocks, columns):
        """``(fit, data)`` as :meth:`MNARSelectionImputer._kernel`, with the
        E-step and the start summed over the blocks."""
        valid = columns.valid
        # Which non-empty columns have a missing cell, from the column passes.
        incomplete = (columns.count < columns.n_samples)[valid]
        settings = self._selection_settings(
            incomplete,
            columns.observed_scale,
            valid,
            feature_names(self),
            resolve_random_state(self.random_state),
        )
        init = self._warm_start_from(incomplete, valid, settings)
        gamma = settings.pop("gamma")
        mnar = settings["mnar"]
        covariates = np.flatnonzero(~incomplete) if gamma else np.zeros(0, int)
        source = DaskSelectionRows(blocks, columns, mnar, covariates, settings["link"])
        fit = functools.partial(
            fit_selection_em_blockwise,
            covariates=covariates,
            center=columns.center,
            scale=columns.scale,
            init=init,
            **settings,
        )
        return fit, {"source": source}


def _in_memory_class(cls):
    """The imputer a Dask imputer class extends (the first class of its MRO
    that is not a Dask one)."""
    return next(
        base
        for base in cls.__mro__
        if base is not cls and not issubclass(base, BlockwiseFitMixin)
    )


def blockwise_transform(imputer, X):
    """Apply a fitted imputer to a Dask collection, block by block (lazily).

    Each block of rows is imputed on its own by ``imputer.transform``, which
    is exact for every imputer of this package: a row's imputation depends
    on that row and the fitted model only.

    Parameters
    ----------
    imputer : fitted estimator with ``transform``
        Any registered imputer (:class:`~emimpute.EMImputer`,
        :class:`~emimpute.MNARSelectionImputer`, ...), or one built on them
        (:class:`~emimpute.DeltaAdjustedImputer`), fitted in memory.
    X : dask.array.Array or dask.dataframe.DataFrame
        With the columns the imputer was fitted on.

    Returns
    -------
    dask.array.Array or dask.dataframe.DataFrame
        Same kind as X; a DataFrame keeps X's index and takes its columns
        from ``imputer.get_feature_names_out()``.

    Notes
    -----
    When the imputer draws (``sample_posterior=True``, or a
    :class:`~emimpute.MultipleImputer`-style random imputer), each block gets
    its own ``random_state``, derived from the imputer's and the block's
    position: reproducible for an integer ``random_state``, independent
    between blocks.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from emimpute import EMImputer
    >>> from emimpute.dask import blockwise_transform
    >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0], [np.nan, 3.0],
    ...               [4.0, 4.0], [2.5, 3.5]])
    >>> imputer = EMImputer().fit(X)
    >>> lazy = blockwise_transform(imputer, da.from_array(X, chunks=(2, 2)))
    >>> np.allclose(lazy.compute(), imputer.transform(X))
    True
    """
    check_is_fitted(imputer)
    source = _DaskSource.of(X, expected=imputer)
    seed = _base_seed(imputer)
    names = np.asarray(imputer.get_feature_names_out(), dtype=object)
    if source.frame is not None:
        meta = pd.DataFrame(
            {str(name): pd.Series(dtype=np.float64) for name in names},
            index=source.frame._meta.index,
        )
        return source.frame.map_partitions(_transform_frame, imputer, seed, meta=meta)
    return source.array.map_blocks(
        _transform_block,
        imputer,
        seed,
        chunks=(source.array.chunks[0], (len(names),)),
        dtype=np.float64,
    )


# ---------------------------------------------------------------------------
# The passes before the iterations (the same for every model) and the normal
# model's E-step over the blocks


@dataclass(frozen=True)
class BlockColumns:
    """What two passes over the blocks tell about the columns.

    ``count``, ``spread`` (NaN for an empty column) and ``degenerate`` cover
    all columns; ``center`` (observed means), ``observed_scale`` (observed
    standard deviations) and ``scale`` (the standardising scale of the
    ridge prior) the ``valid`` (non-empty) ones, which ``columns`` selects
    in the tasks (None: all of them).  ``complete`` holds the number and the
    sums (about ``center``) of the rows with nothing missing, fixed for a
    model that weights every row alike; ``n_rows`` counts the rows with an
    observed cell.
    """

    n_samples: int
    count: np.ndarray
    spread: np.ndarray
    degenerate: dict
    valid: np.ndarray
    columns: object
    center: np.ndarray
    observed_scale: np.ndarray
    scale: np.ndarray
    complete: tuple
    n_rows: int


def column_passes(blocks):
    """:class:`BlockColumns` of Delayed float blocks, in two passes."""
    # Pass 1: counts, sums and ranges of the observed cells.
    n_samples, count, total, minimum, maximum = _reduce(
        [dask.delayed(_first_pass)(block) for block in blocks],
        _combine_first_pass,
    )
    spread = maximum - minimum
    spread[count == 0] = np.nan
    valid = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        center = (total / count)[valid]
    # The tasks select the non-empty columns (a copy) only if needed.
    columns = None if valid.all() else valid
    # Pass 2: squared deviations, and the fixed sums of the complete rows.
    # (Arrays that every task needs go into the graph once, as one task's
    # result, rather than once per block.)
    shared = dask.delayed(_bundle, pure=True)(columns, center)
    squares, n_complete, complete_sum, complete_cross, n_rows = _reduce(
        [dask.delayed(_second_pass)(block, shared) for block in blocks],
        _add,
    )
    _, observed_scale = column_moments_from_sums(count[valid], total[valid], squares)
    return BlockColumns(
        n_samples=int(n_samples),
        count=count,
        spread=spread,
        degenerate=degenerate_columns(count, spread),
        valid=valid,
        columns=columns,
        center=center,
        observed_scale=observed_scale,
        scale=standardising_scale(observed_scale),
        complete=(n_complete, complete_sum, complete_cross),
        n_rows=int(n_rows),
    )


def _normal_e_step(blocks, columns, mean, covariance):
    """The normal model's E-step statistics over all blocks (one pass), or
    None for a covariance that is not positive definite."""
    try:
        precision, logdet_cov = precision_and_logdet(covariance)
        shared = dask.delayed(_bundle, pure=True)(
            columns.columns, columns.center, mean, precision, logdet_cov
        )
        incomplete = _reduce(
            [dask.delayed(_e_step_pass)(block, shared) for block in blocks],
            _add_statistics,
        )
    except np.linalg.LinAlgError:
        return None
    return add_complete_rows(
        incomplete, columns.complete, mean - columns.center, precision, logdet_cov
    )


def student_t_e_step(blocks, columns, mean, scale, df, df_start):
    """The multivariate t's E-step statistics over all blocks, about
    ``columns.center`` (the ``evaluate`` of
    :class:`~emimpute.models._student_t.StudentTModel`), or None for a scale
    matrix that is not positive definite.

    At a fixed df one pass (the statistics add over blocks).  An estimated
    df needs every row's distance first (see
    :mod:`emimpute.models._student_t`): a first pass gathers the distances
    and observed counts of the rows (n floats and n small integers on the
    client), the df is profiled there, and a second pass sums the
    statistics at that df.
    """
    try:
        precision, logdet_cov = precision_and_logdet(scale)
        shared = dask.delayed(_bundle, pure=True)(
            columns.columns, columns.center, mean, precision, logdet_cov
        )
        if df == "estimate":
            parts = dask.compute(
                *[dask.delayed(_t_distance_pass)(block, shared) for block in blocks]
            )
            distance = np.concatenate([part[0] for part in parts])
            n_observed = np.concatenate([part[1] for part in parts])
            df = profile_df(distance, n_observed, df_start)
        return _reduce(
            [
                dask.delayed(_t_statistics_pass)(block, shared, float(df))
                for block in blocks
            ],
            _add_statistics,
        )
    except np.linalg.LinAlgError:
        return None


# ---------------------------------------------------------------------------
# The selection model over the blocks


def fit_selection_em_blockwise(
    source, mnar, covariates, center, scale, *, link="probit", psi=None,
    ridge=0.0, max_iter=500, tol=1e-6, accelerate=True, random_state=None,
    callback=None, init=None,
):  # fmt: skip
    """:func:`~emimpute.models._selection.fit_selection_em` on a row source
    that sums its statistics over blocks (:class:`DaskSelectionRows`).

    The model is built from ``source`` instead of an array; the start (a
    warm one from ``init``, else the MAR fit and the best of the psi
    starts), the iterations and the result in data units are the kernel's
    own, so the estimate is the in-memory fit's up to the order of the sums.

    Parameters
    ----------
    source : DaskSelectionRows
    mnar, covariates : ndarrays of int
        Columns with a missingness model and the covariates of those models
        (positions among the source's columns).
    center, scale : ndarrays of shape (p,)
        The observed column means and standardising scales.
    link, psi, ridge, max_iter, tol, accelerate, callback, init
        As in :func:`~emimpute.models._selection.fit_selection_em`.
    random_state : int or None
        The Sobol nodes' seed; None draws one here, so that every block
        and every pass use the same nodes.

    Returns
    -------
    SelectionEMResult
    """
    if random_state is None:  # one seed for all the tasks, not one each
        random_state = child_seeds(None)
    model = SelectionModel.from_source(
        source, mnar, covariates, center, scale, link=link, psi=psi,
        ridge=ridge, random_state=random_state,
    )  # fmt: skip
    return fit_model(
        model, max_iter=max_iter, tol=tol, accelerate=accelerate,
        callback=callback, init=init,
    )  # fmt: skip


class DaskSelectionRows:
    """The rows of Delayed float blocks as the row source of
    :class:`~emimpute.models._selection.SelectionModel` (the Dask twin of
    :class:`~emimpute.models._selection.RowsInMemory`): every method is a
    few passes over the blocks, each task standardising its own block.

    Parameters
    ----------
    blocks : list of Delayed ndarrays
        The blocks of rows (float, NaN at missing cells, all columns).
    columns : BlockColumns
        Their column passes; the model covers the ``valid`` columns.
    mnar, covariates : ndarrays of int
        Positions among the valid columns.
    link : {"probit", "logit"}
    """

    def __init__(self, blocks, columns, mnar, covariates, link):
        self.blocks, self.columns = blocks, columns
        self.mnar, self.covariates, self.link = mnar, covariates, link
        self.n_rows = columns.n_samples  # every row, as RowsInMemory's
        self.observed_counts = columns.count[columns.valid]

    def _shared(self, *values):
        """One task holding what every block's task needs (in the graph
        once, not once per block)."""
        return dask.delayed(_bundle, pure=False)(
            self.columns.columns, self.columns.center, self.columns.scale, *values
        )

    def statistics(self, params, spec):
        """The :class:`SelectionStatistics` of all blocks at ``params`` (one
        pass); raises ``numpy.linalg.LinAlgError`` if a block's covariance
        is not positive definite."""
        shared = self._shared(params, spec)
        total = _reduce(
            [dask.delayed(_selection_pass)(block, shared) for block in self.blocks],
            _add_statistics,
        )
        if total is None:  # pragma: no cover - block_statistics raises instead
            raise np.linalg.LinAlgError("a covariance is not positive definite")
        return total

    def mar_fit(self, ridge, tol):
        """The MAR fit (normal model, :class:`DaskEMImputer`'s E-step) on the
        standardised scale, as :meth:`RowsInMemory.mar_fit`."""
        columns = self.columns
        fit = run_normal_em(
            functools.partial(_normal_e_step, self.blocks, columns),
            n_rows=columns.n_rows,
            center=columns.center,
            scale=columns.scale,
            ridge=ridge,
            tol=tol,
        )
        scale = columns.scale
        return NormalParams(
            (fit.mean - columns.center) / scale,
            fit.covariance / np.outer(scale, scale),
        )

    def selection_start(self, mar, initial, spec):
        """Each missingness model's regression of "missing" on (1, x_c) at
        the MAR fit, psi held at its initial value through the offset psi
        x_j-hat (:func:`~emimpute.models._selection._selection_start`),
        by :func:`fit_binary_glm`'s Newton steps with the gradient, Hessian
        and log-likelihood summed over the blocks: one pass per step."""
        if len(spec.mnar) == 0:
            return initial
        offset_psi = initial.psi if np.any(initial.psi != 0) else None
        shared = self._shared(spec, mar, offset_psi)

        def evaluate(coefs):
            parts = [
                dask.delayed(_start_pass)(block, shared, coefs) for block in self.blocks
            ]
            return _reduce(parts, _add_start_sums)

        coef = _newton_over_blocks(evaluate, 1 + len(spec.covariates), len(spec.mnar))
        return SelectionCoefficients(
            coef[:, 0], initial.psi.copy(), coef[:, 1:].reshape(initial.gamma.shape)
        )


def _newton_over_blocks(evaluate, q, k, max_iter=START_NEWTON_STEPS, tol=1e-10):
    """k binary regressions by :func:`fit_binary_glm`'s Newton method (same
    start, steps, halving and stopping rule), each pass evaluating every
    unfinished model at its next point: ``evaluate(coefs)`` gives, per
    model (None where ``coefs`` is None), its summed log-likelihood,
    gradient and information there."""
    coef, pending = np.zeros((k, q)), [np.zeros(q) for _ in range(k)]
    value, step = np.full(k, -np.inf), np.zeros((k, q))
    iteration, halvings = np.ones(k, int), np.zeros(k, int)
    first = np.ones(k, bool)
    while any(point is not None for point in pending):
        sums = evaluate(pending)
        for i, point in enumerate(pending):
            if point is None:
                continue
            pending[i] = None
            new_value, gradient, information = sums[i]
            new_value = new_value if np.isfinite(new_value) else -np.inf
            if not first[i]:
                if not new_value >= value[i] - 1e-12 * abs(value[i]):
                    halvings[i] += 1
                    if halvings[i] < 40:  # halve the step, try again
                        step[i] /= 2.0
                        pending[i] = coef[i] + step[i]
                    continue
                coef[i] = point
                if np.max(np.abs(step[i])) < tol or iteration[i] == max_iter:
                    continue  # converged, or out of steps
                iteration[i] += 1
            first[i], value[i], halvings[i] = False, new_value, 0
            if not (np.isfinite(gradient).all() and np.isfinite(information).all()):
                continue  # overflowed: stop there, as fit_binary_glm
            step[i] = _newton_step(information, gradient)
            pending[i] = coef[i] + step[i]
    return coef


def _newton_step(information, gradient):
    try:
        return np.linalg.solve(information, gradient)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(information, gradient, rcond=None)[0]


# ---------------------------------------------------------------------------
# The source: validated Dask input as blocks of rows


class _DaskSource:
    """A Dask array or DataFrame, checked; nothing is computed on making it."""

    def __init__(self, array, frame, names, n_features):
        self.array = array  # dask array, one chunk across columns
        self.frame = frame  # the dask DataFrame, or None
        self.names = names  # column labels of a DataFrame, or None
        self.n_features = n_features

    @classmethod
    def of(cls, X, expected=None):
        """Check X (and, given a fitted ``expected``, its columns)."""
        frame = X if _is_dask_frame(X) else None
        if frame is not None:
            meta = frame._meta
            _raise_for_non_numeric(meta)
            names = list(meta.columns)
            n_features = len(names)
            array = frame.map_partitions(_frame_values, meta=np.empty((0, n_features)))
            if not isinstance(array, da.Array):  # older dask
                array = array.to_dask_array()
        elif isinstance(X, da.Array):
            if X.ndim != 2:
                raise ValueError(
                    f"expected a 2-d Dask array (rows by columns), got {X.ndim} "
                    "dimension(s)"
                )
            if X.dtype.kind not in "biuf":
                raise TypeError(
                    f"non-numeric Dask array of dtype {X.dtype}: this imputer "
                    "models numeric columns only."
                )
            names = None
            n_features = X.shape[1]
            array = X.rechunk({1: -1}) if X.numblocks[1] > 1 else X
        else:
            raise TypeError(
                f"expected a dask.array.Array or dask.dataframe.DataFrame, got "
                f"{type(X).__name__}"
            )
        if expected is not None:
            _check_columns(expected, names, n_features)
        return cls(array, frame, names, n_features)

    def float_blocks(self, missing_values):
        """The blocks of rows as Delayed float64 arrays with NaN at missing
        cells, made (and checked) where the data live."""
        if self.frame is not None:
            parts = self.frame.to_delayed()
        else:
            parts = list(self.array.to_delayed().ravel())
        return [
            dask.delayed(_float_block)(part, missing_values, self.names)
            for part in parts
        ]


def _is_dask_frame(X):
    if not hasattr(X, "map_partitions"):
        return False
    import dask.dataframe as dd

    return isinstance(X, dd.DataFrame)


def _check_columns(imputer, names, n_features):
    """The column checks of ``validate_data(reset=False)``, without data."""
    if n_features != imputer.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(imputer).__name__} is "
            f"expecting {imputer.n_features_in_} features as input."
        )
    fitted = getattr(imputer, "feature_names_in_", None)
    if fitted is not None and names is not None:
        if [str(name) for name in names] != [str(name) for name in fitted]:
            missing = [name for name in fitted if name not in names]
            raise ValueError(
                "The feature names should match those that were passed during "
                f"fit; columns missing from X: {missing}"
                if missing
                else "The feature names should match those that were passed "
                "during fit, in the same order."
            )


# ---------------------------------------------------------------------------
# Tasks (module functions, so that workers can unpickle them)


def _frame_values(part):
    return part.to_numpy(dtype=np.float64, na_value=np.nan)


def _float_block(part, missing_values, names):
    """A block as float64 with NaN at missing cells; errors name the column."""
    # No copy unless needed: the passes only read the block (on the local
    # scheduler it may be a view of the caller's array).
    if isinstance(part, pd.DataFrame):
        block = part.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        block = np.asarray(part, dtype=np.float64)
    if not is_nan_marker(missing_values):
        block = block.copy()
    return mark_missing(block, missing_values, names)


def _first_pass(block):
    return (block.shape[0], *column_sums(block))


def _bundle(*values):
    return values


def _second_pass(block, shared):
    columns, center = shared
    block = block if columns is None else block[:, columns]
    return (column_squares(block, center), *complete_row_sums(block, center))


def _e_step_pass(block, shared):
    columns, center, mean, precision, logdet_cov = shared
    block = block if columns is None else block[:, columns]
    # One thread per task: Dask's workers provide the parallelism.
    return block_statistics(block, center, mean, precision, logdet_cov, n_threads=1)


def _t_distance_pass(block, shared):
    columns, center, mean, precision, logdet_cov = shared
    block = block if columns is None else block[:, columns]
    distance, n_observed, _ = t_block_distances(
        block, center, mean, precision, logdet_cov, n_threads=1
    )
    return distance, n_observed


def _t_statistics_pass(block, shared, df):
    columns, center, mean, precision, logdet_cov = shared
    block = block if columns is None else block[:, columns]
    return t_block_statistics(
        block, center, mean, precision, logdet_cov, df, n_threads=1
    )


def _standardised(block, shared):
    """A block's valid columns on the standardised scale (a new array)."""
    columns, center, scale = shared[:3]
    block = block if columns is None else block[:, columns]
    return (block - center) / scale


def _selection_pass(block, shared):
    params, spec = shared[3:]
    columns, center, scale = shared[:3]
    block = block if columns is None else block[:, columns]
    return selection_block_statistics(block, center, scale, params, spec)


def _start_pass(block, shared, coefs):
    """Per missingness model (None where ``coefs`` is None): the block's
    log-likelihood, gradient and information of the start's regression at
    ``coefs`` (as in :func:`fit_binary_glm`, weights 1)."""
    spec, mar, offset_psi = shared[3:]
    Z = _standardised(block, shared)
    design = np.column_stack([np.ones(len(Z)), Z[:, spec.covariates]])
    filled = None
    if offset_psi is not None and len(Z):  # x_j-hat: the MAR conditional mean
        filled = conditional_moments(Z, mar.mean, mar.covariance).completed
    sums = []
    for i, (j, coef) in enumerate(zip(spec.mnar, coefs, strict=True)):
        if coef is None:
            sums.append(None)
            continue
        offset = 0.0 if filled is None else offset_psi[i] * filled[:, j]
        # Far in a tail the sums overflow; the client's step halving and
        # finiteness checks deal with it, as fit_binary_glm's do.
        with np.errstate(over="ignore", invalid="ignore"):
            index = design @ coef + offset
            score, curvature, log_prob = _score_and_curvature(
                index, np.isnan(Z[:, j]), spec.link
            )
            sums.append(
                (
                    float(log_prob.sum()),
                    design.T @ score,
                    (design * curvature[:, None]).T @ design,
                )
            )
    return sums


def _add_start_sums(*parts):
    """Per model, the element-wise sum of the blocks' start sums."""
    return [
        None if sums[0] is None else _add(*sums) for sums in zip(*parts, strict=True)
    ]


def _combine_first_pass(*parts):
    n, count, total, minimum, maximum = zip(*parts, strict=True)
    return (
        sum(n),
        np.sum(count, axis=0),
        np.sum(total, axis=0),
        np.fmin.reduce(minimum, axis=0),
        np.fmax.reduce(maximum, axis=0),
    )


def _add(*parts):
    """Element-wise sum of tuples of arrays and numbers."""
    return tuple(sum(values[1:], values[0]) for values in zip(*parts, strict=True))


def _add_statistics(*parts):
    """Sum of E-step statistics of blocks (they add over rows)."""
    return sum_statistics(parts)


def _reduce(parts, combine):
    """Add up Delayed partial results in a tree and compute the total."""
    while len(parts) > 1:
        parts = [
            dask.delayed(combine)(*parts[start : start + FAN_IN])
            for start in range(0, len(parts), FAN_IN)
        ]
    (total,) = dask.compute(parts[0])
    return total


def _indicator_for(has_missing):
    """A MissingIndicator fitted as if on the data (as EMImputer fits it, on
    the validated array): with ``features='missing-only'`` it keeps the
    columns that had a missing cell, which is all it learns."""
    row = np.where(has_missing, np.nan, 0.0)[None, :]
    return MissingIndicator(error_on_new=False).fit(row)


def _base_seed(imputer):
    """One integer from which every block's random_state is derived."""
    state = getattr(imputer, "random_state", None)
    if isinstance(state, numbers.Integral):
        return int(state)
    if state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return int(check_random_state(state).randint(2**32 - 1))


def _for_block(imputer, seed, index):
    """The imputer with a random_state of its own for block ``index``."""
    if "random_state" not in imputer.get_params(deep=False):
        return imputer
    block_seed = np.random.SeedSequence([seed, index]).generate_state(1)[0]
    local = copy.copy(imputer)
    local.random_state = int(block_seed)
    return local


def _transform_block(block, imputer, seed, block_info=None):
    # The imputer validates the block itself (its marker, infinite values).
    index = 0 if block_info is None else block_info[0]["chunk-location"][0]
    return np.asarray(_for_block(imputer, seed, index).transform(block), np.float64)


def _transform_frame(part, imputer, seed, partition_info=None):
    index = 0 if partition_info is None else partition_info["number"]
    local = _for_block(imputer, seed, index)
    names = [str(name) for name in local.get_feature_names_out()]
    if part.shape[0] == 0:  # scikit-learn refuses empty input
        return pd.DataFrame(columns=names, index=part.index, dtype=np.float64)
    completed = np.asarray(local.transform(part), dtype=np.float64)
    return pd.DataFrame(completed, columns=names, index=part.index)


def _named(block, names):
    """The block as the imputer saw its training data: with column names
    when it was fitted on a DataFrame (no feature-name warnings)."""
    return block if names is None else pd.DataFrame(block, columns=names)


def _score_block(block, imputer, names):
    return imputer.score_samples(_named(block, names))


def _moments_block(block, imputer, names):
    return np.hstack(imputer.conditional_moments(_named(block, names)))


# The copula's Dask fit lives in its own module, which imports the helpers
# above (hence at the end).
from emimpute._dask_copula import DaskGaussianCopulaImputer  # noqa: E402


def __getattr__(name):
    # The mixture's Dask class is built on this module's mixin and helpers,
    # so its module imports this one: it is found here on first use (PEP
    # 562), which lets either module be imported first.
    if name == "DaskGaussianMixtureImputer":
        from emimpute._dask_mixture import DaskGaussianMixtureImputer

        return DaskGaussianMixtureImputer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

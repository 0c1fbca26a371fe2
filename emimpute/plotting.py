"""The plots people look at when values are missing (optional extra ``plot``).

matplotlib is imported only when a function here is called, so the rest of
the package works without it (``pip install "emimpute[plot]"``).  Every
function draws on the Axes it is given (or a new one) and returns the Axes,
or the Figure when it draws several panels.
"""

import numpy as np

from emimpute.diagnostics import missing_patterns
from emimpute.utils._columns import column_position

__all__ = [
    "plot_imputed_distributions",
    "plot_loglik_trace",
    "plot_missing_patterns",
    "plot_sensitivity",
    "plot_tipping_contour",
]

OBSERVED_COLOR = "#1f77b4"
MISSING_COLOR = "#d62728"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "plotting needs matplotlib: pip install 'emimpute[plot]'"
        ) from error
    return plt


def _axes(ax):
    return _pyplot().subplots()[1] if ax is None else ax


def plot_missing_patterns(X, *, ax=None):
    """The missingness-pattern matrix: patterns by columns, with counts.

    One row per pattern, ordered as :func:`emimpute.diagnostics.missing_patterns`
    orders them (complete rows first, columns from least to most missing),
    observed cells in blue and missing ones in red; the left labels give
    each pattern's number of rows, the right ones its number of missing
    cells, and the column labels each column's number of missing values.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from emimpute.datasets import load_airquality
    >>> ax = plot_missing_patterns(load_airquality())
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['111', '35', '5', '2']
    """
    from matplotlib.colors import ListedColormap

    table = missing_patterns(X)
    patterns = table.iloc[:-2]
    columns = list(table.columns[:-3])
    ax = _axes(ax)
    observed = patterns[columns].to_numpy()
    ax.imshow(
        observed,
        cmap=ListedColormap([MISSING_COLOR, OBSERVED_COLOR]),
        vmin=0,
        vmax=1,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_xticks(range(len(columns)))
    n_missing = table.loc["n_missing", columns].astype(int)
    ax.set_xticklabels(
        [f"{c}\n({m})" for c, m in zip(columns, n_missing, strict=True)],
        rotation=45 if len(columns) > 6 else 0,
        ha="right" if len(columns) > 6 else "center",
    )
    ax.set_yticks(range(len(patterns)))
    ax.set_yticklabels([str(int(c)) for c in patterns["count"]])
    ax.set_ylabel("rows with the pattern")
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(len(patterns)))
    right.set_yticklabels([str(int(m)) for m in patterns["n_missing"]])
    right.set_ylabel("missing cells")
    ax.set_xticks(np.arange(len(columns) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(patterns) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title("Missingness patterns (blue observed, red missing)")
    return ax


def plot_imputed_distributions(X, X_imputed, *, columns=None, bins=30, ncols=3):
    """Observed against imputed values, one histogram panel per column.

    The seed workflow's "compare distributions before and after imputation":
    for each incomplete column, the density of its observed values and of
    the values imputed into its missing cells.  Conditional means are less
    spread than the data they replace (they carry no residual noise); draws
    (``sample_posterior=True``) should look like the observed values under
    MCAR, and may differ from them under MAR or MNAR for good reason.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        The data before imputation (NaN at missing cells).
    X_imputed : DataFrame or array-like of the same shape
        The same data after imputation.
    columns : list of str or int, optional
        Columns to draw (names for DataFrames, else positions); by default
        every column with a missing cell.
    bins : int, default=30
    ncols : int, default=3
        Panels per row of the figure.

    Returns
    -------
    matplotlib Figure
        One Axes per column, titled with the column name; each with two
        histograms labelled "observed (n)" and "imputed (n)".
    """
    import pandas as pd

    before = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    names = [str(c) for c in before.columns]
    if not isinstance(X, pd.DataFrame):
        names = [f"x{j}" for j in range(before.shape[1])]
    before = before.to_numpy(dtype=np.float64, na_value=np.nan)
    after = np.asarray(X_imputed, dtype=np.float64)
    if after.shape != before.shape:
        raise ValueError(
            f"X has shape {before.shape} but X_imputed has shape {after.shape}"
        )
    mask = np.isnan(before)
    if columns is None:
        positions = list(np.flatnonzero(mask.any(axis=0)))
    else:
        positions = [column_position(names, c, "columns") for c in columns]
    if not positions:
        raise ValueError("no column has a missing value: nothing to compare")
    plt = _pyplot()
    nrows = int(np.ceil(len(positions) / ncols))
    width = min(ncols, len(positions))
    figure, axes = plt.subplots(
        nrows, width, figsize=(4 * width, 3 * nrows), squeeze=False
    )
    for ax, j in zip(axes.ravel(), positions, strict=False):
        observed = before[~mask[:, j], j]
        imputed = after[mask[:, j], j]
        edges = np.histogram_bin_edges(np.concatenate([observed, imputed]), bins)
        ax.hist(
            observed,
            bins=edges,
            density=True,
            alpha=0.55,
            color=OBSERVED_COLOR,
            label=f"observed ({len(observed)})",
        )
        ax.hist(
            imputed,
            bins=edges,
            density=True,
            alpha=0.55,
            color=MISSING_COLOR,
            label=f"imputed ({len(imputed)})",
        )
        ax.set_title(names[j])
        ax.legend(fontsize="small")
    for ax in axes.ravel()[len(positions) :]:
        ax.set_visible(False)
    figure.tight_layout()
    return figure


def plot_loglik_trace(fitted, *, ax=None):
    """The observed-data log-likelihood after each EM iteration.

    Parameters
    ----------
    fitted : fitted estimator with ``loglik_path_``, or array-like
        For example a fitted :class:`emimpute.EMImputer`, or its path.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from emimpute import EMImputer
    >>> from emimpute.datasets import load_airquality
    >>> imputer = EMImputer().fit(load_airquality())
    >>> line = plot_loglik_trace(imputer).get_lines()[0]
    >>> len(line.get_ydata()) == imputer.n_iter_
    True
    """
    path = np.asarray(getattr(fitted, "loglik_path_", fitted), dtype=np.float64)
    if path.ndim != 1 or len(path) == 0:
        raise ValueError("expected a fitted estimator with loglik_path_, or a path")
    ax = _axes(ax)
    iterations = np.arange(1, len(path) + 1)
    ax.plot(iterations, path, marker="o", color=OBSERVED_COLOR)
    ax.set_xlabel("iteration")
    ax.set_ylabel("observed-data log-likelihood")
    ax.set_title("EM convergence")
    ax.margins(x=0.05)
    return ax


def plot_sensitivity(table, term, *, tipping=None, null=0.0, ax=None):
    """Pooled estimate and confidence band of one term against delta.

    Parameters
    ----------
    table : DataFrame from :func:`emimpute.sensitivity.sensitivity_analysis`
    term : str
    tipping : TippingPoint, optional
        Drawn as a vertical line.
    null : float, default=0.0
        Drawn as a horizontal reference line.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    rows = table[table["term"] == term].sort_values("delta")
    ax = _axes(ax)
    ax.fill_between(
        rows["delta"],
        rows["ci_low"],
        rows["ci_high"],
        color=OBSERVED_COLOR,
        alpha=0.25,
        label="confidence interval",
    )
    ax.plot(
        rows["delta"],
        rows["estimate"],
        marker="o",
        color=OBSERVED_COLOR,
        label="pooled estimate",
    )
    ax.axhline(null, color="black", linestyle="--", linewidth=1, label=f"{null:g}")
    if tipping is not None and tipping.delta is not None:
        ax.axvline(
            tipping.delta,
            color=MISSING_COLOR,
            linestyle="-.",
            label=f"tipping point ({tipping.delta:.3g})",
        )
    column = table.attrs.get("column", "the column")
    kind = table.attrs.get("kind", "delta")
    ax.set_xlabel(f"{kind} applied to the missing values of {column}")
    ax.set_ylabel(f"pooled estimate of {term}")
    ax.set_title("Sensitivity to the departure from MAR")
    ax.legend(fontsize="small")
    return ax


def plot_tipping_contour(table, term, *, alpha=0.05, ax=None):
    """p-value of one term over a two-column grid of deltas, with the
    ``alpha`` contour (where the conclusion tips) drawn heavier.

    Parameters
    ----------
    table : DataFrame from :func:`emimpute.sensitivity.sensitivity_analysis`
        A two-column grid (``column2`` and ``deltas2`` given): columns
        ``delta``, ``delta2``, ``term`` and ``p_value``, with at least two
        values of each delta.  For a one-column grid use
        :func:`plot_sensitivity`.
    term : str
    alpha : float, default=0.05
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    grid = _two_column_grid(table, term)
    ax = _axes(ax)
    x, y = np.meshgrid(grid.columns.to_numpy(), grid.index.to_numpy())
    filled = ax.contourf(
        x, y, grid.to_numpy(), levels=np.linspace(0, 1, 11), cmap="viridis"
    )
    ax.figure.colorbar(filled, ax=ax, label=f"p-value of {term}")
    if grid.to_numpy().min() < alpha < grid.to_numpy().max():
        ax.contour(
            x, y, grid.to_numpy(), levels=[alpha], colors=MISSING_COLOR, linewidths=2
        )
    ax.set_xlabel(f"delta for {table.attrs.get('column', 'column 1')}")
    ax.set_ylabel(f"delta for {table.attrs.get('column2', 'column 2')}")
    ax.set_title(f"Where p = {alpha:g}: the tipping contour")
    return ax


def _two_column_grid(table, term):
    """p-values of ``term`` as a (delta2, delta) table, or a clear error."""
    needed = ["delta", "delta2", "term", "p_value"]
    absent = [c for c in needed if c not in getattr(table, "columns", [])]
    if absent:
        raise ValueError(
            "plot_tipping_contour needs a two-column sensitivity table (from "
            "sensitivity_analysis with column2 and deltas2), with columns "
            f"{', '.join(map(repr, needed))}; this one lacks "
            f"{', '.join(map(repr, absent))}.  For a one-column grid use "
            "plot_sensitivity."
        )
    rows = table[table["term"] == term]
    if rows.empty:
        terms = ", ".join(repr(t) for t in table["term"].unique())
        raise ValueError(f"no term {term!r} in the table; terms: {terms}")
    grid = rows.pivot_table(index="delta2", columns="delta", values="p_value")
    # A contour needs a surface: at least a 2 x 2 grid.
    for name, size in (("delta", grid.shape[1]), ("delta2", grid.shape[0])):
        if size < 2:
            raise ValueError(
                f"plot_tipping_contour needs at least two values of {name}, "
                f"got {size}: a contour needs a grid of at least 2 x 2."
            )
    return grid

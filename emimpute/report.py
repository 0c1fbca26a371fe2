"""The audit record: what was assumed and what was run, in Markdown.

MNAR conclusions rest on assumptions that the data cannot check, so every
step must be written down.  :func:`record` turns a fitted imputer, a
multiple imputation, a sensitivity table, a tipping point, a pooled result
or an MCAR test into a Markdown paragraph (mechanism, columns, fixed or
estimated MNAR parameters, deltas, convergence, pooled results), and
:func:`report` writes one Markdown file for a whole analysis, with its
figures saved beside it.

Examples
--------
>>> import numpy as np
>>> from emimpute import EMImputer
>>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0], [np.nan, 3.0], [4.0, 4.0]])
>>> print(record(EMImputer().fit(X)).splitlines()[0])
**EMImputer** (missing at random, multivariate normal, maximum likelihood by EM)
"""

import functools
from pathlib import Path

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from emimpute.diagnostics import MCARTestResult
from emimpute.imputers._registry import registered_imputers
from emimpute.pooling import PooledResult
from emimpute.sensitivity import TippingPoint
from emimpute.utils._markdown import markdown_table

__all__ = ["markdown_table", "record", "report"]


def record(item):
    """A Markdown record of a fitted estimator or an analysis result.

    Estimators write their own paragraph (their ``_record()`` method: every
    registered imputer, :class:`~emimpute.DeltaAdjustedImputer`,
    :class:`~emimpute.MultipleImputer`), so a new model needs no edit here;
    results of the modules around them are recorded below.

    Parameters
    ----------
    item : fitted estimator with a record (EMImputer, MNARSelectionImputer,
        any registered imputer, DeltaAdjustedImputer, MultipleImputer),
        PooledResult, MCARTestResult, TippingPoint, or a DataFrame from
        :func:`emimpute.sensitivity.sensitivity_analysis`

    Returns
    -------
    str

    Raises
    ------
    sklearn.exceptions.NotFittedError
        For an estimator that has not been fitted: there is nothing to
        record yet.
    TypeError
        For anything else.
    """
    if isinstance(item, BaseEstimator):
        check_is_fitted(
            item,
            msg=(
                "record() needs a fitted %(name)s: call fit first; an unfitted "
                "estimator has made no assumption about the data yet."
            ),
        )
    return _record_of(item)


def _no_record(item):
    imputers = [entry.estimator.__name__ for entry in registered_imputers()]
    return TypeError(
        f"no record for {type(item).__name__}: record() takes a fitted "
        f"{', '.join(imputers)}, DeltaAdjustedImputer or "
        "MultipleImputer, a PooledResult, an MCARTestResult, a TippingPoint, "
        "or a table from sensitivity_analysis."
    )


@functools.singledispatch
def _record_of(item):
    """Estimators: their own ``_record()``; results: registered below."""
    own = getattr(item, "_record", None)
    if isinstance(item, BaseEstimator) and callable(own):
        return own()
    raise _no_record(item)


@_record_of.register
def _(item: PooledResult):
    return (
        f"Pooled over m = {item.m} imputations (Rubin's rules, {item.rule}; "
        f"complete-data df {item.dfcom:g}):\n\n" + markdown_table(item.summary())
    )


@_record_of.register
def _(item: MCARTestResult):
    return (
        f"Little's MCAR test: chi-square = {item.statistic:.4f} on {item.df} df, "
        f"p = {item.p_value:.4g} ({item.n_patterns} patterns, "
        f"{item.n_samples} rows)."
    )


@_record_of.register
def _(item: TippingPoint):
    return item.description


@_record_of.register
def _(item: pd.DataFrame):
    if "delta" not in item.columns:
        raise _no_record(item)
    attrs = item.attrs
    grid = ", ".join(f"{d:g}" for d in sorted(item["delta"].unique()))
    text = (
        f"Sensitivity analysis: {attrs.get('kind', 'delta')} applied to the "
        f"missing values of {attrs.get('column', '?')} over [{grid}]"
    )
    if attrs.get("column2"):
        grid2 = ", ".join(f"{d:g}" for d in sorted(item["delta2"].unique()))
        text += f" and of {attrs['column2']} over [{grid2}]"
    text += (
        f"; {attrs.get('n_imputations', '?')} imputations per grid point with "
        f"random_state {attrs.get('random_state', '?')}; imputer "
        f"{attrs.get('imputer', '?')}; analysis {attrs.get('analysis', '?')}."
    )
    return text + "\n\n" + markdown_table(item.set_index("delta"))


def report(path, title, sections):
    """Write one Markdown file for a whole analysis, figures beside it.

    Parameters
    ----------
    path : str or Path
        The Markdown file; figures go to ``<stem>_figures/`` next to it.
    title : str
    sections : list of (heading, content)
        ``content`` is Markdown text, a DataFrame, a matplotlib Figure
        (saved as PNG and linked), anything :func:`record` accepts, or a
        list of these.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = path.parent / f"{path.stem}_figures"
    lines = [f"# {title}", ""]
    count = 0
    for heading, content in sections:
        lines += [f"## {heading}", ""]
        for part in content if isinstance(content, list) else [content]:
            if hasattr(part, "savefig"):
                count += 1
                figures.mkdir(exist_ok=True)
                name = f"figure_{count}.png"
                part.savefig(figures / name, dpi=100)
                lines.append(f"![{heading}]({figures.name}/{name})")
            elif isinstance(part, str):
                lines.append(part)
            elif isinstance(part, pd.DataFrame) and "delta" not in part.columns:
                lines.append(markdown_table(part))
            else:
                lines.append(record(part))
            lines.append("")
    path.write_text("\n".join(lines))
    return path

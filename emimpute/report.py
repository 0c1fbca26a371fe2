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

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from emimpute.diagnostics import MCARTestResult
from emimpute.imputers._delta_imputer import DeltaAdjustedImputer
from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._mnar_imputer import MNARSelectionImputer
from emimpute.imputers._multiple_imputer import MultipleImputer
from emimpute.pooling import PooledResult
from emimpute.sensitivity import TippingPoint
from emimpute.utils._validation import feature_names

__all__ = ["markdown_table", "record", "report"]


def markdown_table(frame, digits=4):
    """A DataFrame as a Markdown table (index included), numbers to ``digits``
    significant digits."""

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return f"{value:.{digits}g}"
        return str(value)

    frame = (
        frame.reset_index()
        if frame.index.name or not isinstance(frame.index, pd.RangeIndex)
        else frame
    )
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join([header, rule, *rows])


def _converged(estimator):
    state = "converged" if estimator.converged_ else "**did not converge**"
    return f"{state} after {estimator.n_iter_} iterations"


def record(item):
    """A Markdown record of a fitted estimator or an analysis result.

    Parameters
    ----------
    item : EMImputer, MNARSelectionImputer, DeltaAdjustedImputer,
        MultipleImputer (fitted), PooledResult, MCARTestResult,
        TippingPoint, or a DataFrame from
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
    if isinstance(item, MultipleImputer):
        lines = [
            f"**MultipleImputer**: {item.n_imputations} imputations, parameters "
            f"drawn by {item.method}"
            + (
                f" ({item.burn_in} iterations per chain)"
                if item.method != "bootstrap"
                else " (imputer refitted on a bootstrap resample)"
            )  # fmt: skip
            + f"; random_state = {item.random_state!r}.",
            "",
            "Imputation model of each data set:",
            "",
            record(item.imputers_[0]),
        ]
        if item.estimator is not None:
            lines += ["", f"Analysis: {item.estimator!r}, fitted on each data set"
                      + (", outcome included in the imputation model"
                         if item.include_outcome else "") + "."]  # fmt: skip
        if item.pooled_ is not None:
            lines += ["", record(item.pooled_)]
        return "\n".join(lines)
    if isinstance(item, DeltaAdjustedImputer):
        names = feature_names(item)
        kind = {"shift": "added to", "scale": "multiplying",
                "sd": "standard deviations added to"}[item.kind]  # fmt: skip
        neutral = 1.0 if item.kind == "scale" else 0.0
        moved = [f"{names[j]}: {item.delta_[j]:g}" for j in range(len(names))
                 if item.delta_[j] != neutral]  # fmt: skip
        return "\n".join(
            [
                "**DeltaAdjustedImputer** (pattern-mixture departure from MAR): "
                f"delta {kind} the imputed cells, once, after imputation "
                f"({'; '.join(moved) if moved else 'no column moved: MAR'}). "
                "Observed cells unchanged.",
                "",
                "Wrapped imputer:",
                "",
                record(item.imputer_),
            ]
        )
    if isinstance(item, MNARSelectionImputer):
        return "\n".join(
            [
                "**MNARSelectionImputer** (missing not at random, selection model)",
                "",
                item.summary(),
                "",
                markdown_table(item.selection_coef_),
            ]
        )
    if isinstance(item, EMImputer):
        names = feature_names(item)
        how = "draws" if item.sample_posterior else "conditional means"
        return "\n".join(
            [
                "**EMImputer** (missing at random, multivariate normal, maximum "
                "likelihood by EM)",
                "",
                f"Columns: {', '.join(names)}; ridge = {item.ridge:g}; "
                f"{_converged(item)}; log-likelihood {item.loglik_:.4f}; "
                f"imputation by {how}.",
            ]
        )
    if isinstance(item, PooledResult):
        return (
            f"Pooled over m = {item.m} imputations (Rubin's rules, {item.rule}; "
            f"complete-data df {item.dfcom:g}):\n\n" + markdown_table(item.summary())
        )
    if isinstance(item, MCARTestResult):
        return (
            f"Little's MCAR test: chi-square = {item.statistic:.4f} on {item.df} df, "
            f"p = {item.p_value:.4g} ({item.n_patterns} patterns, "
            f"{item.n_samples} rows)."
        )
    if isinstance(item, TippingPoint):
        return item.description
    if isinstance(item, pd.DataFrame) and "delta" in item.columns:
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
    raise TypeError(
        f"no record for {type(item).__name__}: record() takes a fitted "
        "EMImputer, MNARSelectionImputer, DeltaAdjustedImputer or "
        "MultipleImputer, a PooledResult, an MCARTestResult, a TippingPoint, "
        "or a table from sensitivity_analysis."
    )


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

"""Markdown for the audit record: a DataFrame as a table.

Used by :mod:`emimpute.report` and by the estimators' ``_record`` hooks
(which must not import the report module, a layer above them).
"""

import numpy as np
import pandas as pd


def markdown_table(frame, digits=4):
    """A DataFrame as a Markdown table (index included), numbers to ``digits``
    significant digits.

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"psi": [1.23456]}, index=["x0"])))
    | index | psi |
    | --- | --- |
    | x0 | 1.235 |
    """

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

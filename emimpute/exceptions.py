"""Warnings and errors of emimpute that users may want to filter or escalate.

Examples
--------
Turn the automatic regularisation into an error, to be told at once when a
maximum likelihood estimate does not exist:

>>> import warnings
>>> from emimpute.exceptions import RegularisationWarning
>>> warnings.simplefilter("error", RegularisationWarning)
>>> warnings.resetwarnings()
"""

__all__ = ["RegularisationWarning"]


class RegularisationWarning(UserWarning):
    """The maximum likelihood estimate did not exist, so a prior was added.

    Raised (as a warning) by a fit with ``ridge=0`` on data for which the
    normal likelihood has no finite maximum: a constant column, a column
    with a single observed value, exactly collinear columns (duplicates,
    x3 = 2 x0, one-hot dummies that sum to 1), or more columns than rows.
    The fit then uses the smallest ridge prior, on a ladder of strengths,
    that makes it proper, and imputes from that; the message names the
    columns involved and the ridge used (also the fitted ``ridge_``).
    Filter it with :func:`warnings.filterwarnings`, or escalate it to an
    error to refuse such data.
    """

"""Random seeding, one way everywhere.

An estimator resolves ``random_state`` inside each ``fit`` (or each
``transform`` that draws), never keeps a generator between calls, and hands
kernels either that generator or integer seeds derived from it: kernels
never choose a seed of their own.
"""

import numpy as np
from sklearn.utils import check_random_state

# Seeds are drawn below this bound: every consumer (NumPy, SciPy's qmc,
# joblib workers) accepts a 32-bit signed integer.
SEED_BOUND = np.iinfo(np.int32).max


def resolve_random_state(random_state):
    """A ``numpy.random.RandomState`` from an estimator's ``random_state``
    (None, an int or a RandomState), as scikit-learn's ``check_random_state``.

    Examples
    --------
    >>> a = resolve_random_state(0).randint(100)
    >>> b = resolve_random_state(0).randint(100)
    >>> a == b
    True
    """
    return check_random_state(random_state)


def child_seeds(rng, size=None):
    """Integer seeds derived from ``rng`` (a RandomState or anything
    :func:`resolve_random_state` accepts): one int when ``size`` is None,
    else an array of that shape, each in ``[0, 2**31 - 1)``.

    Examples
    --------
    >>> child_seeds(0, size=3).shape
    (3,)
    >>> isinstance(child_seeds(0), int)
    True
    """
    rng = resolve_random_state(rng)
    if size is None:
        return int(rng.randint(SEED_BOUND))
    return rng.randint(SEED_BOUND, size=size)

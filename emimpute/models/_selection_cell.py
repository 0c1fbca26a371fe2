"""The quadrature rule for one missing value under a selection model
(statistical kernel).

The building block of the MNAR selection-model E-step
(:mod:`emimpute.models._selection`): a value y, normal N(nu, s^2) given
what is observed in its row, goes missing with probability
F(eta + psi * y), F the probit or logistic link.  Given that it is missing,
y has density

    f(y | missing) = N(y; nu, s^2) F(eta + psi y) / P(missing),
    P(missing) = E[F(eta + psi y)],  y ~ N(nu, s^2),

and the E-step needs log P(missing) and moments under f(y | missing).  It
takes them by Gauss-Hermite quadrature on y = nu + sqrt(2) s t, the
weights times F(eta + psi y_k), normalised, being the posterior weights of
the nodes (Ibrahim 1990's method of weights with quadrature nodes).

How many nodes: the logistic curve has poles at imaginary distance
pi / |psi| from the real axis, so the rule's error falls like
exp(-2 d sqrt(2 n)) with d = pi / (sqrt(2) |psi| s) (the standard bound for
functions analytic in a strip); the number of nodes grows with (psi s)^2 to
keep it near 1e-12.  The probit curve is entire, so the same count is ample
for it.  (tests/models/test_selection_cell.py checks the rule against
adaptive quadrature, against Heckman's closed form for the probit, and
against a simulation.)

References
----------
Heckman, J. J. (1979). Sample selection bias as a specification error.
*Econometrica* 47, 153-161.
Ibrahim, J. G. (1990). Incomplete data in generalized linear models. *JASA*
85, 765-769.
"""

from functools import lru_cache

import numpy as np
from scipy import special

# Gauss-Hermite nodes: at least MIN_NODES, and about NODES_PER_STEEPNESS *
# (psi s)^2, enough for an error near 1e-12 (see the module docstring), up to
# MAX_NODES.
MIN_NODES = 24
NODES_PER_STEEPNESS = 20.0
MAX_NODES = 1000


def gauss_hermite_size(steepness):
    """Nodes for a selection curve of slope ``steepness`` = max |psi| s.

    Examples
    --------
    >>> gauss_hermite_size(0.5), gauss_hermite_size(2.0), gauss_hermite_size(5.0)
    (24, 80, 500)
    """
    wanted = np.ceil(NODES_PER_STEEPNESS * float(steepness) ** 2)
    return int(np.clip(wanted, MIN_NODES, MAX_NODES))


def gauss_hermite(n_nodes):
    """Nodes t and log weights of the ``n_nodes``-point Gauss-Hermite rule
    for weight exp(-t^2), without the nodes whose weight underflows to 0.

    scipy's ``roots_hermite`` stays accurate for large rules, where NumPy's
    ``hermgauss`` overflows (above about 350 points).

    Examples
    --------
    >>> t, log_w = gauss_hermite(3)
    >>> bool(np.isclose(np.exp(log_w).sum(), np.sqrt(np.pi)))
    True
    """
    return _gauss_hermite(int(n_nodes))


@lru_cache(maxsize=64)
def _gauss_hermite(n_nodes):
    """The rule of :func:`gauss_hermite`, computed once per size (every
    E-step of a fit asks for it; read-only, as it is shared)."""
    t, w = special.roots_hermite(n_nodes)
    keep = w > 0
    t, log_w = t[keep], np.log(w[keep])
    t.flags.writeable = False
    log_w.flags.writeable = False
    return t, log_w

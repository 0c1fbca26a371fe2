"""Gaussian algebra the models share: conditional moments of missing cells
through the precision matrix (``_conditional``), many small Cholesky
factorisations at once (``_batched_cholesky``), the moments of a normal
truncated to the positive orthant in one to three dimensions (``_orthant``)
and the compiled E-step (``_compiled`` driving ``_fast_estep.c``).
NumPy/SciPy only."""

"""Gaussian algebra the models share: conditional moments of missing cells
through the precision matrix (``_conditional``), many small Cholesky
factorisations at once (``_batched_cholesky``) and the compiled E-step
(``_compiled`` driving ``_fast_estep.c``).  NumPy/SciPy only."""

"""The EM models, one module each, all implementing
:class:`emimpute.engine._model.EMModel`: the multivariate normal
(``_normal``, with posterior draws in ``_normal_posterior``), the MNAR
selection model (``_selection``; the probit link as a latent normal in
``_selection_latent`` and ``_selection_patterns``, imputation and draws in
``_selection_impute``, one missing value by quadrature in
``_selection_cell``, the weighted probit/logit fit in ``_binary_glm``) and
the multivariate t (``_student_t``).  NumPy/SciPy only."""

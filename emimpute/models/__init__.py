"""The EM models, one module each, all implementing
:class:`emimpute.engine._model.EMModel`: the multivariate normal
(``_normal``, with posterior draws in ``_normal_posterior``), the MNAR
selection model (``_selection``; one missing value in ``_selection_cell``,
the weighted probit/logit fit in ``_binary_glm``) and the multivariate t
(``_student_t``).  NumPy/SciPy only."""

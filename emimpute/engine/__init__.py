"""The EM engine: the model interface every EM model implements
(``_model``), the one driver that runs any of them with SQUAREM and the
stopping rule (``_driver``, ``_squarem``), and the automatic ridge for data
without a maximum likelihood estimate (``_regularise``).  NumPy/SciPy only."""

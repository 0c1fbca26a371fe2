"""Small utilities, one concern each: input checks (``_validation``), column
names and positions (``_columns``), random seeding (``_random``), the
standardising scale and ridge prior (``_scale``, NumPy only: the kernels use
it too), every private scikit-learn import (``_sklearn_compat``), Markdown
tables (``_markdown``), progress printing (``_progress``) and missingness
patterns (``_patterns``)."""

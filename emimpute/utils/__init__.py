"""Small utilities: input checks and column names (``_validation``),
progress printing (``_progress``), missingness patterns (``_patterns``)."""

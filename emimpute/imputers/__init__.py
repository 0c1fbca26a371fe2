"""The scikit-learn estimator shells: a shared base (``_base``) and one thin
imputer per model, plus the imputers built on others (multiple imputation,
delta adjustment)."""

"""Complete-data inference for multiple imputation: each completed data
set's estimates, their covariance and complete-data degrees of freedom, as
Rubin's rules need them (Rubin 1987, sec. 3.1).

Built in for OLS (:class:`~sklearn.linear_model.LinearRegression`) and
unpenalised :class:`~sklearn.linear_model.LogisticRegression`, whose
covariances have closed forms; any other analysis through a user's
``inference(X, y)`` callable, whose output is checked here.
"""

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

# Where MultipleImputer has built-in standard errors, and why nowhere else.
BUILT_IN = (
    "Built-in standard errors exist for LinearRegression (OLS: sigma^2 "
    "(X'X)^-1, dfcom = n - k) and unpenalised LogisticRegression "
    "(LogisticRegression(C=np.inf): the inverse Fisher information, two or "
    "more classes), whose complete-data covariances have closed forms."
)
ADVICE = (
    "pass inference=f with f(X, y) -> (estimates, variances[, dfcom]) for each "
    "completed data set (for example from a statsmodels fit); predict, "
    "predict_proba and cross-validation do not need it"
)


INFERENCE_SHAPES = (
    "inference(X, y) must return (estimates, variances) or (estimates, "
    "variances, dfcom): estimates a scalar or k values, variances a scalar, "
    "k squared standard errors or a k x k covariance, dfcom a number or None"
)


def inference_output(out, previous):
    """A user's ``inference`` result as (estimates, variances, dfcom, None),
    scalars taken as one parameter; a clear error for any other shape."""
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise ValueError(f"{INFERENCE_SHAPES}; got {_describe_value(out)}")
    try:
        estimates = np.atleast_1d(np.asarray(out[0], dtype=np.float64))
        variances = np.asarray(out[1], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{INFERENCE_SHAPES}; got non-numbers: {error}") from None
    k = estimates.size
    if variances.ndim == 0:
        variances = variances.reshape(1)
    shapes_ok = estimates.ndim == 1 and variances.shape in ((k,), (k, k))
    if not shapes_ok:
        raise ValueError(
            f"{INFERENCE_SHAPES}; got estimates of shape {estimates.shape} and "
            f"variances of shape {variances.shape}"
        )
    if previous and (
        estimates.shape != previous[0][0].shape
        or variances.shape != previous[0][1].shape
    ):
        raise ValueError(
            "inference(X, y) returned estimates or variances of shapes "
            f"{estimates.shape}, {variances.shape} on one completed data set and "
            f"{previous[0][0].shape}, {previous[0][1].shape} on another"
        )
    dfcom = out[2] if len(out) == 3 else None
    return estimates, variances, dfcom, None


def _describe_value(out):
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} items"
    return f"a {type(out).__name__}"


def _unpenalised(model):
    """No penalty: ``C=np.inf`` (scikit-learn >= 1.8) or ``penalty=None``."""
    return model.penalty is None or np.isinf(model.C)


def builtin_inference(fitted, X, y, names):
    """(estimates, covariance, dfcom, parameter names) for OLS and
    unpenalised logistic fits; otherwise the reason there is none (a str)."""
    kind = type(fitted).__name__
    if type(fitted) is LinearRegression:
        if np.ndim(fitted.coef_) != 1:
            return "LinearRegression fitted several outputs; pooling takes one"
        if fitted.positive:
            # At an active constraint the estimate sits on the boundary and
            # sigma^2 (X'X)^-1 is not its sampling variance.
            return "LinearRegression(positive=True) is a constrained fit"
        return _ols_inference(fitted, X, y, names)
    if type(fitted) is LogisticRegression:
        if not _unpenalised(fitted):
            return (
                f"LogisticRegression(C={fitted.C!r}) is penalised (the default "
                "is an L2 penalty, C=1.0): a penalised estimate is shrunk "
                "towards 0 and has no classical standard error, so pooled "
                "intervals would not cover. For inference use "
                "LogisticRegression(C=np.inf), unpenalised"
            )
        if fitted.class_weight is not None:
            return (
                "LogisticRegression with class_weight maximises a weighted "
                "likelihood whose inverse information is not its covariance"
            )
        if (
            getattr(fitted, "multi_class", "auto") == "ovr"
            and fitted.coef_.shape[0] > 1
        ):
            return (
                "a one-vs-rest LogisticRegression is not the multinomial "
                "likelihood that the information matrix belongs to"
            )
        return _logistic_inference(fitted, X, names)
    return f"{kind} has no built-in standard errors"


def _design(fitted, X):
    return np.column_stack([np.ones(len(X)), X]) if fitted.fit_intercept else X


def _parameter_names(fitted, names):
    return ["intercept", *names] if fitted.fit_intercept else list(names)


def _ols_inference(fitted, X, y, names):
    """OLS: sigma^2 (X'X)^-1 with sigma^2 on n - k degrees of freedom."""
    design = _design(fitted, X)
    coef = (
        np.r_[fitted.intercept_, fitted.coef_] if fitted.fit_intercept else fitted.coef_
    )
    dfcom = len(X) - design.shape[1]
    if dfcom <= 0 or np.linalg.matrix_rank(design) < design.shape[1]:
        return (
            f"the design of LinearRegression has rank below its {design.shape[1]} "
            f"parameters (n = {len(X)}, or collinear columns): the OLS "
            "covariance does not exist"
        )
    residual = y - design @ coef
    sigma2 = residual @ residual / dfcom
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    return coef, covariance, dfcom, _parameter_names(fitted, names)


def _logistic_inference(fitted, X, names):
    """Unpenalised logistic regression: the baseline-category coefficients
    (log-odds of each class against ``classes_[0]``) and the inverse Fisher
    information.

    For K classes with probabilities pi_ik and design rows d_i, the
    information of the baseline-category parameters beta_1..beta_K-1 has
    blocks sum_i pi_ij (delta_jk - pi_ik) d_i d_i' (Agresti 2013,
    Categorical Data Analysis, sec. 8.1.5); for two classes it is
    D' diag(pi (1 - pi)) D.  The probabilities do not depend on how the
    over-parameterised multinomial coefficients are centred, so
    ``predict_proba`` gives them.
    """
    design = _design(fitted, X)
    coef = fitted.coef_
    if fitted.fit_intercept:
        coef = np.column_stack([fitted.intercept_, coef])
    if len(fitted.classes_) > 2:
        coef = coef[1:] - coef[0]  # baseline category: classes_[0]
    proba = fitted.predict_proba(X)[:, 1:]  # (n, K - 1)
    weight = proba[:, :, None] * (np.eye(proba.shape[1]) - proba[:, None, :])
    information = np.einsum("ia,ijk,ib->jakb", design, weight, design)
    size = coef.size
    try:
        covariance = np.linalg.inv(information.reshape(size, size))
    except np.linalg.LinAlgError:
        return (
            "the Fisher information of LogisticRegression is singular "
            "(collinear columns, or n too small): its inverse does not exist"
        )
    labels = _parameter_names(fitted, names)
    if len(fitted.classes_) > 2:
        labels = [f"{label}:{name}" for label in fitted.classes_[1:] for name in labels]
    return coef.ravel(), covariance, len(X) - size, labels

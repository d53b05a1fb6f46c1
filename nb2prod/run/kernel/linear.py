"""A linear model as its sums: the form the service scores a request's few rows with, and its proof.

A linear model scaled per feature first (a Pipeline of StandardScaler, MinMaxScaler, MaxAbsScaler
or RobustScaler steps, ending in LogisticRegression, LinearRegression, Ridge, Lasso or ElasticNet)
computes, for each output, an intercept plus a weighted sum of its inputs, then a link: the
logistic function, softmax, normalised one-vs-rest logistics (scikit-learn before 1.7 with
`multi_class="ovr"`), or nothing (a regression). The scalers fold into the weights. For one
request's rows, these sums in plain Python cost a fraction of a call into ONNX Runtime.

The service's `linear.py` computes exactly what `_linear_answer` computes here, operation for operation
(a unit test holds the two to the same bits); the form is taken only when, computed that way, it
gave the notebook's labels, and its answers within the tolerance, on the proof rows and on every
golden row.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9;
NumPy and scikit-learn are imported when the model is theirs.
"""

import math
from operator import mul

# Steps that fold into the weights (each is x -> a * x + c, feature by feature), and the models they may lead to.
_SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
_REGRESSORS = ("LinearRegression", "Ridge", "Lasso", "ElasticNet")


def _expit(z):
    """1 / (1 + e^-z), without overflow for any finite z."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _linear_answer(link, sums, row):
    """(the label's class index, or the regression value; the probabilities or None) for one row:
    what the service's `Linear.answer` computes, the same operations in the same order."""
    zs = [intercept + sum(map(mul, weights, row)) for weights, intercept in sums]
    if link == "identity":
        return zs[0], None
    if len(zs) == 1:  # two classes: the sign of one sum
        top = 1 if zs[0] > 0 else 0
    else:
        top = zs.index(max(zs))
    if link == "logistic":
        p = _expit(zs[0])
        return top, [1.0 - p, p]
    if link == "softmax":
        largest = zs[top]
        exps = [math.exp(z - largest) for z in zs]
        total = sum(exps)
        return top, [e / total for e in exps]
    ps = [_expit(z) for z in zs]
    total = sum(ps)
    return top, [p / total for p in ps]  # "one-vs-rest"


def _linear_form(model, width):
    """{"link", "weights", "intercepts", "steps"} for a (scaled) linear model over `width` inputs, or
    None when the model is not one."""
    import numpy as np

    steps = [step for _, step in model.steps] if type(model).__name__ == "Pipeline" else [model]
    steps = [step for step in steps if step is not None and not (isinstance(step, str) and step == "passthrough")]
    if not steps:
        return None
    *scalers, estimator = steps
    scale = np.ones(width)
    shift = np.zeros(width)
    for scaler in scalers:
        affine = _affine(scaler, width, np)
        if affine is None:
            return None
        a, c = affine
        scale, shift = a * scale, a * shift + c
    link = _link(estimator)
    if link is None:
        return None
    coef = np.asarray(estimator.coef_, dtype="float64")
    coef = coef.reshape(1, -1) if coef.ndim == 1 else coef
    intercept = np.broadcast_to(np.asarray(estimator.intercept_, dtype="float64"), (coef.shape[0],))
    if coef.shape[1] != width or not np.isfinite(coef).all() or not np.isfinite(intercept).all():
        return None
    weights = coef * scale  # w * (a x + c) = (w a) x + w c
    intercepts = intercept + coef @ shift
    if not (np.isfinite(weights).all() and np.isfinite(intercepts).all()):
        return None
    names = [type(step).__name__ for step in steps]
    return {"link": link, "weights": weights.tolist(), "intercepts": intercepts.tolist(), "steps": names}


def _affine(scaler, width, np):
    """(a, c) with the scaler's output `a * x + c`, feature by feature, or None."""
    name = type(scaler).__name__
    if name not in _SCALERS or getattr(scaler, "n_features_in_", None) != width:
        return None
    ones, zeros = np.ones(width), np.zeros(width)
    if name == "StandardScaler":
        center = scaler.mean_ if scaler.mean_ is not None else zeros
        divisor = scaler.scale_ if scaler.scale_ is not None else ones
    elif name == "RobustScaler":
        center = scaler.center_ if scaler.center_ is not None else zeros
        divisor = scaler.scale_ if scaler.scale_ is not None else ones
    elif name == "MaxAbsScaler":
        center, divisor = zeros, scaler.scale_
    else:  # MinMaxScaler: x * scale_ + min_, unless it clips
        if getattr(scaler, "clip", False):
            return None
        return np.asarray(scaler.scale_, dtype="float64"), np.asarray(scaler.min_, dtype="float64")
    divisor = np.asarray(divisor, dtype="float64")
    center = np.asarray(center, dtype="float64")
    return 1.0 / divisor, -center / divisor


def _link(estimator):
    name = type(estimator).__name__
    classes = getattr(estimator, "classes_", None)
    if name in _REGRESSORS:
        return "identity" if getattr(estimator, "coef_", None) is not None and estimator.coef_.ndim == 1 else None
    if name != "LogisticRegression" or classes is None or len(classes) < 2:
        return None
    if len(classes) == 2:
        return "logistic"
    ovr = estimator.solver == "liblinear" or getattr(estimator, "multi_class", "auto") == "ovr"
    return "one-vs-rest" if ovr else "softmax"


class _LinearSession:
    """The form behind ONNX Runtime's `run`, as the inference proof calls it: labels as ONNX keys them
    (`keys`), then the probabilities (or the regression values)."""

    def __init__(self, form, keys):
        self.link = form["link"]
        self.sums = list(zip(form["weights"], form["intercepts"]))
        self.keys = keys

    def run(self, _names, feed):
        import numpy as np

        (matrix,) = feed.values()
        answers = [_linear_answer(self.link, self.sums, row) for row in matrix.tolist()]
        if self.link == "identity":
            return [np.asarray([[value] for value, _ in answers], dtype="float64")]
        labels = np.asarray([self.keys[top] for top, _ in answers], dtype=object)
        return [labels, np.asarray([probabilities for _, probabilities in answers], dtype="float64")]

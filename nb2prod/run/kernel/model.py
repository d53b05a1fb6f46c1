"""Find the served model in the notebook's namespace and describe it.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import math
import types

from nb2prod.run.kernel.common import _CaptureProblem, _lookup, _plain


def _is_estimator(value):
    return not isinstance(value, type) and callable(getattr(value, "predict", None)) and hasattr(value, "fit")


def _is_fitted(value):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(value)
    except NotFittedError:
        return False
    except TypeError:
        return True  # not a scikit-learn object; it answers predict, trust it
    return True


def _find_model(namespace, config):
    name = config["model"]
    if name:
        value = _lookup(namespace, name)
        if not _is_estimator(value):
            kind = f"{type(value).__module__}.{type(value).__qualname__}"
            raise _CaptureProblem("not_estimator", f"`{name}` is a {kind}, not an estimator", name=name, type=kind)
        if not _is_fitted(value):
            raise _CaptureProblem("not_fitted", f"`{name}` is not fitted", names=[name])
        return name, value
    present = [c for c in config["model_candidates"] if c in namespace]
    estimators = [c for c in present if _is_estimator(namespace[c])]
    fitted = [c for c in estimators if _is_fitted(namespace[c])]
    if len(fitted) == 1:
        return fitted[0], namespace[fitted[0]]
    if len(fitted) > 1:
        found = {c: type(namespace[c]).__name__ for c in fitted}
        raise _CaptureProblem("ambiguous", "more than one fitted estimator", candidates=found)
    if estimators:
        raise _CaptureProblem("not_fitted", "no fitted estimator", names=estimators)
    found = {c: type(namespace[c]).__name__ for c in present}
    raise _CaptureProblem("no_model", "no estimator in the train cells", candidates=found)


def _apply_labels(model, config, notes):
    """Notebook metadata `nb2prod.labels` ({"0": "stay", "1": "churn"}) names a 0/1 or False/True
    classifier's classes: the served model answers with the labels. scikit-learn classifiers
    predict `classes_[index]`, so the estimator that owns `classes_` gets the labels instead."""
    labels = config.get("labels")
    if not labels:
        return
    classes = getattr(model, "classes_", None)
    texts = [str(_plain(c)) for c in classes] if classes is not None else []
    if sorted(texts) not in (["0", "1"], ["False", "True"]) or set(texts) != set(labels):
        found = ", ".join(texts) if texts else "none (not a classifier)"
        raise _CaptureProblem(
            "labels",
            f"notebook metadata nb2prod.labels names {', '.join(sorted(labels))}, but the model's "
            f"classes are {found}; labels apply to 0/1 or False/True classes, one label each",
        )
    owner = model
    while "classes_" not in vars(owner) and hasattr(owner, "steps"):
        owner = owner.steps[-1][1]
    if "classes_" not in vars(owner):
        raise _CaptureProblem("labels", f"cannot name the classes of a {type(model).__name__}")
    import numpy as np

    owner.classes_ = np.array([labels[t] for t in texts], dtype=object)
    notes.append("classes " + ", ".join(f"{t} -> {labels[t]!r}" for t in texts) + " (notebook metadata nb2prod.labels)")


def _describe_model(model, variable):
    import numpy as np
    from sklearn.base import is_classifier

    methods = ["predict", "predict_proba", "predict_log_proba", "decision_function"]
    classes = getattr(model, "classes_", None)
    plain_classes = [_plain(c) for c in np.asarray(classes)] if classes is not None else None
    return {
        "variable": variable,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "is_classifier": bool(is_classifier(model)) or plain_classes is not None,
        "predict_methods": [m for m in methods if callable(getattr(model, m, None))],
        "classes": plain_classes,
    }


def _metrics(namespace, config):
    """The finite numbers of the notebook's metrics dict. Anything else is left out, never a
    failure (`from sklearn import metrics` makes `metrics` a module); `_metrics_problems` says what.
    Without a dict, the evaluate cells' metric calls (`accuracy_score(y_test, pred)`, found by
    `analysis.metrics`) are evaluated again on the notebook's final values."""
    metrics = _metrics_value(namespace, config)
    if isinstance(metrics, dict):
        numbers = {str(key): _finite_number(value) for key, value in metrics.items()}
        return {key: number for key, number in numbers.items() if number is not None}
    return _metric_call_values(namespace, config)


def _metric_call_values(namespace, config):
    found = {}
    for name, expression in config.get("metric_calls", []) if config["evaluate"] else []:
        try:
            number = _finite_number(eval(expression, namespace))  # a pure call the notebook made
        except Exception:  # noqa: BLE001 - a metric that cannot be recomputed is left out
            continue
        if number is not None:
            found[name] = number
    return found


def _metrics_problems(namespace, config):
    """What is unusable in the metrics variable: {"": why} for the whole, {key: why} per entry."""
    name = config.get("metrics_variable") or "metrics"
    metrics = _metrics_value(namespace, config)
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        if _metric_call_values(namespace, config):
            return {}  # `from sklearn import metrics`, and the metric calls give the metrics
        kind = (
            f"the module {metrics.__name__}" if isinstance(metrics, types.ModuleType) else f"a {type(metrics).__name__}"
        )
        return {"": f"`{name}` is {kind}, not a dict of numbers"}
    return {
        str(key): f"`{name}[{key!r}]` is {value!r}, not a finite number"
        for key, value in metrics.items()
        if _finite_number(value) is None
    }


def _metrics_value(namespace, config):
    if not config["evaluate"]:
        return None
    return namespace.get(config.get("metrics_variable") or "metrics")


def _finite_number(value):
    if hasattr(value, "item") and getattr(value, "size", 1) != 1:
        return None  # an array of scores
    number = value.item() if hasattr(value, "item") else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        return None
    return number

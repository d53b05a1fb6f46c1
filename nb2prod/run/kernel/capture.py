"""Code that runs inside the notebook's kernel after the last cell (the capture step).

nb2prod sends this file's source as one extra cell, followed by a call with a JSON config. It
must only need the standard library and what a scikit-learn notebook already has (NumPy,
joblib, scikit-learn, pandas when the input is a DataFrame); it never imports nb2prod, because
the kernel may live in another environment. It writes `capture.json` and the model file into
`config["out_dir"]`; problems are reported in `capture.json`, not raised, so that nb2prod can
phrase them.
"""

import importlib.metadata
import json
import math
import os
import pickle
import re
import sys
import types

CAPTURE_VERSION = 1


class _CaptureProblem(Exception):
    def __init__(self, kind, message, **details):
        super().__init__(message)
        self.kind = kind
        self.details = details


def _nb2prod_capture(namespace, config):
    """Capture the model and the input sample from `namespace` (the notebook's globals)."""
    out_dir = config["out_dir"]
    try:
        result = _capture(namespace, config)
    except _CaptureProblem as problem:
        result = {"error": {"kind": problem.kind, "message": str(problem), "details": problem.details}}
    with open(os.path.join(out_dir, "capture.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, sort_keys=True, allow_nan=False, default=str)
    return "error" not in result


def _capture(namespace, config):
    notes = []
    variable, model = _find_model(namespace, config)
    if hasattr(model, "best_estimator_") and hasattr(model, "cv_results_"):
        notes.append(f"`{variable}` is a {type(model).__name__}; its best_estimator_ is served.")
        variable, model = variable + ".best_estimator_", model.best_estimator_
    features_variable, sample = _find_features(namespace, config, variable)
    preprocess = namespace.get("preprocess") if config["has_preprocess"] else None
    schema = _describe_sample(sample, features_variable)
    golden = _golden_examples(model, sample, preprocess, config["golden_rows"])
    _rebind_preprocess_definitions(namespace, config["package"], config["preprocess_callables"])
    modules = _check_picklable(model, variable)
    model_path = os.path.join(config["out_dir"], "model.joblib")
    _dump(model, model_path, variable)
    modules |= set(config["import_modules"]) | {"numpy", "joblib", "sklearn"}
    if schema["kind"] == "frame":
        modules.add("pandas")
    return {
        "capture_version": CAPTURE_VERSION,
        "model": _describe_model(model, variable),
        "features": schema,
        "golden": golden,
        "metrics": _metrics(namespace, config),
        "distributions": _distributions(modules, config["package"]),
        "python": ".".join(str(part) for part in sys.version_info[:3]),
        "model_file": "model.joblib",
        "notes": notes,
    }


def _lookup(namespace, dotted):
    root, *rest = dotted.split(".")
    if root not in namespace:
        raise _CaptureProblem("missing", f"the notebook has no variable `{root}`", name=dotted)
    value = namespace[root]
    for attribute in rest:
        if not hasattr(value, attribute):
            raise _CaptureProblem("missing", f"`{root}` has no attribute `{attribute}`", name=dotted)
        value = getattr(value, attribute)
    return value


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


def _find_features(namespace, config, model_variable):
    name = config["features"]
    if not name:
        root = model_variable.split(".")[0]
        fitted_on = [features for receiver, features in config["fit_features"] if receiver == root]
        if not fitted_on:
            raise _CaptureProblem("no_features", "cannot tell which variable is the training input", model=root)
        name = fitted_on[-1]
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
        return name, _lookup(namespace, name)
    try:  # an expression the train cell passed to fit, e.g. `X_train.values`
        return name, eval(name, namespace)  # noqa: S307 - the notebook's own code, in its own kernel
    except Exception as err:  # noqa: BLE001 - any failure is reported with the expression
        raise _CaptureProblem(
            "missing", f"`{name}` could not be evaluated ({type(err).__name__}: {err})", name=name
        ) from None


def _describe_sample(sample, variable):
    import numpy as np

    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(sample, pandas.DataFrame):
        columns = [_describe_column(str(name), sample[name]) for name in sample.columns]
        if len({c["name"] for c in columns}) != len(columns):
            raise _CaptureProblem("features_type", "the DataFrame has duplicate column names", variable=variable)
        if any(not isinstance(name, str) for name in sample.columns):
            raise _CaptureProblem("features_type", "column names must be strings", variable=variable)
        return {"kind": "frame", "variable": variable, "rows": len(sample), "columns": columns}
    if pandas is not None and isinstance(sample, pandas.Series):
        raise _CaptureProblem("features_type", "it is a pandas Series (one column)", variable=variable)
    array = np.asarray(sample) if isinstance(sample, (list, tuple)) else sample
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "biuf":
        kind = type(sample).__name__ + (
            f" of shape {array.shape} and dtype {array.dtype}" if isinstance(array, np.ndarray) else ""
        )
        raise _CaptureProblem("features_type", f"it is a {kind}", variable=variable)
    columns = [_numeric_stats({"name": f"x{i}", "dtype": str(array.dtype)}, array[:, i]) for i in range(array.shape[1])]
    return {
        "kind": "array",
        "variable": variable,
        "rows": int(array.shape[0]),
        "dtype": str(array.dtype),
        "columns": columns,
    }


def _describe_column(name, column):
    import numpy as np

    dtype = column.dtype
    info = {"name": name, "dtype": str(dtype), "nullable": bool(column.isna().any())}
    if str(dtype) == "category":
        values = list(dtype.categories)
        info.update(kind="category", categories=[_plain(v) for v in values], ordered=bool(dtype.ordered))
        info["category_dtype"] = str(dtype.categories.dtype)
        return info
    if dtype.kind == "b":
        info.update(kind="boolean")
        return info
    if dtype.kind in "iuf":
        info["kind"] = "integer" if dtype.kind in "iu" else "number"
        return _numeric_stats(info, column.to_numpy(dtype="float64", na_value=np.nan))
    values = [v for v in column.tolist() if not _missing(v)]
    if dtype.kind == "O" and any(isinstance(v, bool) for v in values) and all(isinstance(v, bool) for v in values):
        info.update(kind="boolean", null_value=_null_value(column))
        return info
    if all(isinstance(v, str) for v in values):
        unique = sorted(set(values))
        info.update(kind="string", categories=unique if len(unique) <= 1000 else None, null_value=_null_value(column))
        return info
    kinds = sorted({type(v).__name__ for v in values})
    raise _CaptureProblem("column_type", f"column `{name}` has dtype {dtype} holding {', '.join(kinds)}", column=name)


def _numeric_stats(info, values):
    import numpy as np

    finite = values[~np.isnan(values.astype("float64"))] if values.dtype.kind == "f" else values
    info.setdefault("kind", "integer" if values.dtype.kind in "iub" else "number")
    info.setdefault("nullable", bool(len(finite) != len(values)))
    info["min"] = _plain(finite.min()) if len(finite) else None
    info["max"] = _plain(finite.max()) if len(finite) else None
    if info["kind"] == "integer" and info["min"] is not None:
        info["min"], info["max"] = int(info["min"]), int(info["max"])
    return info


def _null_value(column):
    return "none" if any(v is None for v in column.tolist()) else "nan"


def _missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pd.NA compare unequal to themselves (or raise)
    except TypeError:
        return True


def _plain(value):
    """A JSON value for one cell of the sample (None for missing)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, (bool, int, float, str)):
        if _missing(value):
            return None
        raise _CaptureProblem("column_type", f"value {value!r} of type {type(value).__name__} is not JSON")
    return value


def _golden_rows(sample, limit):
    """First rows, but with rows holding missing values first, so the examples exercise them."""
    import numpy as np

    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(sample, pandas.DataFrame):
        has_missing = sample.isna().any(axis=1).to_numpy()
    else:
        array = np.asarray(sample, dtype="float64")
        has_missing = np.isnan(array).any(axis=1)
    missing_rows = [int(i) for i in np.flatnonzero(has_missing)[: max(1, limit // 4)]]
    taken = set(missing_rows)
    rest = [i for i in range(min(len(has_missing), 2 * limit)) if i not in taken]
    return sorted(missing_rows + rest[: limit - len(missing_rows)])


def _golden_examples(model, sample, preprocess, limit):
    import numpy as np

    pandas = sys.modules.get("pandas")
    is_frame = pandas is not None and isinstance(sample, pandas.DataFrame)
    examples = []
    classes = getattr(model, "classes_", None)
    for i in _golden_rows(sample, limit):
        if is_frame:
            row = sample.iloc[[i]]
            record = {str(k): _plain(v) for k, v in row.iloc[0].items()}
        else:
            row = np.asarray(sample)[i : i + 1]
            record = {"features": [_plain(v) for v in row[0]]}
        inputs = preprocess(row) if preprocess is not None else row
        try:
            prediction = _plain(np.asarray(model.predict(inputs))[0])
            probabilities = None
            if classes is not None and callable(getattr(model, "predict_proba", None)):
                values = np.asarray(model.predict_proba(inputs))[0]
                probabilities = {str(_plain(c)): float(p) for c, p in zip(classes, values, strict=True)}
        except Exception as err:  # noqa: BLE001 - any failure of the user's model is reported, not raised
            raise _CaptureProblem("predict_failed", f"{type(err).__name__}: {err}", row=i) from None
        examples.append({"row": i, "input": record, "prediction": prediction, "probabilities": probabilities})
    return examples


def _rebind_preprocess_definitions(namespace, package, names):
    """Make classes/functions from preprocess cells pickle as `<package>.preprocessing.<name>`.

    In the kernel they live in `__main__`, which the service cannot import. Pickle stores the
    module and name of a class or function, so we point them at the generated module and
    register that module so pickle can check the reference now.
    """
    module_name = f"{package}.preprocessing"
    parent = sys.modules.get(package) or types.ModuleType(package)
    module = sys.modules.get(module_name) or types.ModuleType(module_name)
    parent.preprocessing = module
    sys.modules.setdefault(package, parent)
    sys.modules.setdefault(module_name, module)
    for name in names:
        value = namespace.get(name)
        if value is None or getattr(value, "__module__", None) != "__main__":
            continue
        value.__module__ = module_name
        setattr(module, name, value)


class _ReferenceProbe(pickle.Pickler):
    """A pickler that notes every module the model refers to, and anything left in __main__."""

    def __init__(self, handle):
        super().__init__(handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules = set()
        self.main_names = []

    def persistent_id(self, obj):
        if isinstance(obj, (type, types.FunctionType)):
            module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "?")
        else:
            module, name = type(obj).__module__, type(obj).__qualname__
        if module == "__main__":
            if name not in self.main_names:
                self.main_names.append(name)
        elif module:
            self.modules.add(module.split(".")[0])
        return None


def _check_picklable(model, variable):
    # The probe's bytes are thrown away (joblib writes the real file), so a large model is not
    # held twice in memory.
    with open(os.devnull, "wb") as sink:
        probe = _ReferenceProbe(sink)
        return _probe(probe, model, variable)


def _probe(probe, model, variable):
    failure = None
    try:
        probe.dump(model)
    except Exception as err:  # noqa: BLE001 - pickling raises many unrelated types
        failure = f"{type(err).__name__}: {err}"
    if "<lambda>" in probe.main_names:
        raise _CaptureProblem("lambda", "the model holds a lambda", variable=variable)
    if failure is not None:
        raise _CaptureProblem("not_serializable", failure, variable=variable)
    if probe.main_names:
        raise _CaptureProblem(
            "main_reference", "the model refers to code outside preprocess cells", names=probe.main_names
        )
    return probe.modules


def _dump(model, path, variable):
    import joblib

    try:
        joblib.dump(model, path)
    except Exception as err:  # noqa: BLE001 - pickling raises many unrelated types
        raise _CaptureProblem("not_serializable", f"{type(err).__name__}: {err}", variable=variable) from None


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
    if not config["evaluate"]:
        return {}
    metrics = namespace.get("metrics")
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise _CaptureProblem("metrics_type", f"`metrics` is a {type(metrics).__name__}, not a dict")
    result = {}
    for key, value in metrics.items():
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise _CaptureProblem("metrics_type", f"metrics[{key!r}] is {value!r}, not a finite number", key=str(key))
        result[str(key)] = number
    return result


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _distributions(modules, package):
    """Exact versions of the distributions providing `modules`, with their installed requirements."""
    providers = importlib.metadata.packages_distributions()
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    wanted = set()
    for module in modules:
        if module in stdlib or module in (package, "__main__", "builtins"):
            continue
        wanted.update(providers.get(module, []))
    versions = {}
    queue = sorted(wanted)
    while queue:
        name = queue.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        key = _normal(dist.metadata["Name"])
        if key in versions:
            continue
        versions[key] = dist.version
        for requirement in dist.requires or []:
            if "extra ==" in requirement or "extra==" in requirement:
                continue
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match:
                queue.append(match.group(1))
    return dict(sorted(versions.items()))

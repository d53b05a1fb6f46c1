"""Find the training input sample and describe its columns for the service's schema.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import re
import sys

from nb2prod.run.kernel.common import _CaptureProblem, _lookup, _missing, _plain


def _find_features(namespace, config, model_variable, notes=None):
    name = config["features"]
    if not name:
        root = model_variable.split(".")[0]
        fitted_on = [features for receiver, features in config["fit_features"] if receiver == root]
        if not fitted_on:
            raise _CaptureProblem("no_features", "cannot tell which variable is the training input", model=root)
        name = fitted_on[-1]
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name) and not _FRAME_VALUES.match(name):
        return name, _as_numbers(_lookup(namespace, name), name, notes)
    try:  # an expression the train cell passed to fit, e.g. `X_train.values`
        sample = eval(name, namespace)  # noqa: S307 - the notebook's own code, in its own kernel
    except Exception as err:  # noqa: BLE001 - any failure is reported with the expression
        raise _CaptureProblem(
            "missing", f"`{name}` could not be evaluated ({type(err).__name__}: {err})", name=name
        ) from None
    return name, _as_numbers(sample, name, notes)


# `X.values`, `X.to_numpy()`, `np.asarray(X)`: an array made from the DataFrame `X`.
_FRAME_VALUES = re.compile(
    r"^(?:(?:np|numpy)\.(?:asarray|array)\((?P<arg>[A-Za-z_][\w.]*)\)"
    r"|(?P<base>[A-Za-z_][\w.]*?)\.(?:values|to_numpy\([^()]*\)))$"
)


def _as_numbers(sample, name, notes):
    """An object-dtype array holding only numbers and booleans (what `pd.get_dummies(...).values`
    gives on pandas 2) becomes float64, which is what scikit-learn made of it anyway."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(sample, numpy.ndarray) or sample.dtype.kind != "O" or sample.ndim != 2:
        return sample
    numbers = (bool, int, float, numpy.bool_, numpy.number)
    if not all(isinstance(v, numbers) for v in sample.ravel()):
        return sample
    if notes is not None:
        notes.append(f"`{name}` is an object array of numbers and booleans; it is served as float64.")
    return sample.astype("float64")


def _frame_columns(namespace, variable, width):
    """Column names for an array input made from a notebook DataFrame (`X_train.values`)."""
    match = _FRAME_VALUES.match(variable or "")
    pandas = sys.modules.get("pandas")
    if match is None or pandas is None or namespace is None:
        return None
    try:
        frame = _lookup(namespace, match.group("base") or match.group("arg"))
    except _CaptureProblem:
        return None
    if not isinstance(frame, pandas.DataFrame) or frame.shape[1] != width:
        return None
    names = list(frame.columns)
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return names


def _describe_sample(sample, variable, namespace=None):
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
    names = _frame_columns(namespace, variable, array.shape[1]) or [f"x{i}" for i in range(array.shape[1])]
    columns = [_numeric_stats({"name": n, "dtype": str(array.dtype)}, array[:, i]) for i, n in enumerate(names)]
    return {
        "kind": "array",
        "variable": variable,
        "rows": int(array.shape[0]),
        "dtype": str(array.dtype),
        "columns": columns,
    }


# A text column with more distinct values than this (or with a distinct value for most of its
# rows) is free text, not a category.
_MAX_CATEGORIES = 50


def _describe_column(name, column):
    import numpy as np

    dtype = column.dtype
    nulls = int(column.isna().sum())
    info = {"name": name, "dtype": str(dtype), "nullable": bool(nulls), "null_count": nulls}
    if str(dtype) == "category":
        values = list(dtype.categories)
        info.update(kind="category", categories=[_plain(v) for v in values], ordered=bool(dtype.ordered))
        info["category_dtype"] = str(dtype.categories.dtype)
        info["frequencies"] = _frequencies(column)
        return info
    if dtype.kind == "b":
        info.update(kind="boolean", frequencies=_frequencies(column))
        return info
    if dtype.kind in "iuf":
        info["kind"] = "integer" if dtype.kind in "iu" else "number"
        return _numeric_stats(info, column.to_numpy(dtype="float64", na_value=np.nan))
    values = [v for v in column.tolist() if not _missing(v)]
    if dtype.kind == "O" and any(isinstance(v, bool) for v in values) and all(isinstance(v, bool) for v in values):
        info.update(kind="boolean", null_value=_null_value(column), frequencies=_frequencies(column))
        return info
    if all(isinstance(v, str) for v in values):
        distinct = set(values)
        info.update(kind="string", null_value=_null_value(column), distinct_count=len(distinct))
        # The service publishes seen values (/metadata, README) only for a low-cardinality column.
        # Names, ids and other free text are counted here; their values never leave the kernel.
        if len(distinct) <= _MAX_CATEGORIES and 2 * len(distinct) <= len(values):
            info["categories"] = sorted(distinct)
            info["frequencies"] = _frequencies(column)
        else:
            info["free_text"] = True
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
    info["null_count"] = int(len(values) - len(finite))
    # Percentiles 0..100 of the training values: `nb2prod diff` compares two versions' samples
    # (population stability) without keeping the rows.
    if len(finite):
        edges = np.quantile(finite.astype("float64"), np.linspace(0.0, 1.0, _PERCENTILES))
        info["quantiles"] = [float(v) for v in edges]
    return info


_PERCENTILES = 101


def _frequencies(column):
    """How often each listed value occurs (nulls left out), as [value, count] pairs."""
    counts = column.value_counts(dropna=True, sort=False)
    pairs = [[_plain(value), int(count)] for value, count in counts.items()]
    return sorted(pairs, key=lambda pair: str(pair[0]))


def _null_value(column):
    return "none" if any(v is None for v in column.tolist()) else "nan"

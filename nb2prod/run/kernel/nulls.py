"""Columns that had no nulls in training but take one: the served pipeline imputes them, or the model accepts NaN.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
A column is named only when the fitted pipeline covers it with an imputer (or passes it to a
model that accepts NaN), the shipped preprocessing hands the null on to the model as NaN (not as a
value, such as all-zero dummies), and the null then goes through the whole served path to an answer
for every row; otherwise the schema keeps refusing a null there.
"""

import sys

_CHECK_ROWS = 5


def _handled_nulls(schema, model, preprocess, sample):
    """Mark, in `schema`, the frame columns without nulls whose null the served model handles (and why)."""
    pandas = sys.modules.get("pandas")
    if schema["kind"] != "frame" or pandas is None or not isinstance(sample, pandas.DataFrame):
        return []
    reasons = _null_reasons(model)
    handled = []
    for column in schema["columns"]:
        name = column["name"]
        reason = reasons.get(name, reasons.get(None))
        if column["nullable"] or reason is None or not _answers_with_null(model, preprocess, sample, name):
            continue
        column.update(nullable=True, nullable_because=reason)
        if column["kind"] in ("string", "boolean"):
            column["null_value"] = "nan"
        handled.append(name)
    return handled


def _with_null(rows, name):
    """`rows` with a null in column `name`, typed as the service types it (integers as float64, booleans as objects)."""
    import numpy as np

    rows = rows.copy()
    if rows[name].dtype.kind in "iub":
        rows[name] = rows[name].astype("float64" if rows[name].dtype.kind != "b" else object)
    rows[name] = np.nan
    return rows


def _null_rows(sample, names):
    """A few training rows per column of `names`, with a null in that column: what the compiled model is proven on."""
    import pandas

    return pandas.concat([_with_null(sample.head(_CHECK_ROWS), name) for name in names], ignore_index=True)


def _answers_with_null(model, preprocess, sample, name):
    """Whether rows with a null in `name` get an answer each from the served path, as a request would send them."""
    import numpy as np

    rows = _with_null(sample.head(_CHECK_ROWS), name)
    try:
        inputs = preprocess(rows) if preprocess is not None else rows
        if preprocess is not None and not _reaches_model_as_nan(preprocess(sample.head(_CHECK_ROWS)), inputs):
            return False
        answers = np.asarray(model.predict(inputs))
    except Exception:  # noqa: BLE001 - whatever fails, the null is not handled
        return False
    if len(answers) != len(rows):
        return False
    return answers.dtype.kind not in "fc" or bool(np.isfinite(answers).all())


def _reaches_model_as_nan(before, after):
    """Whether the preprocessing hands the null on to the model as NaN: every model input that the
    null changes is NaN. A null that the preprocessing turns into a value (all-zero dummies, the
    False of a comparison) would be scored as that value, so the imputer or the model never sees it."""
    import numpy as np
    import pandas

    def table(inputs):
        if isinstance(inputs, list):  # records as dicts
            inputs = pandas.DataFrame(inputs)
        return np.asarray(inputs, dtype=object)

    before, after = table(before), table(after)
    if before.shape != after.shape:
        return False
    missing_before, missing_after = pandas.isna(before), pandas.isna(after)
    changed = (before != after) & ~(missing_before & missing_after)
    return bool(changed.any()) and bool((missing_after | ~changed).all())


def _null_reasons(model):
    """{column: reason} for the columns a fitted imputer covers; key None: every column."""
    steps = _steps(model)
    if not steps:
        return {}
    first = steps[0]
    if _is_imputer(first):
        return {None: f"imputed by {type(first).__name__}"}
    if type(first).__name__ == "ColumnTransformer":
        return _column_transformer_reasons(first, steps[1:])
    if all(_allows_nan(step) for step in steps):
        return {None: f"{type(steps[-1]).__name__} accepts NaN"}
    return {}


def _steps(model):
    """A Pipeline's steps flattened (nested pipelines included), or the model alone."""
    inner = getattr(model, "steps", None)
    if not isinstance(inner, list):
        return [model]
    found = []
    for _, step in inner:
        if step is None or step == "passthrough":
            continue
        found += _steps(step)
    return found


def _column_transformer_reasons(transformer, after):
    names = list(getattr(transformer, "feature_names_in_", []))
    indices = getattr(transformer, "_transformer_to_input_indices", {})
    model_takes_nan = all(_allows_nan(step) for step in after)
    reasons = {}
    for name, part, _ in getattr(transformer, "transformers_", []):
        columns = [str(names[i]) for i in indices.get(name, []) if i < len(names)]
        if part == "drop":
            continue
        reason = None
        if part == "passthrough":
            reason = f"{type(after[-1]).__name__} accepts NaN" if after and model_takes_nan else None
        else:
            chain = _steps(part)
            if chain and _is_imputer(chain[0]):
                reason = f"imputed by {type(chain[0]).__name__} (`{name}` of the ColumnTransformer)"
            elif chain and model_takes_nan and all(_allows_nan(step) for step in chain):
                reason = f"{type(after[-1]).__name__} accepts NaN"
        for column in columns:
            if reason is not None:
                reasons[column] = reason
    return reasons


def _is_imputer(step):
    module = type(step).__module__ or ""
    return module.startswith("sklearn.impute") or type(step).__name__.endswith("Imputer")


def _allows_nan(step):
    """scikit-learn's own tag: the estimator takes NaN in its input (HistGradientBoosting*, scalers ...)."""
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(step).input_tags.allow_nan)
    except Exception:  # noqa: BLE001 - older scikit-learn: the dict of tags
        try:
            return bool(step._get_tags().get("allow_nan", False))
        except Exception:  # noqa: BLE001 - not a scikit-learn estimator
            return False

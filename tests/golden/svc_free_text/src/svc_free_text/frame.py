"""Score a whole pandas DataFrame with the svc-free-text model: `predict_frame(frame)`.

The answers and the refusals are `/predict`'s for each row. A row is the record whose fields are
its cells: NumPy values count as the Python values they hold,
and NaN, None and pandas' NA as null. The checks run column by column with pandas and NumPy (types,
the range of each column's dtype, categories, nulls, finite numbers, unknown and missing columns);
only the rows they flag go through the per-record schema (`schemas.Record`), which decides them and
words their error as `/predict` does. The valid rows are scored together, in one model call.
The model is loaded once per process, at the first call.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from svc_free_text.model import PredictionError, Predictor, plain
from svc_free_text.schemas import Record

INTEGERS = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
FLOATS = (float, np.float16, np.float32, np.float64)
BOOLEANS = (bool, np.bool_)
TEXTS = (str, np.str_)


@dataclass(frozen=True)
class Rule:
    """What the schema takes in one column."""

    kind: str  # integer, number, boolean, string or category
    nullable: bool
    bounds: tuple[int | float, int | float] | None = None  # the range of the column's dtype
    categories: tuple[Any, ...] | None = None
    sent: bool = False  # a column that takes a null (the pipeline imputes it) but is still required


# The schema's fields (schemas.Record), column by column.
RULES: dict[str, Rule] = {
    "name": Rule("string", nullable=False),
    "age": Rule("integer", nullable=False, bounds=(-9223372036854775808, 9223372036854775807)),
    "fare": Rule("number", nullable=False),
    "port": Rule("string", nullable=False),
}


@functools.cache
def predictor() -> Predictor:
    """The model, loaded and verified once per process."""
    return Predictor.load()


def predict_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Answers for every row of `frame`, with its index: `prediction`    and `error`, the reason a row is refused (`/predict`'s 422 message), or None."""
    model = predictor()
    rows = frame.reset_index(drop=True)
    errors = pd.Series(None, index=rows.index, dtype=object)
    flagged = _flagged(rows)
    if flagged.any():
        fixed = _checked(rows[flagged], errors)
        rows = pd.concat([rows[~flagged], fixed]).sort_index() if len(fixed) else rows[~flagged]
    answers = pd.DataFrame({"prediction": pd.Series(None, index=errors.index, dtype=object)})
    _score(model, rows.reindex(columns=list(RULES)), answers, errors)
    answers["prediction"] = answers["prediction"].infer_objects()
    answers["error"] = errors
    answers.index = frame.index
    return answers


def _flagged(rows: pd.DataFrame) -> pd.Series:
    """Rows the column checks cannot pass: the schema decides them, one at a time."""
    flagged = pd.Series(any(str(c) not in RULES for c in rows.columns), index=rows.index)
    for name, rule in RULES.items():
        if name not in rows.columns:
            flagged |= not rule.nullable or rule.sent
            continue
        column = rows[name]
        null = column.isna()
        if not null.any():
            flagged |= ~_passes(column, rule)
            continue
        flagged |= ~_passes(column[~null], rule).reindex(rows.index, fill_value=True)
        if not rule.nullable:
            flagged |= null
    return flagged


def _passes(values: pd.Series, rule: Rule) -> pd.Series:
    """Whether each (non-null) value is one the schema takes as it is."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    kind = values.dtype.kind
    if rule.kind in ("integer", "number") and kind in "iuf":
        if rule.kind == "integer" and kind == "f":
            return pd.Series(False, index=values.index)  # 3.0 is not an integer, as in JSON records
        numbers = values.to_numpy(dtype="float64" if kind == "f" else getattr(values.dtype, "numpy_dtype", None))
        ok = np.isfinite(numbers) if kind == "f" else np.ones(len(values), dtype=bool)
        return pd.Series(ok & _within(numbers, rule.bounds), index=values.index)
    if rule.kind == "boolean" and kind == "b":
        return pd.Series(True, index=values.index)
    if rule.kind in ("string", "category") and isinstance(values.dtype, pd.StringDtype):
        return values.isin(rule.categories) if rule.kind == "category" else pd.Series(True, index=values.index)
    types = values.map(type)
    if rule.kind == "boolean":
        return types.isin(BOOLEANS)
    if rule.kind == "string":
        return types.isin(TEXTS)
    if rule.kind == "category":  # one of the values seen in training, of their own type
        seen = rule.categories or ()
        return types.isin({type(c) for c in seen}) & values.astype(object).isin(seen)
    ok = types.isin(INTEGERS if rule.kind == "integer" else INTEGERS + FLOATS)
    inside = values[ok].map(lambda v: _finite_within(v, rule.bounds))
    return ok & inside.reindex(values.index, fill_value=False).astype(bool)


def _within(numbers: np.ndarray, bounds: tuple[int | float, int | float] | None) -> np.ndarray:
    if bounds is None:
        return np.ones(len(numbers), dtype=bool)
    return (numbers >= bounds[0]) & (numbers <= bounds[1])


def _finite_within(value: Any, bounds: tuple[int | float, int | float] | None) -> bool:
    value = plain(value)
    if isinstance(value, float) and not np.isfinite(value):
        return False
    if isinstance(value, int) and abs(value) > 2**53:
        return False  # left to the schema, which knows how it rounds
    return bounds is None or bounds[0] <= value <= bounds[1]


def _record(row: dict[Any, Any]) -> dict[str, Any]:
    values = {str(name): None if _null(value) else plain(value) for name, value in row.items()}
    return values


def _null(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _checked(rows: pd.DataFrame, errors: pd.Series) -> pd.DataFrame:
    """The schema's verdict on `rows`: refused rows get its error, accepted ones come back as it reads them."""
    accepted: dict[int, dict[str, Any]] = {}
    for index, row in zip(rows.index, rows.to_dict("records"), strict=True):
        try:
            record = Record.model_validate(_record(row)).model_dump(by_alias=True)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            errors[index] = f"invalid field `{'.'.join(str(p) for p in first['loc']) or 'body'}`: {first['msg']}"
            continue
        accepted[index] = record
    return pd.DataFrame.from_records(list(accepted.values()), columns=list(RULES), index=list(accepted))


def _score(model: Predictor, rows: pd.DataFrame, answers: pd.DataFrame, errors: pd.Series) -> None:
    """Score `rows` together into `answers`; when the model refuses them, halve until each refusal is one row."""
    if rows.empty:
        return
    try:
        labels, _ = model.score(model.frame_inputs(rows))
    except PredictionError as err:
        if len(rows) == 1:
            errors[rows.index[0]] = str(err)
            return
        middle = len(rows) // 2
        _score(model, rows.iloc[:middle], answers, errors)
        _score(model, rows.iloc[middle:], answers, errors)
        return
    answers.loc[rows.index, "prediction"] = pd.Series(labels, index=rows.index, dtype=object)

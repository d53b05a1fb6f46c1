"""Score a whole pandas DataFrame with the customers-mixed model: `predict_frame(frame)`.

The answers and the refusals are `/predict`'s for each row. A row is the record whose fields are
its cells: NumPy values count as the Python values they hold,
and NaN, None and pandas' NA as null. The checks run column by column with pandas and NumPy (types,
the range of each column's dtype, categories, nulls, finite numbers, unknown and missing columns);
only the rows they flag go through the per-record schema (`schemas.Record`), which decides them and
words their error as `/predict` does. The valid rows are scored together, in one model call.
The model is loaded once per process, at the first call.

`score_records(model, records)` is the same path for the JSON records of `/predict/batch`: the
records become typed columns, and a record the columns cannot vouch for (an unknown or missing
field, NaN or Infinity, a value the column checks flag) is decided by the schema, from the record
itself, so a refusal carries the schema's own errors.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from customers_mixed.model import PredictionError, Predictor, plain
from customers_mixed.schemas import Record

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
    "age": Rule("integer", nullable=True, bounds=(-9223372036854775808, 9223372036854775807), sent=True),
    "income": Rule("number", nullable=True),
    "city": Rule("string", nullable=True),
    "plan": Rule("category", nullable=True, categories=("basic", "plus", "premium"), sent=True),
    "is_member": Rule("boolean", nullable=True, sent=True),
    "monthly spend": Rule("number", nullable=True, sent=True),
}


# Fields a record must send: those that refuse a null, and those that take one only because the
# pipeline imputes it (`sent`).
REQUIRED = frozenset(name for name, rule in RULES.items() if not rule.nullable or rule.sent)
MISSING = object()  # a field a JSON record leaves out


@dataclass
class Scores:
    """The answers for some rows, by position: a label (and class probabilities) per row, and the
    rows the model could not score with the reason."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    failed: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """`score_records`' verdict on a batch of JSON records."""

    refused: dict[int, list[dict[str, Any]]]  # record index -> the schema's errors, when any is refused
    records: list[dict[str, Any]]  # the records as the schema reads them
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None
    failed: dict[int, str]  # record index -> why the model could not score it


@functools.cache
def predictor() -> Predictor:
    """The model, loaded and verified once per process."""
    return Predictor.load()


def predict_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Answers for every row of `frame`, with its index: `prediction`, `probability_<class>` for each class    and `error`, the reason a row is refused (`/predict`'s 422 message), or None."""
    model = predictor()
    rows = frame.reset_index(drop=True)
    flagged = _flagged(rows)
    rows, refused = _accepted(rows, flagged, lambda i: _record(rows.iloc[i].to_dict()))
    scores = _score(model, rows, len(frame))
    errors = np.full(len(frame), None, dtype=object)
    for index, failure in scores.failed.items():
        errors[index] = failure
    for index, found in refused.items():
        errors[index] = f"invalid field `{'.'.join(str(p) for p in found[0]['loc']) or 'body'}`: {found[0]['msg']}"
    answers = pd.DataFrame({"prediction": pd.Series(scores.labels, dtype=object).infer_objects()})
    for i, label in enumerate(model.labels or []):
        answers[f"probability_{label}"] = scores.probabilities[:, i] if scores.probabilities is not None else np.nan
    answers["error"] = errors
    answers.index = frame.index
    return answers


def score_records(model: Predictor, records: Sequence[dict[str, Any]]) -> Batch:
    """Check and score JSON records (dicts, as `json.loads` gives them) as `predict_frame` does a frame;
    the schema decides only the records the column checks flag."""
    columns, suspect = _json_columns(records)
    rows = pd.DataFrame({name: _json_column(values, suspect) for name, values in columns.items()})
    dumped: dict[int, dict[str, Any]] = {}
    rows, refused = _accepted(rows, suspect | _flagged(rows), lambda i: records[i], dumped)
    if refused:
        return Batch(refused, [], [], None, {})
    scores = _score(model, rows, len(records))
    probabilities = None
    if scores.probabilities is not None and model.labels is not None:
        probabilities = [dict(zip(model.labels, row, strict=True)) for row in scores.probabilities.tolist()]
    predictions = [plain(value) for value in scores.labels.tolist()]
    return Batch({}, _schema_records(columns, dumped), predictions, probabilities, scores.failed)


def _json_columns(records: Sequence[dict[str, Any]]) -> tuple[dict[str, list[Any]], np.ndarray]:
    """JSON records as columns of values, and which records the columns cannot stand for: an unknown
    or missing field (NaN and Infinity are found by `_json_column`)."""
    suspect = np.zeros(len(records), dtype=bool)
    columns = {name: [record.get(name, MISSING) for record in records] for name in RULES}
    missing = 0
    for name, values in columns.items():
        if MISSING in values:  # null, as the schema's default; refused where the field is required
            holes = [i for i, value in enumerate(values) if value is MISSING]
            missing += len(holes)
            suspect[holes] |= name in REQUIRED
            for i in holes:
                values[i] = None
    if sum(map(len, records)) != len(records) * len(RULES) - missing:  # some record has an unknown field
        suspect |= np.fromiter((not record.keys() <= RULES.keys() for record in records), dtype=bool)
    return columns, suspect


def _json_column(values: list[Any], suspect: np.ndarray) -> Any:
    """One column of JSON values with the dtype they share (nullable where they hold null); marks in
    `suspect` the rows holding NaN or Infinity."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    try:
        if kinds == {int}:
            return pd.array(values, dtype="Int64") if nulls else np.array(values, dtype=np.int64)
        if kinds == {bool}:
            return pd.array(values, dtype="boolean") if nulls else np.array(values, dtype=bool)
        if float in kinds and kinds <= {int, float}:
            numbers = np.array(values, dtype=np.float64)  # None -> NaN
            odd = ~np.isfinite(numbers)
            if odd.any():
                present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
                suspect |= odd & present
            return numbers
    except (OverflowError, TypeError, ValueError):  # an integer past 64 bits: left to the schema
        pass
    column = np.empty(len(values), dtype=object)
    column[:] = values
    if float in kinds:
        odd = (type(v) is float and not math.isfinite(v) for v in values)
        suspect |= np.fromiter(odd, dtype=bool, count=len(values))
    return pd.Series(column, dtype=object, copy=False)  # as it is: a text dtype would cost more than the checks


def _schema_records(columns: dict[str, list[Any]], dumped: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as the schema gives them (`Record.model_dump`): the unflagged ones from their JSON
    values (null for a missing field, a float for a number), the others as the schema dumped them."""
    values = []
    for name, rule in RULES.items():
        column = columns[name]
        if rule.kind == "number" and int in set(map(type, column)):
            column = [float(v) if type(v) is int else v for v in column]
        values.append(column)
    names = list(RULES)
    records = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    for index, record in dumped.items():
        records[index] = record
    return records


def _flagged(rows: pd.DataFrame) -> np.ndarray:
    """Rows the column checks cannot pass: the schema decides them, one at a time."""
    flagged = np.full(len(rows), any(str(c) not in RULES for c in rows.columns), dtype=bool)
    for name, rule in RULES.items():
        if name not in rows.columns:
            flagged |= not rule.nullable or rule.sent
            continue
        column = rows[name]
        null = column.isna().to_numpy()
        if not null.any():
            flagged |= ~_passes(column, rule)
            continue
        passes = np.ones(len(rows), dtype=bool)
        passes[~null] = _passes(column[~null], rule)
        flagged |= ~passes
        if not rule.nullable:
            flagged |= null
    return flagged


def _passes(values: pd.Series, rule: Rule) -> np.ndarray:
    """Whether each (non-null) value is one the schema takes as it is."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    kind = values.dtype.kind
    every = np.ones(len(values), dtype=bool)
    if rule.kind in ("integer", "number") and kind in "iuf":
        if rule.kind == "integer" and kind == "f":
            return ~every  # 3.0 is not an integer, as in JSON records
        numbers = values.to_numpy(dtype="float64" if kind == "f" else getattr(values.dtype, "numpy_dtype", None))
        ok = np.isfinite(numbers) if kind == "f" else every
        return ok & _within(numbers, rule.bounds)  # type: ignore[no-any-return]
    if rule.kind == "boolean" and kind == "b":
        return every
    if rule.kind in ("string", "category") and isinstance(values.dtype, pd.StringDtype):
        return values.isin(rule.categories).to_numpy() if rule.kind == "category" else every
    if rule.kind in ("string", "category") and set(map(type, values.to_numpy(dtype=object))) == {str}:
        return values.isin(rule.categories).to_numpy() if rule.kind == "category" else every
    types = values.map(type)
    if rule.kind == "boolean":
        return types.isin(BOOLEANS).to_numpy()
    if rule.kind == "string":
        return types.isin(TEXTS).to_numpy()
    if rule.kind == "category":  # one of the values seen in training, of their own type
        seen = rule.categories or ()
        return (types.isin({type(c) for c in seen}) & values.astype(object).isin(seen)).to_numpy()
    ok = types.isin(INTEGERS if rule.kind == "integer" else INTEGERS + FLOATS).to_numpy()
    inside = np.zeros(len(values), dtype=bool)
    inside[ok] = [_finite_within(v, rule.bounds) for v in values.to_numpy(dtype=object)[ok]]
    return ok & inside


def _within(numbers: np.ndarray, bounds: tuple[int | float, int | float] | None) -> np.ndarray:
    if bounds is None:
        return np.ones(len(numbers), dtype=bool)
    return (numbers >= bounds[0]) & (numbers <= bounds[1])  # type: ignore[no-any-return]


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


def _accepted(
    rows: pd.DataFrame,
    flagged: np.ndarray,
    record: Callable[[int], Any],
    dumped: dict[int, dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[int, list[dict[str, Any]]]]:
    """The rows the schema takes, by position, with the training columns: the unflagged rows as they
    are, and the flagged ones as the schema reads `record(position)` (its dump kept in `dumped`);
    and the schema's errors for each row it refuses."""
    refused: dict[int, list[dict[str, Any]]] = {}
    if not flagged.any():
        return rows.reindex(columns=list(RULES)), refused
    accepted: dict[int, dict[str, Any]] = {}
    for index in np.flatnonzero(flagged).tolist():
        try:
            checked = Record.model_validate(record(index)).model_dump(by_alias=True)
        except ValidationError as err:
            refused[index] = err.errors(include_url=False)
            continue
        if dumped is not None:
            dumped[index] = checked
        accepted[index] = checked
    kept = rows[~flagged].reindex(columns=list(RULES))
    if not accepted:
        return kept, refused
    fixed = pd.DataFrame.from_records(list(accepted.values()), columns=list(RULES), index=list(accepted))
    return pd.concat([kept, fixed]).sort_index(), refused


def _score(model: Predictor, rows: pd.DataFrame, size: int) -> Scores:
    """Answers for `rows` (indexed by position among `size` rows), scored together; when the model
    refuses them, halved until each refusal is one row."""
    scores = Scores(np.full(size, None, dtype=object), None)
    _score_into(model, rows, scores)
    return scores


def _score_into(model: Predictor, rows: pd.DataFrame, scores: Scores) -> None:
    if rows.empty:
        return
    try:
        try:
            inputs = model.frame_inputs(rows)
        except ValueError as err:  # the input's fault, as on /predict (see errors.py)
            raise PredictionError(f"the model could not score the input: {err}") from err
        labels, probabilities = model.score(inputs)
    except PredictionError as err:
        if len(rows) == 1:
            scores.failed[int(rows.index[0])] = str(err)
            return
        middle = len(rows) // 2
        _score_into(model, rows.iloc[:middle], scores)
        _score_into(model, rows.iloc[middle:], scores)
        return
    positions = rows.index.to_numpy()
    scores.labels[positions] = labels
    if probabilities is not None:
        if scores.probabilities is None:
            scores.probabilities = np.full((len(scores.labels), probabilities.shape[1]), np.nan)
        scores.probabilities[positions] = probabilities

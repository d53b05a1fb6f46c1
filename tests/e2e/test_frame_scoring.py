"""The generated `predict_frame` accepts and refuses exactly what `/predict` does, in the same
words, and gives the same answers: on the golden rows and on fuzzed rows (hypothesis), as frames
of Python objects and as typed frames (int64, nullable Int64, float64, bool, category).

`/predict` reads a body into `schemas.Record`, answers `Predictor.predict([record])` and words a
refusal as `errors.invalid_request` does; `per_record` below does the same in this process."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.conftest import EXAMPLES, ConvertExample

pytestmark = pytest.mark.slow
TOLERANCE = 1e-9
NOTEBOOKS = ["customers_mixed", "iris_array", "diabetes_custom"]


class Service:
    """A converted service's own modules, imported in this process."""

    def __init__(self, out: Path) -> None:
        manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
        package = manifest["package"]
        # This conversion's package, not one of the same name that another test file in this worker
        # imported before (the unit tests serve stand-ins named customers_mixed, iris_array ...).
        if str(out / "src") in sys.path:
            sys.path.remove(str(out / "src"))
        sys.path.insert(0, str(out / "src"))
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
        self.schemas: ModuleType = importlib.import_module(f"{package}.schemas")
        self.model: ModuleType = importlib.import_module(f"{package}.model")
        self.frame: ModuleType = importlib.import_module(f"{package}.frame")
        self.predictor = self.frame.predictor()
        self.features: list[dict[str, Any]] = manifest["input_schema"]["features"]
        self.array = manifest["input_schema"]["kind"] == "array"
        self.golden = json.loads((out / "tests" / "golden.json").read_text())["examples"]
        assert importlib.import_module(package).predict_frame is self.frame.predict_frame

    def per_record(self, record: dict[str, Any]) -> tuple[str | None, Any, dict[str, float] | None]:
        """(error, prediction, probabilities) as `/predict` answers `record`."""
        try:
            checked = self.schemas.Record.model_validate(record).model_dump(by_alias=True)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            return f"invalid field `{'.'.join(str(p) for p in first['loc'])}`: {first['msg']}", None, None
        try:
            predictions, probabilities = self.predictor.predict([checked], observe=False)
        except self.model.PredictionError as err:
            return str(err), None, None
        return None, predictions[0], probabilities[0] if probabilities else None

    def frame_of(self, records: list[dict[str, Any]], typed: bool) -> pd.DataFrame:
        """The records as a frame, a column per field: Python objects, or typed where every value allows it."""
        rows = [dict(zip(self.names, r["features"], strict=False)) for r in records] if self.array else records
        columns = {}
        for feature in self.features:
            values = [row.get(feature["name"]) for row in rows]
            columns[feature["name"]] = typed_column(values, feature) if typed else pd.Series(values, dtype=object)
        frame = pd.DataFrame(columns)
        frame.index = pd.Index([f"r{i}" for i in range(len(records))])  # answers keep the frame's index
        return frame

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def assert_same(self, records: list[dict[str, Any]]) -> None:
        expected = [self.per_record(record) for record in records]
        for typed in (False, True):
            answers = self.frame.predict_frame(self.frame_of(records, typed))
            assert list(answers.index) == [f"r{i}" for i in range(len(records))]
            for i, (error, prediction, probabilities) in enumerate(expected):
                row = answers.iloc[i]
                where = f"row {i} ({records[i]!r}, typed={typed})"
                assert (None if pd.isna(row["error"]) else row["error"]) == error, where
                if error is not None:
                    continue
                assert same_value(row["prediction"], prediction), where
                for label, p in (probabilities or {}).items():
                    assert same_value(row[f"probability_{label}"], p), where


def same_value(got: Any, expected: Any) -> bool:
    if isinstance(got, np.generic):  # a frame holds NumPy values; /predict answers their Python values
        got = got.item()
    if isinstance(expected, float):
        if math.isnan(expected):  # extreme inputs: the model itself answers NaN, on both paths
            return math.isnan(float(got))
        return math.isclose(float(got), expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    if type(expected) is int and type(got) is float:  # a label column that also holds NaN for refused rows
        return got.is_integer() and int(got) == expected
    return bool(got == expected) and type(got) is type(expected)


def typed_column(values: list[Any], feature: dict[str, Any]) -> pd.Series:
    present = [v for v in values if v is not None]
    kind = feature["kind"]
    if kind == "integer" and all(type(v) is int and -(2**63) <= v < 2**63 for v in present):
        return pd.Series(values, dtype="Int64" if len(present) < len(values) else "int64")
    if kind == "number" and all(type(v) in (int, float) for v in present):
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "boolean" and all(type(v) is bool for v in present):
        return pd.Series(values, dtype="boolean" if len(present) < len(values) else "bool")
    if kind == "category" and all(v in feature["categories"] for v in present):
        return pd.Series(pd.Categorical(values, categories=feature["categories"]))
    return pd.Series(values, dtype=object)


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)


def good_value(feature: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the column takes (nulls where it may be null), with some just outside what training saw."""
    kind = feature["kind"]
    low, high = feature.get("min"), feature.get("max")
    if kind == "integer":
        good = st.integers(min_value=int(low or 0) - 5, max_value=int(high or 10) + 5)
    elif kind == "number":
        good = st.floats(min_value=float(low or 0) - 1, max_value=float(high or 1) + 1, allow_nan=False)
        good = st.one_of(good, st.integers(min_value=int(low or 0), max_value=int(high or 1)))
    elif kind == "boolean":
        good = st.booleans()
    else:
        good = st.sampled_from(feature.get("categories") or ["a", "b", "free text"])
    return st.one_of(good, st.none()) if feature.get("nullable") else good


def record_strategy(service: Service) -> st.SearchStrategy[dict[str, Any]]:
    """A record of good values; one in two has one field spoiled with a value of any JSON type."""
    good = st.fixed_dictionaries({f["name"]: good_value(f) for f in service.features})
    spoil = st.one_of(st.none(), st.tuples(st.sampled_from(service.names), ANYTHING))

    def spoiled(pair: tuple[dict[str, Any], tuple[str, Any] | None]) -> dict[str, Any]:
        record, change = pair
        if change is not None:
            record = {**record, change[0]: change[1]}
        return {"features": list(record.values())} if service.array else record

    return st.tuples(good, spoil).map(spoiled)


@pytest.fixture(scope="module", params=NOTEBOOKS)
def service(request: pytest.FixtureRequest, convert_example: ConvertExample) -> Service:
    out, converted = convert_example(EXAMPLES / f"{request.param}.ipynb")
    assert converted.returncode == 0, converted.stderr
    return Service(out)


def test_golden_rows_score_as_the_notebook_did_and_as_predict_does(service: Service) -> None:
    records = [example["input"] for example in service.golden]
    answers = service.frame.predict_frame(service.frame_of(records, typed=True))
    assert answers["error"].isna().all(), answers["error"].dropna().tolist()
    for (_, row), example in zip(answers.iterrows(), service.golden, strict=True):
        assert same_value(row["prediction"], example["prediction"])
        for label, p in (example["probabilities"] or {}).items():
            assert math.isclose(row[f"probability_{label}"], p, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    service.assert_same(records)


def test_fuzzed_rows_are_taken_and_refused_as_predict_takes_and_refuses_them(service: Service) -> None:
    record = record_strategy(service)
    refused = taken = 0

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(record, min_size=80, max_size=200))
    def check(records: list[dict[str, Any]]) -> None:
        nonlocal refused, taken
        service.assert_same(records)
        outcomes = [service.per_record(r)[0] is None for r in records]
        taken += sum(outcomes)
        refused += len(outcomes) - sum(outcomes)

    check()
    assert taken + refused >= 2000 and taken > 300 and refused > 300, (taken, refused)  # both ways


def test_missing_and_unknown_columns_are_refused_in_predicts_words(service: Service) -> None:
    records = [example["input"] for example in service.golden[:5]]
    frame = service.frame_of(records, typed=True)
    required = next(f["name"] for f in service.features if not f.get("nullable") or f.get("nullable_because"))
    answers = service.frame.predict_frame(frame.drop(columns=[required]))
    rows = [{k: v for k, v in r.items() if k != required} for r in records]
    if service.array:
        rows = [
            {"features": [v for n, v in zip(service.names, r["features"], strict=True) if n != required]}
            for r in records
        ]
    assert answers["error"].tolist() == [service.per_record(r)[0] for r in rows]
    assert answers["error"].notna().all()

    answers = service.frame.predict_frame(frame.assign(comment="x"))
    expected = [service.per_record({**r, "comment": "x"})[0] for r in records]
    assert answers["error"].tolist() == expected
    assert all("comment" in e for e in expected)


# --- /predict/batch: JSON records checked and scored by columns (frame.score_records) ----------

JSON_ANYTHING = st.one_of(
    ANYTHING,
    st.sampled_from([math.nan, math.inf, -math.inf, 2**64, -(2**63) - 1, 1.0, 0.0, "", [], {}]),
    st.lists(st.integers(), max_size=2),
)


def json_record_strategy(service: Service) -> st.SearchStrategy[dict[str, Any]]:
    """Records as a JSON body holds them: good ones, and ones with a field spoiled, dropped or added
    (NaN and Infinity included, which pydantic's JSON parser reads)."""
    good = record_strategy(service)
    change = st.one_of(
        st.tuples(st.just("spoil"), st.sampled_from(service.names), JSON_ANYTHING),
        st.tuples(st.just("drop"), st.sampled_from(service.names), st.none()),
        st.tuples(st.just("add"), st.sampled_from(["comment", "features", "age "]), JSON_ANYTHING),
    )

    def changed(pair: tuple[dict[str, Any], tuple[str, str, Any]]) -> dict[str, Any]:
        record, (how, name, value) = pair
        if how == "add":
            return {**record, name: value}
        if service.array:
            features = list(record["features"])
            at = service.names.index(name)
            if how == "spoil":
                features[at] = value
            else:
                del features[at]
            return {"features": features}
        record = dict(record)
        if how == "drop":
            del record[name]
        else:
            record[name] = value
        return record

    return st.one_of(good, st.tuples(good, change).map(changed))


def batch_as_the_schema_answers(service: Service, records: list[dict[str, Any]]) -> tuple[Any, ...]:
    """/predict/batch as it answered before it scored by columns: the whole body through
    `BatchRequest` (every error, in order), then the schema's records in one model call."""
    try:
        batch = service.schemas.BatchRequest.model_validate({"records": records})
    except ValidationError as err:
        return [(e["loc"], e["msg"], e["type"]) for e in err.errors(include_url=False)], None, None, None
    checked = [record.model_dump(by_alias=True) for record in batch.records]
    try:
        predictions, probabilities = service.predictor.predict(checked, observe=False)
    except service.model.PredictionError:
        return None, checked, "unscorable", None
    return None, checked, predictions, probabilities


def assert_batch_same(service: Service, records: list[dict[str, Any]]) -> bool:
    """`score_records` refuses with the schema's errors, or gives its records and the same answers.
    Whether the batch was taken."""
    errors, checked, predictions, probabilities = batch_as_the_schema_answers(service, records)
    batch = service.frame.score_records(service.predictor, records)
    got = [(("records", i, *e["loc"]), e["msg"], e["type"]) for i, es in sorted(batch.refused.items()) for e in es]
    assert got == (errors or []), records
    if errors:
        return False
    assert batch.records == checked
    if predictions == "unscorable":
        assert batch.failed, records
        return False
    assert not batch.failed
    assert len(batch.predictions) == len(predictions)
    for got_value, expected in zip(batch.predictions, predictions, strict=True):
        assert same_value(got_value, expected) and type(got_value) is type(expected), (got_value, expected)
    if probabilities is None:
        assert batch.probabilities is None
        return True
    for got_row, expected_row in zip(batch.probabilities, probabilities, strict=True):
        assert got_row.keys() == expected_row.keys()
        assert all(same_value(got_row[k], v) for k, v in expected_row.items()), (got_row, expected_row)
    return True


def test_batch_records_are_taken_refused_and_answered_as_the_batch_schema_does(service: Service) -> None:
    golden = [example["input"] for example in service.golden]
    assert assert_batch_same(service, golden)
    bad = [*golden[:3], {**golden[3], "comment": "x"}, *golden[4:]]
    if service.array:
        bad[3] = {"features": golden[3]["features"][:-1]}
    assert not assert_batch_same(service, bad)
    taken = refused = 0

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        st.one_of(
            st.lists(
                record_strategy(service).filter(lambda r: service.per_record(r)[0] is None), min_size=1, max_size=60
            ),
            st.lists(json_record_strategy(service), min_size=1, max_size=20),
        )
    )
    def check(records: list[dict[str, Any]]) -> None:
        nonlocal taken, refused
        if assert_batch_same(service, records):
            taken += 1
        else:
            refused += 1

    check()
    assert taken >= 10 and refused >= 10, (taken, refused)  # both ways

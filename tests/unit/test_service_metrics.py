"""The generated service's /metrics and its request log, in this process, without a kernel.

The services are rendered from stored captures with a stand-in model (tests/stand_in.py): the
counts are checked after known requests, not the model's answers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.stand_in import serve_in_process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return serve_in_process("customers_mixed", tmp_path_factory.mktemp("customers"))


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return serve_in_process("iris_array", tmp_path_factory.mktemp("iris"))


@pytest.fixture
def client(customers: ModuleType) -> Iterator[TestClient]:
    with TestClient(customers.app) as test_client:
        yield test_client


def metrics_module(app_module: ModuleType) -> ModuleType:
    return sys.modules[app_module.__name__.rsplit(".", 1)[0] + ".metrics"]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def example(client: TestClient) -> dict[str, Any]:
    return dict(client.app.state.manifest["example"])  # type: ignore[attr-defined]


def test_requests_latency_and_rows_are_counted_by_endpoint_and_status(client: TestClient) -> None:
    record = example(client)
    before = scrape(client)
    for _ in range(2):
        assert client.post("/predict", json=record).status_code == 200
    assert client.post("/predict/batch", json={"records": [record] * 3}).status_code == 200
    assert client.post("/predict", json={**record, "age": "old"}).status_code == 422
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("nb2prod_requests_total", endpoint="/predict", status="200") == 2
    assert moved("nb2prod_requests_total", endpoint="/predict", status="422") == 1
    assert moved("nb2prod_requests_total", endpoint="/predict/batch", status="200") == 1
    assert moved("nb2prod_requests_total", endpoint="/health", status="200") == 1
    assert moved("nb2prod_requests_total", endpoint="other", status="404") == 1
    # /metrics goes through FastAPI's router (the route names it), never the prediction lane.
    assert moved("nb2prod_requests_total", endpoint="/metrics", status="200") == 1
    assert moved("nb2prod_rows_scored_total", endpoint="/predict") == 2
    assert moved("nb2prod_rows_scored_total", endpoint="/predict/batch") == 3
    assert moved("nb2prod_request_duration_seconds_count", endpoint="/predict") == 3
    assert moved("nb2prod_request_duration_seconds_bucket", endpoint="/predict", le="+Inf") == 3
    assert moved("nb2prod_request_duration_seconds_sum", endpoint="/predict") > 0
    manifest = client.app.state.manifest  # type: ignore[attr-defined]
    info = [labels for (name, labels), v in after.items() if name == "nb2prod_model_info" and v == 1]
    assert len(info) == 1 and dict(info[0])["version"] == manifest["version"]


def test_drift_counts_out_of_range_values_unseen_categories_and_nulls(client: TestClient) -> None:
    record = example(client)
    before = scrape(client)
    assert client.post("/predict", json=record).status_code == 200  # the training example: no drift
    assert client.post("/predict", json={**record, "age": 200}).status_code == 200  # age was 18..79
    assert client.post("/predict", json={**record, "city": "Paris"}).status_code == 200
    assert client.post("/predict", json={**record, "city": None, "income": None}).status_code == 200  # nullable
    batch = [{**record, "age": 5, "monthly spend": 1e6}, {**record, "age": 6}]
    assert client.post("/predict/batch", json={"records": batch}).status_code == 200
    # Taken, with a warning, and drift: a null where training had none, in a column the pipeline imputes.
    answered = client.post("/predict", json={**record, "is_member": None})
    assert answered.status_code == 200, answered.text
    assert answered.json()["warnings"] == ["field `is_member`: null, but training had no nulls here"]
    # Refused by the schema, and still drift: a category it did not list.
    assert client.post("/predict", json={**record, "plan": "gold"}).status_code == 422
    after = scrape(client)

    def moved(kind: str, feature: str) -> float:
        name = f"nb2prod_drift_{kind}_total"
        return value(after, name, feature=feature) - value(before, name, feature=feature)

    assert moved("out_of_range", "age") == 3
    assert moved("out_of_range", "monthly spend") == 1
    assert moved("out_of_range", "income") == 0
    assert moved("unseen_category", "city") == 1
    assert moved("unseen_category", "plan") == 1
    assert moved("null", "is_member") == 1
    assert moved("null", "age") == 0
    labelled = {dict(labels)["feature"] for (name, labels) in after if name.startswith("nb2prod_drift_null")}
    assert labelled == {"age", "plan", "is_member", "monthly spend"}  # the columns that had no nulls


def test_drift_of_an_array_model_counts_by_position(iris: ModuleType) -> None:
    with TestClient(iris.app) as client:
        features = example(client)["features"]
        before = scrape(client)
        assert client.post("/predict", json={"features": [100.0, *features[1:]]}).status_code == 200
        assert client.post("/predict", json={"features": [*features[:2], None, features[3]]}).status_code == 422
        after = scrape(client)
    assert value(after, "nb2prod_drift_out_of_range_total", feature="x0") == 1 + value(
        before, "nb2prod_drift_out_of_range_total", feature="x0"
    )
    assert value(after, "nb2prod_drift_null_total", feature="x2") == 1 + value(
        before, "nb2prod_drift_null_total", feature="x2"
    )
    assert not any(name.startswith("nb2prod_drift_unseen") for name, _ in after)


def test_drift_counts_nulls_that_reach_the_model_and_never_free_text(customers: ModuleType) -> None:
    drift_class = metrics_module(customers).Drift
    number = {"kind": "number", "dtype": "float64", "min": 0.0, "max": 1.0}
    array = drift_class(
        {"kind": "array", "features": [{**number, "name": "x0", "nullable": True}, {**number, "name": "x1"}]}
    )
    values = np.array([[np.nan, np.nan], [0.5, 2.0], [-1.0, 0.5]])
    array.add([{"features": []}] * 3, values)
    array.add([{"features": [None, None]}])
    array.check()
    assert array.nulls.tolist() == [0, 2]
    assert array.out_of_range.tolist() == [1, 1]
    text = {"kind": "string", "dtype": "str", "nullable": False}
    frame = drift_class(
        {
            "kind": "frame",
            "features": [
                {**text, "name": "name", "free_text": True, "distinct": 240},
                {**text, "name": "port", "categories": ["C", "Q", "S"]},
            ],
        }
    )
    frame.add([{"name": "Zed", "port": "X"}, {"name": "Amy", "port": "C"}])
    frame.check()
    assert frame.unseen.tolist() == [0, 1]
    families = {family.name: family for family in frame.collect()}
    assert [s.labels for s in families["nb2prod_drift_unseen_category"].samples] == [{"feature": "port"}]


def test_one_json_log_line_per_request_with_its_id_and_never_the_input(
    customers: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    secret = "Zanzibar-7f3a"
    with TestClient(customers.app) as client:
        record = {**example(client), "city": secret, "income": 31337.25}
        answer = client.post("/predict", json=record, headers={"X-Request-ID": "lane-42"})
        assert answer.headers["x-request-id"] == "lane-42"
        client.post("/predict/batch", json={"records": [record, record]}, headers={"X-Request-ID": "batch-7"})
        client.get("/health", headers={"X-Request-ID": "health-1"})
        client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    out = capsys.readouterr().out  # the lines are written out when the service stops, at the latest
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert all("message" in line for line in records if "request_id" not in line)  # startup, shutdown
    lines = [line for line in records if "request_id" in line]
    by_id = {line["request_id"]: line for line in lines}
    lane = by_id["lane-42"]
    assert (lane["method"], lane["path"], lane["status"], lane["rows"]) == ("POST", "/predict", 200, 1)
    assert lane["ms"] > 0 and lane["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lane["time"]), lane["time"]  # RFC 3339, UTC
    assert (by_id["batch-7"]["status"], by_id["batch-7"]["rows"]) == (200, 2)
    assert (by_id["health-1"]["path"], by_id["health-1"]["status"], by_id["health-1"]["rows"]) == ("/health", 200, 0)
    assert any(line["status"] == 400 and len(line["request_id"]) == 32 for line in lines)
    assert secret not in out and "31337" not in out


def test_other_log_records_are_json_lines_too_and_uvicorns_access_log_is_silent(
    customers: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    module = metrics_module(customers)
    module.log_as_json()
    capsys.readouterr()
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "POST", "/predict", "1.1", 200)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger(module.__name__.split(".")[0]).exception("request %s failed", "req-9")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("uvicorn.error", "info", "Started server process [42]"),
        (module.__name__.split(".")[0], "error", "request req-9 failed"),
    ]
    assert "ValueError: boom" in lines[1]["traceback"]
    assert module.rfc3339(0.0) == "1970-01-01T00:00:00.000Z" and module.rfc3339(1.9996) == "1970-01-01T00:00:01.999Z"


def test_request_log_can_be_switched_off(customers: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    module = metrics_module(customers)
    monkeypatch.setenv("LOG_REQUESTS", "off")
    manifest = json.loads(Path(module.__file__).with_name("artifacts").joinpath("manifest.json").read_text())
    metrics = module.Metrics(manifest)
    metrics.observe({"path": "/health", "method": "GET", "state": {}}, "id-1", 200, 0.0)
    assert not metrics.lines and not metrics.logging
    assert metrics.endpoints["other"].statuses == {200: 1}  # counted all the same (no route: "other")
    monkeypatch.setenv("LOG_REQUESTS", "1")
    assert module.Metrics(manifest).logging


def test_warnings_of_a_few_records_are_the_ones_numpy_finds(customers: ModuleType) -> None:
    """A few records are compared in Python (cheaper than arrays for one request); the warnings must
    be NumPy's, for nulls, NaN, training extremes and integers past float64's precision alike."""
    metrics = metrics_module(customers)
    number = {"kind": "number", "dtype": "float64"}
    array = {
        "kind": "array",
        "features": [{**number, "name": f"x{i}", "min": -1.5 * i, "max": 2.0 + i} for i in range(5)],
    }
    array["features"][0]["nullable"] = True
    frame = {
        "kind": "frame",
        "features": [
            {"name": "age", "kind": "integer", "dtype": "int64", "min": 18, "max": 79},
            {**number, "name": "income", "min": 0.5, "max": 1e5, "nullable": True},
            {"name": "city", "kind": "string", "dtype": "object", "categories": ["Lyon", "Oslo"]},
        ],
    }
    one_column = {
        "kind": "frame",
        "features": [{"name": "age", "kind": "integer", "dtype": "int64", "min": 18, "max": 79}],
    }
    rng = np.random.default_rng(0)
    choices = [None, float("nan"), 2**60 + 1, 18, 79, 0.5, 1e5, -0.0, 3, -7.25, 150, 1e300]

    def value() -> Any:
        return choices[rng.integers(len(choices))] if rng.random() < 0.6 else float(rng.uniform(-20, 120))

    checked = 0
    for schema in (array, frame, one_column):
        drift = metrics.Drift(schema)
        for _ in range(400):
            count = int(rng.integers(1, metrics.FEW_ROWS + 1))
            if schema["kind"] == "array":
                records = [{"features": [value() for _ in range(5)]} for _ in range(count)]
            else:
                records = [
                    {
                        f["name"]: rng.choice(["Lyon", "Paris"]) if f["kind"] == "string" else value()
                        for f in schema["features"]
                    }
                    for _ in range(count)
                ]
            few = drift.warnings(records)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(metrics, "FEW_ROWS", 0)  # every record through NumPy
                assert drift.warnings(records) == few, records
            checked += bool(few)
    assert checked > 100  # most batches hold something to warn about


def test_drift_counted_from_the_warnings_of_a_few_records_is_what_the_queue_counts(customers: ModuleType) -> None:
    """A request's few records are counted from what `warnings` found in them, not queued for NumPy:
    the counts must be the queue's, for nulls (where they reach the model, or a pipeline imputes them),
    numbers out of range on both sides, training extremes, unseen categories of a frame, records fed
    as themselves or as the model's matrix, and a float32 array (whose matrix rounds: queued)."""
    metrics = metrics_module(customers)
    number = {"kind": "number", "dtype": "float64"}
    array = {
        "kind": "array",
        "features": [{**number, "name": f"x{i}", "min": -1.5 * i, "max": 2.0 + i} for i in range(5)],
    }
    array["features"][0]["nullable"] = True  # some positions take nulls: they reach the model
    single = {"kind": "array", "features": [{**number, "name": "x0", "min": 0.0, "max": 1.0}]}
    rounded = {
        "kind": "array",
        "features": [{**number, "dtype": "float32", "name": f"x{i}", "min": 0.1, "max": 0.7} for i in range(3)],
    }
    rounded["features"][2]["nullable"] = True
    frame = {
        "kind": "frame",
        "features": [
            {"name": "age", "kind": "integer", "dtype": "int64", "min": 18, "max": 79},
            {**number, "name": "income", "min": 0.5, "max": 1e5, "nullable": True},
            {**number, "name": "spend", "min": 0.0, "max": 50.0, "nullable": True, "nullable_because": "imputed"},
            {"name": "city", "kind": "string", "dtype": "object", "categories": ["Lyon", "Oslo"], "nullable": True},
        ],
    }
    numeric_frame = {"kind": "frame", "features": frame["features"][:3]}
    rng = np.random.default_rng(1)
    choices = [None, 2**60 + 1, 18, 79, 0.5, 1e5, -0.0, 0.1, 0.7, 0.70000001, 3, -7.25, 150, 1e300, True]

    def value() -> Any:
        return choices[rng.integers(len(choices))] if rng.random() < 0.6 else float(rng.uniform(-20, 120))

    def counts(drift: Any) -> list[list[int]]:
        drift.check()
        return [drift.out_of_range.tolist(), drift.unseen.tolist(), drift.nulls.tolist()]

    cases = [(array, True), (array, False), (single, True), (rounded, True), (frame, False), (numeric_frame, True)]
    for schema, as_matrix in cases:
        features = schema["features"]
        counted, queued = metrics.Drift(schema), metrics.Drift(schema)
        dtype = features[0]["dtype"] if schema["kind"] == "array" else "float64"
        for _ in range(300):
            count = int(rng.integers(1, metrics.FEW_ROWS + 1))
            if schema["kind"] == "array":
                records = [{"features": [value() for _ in features]} for _ in range(count)]
                rows = [record["features"] for record in records]
            else:
                records = [
                    {
                        f["name"]: rng.choice(["Lyon", "Paris", None]) if f["kind"] == "string" else value()
                        for f in features
                    }
                    for _ in range(count)
                ]
                rows = [[record[f["name"]] for f in features] for record in records]
            # The matrix as model.py feeds it: the records in the model's dtype, then float64.
            with np.errstate(over="ignore"):  # 1e300 as float32
                matrix = np.array(rows, dtype=np.float64).astype(dtype).astype(np.float64) if as_matrix else None
            counted.warnings(records)
            counted.add(records, matrix)
            assert not counted.queue or schema is rounded  # counted at once, unless the matrix rounds
            queued.add(list(records), matrix)  # another list: `warnings` never saw it
        assert counts(counted) == counts(queued), schema
        assert sum(map(sum, counts(counted))) > 100  # there was drift to count
    assert counted.nulls.tolist() == [0, 0, queued.nulls[2]] and queued.nulls[2] > 0  # only the imputed column


def test_log_times_made_once_per_millisecond_are_the_times_of_each_line(customers: ModuleType) -> None:
    """`rfc3339` keeps the text of the last few seconds and milliseconds: each line's time must be the
    one formatted from scratch, across second, day and year boundaries, in and out of order."""
    import time

    rfc3339 = metrics_module(customers).rfc3339
    rng = np.random.default_rng(2)
    edges = [0.0, 0.9999, 1.0, 1.9996, 86399.9995, 86400.0, 1767225599.999, 1767225600.0004]
    whens = edges + [float(w) for w in rng.uniform(1.7e9, 1.8e9, 200)] + [1.75e9 + i / 3000 for i in range(3000)]
    for when in [*whens, *reversed(whens)]:
        millis = int(when * 1000)
        fresh = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"
        assert rfc3339(when) == fresh, when

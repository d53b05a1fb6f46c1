"""The generated service under hostile and unlucky input, in this process, without a kernel.

Each service is rendered from a stored capture with a stand-in model (tests/stand_in.py): these
tests check statuses, limits, the error rule, threads and what is published, not answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message

from nb2prod.generate.render import MAX_BODY_BYTES
from nb2prod.run.kernel.sample import _describe_column
from tests.golden_render import stored_capture
from tests.unit.conftest import Services

INT64 = (-(2**63), 2**63 - 1)


@pytest.fixture
def customers(services: Services) -> Iterator[TestClient]:
    with TestClient(services("customers_mixed").app, raise_server_exceptions=False) as client:
        yield client


def example(client: TestClient) -> dict[str, Any]:
    return dict(client.app.state.manifest["example"])  # type: ignore[attr-defined]


class Failing:
    """A model whose predict raises `error` for records whose `age` is `trigger` (every record if None)."""

    def __init__(self, model: Any, error: Exception, trigger: int | None = None) -> None:
        self.model, self.error, self.trigger = model, error, trigger

    def predict(self, frame: pd.DataFrame) -> Any:
        if self.trigger is None or (frame["age"] == self.trigger).any():
            raise self.error
        return self.model.predict(frame)

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        return self.model.predict_proba(frame)


@pytest.fixture
def failing_model(customers: TestClient, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`failing_model(error, trigger=None)` makes the loaded model raise `error`."""
    predictor = customers.app.state.predictor  # type: ignore[attr-defined]

    def install(error: Exception, trigger: int | None = None) -> None:
        monkeypatch.setattr(predictor, "model", Failing(predictor.model, error, trigger))

    return install


# --- integers bounded by their dtype ---------------------------------------------------------


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, -(2**63) - 1])
def test_integer_outside_its_dtype_is_422_naming_the_field(customers: TestClient, value: int) -> None:
    response = customers.post("/predict", json={**example(customers), "age": value})
    assert response.status_code == 422, response.text
    assert "`age`" in response.json()["error"]


def test_integer_at_its_dtype_bounds_is_scored(customers: TestClient) -> None:
    for value in INT64:
        response = customers.post("/predict", json={**example(customers), "age": value})
        assert response.status_code == 200, response.text


def test_openapi_states_the_dtype_bounds(customers: TestClient) -> None:
    age = customers.get("/openapi.json").json()["components"]["schemas"]["Record"]["properties"]["age"]
    # `age` takes a null (the pipeline imputes it): the integer is one branch of `anyOf`.
    integer = next(branch for branch in age.get("anyOf", [age]) if branch.get("type") == "integer")
    # FastAPI's OpenAPI model writes the bounds as floats: 2**63 - 1 shows as 9.223372036854776e18.
    assert (integer["minimum"], integer["maximum"]) == (float(INT64[0]), float(INT64[1]))


# --- batches name the bad record -------------------------------------------------------------


def test_bad_record_in_a_batch_is_422_naming_its_index_and_field(customers: TestClient) -> None:
    records = [example(customers), {**example(customers), "age": 2**64}, example(customers)]
    response = customers.post("/predict/batch", json={"records": records})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "record 1" in error and "`age`" in error


def test_record_the_model_cannot_score_in_a_batch_is_422_naming_its_index(
    customers: TestClient, failing_model: Callable[..., None]
) -> None:
    failing_model(ValueError("unseen value"), trigger=77)
    records = [{**example(customers), "age": age} for age in (20, 30, 40, 77, 50)]
    response = customers.post("/predict/batch", json={"records": records})
    assert response.status_code == 422, response.text
    assert "record 3" in response.json()["error"]
    assert "unseen value" in response.json()["error"]


# --- the body limit counts bytes as they arrive ----------------------------------------------


def test_chunked_body_over_the_limit_is_413_and_not_read_to_the_end(customers: TestClient) -> None:
    # Straight through ASGI: the test client would read the whole body before the app sees it.
    chunk = b"x" * 65536
    total = 16 * MAX_BODY_BYTES // len(chunk)
    read = 0
    answer: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < total}

    async def send(message: Message) -> None:
        answer.append(message)

    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "query_string": b""}
    app_call = customers.app({**scope, "http_version": "1.1", "scheme": "http", "root_path": ""}, receive, send)
    # A thread of its own: an earlier test's session fixture (Playwright's sync API) may keep an
    # event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, app_call).result(timeout=60)
    assert answer[0]["status"] == 413
    assert b"bytes" in answer[1]["body"]
    assert read * len(chunk) <= MAX_BODY_BYTES + len(chunk)  # it stopped reading at the limit


def test_sized_body_over_the_limit_is_413(customers: TestClient) -> None:
    body = json.dumps(example(customers)) + " " * (MAX_BODY_BYTES + 1)
    response = customers.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413


# --- the error rule --------------------------------------------------------------------------


def test_value_error_from_the_model_is_the_clients_422(
    customers: TestClient, failing_model: Callable[..., None]
) -> None:
    failing_model(ValueError("Found unknown categories ['Paris']"))
    response = customers.post("/predict", json=example(customers))
    assert response.status_code == 422
    assert "Found unknown categories" in response.json()["error"]


@pytest.mark.parametrize(
    "error", [AttributeError("'float' object has no attribute 'split'"), TypeError("bad"), KeyError("x")]
)
def test_any_other_error_from_user_code_is_a_json_500_with_a_request_id_and_no_traceback(
    customers: TestClient, failing_model: Callable[..., None], caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    failing_model(error)
    with caplog.at_level(logging.ERROR):
        response = customers.post("/predict", json=example(customers), headers={"x-request-id": "req-42"})
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == "req-42" == response.headers["x-request-id"]
    assert "Traceback" not in response.text and type(error).__name__ not in response.text
    logged = [r for r in caplog.records if "req-42" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log


def test_every_answer_carries_a_request_id(customers: TestClient) -> None:
    first = customers.get("/health").headers["x-request-id"]
    second = customers.get("/health").headers["x-request-id"]
    assert first and second and first != second
    assert customers.get("/health", headers={"x-request-id": "abc.DEF-1"}).headers["x-request-id"] == "abc.DEF-1"
    # A header that could forge log lines is replaced, not echoed.
    assert customers.get("/health", headers={"x-request-id": "a b\tc"}).headers["x-request-id"] != "a b\tc"


# --- one scoring thread: no warning flood, same answers --------------------------------------


def test_predictions_run_on_one_thread_and_answer_as_the_model_does(services: Services) -> None:
    app = services("customers_mixed").app
    with TestClient(app) as client:
        predictor = app.state.predictor
        threads: set[int] = set()
        real_predict = predictor.predict

        def predict(records: list[dict[str, Any]]) -> Any:
            threads.add(threading.get_ident())
            return real_predict(records)

        predictor.predict = predict
        records = [{**example(client), "age": age} for age in range(18, 50)]
        answers: dict[int, Any] = {}

        def post(i: int) -> None:
            answers[i] = client.post("/predict", json=records[i]).json()["prediction"]

        workers = [threading.Thread(target=post, args=(i,)) for i in range(len(records))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        expected = predictor.model.predict(predictor.to_inputs(records))
    assert len(threads) == 1
    assert [answers[i] for i in range(len(records))] == list(expected)


# --- graceful shutdown: not ready at once, still serving -------------------------------------


def test_draining_service_is_not_ready_but_still_answers_and_closes_connections(services: Services) -> None:
    app = services("iris_array").app
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        app.state.shutdown.begin()
        ready = client.get("/ready")
        assert ready.status_code == 503 and "shutting down" in ready.json()["error"]
        answer = client.post("/predict", json=app.state.manifest["example"])
        assert answer.status_code == 200
        assert answer.headers["connection"] == "close"


# --- nothing published from the training data ------------------------------------------------


def test_metadata_and_readme_describe_free_text_without_listing_it(services: Services, tmp_path: Path) -> None:
    service = services("svc_free_text")
    app = service.app
    names = {e.input["name"] for e in stored_capture("svc_free_text", tmp_path).golden}
    with TestClient(app) as client:
        metadata = client.get("/metadata").text
        openapi = client.get("/openapi.json").text
    readme = (Path(service.__file__ or "").parents[2] / "README.md").read_text()
    for text in (metadata, openapi, readme):
        assert not any(name in text for name in names)
    feature = next(f for f in json.loads(metadata)["input_schema"]["features"] if f["name"] == "name")
    assert feature["free_text"] is True and "categories" not in feature
    assert "free text" in readme


def test_kernel_lists_only_low_cardinality_text_columns() -> None:
    def describe(values: list[Any]) -> dict[str, Any]:
        return _describe_column("c", pd.Series(values, dtype=object))

    few = describe(["Oslo", "Rome", None] * 10)
    assert few["categories"] == ["Oslo", "Rome"] and not few.get("free_text")
    names = describe([f"passenger {i}" for i in range(891)])
    assert names["free_text"] is True and "categories" not in names and names["distinct_count"] == 891
    many = describe([f"code {i % 60}" for i in range(6000)])  # 60 distinct values: over the cap
    assert many["free_text"] is True and "categories" not in many
    mostly_distinct = describe(["a", "b", "c", "d", "a"])  # 4 distinct values in 5 rows
    assert mostly_distinct["free_text"] is True and "categories" not in mostly_distinct


# --- bounds in the generated schema ----------------------------------------------------------


def test_float32_and_unsigned_columns_are_bounded_by_their_dtype() -> None:
    from nb2prod.generate.render import _field
    from nb2prod.generate.schema import infer_schema
    from tests.unit.test_schema import capture_with, col

    schema = infer_schema(
        capture_with([col("n", "uint8", "integer", False, 0, 9), col("x", "float32", "number", False)])
    )
    n, x = (_field(schema, f)["field_args"] for f in schema.features)
    assert "ge=0" in n and "le=255" in n
    assert f"le={float(np.finfo(np.float32).max)!r}" in x

"""The scikit-learn path scores concurrent single-record requests together, and each still gets its own answer.

A service is rendered with a stand-in model, on the scikit-learn path, as proved row-independent
(`inference.rows_independent`). Its model is wrapped to be slow and to note the size of every call,
so that requests queue up behind the first one, as they do under load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.stand_in import serve_in_process

AGES = list(range(20, 60))
BAD_AGE = 33  # the wrapped model refuses records with this age


class Slow:
    """Wraps a model: every call takes a while, its row count is noted, and `BAD_AGE` is refused."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def _enter(self, frame: pd.DataFrame) -> None:
        with self.lock:
            self.calls.append(len(frame))
        time.sleep(0.02)
        if self.refuse and (frame["age"] == BAD_AGE).any():
            raise ValueError(f"age {BAD_AGE} is refused")

    refuse = False

    # Row by row, as the conversion proved the real model answers (bit for bit, see
    # `_rows_independent_proof`); the stand-in's matrix product would round differently.
    def predict(self, frame: pd.DataFrame) -> Any:
        self._enter(frame)
        return np.concatenate([self.model.predict(frame.iloc[[i]]) for i in range(len(frame))])

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        return np.vstack([self.model.predict_proba(frame.iloc[[i]]) for i in range(len(frame))])


@pytest.fixture(scope="module")
def app_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return serve_in_process("customers_mixed", tmp_path_factory.mktemp("coalesce"), rows_independent=True)


@pytest.fixture
def client(app_module: Any) -> Iterator[TestClient]:
    with TestClient(app_module.app, raise_server_exceptions=False) as client:
        yield client


def record(client: TestClient, age: int) -> dict[str, Any]:
    return {**client.app.state.manifest["example"], "age": age}  # type: ignore[attr-defined]


def answers_alone(client: TestClient) -> dict[int, Any]:
    """Each record's answer when it is the only request."""
    alone = {}
    for age in AGES:
        response = client.post("/predict", json=record(client, age))
        assert response.status_code == 200, response.text
        body = response.json()
        alone[age] = (body["prediction"], body["probabilities"])
    return alone


def at_once(client: TestClient) -> dict[int, Any]:
    """Every record sent at the same time, each as its own request."""
    with ThreadPoolExecutor(max_workers=len(AGES)) as pool:
        responses = pool.map(lambda age: (age, client.post("/predict", json=record(client, age))), AGES)
        return dict(responses)


def test_concurrent_requests_are_scored_together_with_the_answers_they_get_alone(client: TestClient) -> None:
    predictor = client.app.state.predictor  # type: ignore[attr-defined]
    alone = answers_alone(client)
    predictor.model = slow = Slow(predictor.model)
    together = at_once(client)
    assert max(slow.calls) > 1, slow.calls  # requests were scored in groups
    assert len(slow.calls) < len(AGES)
    for age, response in together.items():
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["prediction"], body["probabilities"]) == alone[age]


def test_a_record_the_model_refuses_fails_only_its_own_request(client: TestClient) -> None:
    predictor = client.app.state.predictor  # type: ignore[attr-defined]
    alone = answers_alone(client)
    predictor.model = slow = Slow(predictor.model)
    slow.refuse = True
    together = at_once(client)
    assert max(slow.calls) > 1, slow.calls
    refused = together.pop(BAD_AGE)
    assert refused.status_code == 422, refused.text
    assert f"age {BAD_AGE} is refused" in refused.json()["error"]
    for age, response in together.items():
        assert response.status_code == 200, (age, response.text)
        assert response.json()["prediction"] == alone[age][0]


def test_a_model_not_proved_row_independent_is_scored_request_by_request(tmp_path: Path) -> None:
    module = serve_in_process("customers_mixed", tmp_path, rows_independent=False)
    with TestClient(module.app, raise_server_exceptions=False) as client:
        predictor = client.app.state.predictor  # type: ignore[attr-defined]
        predictor.model = slow = Slow(predictor.model)
        together = at_once(client)
    assert all(response.status_code == 200 for response in together.values())
    assert slow.calls == [1] * len(AGES)

"""A null in a column the served pipeline imputes is answered, with a warning, and counted as drift.

tests/notebooks/imputed_nulls.ipynb trains a ColumnTransformer pipeline (median imputer and scaler
on the numbers, one-hot on the categories) on data where only `bmi` has nulls. Tagged with
`tag --write` and converted once; the generated service runs under a real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import run_notebook_here, running_service

pytestmark = pytest.mark.slow

ROW = {"age": 61, "bmi": 31.5, "glucose": 128.0, "visits": 3, "smoker": "yes", "ward": "B"}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("imputed_nulls")
    notebook = Path(shutil.copy(FIXTURES / "imputed_nulls.ipynb", folder / "imputed_nulls.ipynb"))
    tagged = run_cli("tag", notebook, "--write")
    assert tagged.returncode == 0, tagged.stderr
    result = run_cli("convert", notebook, "-o", folder / "service", timeout=900)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(next((folder / "service").glob("src/*/artifacts/manifest.json")).read_text())
    return {
        "notebook": notebook,
        "out": folder / "service",
        "convert": result.stdout + result.stderr,
        "manifest": manifest,
    }


@pytest.fixture(scope="module")
def service(converted: dict[str, Any]) -> Iterator[httpx.Client]:
    src = converted["out"] / "src"
    with (
        running_service(Path(sys.executable), "imputed_nulls", src / "server.log") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


def test_manifest_says_which_columns_take_a_null_and_why(converted: dict[str, Any]) -> None:
    features = {f["name"]: f for f in converted["manifest"]["input_schema"]["features"]}
    imputed = "imputed by SimpleImputer (`num` of the ColumnTransformer)"
    assert {name: f.get("nullable_because") for name, f in features.items()} == {
        "age": imputed,
        "bmi": None,  # had nulls in training: nullable as it always was
        "glucose": imputed,
        "visits": imputed,
        "smoker": None,  # one-hot encoded, not imputed: a null is refused
        "ward": None,
    }
    assert [name for name, f in features.items() if f["nullable"]] == ["age", "bmi", "glucose", "visits"]
    inference = converted["manifest"]["inference"]
    if inference["path"] == "compiled":  # proven on rows holding those nulls too
        assert "training rows with a null in `age`, `glucose`, `visits`" in inference["reason"]
    assert "a null is taken in `age`, `glucose`, `visits`" in converted["convert"]
    # the frame the notebook builds from random draws is the raw frame: its columns, without the label
    assert (
        "input: raw columns of `df`: 6 columns, `age`, `bmi`, `glucose`, `visits`, `smoker`, `ward`"
        in (converted["convert"])
    )


def test_a_null_in_an_imputed_column_is_answered_as_the_notebook_answers_it(
    converted: dict[str, Any], service: httpx.Client
) -> None:
    row = {**ROW, "age": None}
    answer = service.post("/predict", json=row)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["warnings"] == ["field `age`: null, but training had no nulls here"]

    model = run_notebook_here(converted["notebook"])["model"]
    frame = pd.DataFrame([{**ROW, "age": np.nan}])
    expected = model.predict_proba(frame)[0]
    assert body["prediction"] == int(model.predict(frame)[0])
    np.testing.assert_allclose([body["probabilities"]["0"], body["probabilities"]["1"]], expected, rtol=1e-12)

    batch = service.post("/predict/batch", json={"records": [ROW, row, {**ROW, "visits": None}]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["warnings"] == [
        "record 1: field `age`: null, but training had no nulls here",
        "record 2: field `visits`: null, but training had no nulls here",
    ]
    assert batch.json()["probabilities"][1] == body["probabilities"]

    inputs = [
        {"name": name, "shape": [1], "datatype": datatype, "data": [row[name]]}
        for name, datatype in (
            ("age", "INT64"),
            ("bmi", "FP64"),
            ("glucose", "FP64"),
            ("visits", "INT64"),
            ("smoker", "BYTES"),
            ("ward", "BYTES"),
        )
    ]
    v2 = service.post("/v2/models/imputed-nulls/infer", json={"inputs": inputs})
    assert v2.status_code == 200, v2.text
    assert v2.json()["parameters"]["warnings"] == "field `age`: null, but training had no nulls here"

    drift = [line for line in service.get("/metrics").text.splitlines() if line.startswith("nb2prod_drift_null_total")]
    assert 'nb2prod_drift_null_total{feature="age"} 3.0' in drift  # /predict, the batch, v2
    assert 'nb2prod_drift_null_total{feature="visits"} 1.0' in drift


def test_a_null_in_a_column_nothing_imputes_is_refused_naming_it(service: httpx.Client) -> None:
    refused = service.post("/predict", json={**ROW, "smoker": None})
    assert refused.status_code == 422
    assert "`smoker`" in refused.json()["error"]
    batch = service.post("/predict/batch", json={"records": [ROW, {**ROW, "ward": None}]})
    assert batch.status_code == 422
    assert "ward" in batch.json()["error"]


def test_predict_frame_takes_the_imputed_null_too(converted: dict[str, Any]) -> None:
    sys.path.insert(0, str(converted["out"] / "src"))
    try:
        import imputed_nulls

        answers = imputed_nulls.predict_frame(pd.DataFrame([ROW, {**ROW, "glucose": None}, {**ROW, "smoker": None}]))
    finally:
        sys.path.remove(str(converted["out"] / "src"))
    assert answers["error"].isna().tolist() == [True, True, False]
    assert "smoker" in answers["error"][2]

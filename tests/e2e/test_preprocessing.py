"""Preprocessing as people write it, end to end: convert with a real kernel, then compare the
service with the notebook's own model on the notebook's own engineered rows.

The notebook's reference answers come from running its cells in this process (their data is
generated from a seed, so it is the same data); the service is the generated app under
FastAPI's TestClient.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import FIXTURES, run_cli

pytestmark = pytest.mark.slow
NOTEBOOKS = {
    "passengers_features": FIXTURES / "passengers_features.ipynb",
    "impute_scale_before_fit": FIXTURES / "impute_scale_before_fit.ipynb",
    "standardised_by_hand": FIXTURES / "standardised_by_hand.ipynb",
    "passengers_combine_loops": FIXTURES / "passengers_combine_loops.ipynb",
    "label_encoders": FIXTURES / "label_encoders.ipynb",
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each notebook converted once."""
    outputs = {}
    for name, notebook in NOTEBOOKS.items():
        out = tmp_path_factory.mktemp(name) / "service"
        result = run_cli("convert", notebook, "-o", out, timeout=600)
        assert result.returncode == 0, result.stderr
        outputs[name] = out
    return outputs


def notebook_namespace(name: str) -> dict[str, Any]:
    """The notebook's cells (not `skip`) run here, top to bottom: its model and engineered rows."""
    notebook = nbformat.read(NOTEBOOKS[name], as_version=4)
    namespace: dict[str, Any] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and "skip" not in cell.metadata.get("tags", []):
            exec(compile(cell.source, f"<{name}>", "exec"), namespace)  # noqa: S102 - our fixture notebook
    return namespace


@pytest.fixture(scope="module")
def services(converted: dict[str, Path]) -> Iterator[dict[str, TestClient]]:
    clients = {}
    for name, out in converted.items():
        sys.path.insert(0, str(out / "src"))
        clients[name] = TestClient(importlib.import_module(f"{name}.app").app).__enter__()
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


def manifest_of(out: Path) -> dict[str, Any]:
    return json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())


def golden_of(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "tests" / "golden.json").read_text())["examples"]


def answered(client: TestClient, record: dict[str, Any]) -> list[float]:
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.text
    return list(response.json()["probabilities"].values())


def test_passenger_feature_engineering_is_replayed_and_the_service_takes_raw_records(
    converted: dict[str, Path], services: dict[str, TestClient]
) -> None:
    out = converted["passengers_features"]
    manifest = manifest_of(out)
    record = manifest["preprocessing"]
    assert record["method"] == "replayed" and record["raw_variable"] == "train"
    assert record["label_columns"] == ["Survived"]
    assert record["proof"]["rows"] == 700 and record["proof"]["single_rows"] > 0
    assert record["proof"]["max_difference"] <= 1e-12
    # `Cabin` is dropped before anything reads it: a request need not send it
    raw_columns = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    assert [f["name"] for f in manifest["input_schema"]["features"]] == raw_columns
    readme = (out / "README.md").read_text()
    assert "`Embarked`" in readme and "FarePerPerson" not in readme and "Embarked_C" not in readme

    notebook = notebook_namespace("passengers_features")
    model, engineered = notebook["model"], notebook["X_train"]
    client = services["passengers_features"]
    examples = golden_of(out)
    assert any(e["input"]["Age"] is None for e in examples)  # a missing age: the training median fills it
    for example in examples:
        expected = model.predict_proba(engineered.iloc[[example["row"]]])[0]
        assert list(example["probabilities"].values()) == pytest.approx(list(expected), rel=1e-12, abs=1e-15)
        assert answered(client, example["input"]) == pytest.approx(list(expected), rel=1e-9, abs=1e-12)
    unseen = {**examples[0]["input"], "Embarked": "Z"}  # a port training never saw: all its dummies zero
    assert client.post("/predict", json=unseen).status_code == 200


def test_tutorial_loops_over_combine_with_group_medians_are_replayed(
    converted: dict[str, Path], services: dict[str, TestClient]
) -> None:
    out = converted["passengers_combine_loops"]
    record = manifest_of(out)["preprocessing"]
    assert record["method"] == "replayed" and record["proof"]["rows"] == 700
    assert "guess_df.median()" in record["frozen"]  # one median per sex and class, frozen as six values
    notebook = notebook_namespace("passengers_combine_loops")
    client = services["passengers_combine_loops"]
    for example in golden_of(out)[:8]:
        expected = notebook["logreg"].predict_proba(notebook["X_train"].iloc[[example["row"]]])[0]
        assert answered(client, example["input"]) == pytest.approx(list(expected), rel=1e-9, abs=1e-12)


def test_encoders_fitted_in_the_cells_are_shipped_as_training_fitted_them(
    converted: dict[str, Path], services: dict[str, TestClient]
) -> None:
    out = converted["label_encoders"]
    assert manifest_of(out)["preprocessing"]["frozen"] == ["port_encoder", "sex_encoder fitted"]
    notebook = notebook_namespace("label_encoders")
    client = services["label_encoders"]
    for example in golden_of(out)[:5]:
        expected = notebook["model"].predict_proba(notebook["X_train"].iloc[[example["row"]]])[0]
        assert answered(client, example["input"]) == pytest.approx(list(expected), rel=1e-9, abs=1e-12)
    # one record alone: a LabelEncoder refitted on it would code any port as 0
    record = {**golden_of(out)[0]["input"], "Embarked": "S"}
    assert client.post("/predict", json=record).status_code == 200


def test_fitted_imputer_and_scaler_are_composed_and_missing_values_accepted(
    converted: dict[str, Path], services: dict[str, TestClient]
) -> None:
    out = converted["impute_scale_before_fit"]
    manifest = manifest_of(out)
    assert manifest["preprocessing"]["transformers"] == ["imputer", "scaler"]
    assert manifest["preprocessing"]["proof"]["rows"] == 375
    nullable = {f["name"]: f["nullable"] for f in manifest["input_schema"]["features"]}
    # `rooms` had no nulls in training, but the fitted imputer fills every column: it takes a null too
    assert nullable == {"area": True, "rooms": True, "age": True, "distance": True}
    because = {f["name"]: f.get("nullable_because") for f in manifest["input_schema"]["features"]}
    assert because["rooms"] and "imputer" in because["rooms"].lower(), because

    notebook = notebook_namespace("impute_scale_before_fit")
    for record in (
        {"area": None, "rooms": 3.0, "age": None, "distance": 4.5},
        {"area": 80.0, "rooms": None, "age": 30.0, "distance": 4.5},
    ):
        frame = pd.DataFrame([record], dtype="float64")
        transformed = notebook["scaler"].transform(notebook["imputer"].transform(frame))
        expected = notebook["model"].predict_proba(transformed)[0]
        assert answered(services["impute_scale_before_fit"], record) == pytest.approx(list(expected), rel=1e-9)


def test_one_record_gets_the_training_statistics_not_its_own(
    converted: dict[str, Path], services: dict[str, TestClient]
) -> None:
    notebook = notebook_namespace("standardised_by_hand")
    raw = notebook["customers"].iloc[:300]
    client = services["standardised_by_hand"]
    for row in (0, 7, 123):
        record = {
            "income": float(raw["income"].iloc[row]),
            "tenure": int(raw["tenure"].iloc[row]),
            "visits": int(raw["visits"].iloc[row]),
        }
        expected = notebook["model"].predict_proba(notebook["X"].iloc[[row]])[0]
        # recomputed on one record, (x - mean) / std would be 0 / NaN: no answer could match
        assert answered(client, record) == pytest.approx(list(expected), rel=1e-9)
    shipped = (converted["standardised_by_hand"] / "src" / "standardised_by_hand" / "preprocessing.py").read_text()
    assert "\"train['income'].mean()\": " in shipped


def test_a_preprocess_that_recomputes_a_mean_per_request_is_rejected_naming_the_column(tmp_path: Path) -> None:
    result = run_cli("convert", FIXTURES / "mean_per_request.ipynb", "-o", tmp_path / "out", timeout=600)
    assert result.returncode == 4, result.stderr
    assert "column `income`" in result.stderr and "cell 4" in result.stderr
    assert "sent alone" in result.stderr and "compute it from the training data" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_random_fill_is_refused_with_the_cell_and_the_line(tmp_path: Path) -> None:
    result = run_cli("convert", FIXTURES / "random_fill.ipynb", "-o", tmp_path / "out", timeout=600)
    assert result.returncode == 1, result.stderr
    assert "cell 4" in result.stderr and "line 7" in result.stderr and "random" in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_generated_project_imports_its_preprocessing_in_a_fresh_interpreter(
    converted: dict[str, Path], tmp_path: Path
) -> None:
    for name, out in converted.items():
        found = subprocess.run(
            [sys.executable, "-c", f"import {name}.preprocessing"],
            env={"PYTHONPATH": str(out / "src"), "PATH": ""},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0, f"{name}: {found.stderr}"


def test_the_generated_tests_pass(converted: dict[str, Path], tmp_path: Path) -> None:
    out = converted["passengers_features"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tests")],
        env={"PYTHONPATH": str(out / "src"), "PATH": str(Path(sys.executable).parent)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "test_preprocessing_imports_in_a_fresh_interpreter PASSED" in result.stdout or " passed" in result.stdout


def test_frozen_values_are_the_training_values(services: dict[str, TestClient]) -> None:
    notebook = notebook_namespace("passengers_features")
    shipped = importlib.import_module("passengers_features.preprocessing")
    raw_age = notebook["passengers"].iloc[:700]["Age"]
    assert shipped.FROZEN["train['Age'].median()"] == raw_age.median()
    edges = pd.qcut(notebook["passengers"].iloc[:700]["Fare"], 4, retbins=True)[1]
    assert np.array_equal(shipped.FROZEN["pd.qcut(dataset['Fare'], 4, labels=False) bins"], edges)

"""A fitted imputer whose input is a NumPy array (`imputer.fit(X_train.values)`), composed with the model.

tests/notebooks/imputer_on_array.ipynb makes dummies with pandas, splits, fits a SimpleImputer on
`X_train.values` and a random forest on its output (after comparing it with a ridge). Tagged with
`tag --write --model model` and converted once. The dummies are replayed on a request, so the
service takes the diabetes frame's own columns (raw rows, `sex` and `age_group` as text); the
shipped `preprocess(frame)` returns `frame_with_dummies.values`, the imputer is composed with the
model, and the service answers the raw test rows as the notebook's model answers them imputed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import generated_app, run_notebook_here

pytestmark = pytest.mark.slow

RAW_NUMBERS = ["age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("imputer_on_array")
    notebook = Path(shutil.copy(FIXTURES / "imputer_on_array.ipynb", folder / "imputer_on_array.ipynb"))
    tagged = run_cli("tag", notebook, "--model", "model", "--write")
    assert tagged.returncode == 0, tagged.stderr
    result = run_cli("convert", notebook, "-o", folder / "service", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads(next((folder / "service").glob("src/*/artifacts/manifest.json")).read_text())
    return {"notebook": notebook, "out": folder / "service", "manifest": manifest}


def test_the_imputer_on_the_array_is_composed_with_the_model(converted: dict[str, Any]) -> None:
    manifest = converted["manifest"]
    assert manifest["preprocessing"]["transformers"] == ["imputer"]
    assert manifest["preprocessing"]["proof"]["rows"] == 353  # every training row reproduced through the imputer
    features = manifest["input_schema"]["features"]
    assert manifest["input_schema"]["kind"] == "frame"
    assert [f["name"] for f in features] == [*RAW_NUMBERS[:1], "sex", *RAW_NUMBERS[1:], "age_group"]
    assert next(f for f in features if f["name"] == "age_group")["categories"] == ["middle", "senior", "young"]
    bmi = next(f for f in features if f["name"] == "bmi")
    assert bmi["nullable"] and not bmi.get("nullable_because")  # training had missing bmi values
    taken = {f["name"]: f.get("nullable_because") for f in features if f.get("nullable_because")}
    # a null age reaches the imputer as NaN; a null sex would become all-zero dummies (scored as
    # "female", the dropped first category), so it is refused, not "imputed"
    assert taken["age"] == "imputed by SimpleImputer" and "sex" not in taken and "age_group" not in taken


def test_the_service_answers_raw_array_rows_as_the_notebook_model(converted: dict[str, Any]) -> None:
    namespace = run_notebook_here(converted["notebook"])
    raw = namespace["df"].loc[namespace["X_test"].index].drop(columns="target")  # with the missing bmi values
    assert raw["bmi"].isna().any()
    expected = namespace["model"].predict(namespace["X_test_imputed"])
    records = json.loads(raw.to_json(orient="records"))
    with generated_app(converted["out"], "imputer_on_array") as client:
        response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-9)

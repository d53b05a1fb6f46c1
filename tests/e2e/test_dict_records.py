"""A model fitted on a list of dicts (a DictVectorizer first in its Pipeline) serves the dicts' keys as fields.

tests/notebooks/dict_records.ipynb turns a wine frame into `records = df[features].to_dict("records")`,
splits the list, compares two pipelines and fits `DictVectorizer -> StandardScaler -> LogisticRegression`.
Tagged with `tag --write --model model` and converted once. The dicts are made from the wine frame's
rows, so the service takes that frame's columns (those `features` selects) and the shipped
`preprocess(frame)` replays `df[features].to_dict("records")` on a request.
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

FIELDS = ["alcohol", "malic_acid", "color_intensity", "proline", "flavanoids", "region", "hue_level"]
FRAME_ORDER = ["alcohol", "malic_acid", "flavanoids", "color_intensity", "proline", "target", "region", "hue_level"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("dict_records")
    notebook = Path(shutil.copy(FIXTURES / "dict_records.ipynb", folder / "dict_records.ipynb"))
    tagged = run_cli("tag", notebook, "--model", "model", "--write")
    assert tagged.returncode == 0, tagged.stderr
    result = run_cli("convert", notebook, "-o", folder / "service", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads(next((folder / "service").glob("src/*/artifacts/manifest.json")).read_text())
    return {
        "notebook": notebook,
        "out": folder / "service",
        "manifest": manifest,
        "convert": result.stdout + result.stderr,
    }


def test_the_dicts_keys_are_the_fields_typed_from_the_training_dicts(converted: dict[str, Any]) -> None:
    schema = converted["manifest"]["input_schema"]
    assert schema["kind"] == "frame"
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    assert list(kinds) == [c for c in FRAME_ORDER if c in FIELDS]  # the raw frame's columns the dicts take
    assert kinds["alcohol"] == "number" and kinds["hue_level"] == "integer" and kinds["region"] == "string"
    assert next(f for f in schema["features"] if f["name"] == "region")["categories"] == ["cool", "mild", "warm"]
    assert converted["manifest"]["model"]["uses_preprocess_function"]
    assert "input: raw columns of `df`: 7 columns, `alcohol`, `malic_acid`, `flavanoids`," in converted["convert"]


def test_the_service_answers_the_test_dicts_as_the_notebook_model(converted: dict[str, Any]) -> None:
    namespace = run_notebook_here(converted["notebook"])
    records = namespace["test_records"]
    model = namespace["model"]
    with generated_app(converted["out"], "dict_records") as client:
        batch = client.post("/predict/batch", json={"records": records})
        one = client.post("/predict", json=records[0])
        refused = client.post("/predict", json={**records[0], "region": 3})
    assert batch.status_code == 200, batch.text
    assert batch.json()["predictions"] == model.predict(records).tolist()
    probabilities = [[p[str(c)] for c in model.classes_] for p in batch.json()["probabilities"]]
    np.testing.assert_allclose(probabilities, model.predict_proba(records), rtol=1e-12)
    assert one.status_code == 200 and one.json()["prediction"] == int(model.predict(records[:1])[0])
    assert refused.status_code == 422 and "region" in refused.json()["error"]

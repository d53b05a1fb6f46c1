"""Linear models as people fit them: a scaled LogisticRegression scored as plain sums, and a Ridge
after a cell that loops over the columns.

tests/notebooks/cancer_logit.ipynb fits `Pipeline([StandardScaler, LogisticRegression])` on the
breast-cancer frame scikit-learn ships, after comparing it with two ensembles: the service gets
`linear.py`, and a request's few rows are scored with the sums. tests/notebooks/diabetes_ridge.ipynb
renames columns in place, picks them with `[c for c in df.columns if c != 'target']` and fills
gaps with `{c: df[c].median() for c in features}`: the first is replayed on a request, the second
is training's, recorded whole. Each is tagged with `tag --write` alone and converted once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import generated_app, run_notebook_here

pytestmark = pytest.mark.slow


def tagged_and_converted(folder: Path, name: str) -> dict[str, Any]:
    notebook = Path(shutil.copy(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb"))
    tagged = run_cli("tag", notebook, "--write")
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    out = folder / "service"
    result = run_cli("convert", notebook, "-o", out, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    return {"notebook": notebook, "out": out, "manifest": manifest, "package": manifest["package"]}


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return tagged_and_converted(tmp_path_factory.mktemp("cancer_logit"), "cancer_logit")


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return tagged_and_converted(tmp_path_factory.mktemp("diabetes_ridge"), "diabetes_ridge")


def test_a_scaled_logistic_regression_is_served_as_its_proven_sums(cancer: dict[str, Any]) -> None:
    inference = cancer["manifest"]["inference"]
    assert inference["path"] == "compiled"
    assert inference["linear"]["link"] == "logistic"
    assert inference["linear"]["steps"] == ["StandardScaler", "LogisticRegression"]
    assert len(inference["linear"]["weights"][0]) == 30
    assert (cancer["out"] / "src" / cancer["package"] / "linear.py").is_file()

    namespace = run_notebook_here(cancer["notebook"])
    clf, rows = namespace["clf"], namespace["X_test"].iloc[:40]
    records = rows.to_dict("records")
    with generated_app(cancer["out"], cancer["package"]) as client:
        predictor = client.app.state.predictor
        assert predictor.linear is not None
        one_by_one = [client.post("/predict", json=record).json() for record in records]  # the sums
        batch = client.post("/predict/batch", json={"records": records}).json()  # 40 rows: ONNX Runtime
        refused = client.post("/predict", json={**records[0], "mean radius": None})
        scored_by_onnx = predictor.predict(records[:3], observe=False)
        predictor.linear = None  # the model itself on the same few rows
        scored_alone = predictor.predict(records[:3], observe=False)
    expected = clf.predict_proba(rows)
    assert [a["prediction"] for a in one_by_one] == clf.predict(rows).tolist() == batch["predictions"]
    sums = [[a["probabilities"][str(c)] for c in clf.classes_] for a in one_by_one]
    np.testing.assert_allclose(sums, expected, rtol=0, atol=inference["tolerance"])
    onnx = [[p[str(c)] for c in clf.classes_] for p in batch["probabilities"]]
    np.testing.assert_allclose(onnx, expected, rtol=0, atol=inference["tolerance"])
    assert scored_by_onnx[0] == scored_alone[0]
    np.testing.assert_allclose(
        [list(p.values()) for p in scored_by_onnx[1]], [list(p.values()) for p in scored_alone[1]], atol=1e-12
    )
    assert refused.status_code == 422 and "mean radius" in refused.json()["error"]


def test_a_comprehension_over_the_columns_is_replayed_and_a_dict_of_medians_is_trainings(
    diabetes: dict[str, Any],
) -> None:
    manifest = diabetes["manifest"]
    assert [f["name"] for f in manifest["input_schema"]["features"]][:6] == ["age", "sex", "bmi", "bp", "s1", "s2"]
    assert manifest["inference"].get("linear") is None  # replayed preprocessing comes first: ONNX Runtime scores
    source = (diabetes["out"] / "src" / diabetes["package"] / "preprocessing.py").read_text()
    assert "features = [c for c in df.columns if c != 'target']" in source
    assert 'FROZEN["{c: df[c].median() for c in features}"]' in source

    namespace = run_notebook_here(diabetes["notebook"])
    raw = load_diabetes(as_frame=True).frame.drop(columns="target").iloc[:25]  # the rows as the data loads
    expected = namespace["model"].predict(namespace["X"].iloc[:25])
    with generated_app(diabetes["out"], diabetes["package"]) as client:
        batch = client.post("/predict/batch", json={"records": raw.to_dict("records")})
        one = client.post("/predict", json=raw.iloc[0].to_dict())
    assert batch.status_code == 200, batch.text
    np.testing.assert_allclose(batch.json()["predictions"], expected, rtol=1e-12)
    assert one.status_code == 200 and one.json()["prediction"] == pytest.approx(expected[0], rel=1e-12)

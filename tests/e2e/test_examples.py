"""Every example notebook, end to end, as a user would do it.

convert (CLI) -> install the generated project in a fresh virtualenv -> its generated tests pass
-> it runs under uvicorn on 127.0.0.1 -> every golden row over HTTP gets the notebook's answer
-> a property-based fuzz of its own OpenAPI (schemathesis) finds no 5xx.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import EXAMPLES, ConvertExample
from tests.e2e.service import fresh_venv_with, fuzz, golden_of, running_service

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
TOLERANCE = 1e-9
# What the model's pickle needs and a compiled service without a preprocess function never imports.
UNPICKLING = ("sklearn", "scipy", "joblib", "pandas")


def assert_answer(actual: object, expected: object) -> None:
    if isinstance(expected, float):
        assert isinstance(actual, float)
        assert abs(actual - expected) <= TOLERANCE * max(1.0, abs(expected)), (actual, expected)
    else:
        assert actual == expected and type(actual) is type(expected), (actual, expected)


def assert_probabilities(actual: dict[str, float], expected: dict[str, float] | None) -> None:
    if expected is None:
        return
    assert actual.keys() == expected.keys()
    for label, p in expected.items():
        assert abs(actual[label] - p) <= TOLERANCE, (label, actual[label], p)


def test_there_are_four_examples() -> None:
    assert len(NOTEBOOKS) == 4, NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_example_converts_installs_passes_its_tests_and_serves_the_notebooks_answers(
    notebook: Path, tmp_path: Path, convert_example: ConvertExample
) -> None:
    out, converted = convert_example(notebook)
    assert converted.returncode == 0, converted.stderr
    assert "converted" in converted.stdout
    assert "cell 1/" in converted.stderr  # progress was shown

    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    package = manifest["package"]
    assert manifest["notebook"]["file"] == notebook.name
    kinds = {yaml.safe_load(d.read_text())["kind"] for d in (out / "deploy" / "kubernetes").rglob("*.yaml")}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "InferenceService"}
    lint = subprocess.run(
        [str(Path(__import__("sys").executable).parent / "ruff"), "check", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout

    python = fresh_venv_with(out, tmp_path / "venv")
    if manifest["inference"]["path"] == "compiled" and not manifest["model"]["uses_preprocess_function"]:
        # ONNX Runtime serves: what only unpickling the model needs is not installed (the lean image)
        found = subprocess.run(
            [str(python), "-c", f"import importlib.util as u; print([m for m in {UNPICKLING!r} if u.find_spec(m)])"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert found.stdout.strip() == "[]", found.stdout
    own_tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tests")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )
    assert own_tests.returncode == 0, own_tests.stdout[-4000:]
    assert " passed" in own_tests.stdout

    golden = golden_of(out)
    assert golden["examples"], "no golden examples recorded"
    with (
        running_service(python, package, tmp_path / "server.log") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/metadata").json()["version"] == manifest["version"]
        for example in golden["examples"]:
            response = http.post("/predict", json=example["input"])
            assert response.status_code == 200, response.text
            body = response.json()
            assert_answer(body["prediction"], example["prediction"])
            assert_probabilities(body.get("probabilities") or {}, example["probabilities"])
            assert body["model_version"] == manifest["version"]
        batch = http.post("/predict/batch", json={"records": [e["input"] for e in golden["examples"]]})
        assert batch.status_code == 200, batch.text
        for answer, example in zip(batch.json()["predictions"], golden["examples"], strict=True):
            assert_answer(answer, example["prediction"])
        bad = http.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400
        fuzzed = fuzz(url)
        assert fuzzed.returncode == 0, fuzzed.stdout[-6000:]

"""The inference path through real conversions: compiled where proved, scikit-learn with the reason where not.

The examples' services are installed and answered over HTTP in test_examples.py, on whichever
path was chosen; here: what the manifest, the pins and the conversion output say about it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from nb2prod import pipeline
from nb2prod.options import ConvertOptions
from nb2prod.run import capture
from tests.conftest import EXAMPLES, run_cli

pytestmark = pytest.mark.slow


def manifest_of(out: Path) -> dict:
    return json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())


def pinned(out: Path) -> dict[str, str]:
    dependencies = tomllib.loads((out / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(pin.split(";", 1)[0].split("==", 1) for pin in dependencies)


def test_custom_transformer_falls_back_to_scikit_learn_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "diabetes"
    result = run_cli("convert", EXAMPLES / "diabetes_custom.ipynb", "-o", out, timeout=600)
    assert result.returncode == 0, result.stderr
    inference = manifest_of(out)["inference"]
    assert inference["path"] == "sklearn"
    assert inference["reason"] == "custom transformer QuantileClipper cannot be converted to ONNX (no converter for it)"
    assert inference["file"] is None and inference["runtime"] is None
    assert "model.onnx" not in manifest_of(out)["artifacts"]
    assert not list(out.glob("src/*/artifacts/model.onnx"))
    assert "onnxruntime" not in pinned(out)
    assert "inference: scikit-learn: custom transformer QuantileClipper" in result.stdout + result.stderr


def test_compiled_model_is_shipped_with_its_proof_and_its_runtime_pinned(tmp_path: Path) -> None:
    out = tmp_path / "iris"
    result = run_cli("convert", EXAMPLES / "iris_array.ipynb", "-o", out, timeout=600)
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(out)
    inference = manifest["inference"]
    assert inference["path"] == "compiled", inference["reason"]
    assert inference["tolerance"] == capture.TOLERANCE
    assert 0 <= inference["max_difference"] <= inference["tolerance"]
    assert inference["rows_checked"] >= manifest["input_schema"]["training_rows"]
    onnx_file = next(out.glob("src/*/artifacts/model.onnx"))
    assert manifest["artifacts"]["model.onnx"] == "sha256:" + hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert inference["runtime"] == f"onnxruntime=={pinned(out)['onnxruntime']}"
    assert "inference: compiled (ONNX Runtime)" in result.stdout + result.stderr


def test_a_compiled_model_that_changes_the_answers_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # float32 inputs move the logistic regression's probabilities far beyond the tolerance.
    monkeypatch.setattr(capture, "COMPILE_PRECISION", "float32")
    out = tmp_path / "iris"
    pipeline.convert(ConvertOptions(notebook=EXAMPLES / "iris_array.ipynb", output=out))
    inference = manifest_of(out)["inference"]
    assert inference["path"] == "sklearn"
    assert "differ by" in inference["reason"]
    assert inference["max_difference"] > inference["tolerance"]
    assert not list(out.glob("src/*/artifacts/model.onnx"))
    assert "onnxruntime" not in pinned(out)


def test_no_compile_keeps_scikit_learn_and_verify_reproduces_it(tmp_path: Path) -> None:
    out = tmp_path / "iris"
    result = run_cli("convert", EXAMPLES / "iris_array.ipynb", "-o", out, "--no-compile", timeout=600)
    assert result.returncode == 0, result.stderr
    inference = manifest_of(out)["inference"]
    assert (inference["path"], inference["requested"]) == ("sklearn", "sklearn")
    assert inference["reason"] == "compiling was turned off (--no-compile)"
    assert inference["label_from_proba"] is True  # the lean path's proof is still made
    assert not list(out.glob("src/*/artifacts/model.onnx")) and "onnxruntime" not in pinned(out)
    assert "inference: scikit-learn: compiling was turned off" in result.stdout + result.stderr
    # verify re-runs the conversion the same way (without compiling), so every file comes out again
    checked = run_cli("verify", out, "--offline", timeout=600)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compiled_model_is_the_same_file_every_time(tmp_path: Path) -> None:
    digests = []
    for run in ("first", "second"):
        out = tmp_path / run
        result = run_cli("convert", EXAMPLES / "customers_mixed.ipynb", "-o", out, timeout=600)
        assert result.returncode == 0, result.stderr
        digests.append(manifest_of(out)["artifacts"]["model.onnx"])
    assert digests[0] == digests[1]

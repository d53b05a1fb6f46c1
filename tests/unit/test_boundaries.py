"""Data that crosses a process or package boundary is read in one place, with its version checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nb2prod.errors import CaptureError
from nb2prod.manifest import MANIFEST_VERSION, ManifestError, read_manifest
from nb2prod.run.captured import CAPTURE_VERSION, CaptureProblem, Task, load_report


def test_manifest_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"manifest_version": 99, "name": "x"}))
    with pytest.raises(ManifestError, match="manifest format 99"):
        read_manifest(path)


def test_manifest_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"manifest_version": MANIFEST_VERSION, "surprise": 1}))
    with pytest.raises(ManifestError, match="surprise"):
        read_manifest(path)


def test_capture_report_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "capture.json"
    path.write_text(json.dumps({"capture_version": CAPTURE_VERSION + 1}))
    with pytest.raises(CaptureError, match=f"format {CAPTURE_VERSION + 1}"):
        load_report(path, tmp_path / "nb.ipynb")


def test_capture_problem_is_typed(tmp_path: Path) -> None:
    path = tmp_path / "capture.json"
    path.write_text(json.dumps({"error": {"kind": "no_model", "message": "m", "details": {"candidates": {}}}}))
    problem = load_report(path, tmp_path / "nb.ipynb")
    assert isinstance(problem, CaptureProblem) and problem.kind == "no_model"


def test_task_is_decided_in_one_place() -> None:
    from nb2prod.run.captured import ModelInfo

    def info(is_classifier: bool, classes: tuple[object, ...] | None) -> ModelInfo:
        return ModelInfo(
            variable="m", class_path="x.Y", is_classifier=is_classifier, predict_methods=("predict",), classes=classes
        )

    assert info(True, (0, 1)).task is Task.CLASSIFICATION
    assert info(False, None).task is Task.REGRESSION
    # A classifier-like object without class labels is answered as a regression (numbers out).
    assert info(True, None).task is Task.REGRESSION

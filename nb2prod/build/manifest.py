"""Artifact stage: the model file plus `manifest.json`, with hashes and no timestamps.

Two conversions of the same notebook with the same parameters give byte-identical files: the
manifest is canonical JSON (sorted keys) built only from what the run determined.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb2prod._version import __version__
from nb2prod.run.capture import Capture
from nb2prod.build.extract import ExtractedCode
from nb2prod.notebook.spec import NotebookSpec
from nb2prod.build.schema import InputSchema

MODEL_FILE = "model.joblib"


@dataclass(frozen=True)
class Artifact:
    """Files of `src/<package>/artifacts/` and the manifest they are described by."""

    name: str
    package: str
    version: str
    model_bytes: bytes
    manifest: dict[str, Any]

    @property
    def manifest_bytes(self) -> bytes:
        return canonical_json(self.manifest)

    def files(self) -> dict[str, bytes]:
        return {MODEL_FILE: self.model_bytes, "manifest.json": self.manifest_bytes}


def canonical_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_file_hashes(spec: NotebookSpec, parameters: dict[str, Any]) -> dict[str, dict[str, str]]:
    """sha256 of every file a string parameter points to (relative to the notebook's folder)."""
    found = {}
    for name, value in sorted(parameters.items()):
        if not isinstance(value, str) or not value or len(value) > 4096:
            continue
        path = Path(value) if Path(value).is_absolute() else spec.path.parent / value
        if path.is_file():
            found[name] = {"path": value, "sha256": sha256(path.read_bytes())}
    return found


def build_artifact(
    *,
    spec: NotebookSpec,
    name: str,
    base_version: str,
    capture: Capture,
    schema: InputSchema,
    code: ExtractedCode,
    parameters: dict[str, Any],
    seed: int,
) -> Artifact:
    """Assemble the manifest. The version ends in a hash of model, code and schema."""
    model_bytes = capture.model_file.read_bytes()
    model_sha = sha256(model_bytes)
    build_sha = sha256(canonical_json([model_sha, code.preprocess.source, schema.json_schema()]))
    version = f"{base_version}+{build_sha[:12]}"
    package = name.replace("-", "_")
    manifest = {
        "name": name,
        "package": package,
        "version": version,
        "nb2prod_version": __version__,
        "notebook": {"file": spec.path.name, "content_hash": spec.content_hash},
        "parameters": {key: _jsonable(value) for key, value in sorted(parameters.items())},
        "data_files": data_file_hashes(spec, parameters),
        "seed": seed,
        "python": capture.python,
        "packages": dict(code.pins),
        "artifacts": {MODEL_FILE: model_sha},
        "model": {
            "class": capture.model.class_path,
            "variable": capture.model.variable,
            "task": "classification" if capture.model.is_classifier else "regression",
            "predict_methods": list(capture.model.predict_methods),
            "uses_preprocess_function": code.preprocess.defines_preprocess,
        },
        "input_schema": {
            "kind": schema.kind,
            "json_schema": schema.json_schema(),
            "features": schema.feature_stats(),
            "training_rows": capture.features.rows,
            "sample_variable": capture.features.variable,
        },
        "output": {"classes": list(capture.model.classes) if capture.model.classes is not None else None},
        "metrics": capture.metrics,
        "example": capture.golden[0].input if capture.golden else None,
    }
    return Artifact(name=name, package=package, version=version, model_bytes=model_bytes, manifest=manifest)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)

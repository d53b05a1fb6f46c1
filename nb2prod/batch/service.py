"""A converted folder's own code, imported here: its schema validates, its predictor scores.

Batch answers are the service's answers because they come from the same modules (`schemas.Record`,
`model.Predictor`), loaded from OUT/src with the same artifact checks the service makes at start.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nb2prod.errors import Nb2ProdError
from nb2prod.manifest import Manifest, read_manifest


class BatchError(Nb2ProdError):
    """Batch scoring cannot start or cannot go on: a missing column, a bad file, a service that won't load."""


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # integer, number, boolean, string, category


@dataclass(frozen=True)
class LoadedService:
    """What scoring needs from a converted folder."""

    manifest: Manifest
    features: tuple[Feature, ...]
    array: bool  # the model takes {"features": [...]}, not a record keyed by column
    record: type[Any]  # schemas.Record
    predictor: Any  # model.Predictor, loaded and verified
    prediction_error: type[Exception]  # model.PredictionError

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest.output.classes


def load_service(out: Path) -> LoadedService:
    found = sorted(out.glob("src/*/artifacts/manifest.json"))
    if not found:
        raise BatchError(
            f"{out} has no src/<package>/artifacts/manifest.json.", hint="Pass a folder written by `nb2prod convert`."
        )
    manifest = read_manifest(found[0])
    schemas, model = _import(out / "src", manifest.package)
    try:
        predictor = model.Predictor.load()
    except model.ArtifactError as err:
        raise BatchError(f"{out}: {err}", hint="Convert the notebook again.") from err
    features = tuple(Feature(str(f["name"]), str(f["kind"])) for f in manifest.input_schema.features)
    return LoadedService(
        manifest=manifest,
        features=features,
        array=manifest.input_schema.kind == "array",
        record=schemas.Record,
        predictor=predictor,
        prediction_error=model.PredictionError,
    )


def _import(src: Path, package: str) -> tuple[ModuleType, ModuleType]:
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    try:
        return importlib.import_module(f"{package}.schemas"), importlib.import_module(f"{package}.model")
    except ImportError as err:
        raise BatchError(
            f"cannot import the service's code from {src}: {err}.",
            hint=f"Install the service's dependencies here: pip install {src.parent}",
        ) from err

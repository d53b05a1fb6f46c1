"""A converted folder's own code, imported here: its `predict_frame` validates and scores.

Batch answers are the service's answers because they come from the same modules (`frame.py`, with
`schemas.Record` and `model.Predictor`), loaded from OUT/src with the same artifact checks the
service makes at start.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

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
    predict_frame: Callable[[pd.DataFrame], pd.DataFrame]  # frame.predict_frame, its model loaded

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest.output.classes

    @property
    def has_proba(self) -> bool:
        return self.classes is not None and "predict_proba" in self.manifest.model.predict_methods


@functools.cache
def load_service(out: Path) -> LoadedService:
    """The service in `out`, loaded once per process (a Dask worker loads it for its first partition)."""
    found = sorted(out.glob("src/*/artifacts/manifest.json"))
    if not found:
        raise BatchError(
            f"{out} has no src/<package>/artifacts/manifest.json.", hint="Pass a folder written by `nb2prod convert`."
        )
    manifest = read_manifest(found[0])
    frame, model = _import(out / "src", manifest.package)
    try:
        frame.predictor()
    except model.ArtifactError as err:
        raise BatchError(f"{out}: {err}", hint="Convert the notebook again.") from err
    features = tuple(Feature(str(f["name"]), str(f["kind"])) for f in manifest.input_schema.features)
    return LoadedService(
        manifest=manifest,
        features=features,
        array=manifest.input_schema.kind == "array",
        predict_frame=frame.predict_frame,
    )


def _import(src: Path, package: str) -> tuple[Any, Any]:
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    try:
        model = importlib.import_module(f"{package}.model")
        return importlib.import_module(f"{package}.frame"), model
    except ModuleNotFoundError as err:
        if err.name == f"{package}.frame":
            raise BatchError(
                f"{src.parent} was converted by an older nb2prod, without frame.py.",
                hint="Convert the notebook again with this nb2prod.",
            ) from err
        raise BatchError(
            f"cannot import the service's code from {src}: {err}.",
            hint=f"Install the service's dependencies here: pip install {src.parent}",
        ) from err
    except ImportError as err:
        raise BatchError(
            f"cannot import the service's code from {src}: {err}.",
            hint=f"Install the service's dependencies here: pip install {src.parent}",
        ) from err

"""Load the diabetes-custom model and turn records into predictions.

The model file is checked against the sha256 in `artifacts/manifest.json` before it is
unpickled; records are rebuilt into the columns and dtypes the notebook trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from importlib import resources
from typing import Any

import joblib
import numpy as np
import pandas as pd

from diabetes_custom import preprocessing

ARTIFACTS = resources.files("diabetes_custom").joinpath("artifacts")
MODEL_FILE = "model.joblib"


class ArtifactError(RuntimeError):
    """The packaged model is missing or does not match its manifest."""


class PredictionError(ValueError):
    """The model could not score the given records."""


def load_manifest() -> dict[str, Any]:
    return json.loads(ARTIFACTS.joinpath("manifest.json").read_text(encoding="utf-8"))


def load_verified_model(manifest: dict[str, Any]) -> Any:
    """Unpickle the model only if its bytes have the sha256 the manifest records."""
    try:
        data = ARTIFACTS.joinpath(MODEL_FILE).read_bytes()
    except FileNotFoundError as err:
        raise ArtifactError(f"{MODEL_FILE} is missing from {ARTIFACTS}; reinstall the package.") from err
    expected = manifest["artifacts"][MODEL_FILE]
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{MODEL_FILE} has digest {actual}, but the manifest expects {expected}: "
            "the artifact was changed or corrupted. Reinstall the package or convert the notebook again."
        )
    return joblib.load(io.BytesIO(data))


def plain(value: Any) -> Any:
    """A JSON-ready Python value for a NumPy scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class Predictor:
    """The loaded model with what it needs to score JSON records."""

    def __init__(self, manifest: dict[str, Any], model: Any) -> None:
        self.manifest = manifest
        self.model = model
        self.version: str = manifest["version"]
        self.features: list[dict[str, Any]] = manifest["input_schema"]["features"]
        classes = manifest["output"]["classes"]
        # Worked out once here, not on every request.
        self.labels: list[str] | None = [str(c) for c in classes] if classes is not None else None
        self.has_proba = classes is not None and "predict_proba" in manifest["model"]["predict_methods"]
        self.columns = [f["name"] for f in self.features]
        self.dtypes = {f["name"]: self._dtype(f) for f in self.features}

    @classmethod
    def load(cls) -> Predictor:
        manifest = load_manifest()
        return cls(manifest, load_verified_model(manifest))

    def warm_up(self) -> None:
        """Score the manifest's example once, so the first request is not the slow one."""
        example = self.manifest.get("example")
        if example is not None:
            self.predict([example])

    @staticmethod
    def _dtype(feature: dict[str, Any]) -> Any:
        """The pandas dtype the notebook's column had."""
        if feature["kind"] == "category":
            categories = pd.Index(feature["categories"], dtype=feature.get("category_dtype"))
            return pd.CategoricalDtype(categories, ordered=feature.get("ordered", False))
        return feature["dtype"]

    def to_inputs(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Records keyed by column name -> a DataFrame with the training columns and dtypes."""
        frame = pd.DataFrame.from_records(records, columns=self.columns)
        for feature in self.features:
            name = feature["name"]
            dtype = self.dtypes[name]
            if dtype == "object":
                # The notebook's missing strings were NaN (or None); JSON null must become the same.
                missing = None if feature.get("null_value") == "none" else np.nan
                values = [missing if v is None else v for v in frame[name]]
                frame[name] = pd.Series(values, dtype=object, index=frame.index)
            else:
                frame[name] = frame[name].astype(dtype)
        return frame

    def predict(self, records: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, float]] | None]:
        """Predictions (and class probabilities for classifiers) for `records`, in order."""
        inputs = self.to_inputs(records)
        try:
            inputs = preprocessing.preprocess(inputs)
            predictions = [plain(v) for v in np.asarray(self.model.predict(inputs))]
            probabilities = None
            if self.has_proba and self.labels is not None:
                rows = np.asarray(self.model.predict_proba(inputs))
                probabilities = [dict(zip(self.labels, map(float, row))) for row in rows]
        except (ValueError, TypeError, KeyError, IndexError) as err:
            raise PredictionError(f"the model could not score the input: {err}") from err
        return predictions, probabilities

"""Load the customers-mixed model and turn records into predictions.

Inference path: scikit-learn (the manifest's `inference.reason` says why the model was not
compiled). Ensembles predict with `n_jobs=1`: one row is cheaper than starting threads, and the
answers do not change.
Every model file is checked against the sha256 in `artifacts/manifest.json` before it is loaded.
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

from customers_mixed.metrics import Drift

ARTIFACTS = resources.files("customers_mixed").joinpath("artifacts")
MODEL_FILE = "model.joblib"


class ArtifactError(RuntimeError):
    """The packaged model is missing or does not match its manifest."""


class PredictionError(ValueError):
    """The model could not score the given records."""


def load_manifest() -> dict[str, Any]:
    return json.loads(ARTIFACTS.joinpath("manifest.json").read_text(encoding="utf-8"))


def verified_bytes(manifest: dict[str, Any]) -> bytes:
    """The model file's bytes, once every artifact the manifest lists has the digest it records."""
    contents = {name: _verified(name, expected) for name, expected in manifest["artifacts"].items()}
    return contents[MODEL_FILE]


def _verified(name: str, expected: str) -> bytes:
    try:
        data = ARTIFACTS.joinpath(name).read_bytes()
    except FileNotFoundError as err:
        raise ArtifactError(f"{name} is missing from {ARTIFACTS}; reinstall the package.") from err
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{name} has digest {actual}, but the manifest expects {expected}: "
            "the artifact was changed or corrupted. Reinstall the package or convert the notebook again."
        )
    return data


def load_verified_model(manifest: dict[str, Any]) -> Any:
    """Unpickle the verified model, with every `n_jobs` set to 1 for prediction."""
    model = joblib.load(io.BytesIO(verified_bytes(manifest)))
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        jobs = {key: 1 for key in get_params(deep=True) if key == "n_jobs" or key.endswith("__n_jobs")}
        if jobs:
            model.set_params(**jobs)
    return model


def plain(value: Any) -> Any:
    """A JSON-ready Python value for a NumPy scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class Predictor:
    """The loaded model with what it needs to score JSON records."""

    def __init__(self, manifest: dict[str, Any], model: Any, drift: Drift | None = None) -> None:
        self.manifest = manifest
        self.model = model
        self.drift = drift  # where the inputs' drift is counted (metrics.Drift), if anywhere
        self.version: str = manifest["version"]
        self.features: list[dict[str, Any]] = manifest["input_schema"]["features"]
        self.classes: list[Any] | None = manifest["output"]["classes"]
        # Worked out once here, not on every request.
        self.labels: list[str] | None = [str(c) for c in self.classes] if self.classes is not None else None
        self.has_proba = self.classes is not None and "predict_proba" in manifest["model"]["predict_methods"]
        self.columns = [f["name"] for f in self.features]
        self.dtypes = {f["name"]: self._dtype(f) for f in self.features}
        text = [f["name"] for f in self.features if self.dtypes[f["name"]] == "object"]
        # JSON null in a text column becomes what the notebook had there: None or NaN.
        self.none_columns = [name for name in text if self._feature(name).get("null_value") == "none"]
        self.nan_columns = [name for name in text if name not in self.none_columns]
        # Integer and boolean columns that take a null the training sample never had (the served pipeline
        # handles it): float64 and object when a null comes, as pandas has them.
        self.null_widened = {
            f["name"]: "float64" if f["kind"] == "integer" else "object"
            for f in self.features
            if f.get("nullable_because") and f["kind"] in ("integer", "boolean")
        }
        # The conversion proved on the training sample that classes_[argmax(predict_proba)] is predict's
        # answer, so one predict_proba call gives both.
        self.one_call = self.has_proba and bool(manifest["inference"]["label_from_proba"])
        self.class_array = np.array(self.classes or [], dtype=object)

    @classmethod
    def load(cls, drift: Drift | None = None) -> Predictor:
        manifest = load_manifest()
        return cls(manifest, load_verified_model(manifest), drift)

    def warm_up(self) -> None:
        """Score the manifest's example once, so the first request is not the slow one."""
        example = self.manifest.get("example")
        if example is not None:
            self.predict([example], observe=False)

    def runs_inline(self, rows: int) -> bool:
        """Whether scoring `rows` records is quick enough to do without leaving the event loop."""
        return False

    def _feature(self, name: str) -> dict[str, Any]:
        return next(f for f in self.features if f["name"] == name)

    @staticmethod
    def _dtype(feature: dict[str, Any]) -> Any:
        """The pandas dtype the notebook's column had."""
        if feature["kind"] == "category":
            categories = pd.Index(feature["categories"], dtype=feature.get("category_dtype"))
            return pd.CategoricalDtype(categories, ordered=feature.get("ordered", False))
        return feature["dtype"]

    def to_inputs(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Records keyed by column name -> a DataFrame with the training columns and dtypes, built once."""
        return self.typed(pd.DataFrame.from_records(records, columns=self.columns))

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Valid rows with the training columns -> the training dtypes, and nulls as the notebook had them."""
        dtypes = self.dtypes
        if self.null_widened:
            nulls = frame[list(self.null_widened)].isna().any()
            dtypes = {**dtypes, **{name: self.null_widened[name] for name in nulls.index[nulls]}}
        frame = frame[self.columns].astype(dtypes)
        for name, dtype in self.null_widened.items():  # a boolean column's null as the notebook had it: NaN
            if dtype == "object" and dtypes[name] == "object":
                frame[name] = frame[name].where(frame[name].notna(), np.nan)
        if self.nan_columns:
            frame[self.nan_columns] = frame[self.nan_columns].where(frame[self.nan_columns].notna(), np.nan)
        if self.none_columns:
            text = frame[self.none_columns].astype(object)
            frame[self.none_columns] = text.where(text.notna(), None)
        return frame

    def frame_inputs(self, frame: Any) -> Any:
        """What `score` takes, for a DataFrame of valid rows with the training columns (see frame.py)."""
        return self.typed(frame)

    def predict(
        self, records: list[dict[str, Any]], observe: bool = True
    ) -> tuple[list[Any], list[dict[str, float]] | None]:
        """Predictions (and class probabilities for classifiers) for `records`, in order: one model call;
        `observe`: count their drift."""
        inputs = self.to_inputs(records)
        if observe and self.drift is not None:
            self.drift.add(records)
        labels, rows = self.score(inputs)
        probabilities = None
        if rows is not None and self.labels is not None:
            probabilities = [dict(zip(self.labels, row)) for row in rows.tolist()]
        return [plain(value) for value in labels.tolist()], probabilities

    def score(self, inputs: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (and class probabilities, a row per input row) for what `to_inputs` or `frame_inputs`
        built, in one model call where the conversion proved it gives predict's labels."""
        try:
            if self.one_call:
                rows = np.asarray(self.model.predict_proba(inputs))
                return self.class_array[rows.argmax(axis=1)], rows
            labels = np.asarray(self.model.predict(inputs))
            rows = np.asarray(self.model.predict_proba(inputs)) if self.has_proba else None
        except ValueError as err:  # the input's fault (see errors.py); anything else is the service's
            raise PredictionError(f"the model could not score the input: {err}") from err
        return labels, rows

"""Load the iris-array model and turn records into predictions.

Inference path: compiled. The conversion turned the notebook's model into `model.onnx`
and proved that ONNX Runtime gives its labels, and its answers within the tolerance in
`manifest.json` (`inference`), on the training sample and on every golden row. The service scores
with that file (model.joblib is kept beside it, unused here, for batch scoring and audits).
The model is also a sum per output: a request's few rows are scored with those sums (`linear.py`),
proven on the same rows.
Every model file is checked against the sha256 in `artifacts/manifest.json` before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from typing import Any

import numpy as np
import onnxruntime as ort

from iris_array.linear import Linear
from iris_array.metrics import Drift

ARTIFACTS = resources.files("iris_array").joinpath("artifacts")
MODEL_FILE = "model.onnx"
# A batch up to this size is scored on the event loop: it takes less time than a hop to a thread.
INLINE_ROWS = 16


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


def load_verified_model(manifest: dict[str, Any]) -> ort.InferenceSession:
    """An ONNX Runtime session on one thread: one request's rows are too few to share out."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(verified_bytes(manifest), options, providers=["CPUExecutionProvider"])


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
        self.outputs = [output.name for output in model.get_outputs()]
        self.run_options = ort.RunOptions()  # made once: without them, ONNX Runtime builds them on each run
        layout = manifest["inference"]["layout"]
        self.input_name: str = layout["input"]
        # skl2onnx answers text labels as text and every other label as an integer.
        texts = self.classes is not None and all(isinstance(c, str) for c in self.classes)
        self.class_of = {(str(c) if texts else int(c)): c for c in self.classes or []}
        # A request's few rows: plain sums (None: the ONNX file scores every row).
        self.linear: Linear | None = Linear(manifest["inference"]["linear"], self.classes)

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
        return rows <= INLINE_ROWS

    def to_inputs(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Records `{"features": [...]}` -> a 2-D array with the training dtype (JSON null -> NaN)."""
        rows = [[np.nan if v is None else v for v in record["features"]] for record in records]
        return np.asarray(rows, dtype="float64")

    def feed(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """The compiled model's inputs, built as the conversion built them when it proved the model."""
        return {self.input_name: self.to_inputs(records).astype("float64", copy=False)}

    def frame_inputs(self, frame: Any) -> dict[str, np.ndarray]:
        """`feed` for a DataFrame of valid rows with the training columns (see frame.py)."""
        values = frame.to_numpy(dtype="float64", na_value=np.nan)
        return {self.input_name: values.astype("float64", copy=False)}

    def predict(
        self, records: list[dict[str, Any]], observe: bool = True
    ) -> tuple[list[Any], list[dict[str, float]] | None]:
        """Predictions (and class probabilities for classifiers) for `records`, in order; `observe`:
        count their drift."""
        if self.linear is not None and len(records) <= INLINE_ROWS:
            try:
                answers = self.linear.predict([record["features"] for record in records])
            except (TypeError, ZeroDivisionError):  # a null, or sums off every class: ONNX Runtime answers it
                pass
            else:
                if observe and self.drift is not None:
                    self.drift.add(records)
                return answers
        try:
            feed = self.feed(records)
        except ValueError as err:  # the input's fault (see errors.py); anything else is the service's
            raise PredictionError(f"the model could not score the input: {err}") from err
        if observe and self.drift is not None:
            self.drift.add(records, feed[self.input_name])
        labels, rows = self.score(feed)
        probabilities = None
        if rows is not None and self.labels is not None:
            probabilities = [dict(zip(self.labels, row)) for row in rows.tolist()]
        return [plain(value) for value in labels.tolist()], probabilities

    def score(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (and class probabilities, a row per input row) for the model's inputs, in one run."""
        try:
            # The session's own run: `InferenceSession.run` checks its arguments in Python on every call
            # (graph capture, input names), which costs as much as scoring a row; the feed always holds
            # the inputs the model was proven with. A stand-in for the model (a test's) is called as it is.
            session = getattr(self.model, "_sess", self.model)
            outputs = session.run(self.outputs, feed, self.run_options)
        except ValueError as err:  # the input's fault (see errors.py); anything else is the service's
            raise PredictionError(f"the model could not score the input: {err}") from err
        labels = np.array([self.class_of[label] for label in outputs[0].tolist()], dtype=object)
        return labels, (np.asarray(outputs[1]) if self.has_proba else None)

"""`capture.json`, the kernel's report to the host, as one versioned pydantic model.

The kernel side (`nb2prod.run.kernel`) writes plain JSON because it cannot import pydantic;
this module is the one place that reads it. The version is checked on read: a report from
another capture format is refused rather than half-understood.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nb2prod.errors import CaptureError

# Also in nb2prod.run.kernel.common (the writer); a unit test keeps the two equal.
CAPTURE_VERSION = 2

FeatureKind = Literal["frame", "array"]
ColumnKind = Literal["integer", "number", "boolean", "string", "category"]


class Task(enum.StrEnum):
    """What the model predicts. Decided once, here, for the manifest, the README and the templates."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class _Reported(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Column(_Reported):
    """One input feature as seen in the training sample."""

    name: str
    dtype: str
    kind: ColumnKind
    nullable: bool
    minimum: float | int | None = Field(default=None, alias="min")
    maximum: float | int | None = Field(default=None, alias="max")
    categories: tuple[Any, ...] | None = None
    ordered: bool = False
    null_value: Literal["nan", "none"] = "nan"  # how the notebook wrote a missing string
    # Why a column without nulls in training takes one: the served pipeline imputes it, or the model takes NaN.
    nullable_because: str | None = None
    category_dtype: str | None = None
    # A text column's values are reported only when few; otherwise it is free text, counted.
    free_text: bool = False
    distinct_count: int | None = None
    # The training sample's profile, for `nb2prod diff` (None in captures made before it).
    null_count: int | None = None
    quantiles: tuple[float, ...] | None = None  # percentiles 0..100 of a number column
    frequencies: tuple[tuple[Any, int], ...] | None = None  # (value, count) of listed values


class FeatureSample(_Reported):
    kind: FeatureKind
    variable: str
    rows: int
    columns: tuple[Column, ...]
    array_dtype: str | None = Field(default=None, alias="dtype")


class ModelInfo(_Reported):
    variable: str
    class_path: str = Field(alias="class")
    is_classifier: bool
    predict_methods: tuple[str, ...]
    classes: tuple[Any, ...] | None

    @property
    def task(self) -> Task:
        """A classifier is served as one only when it has class labels to answer with."""
        return Task.CLASSIFICATION if self.is_classifier and self.classes is not None else Task.REGRESSION


class GoldenExample(_Reported):
    row: int
    input: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None


class InputColumn(_Reported):
    """One model input column fed to the compiled model as its own [N, 1] tensor."""

    name: str
    type: Literal["double", "string"]
    input: str  # the ONNX input's name (skl2onnx may rename, e.g. a space becomes `_`)


class InputLayout(_Reported):
    """How the service feeds the compiled model: one [N, F] matrix, or one tensor per column."""

    kind: Literal["matrix", "columns"]
    dtype: Literal["float64", "float32"]
    input: str | None = None
    columns: tuple[InputColumn, ...] | None = None


class LinearForm(_Reported):
    """The compiled model as plain sums, proven with them: per output, an intercept plus one weight per
    input (scalers folded in), then `link`: logistic, softmax, one-vs-rest or identity (a regression).
    `steps`: the model's steps it was made from."""

    link: Literal["logistic", "softmax", "one-vs-rest", "identity"]
    weights: tuple[tuple[float, ...], ...]
    intercepts: tuple[float, ...]
    steps: tuple[str, ...]
    max_difference: float


class InferenceReport(_Reported):
    """Which inference path the service takes, why, and the proof behind it."""

    path: Literal["compiled", "sklearn"]
    reason: str
    tolerance: float
    max_difference: float | None
    rows_checked: int
    file: str | None = None
    layout: InputLayout | None = None
    # `classes_[argmax(predict_proba)] == predict` on every checked row: the scikit-learn path
    # may then answer both from one predict_proba call.
    label_from_proba: bool = False
    # "sklearn" when the user turned compiling off (`--no-compile`); "auto" lets the proof choose.
    requested: Literal["auto", "sklearn"] = "auto"
    # On the scikit-learn path: every proof row got the same answer alone as among the others, so
    # concurrent requests may be scored in one call.
    rows_independent: bool = False
    # On the compiled path: the model as plain sums (a scaled linear model), which the service scores
    # a request's few rows with; None for every other model.
    linear: LinearForm | None = None


NOT_REPORTED = InferenceReport(
    path="sklearn", reason="the capture step did not report one", tolerance=0.0, max_difference=None, rows_checked=0
)


class PreprocessingProof(_Reported):
    """The shipped preprocessing on the raw training rows reproduced the fit input."""

    rows: int  # checked in one batch
    single_rows: int  # checked one row at a time
    max_difference: float  # largest relative float difference seen
    tolerance: float


class PreprocessingReport(_Reported):
    """How raw records become the model's input, and the proof that it is the notebook's way."""

    method: Literal["model", "function", "replayed"]
    raw_variable: str | None = None
    transformers: tuple[str, ...] = ()  # fitted before `fit`, composed with the model
    source: str | None = None  # the preprocessing module as shipped (frozen values filled in)
    frozen: tuple[str, ...] = ()  # keys of the recorded training values
    label_columns: tuple[str, ...] = ()  # in the raw frame, never in a request
    unused_columns: tuple[str, ...] = ()  # in the raw frame, never read by the replayed cells
    records: bool = False  # fitted on a list of dicts: the shipped preprocess(frame) rebuilds them
    proof: PreprocessingProof | None = None


class DataRead(_Reported):
    """A file the run opened read-only as data (noted by the kernel's audit hook, hashed after the
    run): relative to the notebook's folder with `/` when inside it, else absolute."""

    path: str
    size: int
    sha256: str  # "sha256:<hex>"


class CaptureProblem(_Reported):
    """A problem the kernel found and reported instead of raising (phrased by `run.problems`)."""

    kind: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class CaptureReport(_Reported):
    """Everything the kernel reports on success."""

    capture_version: int
    model: ModelInfo
    features: FeatureSample
    golden: tuple[GoldenExample, ...]
    inference: InferenceReport = NOT_REPORTED
    preprocessing: PreprocessingReport = PreprocessingReport(method="model")
    metrics: dict[str, float]
    # what was left out of `metrics` and why: {"": ...} for the whole variable, else per key
    metrics_problems: dict[str, str] = Field(default_factory=dict)
    distributions: dict[str, str]
    # what the service needs at run time, when that is less (the compiled path); else `distributions`
    serve_distributions: dict[str, str] | None = None
    python: str
    model_file: str
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # sorted by path; empty in captures stored before the kernel recorded reads
    data_reads: tuple[DataRead, ...] = ()


class Capture(BaseModel):
    """A successful capture, with the model file's path resolved on the host."""

    model_config = ConfigDict(frozen=True)

    model_file: Path
    report: CaptureReport

    @property
    def model(self) -> ModelInfo:
        return self.report.model

    @property
    def features(self) -> FeatureSample:
        return self.report.features

    @property
    def golden(self) -> tuple[GoldenExample, ...]:
        return self.report.golden

    @property
    def metrics(self) -> dict[str, float]:
        return self.report.metrics

    @property
    def inference(self) -> InferenceReport:
        return self.report.inference

    @property
    def onnx_file(self) -> Path | None:
        """The compiled model's file, when the compiled path was chosen."""
        name = self.report.inference.file
        return self.model_file.with_name(name) if name and self.report.inference.path == "compiled" else None

    @property
    def distributions(self) -> dict[str, str]:
        return self.report.distributions

    @property
    def serve_distributions(self) -> dict[str, str]:
        """The distributions the service imports at run time (`distributions` but for the compiled path)."""
        served = self.report.serve_distributions
        return self.report.distributions if served is None else served

    @property
    def python(self) -> str:
        return self.report.python

    @property
    def notes(self) -> tuple[str, ...]:
        return self.report.notes


def load_report(path: Path, notebook: Path) -> CaptureReport | CaptureProblem:
    """Read `capture.json`: the report, or the problem the kernel reported."""
    text = path.read_text(encoding="utf-8")
    try:
        raw = CaptureEnvelope.model_validate_json(text)
        if raw.error is not None:
            return raw.error
        if raw.capture_version != CAPTURE_VERSION:
            raise CaptureError(
                f"{notebook.name}: the capture step reported format {raw.capture_version}, "
                f"but this nb2prod reads format {CAPTURE_VERSION}.",
                hint="The kernel ran capture code from another nb2prod version; reinstall nb2prod and convert again.",
                notebook=notebook,
            )
        return CaptureReport.model_validate_json(text)
    except ValidationError as err:
        raise CaptureError(
            f"{notebook.name}: the capture step's report is not understood: {err.errors()[0]['msg']} "
            f"at {'.'.join(str(p) for p in err.errors()[0]['loc'])}.",
            hint="This is a bug in nb2prod; run with --debug and report it.",
            notebook=notebook,
        ) from err


class CaptureEnvelope(_Reported):
    """The two shapes of `capture.json`: a report with a version, or an error."""

    capture_version: int | None = None
    error: CaptureProblem | None = None

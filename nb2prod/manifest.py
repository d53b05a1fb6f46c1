"""`manifest.json`, what a conversion promises about its service, as one versioned pydantic model.

The generate stage writes it; `verify` and batch scoring read it with `read_manifest`, which checks
the version. The generated service reads the same file as plain JSON (it never imports
nb2prod), so field names here are a contract with the templates. Every digest names its
algorithm (`"sha256:<hex>"`) and nothing in it depends on the time of the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nb2prod.errors import Nb2ProdError

# 2: the notebook's content hash names its algorithm; `data_files` lists the files the run read
# (noted in the kernel, with size); `provenance` (notebook path, per-cell hashes, git) is new.
MANIFEST_VERSION = 2


def digest(data: bytes) -> str:
    """The manifest's way of writing a content hash."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class NotebookRecord(_Part):
    """The notebook's file name and the digest of its cells (type, source, tags; never outputs)."""

    file: str
    content_hash: str


class DataFile(_Part):
    """A file the run read (noted by the kernel) or a string parameter names, hashed after the run.

    `path`: relative to the notebook's folder (with `/`) when inside it, else absolute.
    `parameters`: the string parameters whose value names this file (often none)."""

    path: str
    size: int
    sha256: str
    parameters: list[str]


class CellRecord(_Part):
    """A cell that ran: its index among all the notebook's cells, its roles, its source's digest."""

    index: int
    roles: list[str]
    sha256: str


class GitRecord(_Part):
    """The HEAD commit of the notebook's git work tree (None before the first commit); `dirty`:
    a tracked file has uncommitted changes, or the notebook or a data file the run read is untracked."""

    commit: str | None
    dirty: bool


class ProvenanceRecord(_Part):
    """Where the notebook came from: its path relative to OUT, the cells that ran, and git
    (None when git is missing or the notebook is not in a work tree)."""

    notebook_path: str
    cells: list[CellRecord]
    git: GitRecord | None


class ModelRecord(_Part):
    class_path: str = Field(alias="class")
    variable: str
    task: Literal["classification", "regression"]
    file: str
    predict_methods: list[str]
    uses_preprocess_function: bool


class InputSchemaRecord(_Part):
    kind: Literal["frame", "array"]
    json_schema: dict[str, Any]
    features: list[dict[str, Any]]
    training_rows: int
    sample_variable: str


class InferenceRecord(_Part):
    """The inference path the service takes and the proof behind it.

    `compiled`: the ONNX file in `file` gave the notebook's labels, and answers within `tolerance`
    (largest |compiled - scikit-learn| / max(1, |scikit-learn|) seen: `max_difference`), on
    `rows_checked` rows; `layout` says how the service feeds it. `sklearn`: `reason` says why not.
    `label_from_proba`: on the same rows, the label was `classes_[argmax(predict_proba)]`, so the
    scikit-learn path may answer both from one call. `requested`: "sklearn" when the conversion
    was told not to compile (`--no-compile`), "auto" when the proof chose. `rows_independent` (the
    scikit-learn path): proof rows scored one at a time got the answers they got scored together,
    so the service may score concurrent requests in one model call. `linear` (the compiled path, a
    scaled linear model): the same model as plain sums, proven on the same rows; the service scores a
    request's few rows with them (`linear.py`) and larger batches with the ONNX file.
    """

    path: Literal["compiled", "sklearn"]
    reason: str
    runtime: str | None
    file: str | None
    tolerance: float
    max_difference: float | None
    rows_checked: int
    layout: dict[str, Any] | None
    label_from_proba: bool
    requested: Literal["auto", "sklearn"] = "auto"
    rows_independent: bool = False
    linear: dict[str, Any] | None = None


class ProofRecord(_Part):
    """The shipped preprocessing, run on the raw training rows, reproduced the model's fit input:
    `rows` in one batch, `single_rows` one at a time, floats within `tolerance` (relative)."""

    rows: int
    single_rows: int
    max_difference: float
    tolerance: float


class PreprocessingRecord(_Part):
    """How the service turns raw records into the model's input.

    `method`: `model` (inside the model, e.g. a Pipeline), `function` (a hand-written
    `preprocess(frame)`) or `replayed` (preprocess cells replayed as a generated `preprocess`).
    `transformers`: fitted transformers the notebook applied before `fit`, composed with the model.
    `frozen`: the training values the module reads instead of computing them on a request.
    `proof`: None when records go to the model unchanged.
    """

    method: Literal["model", "function", "replayed"]
    raw_variable: str | None
    transformers: list[str]
    frozen: list[str]
    label_columns: list[str]
    proof: ProofRecord | None


class ServiceInputRecord(_Part):
    """What a request carries: `raw` (the data file's columns) or `engineered` (the model's fit
    input as the notebook built it). `reason` says, with its cell and line, why not the raw data."""

    kind: Literal["raw", "engineered"]
    description: str  # "raw columns of `df` from cars.csv", "engineered columns of `X_train`: ..."
    reason: str | None = None
    fix: str | None = None


class TargetTransformRecord(_Part):
    """The transform on the label the model learned (`np.log1p(df['price'])`): answers are on its scale."""

    expression: str
    cell: int  # 1-based, as people count cells
    line: int
    inverse: str | None  # how to undo it on an answer, e.g. "np.expm1(prediction)"


class OutputRecord(_Part):
    classes: list[Any] | None


class FeatureProfile(_Part):
    """One feature of the training sample, for `nb2prod diff`: nulls, the percentiles 0..100 of a
    number column, the count of each listed value of a category, boolean or low-cardinality text."""

    name: str
    kind: str
    rows: int
    null_count: int
    quantiles: list[float] | None = None
    frequencies: list[tuple[Any, int]] | None = None


class HistoryRecord(_Part):
    """The version this one was checked against with `--compatible-with`, and what changed."""

    checked_against: str
    breaking: int
    changes: list[str]
    canary_percent: int | None = None


class Manifest(_Part):
    """The whole manifest. Unknown fields are refused, so a typo cannot pass silently."""

    manifest_version: int = MANIFEST_VERSION
    name: str
    package: str
    version: str
    nb2prod_version: str
    notebook: NotebookRecord
    provenance: ProvenanceRecord
    parameters: dict[str, Any]
    data_files: list[DataFile]
    seed: int
    python: str
    packages: dict[str, str]
    artifacts: dict[str, str]
    model: ModelRecord
    inference: InferenceRecord
    input_schema: InputSchemaRecord
    output: OutputRecord
    metrics: dict[str, float]
    example: dict[str, Any] | None
    preprocessing: PreprocessingRecord | None = None
    # Both new in format 2's lifetime and optional: older manifests have neither.
    training_data: list[FeatureProfile] | None = None
    history: HistoryRecord | None = None
    requirements: list[str] = []  # the --require checks the metrics passed, e.g. 'accuracy>=0.9'
    # Optional, newer: what a request carries, and the label's scale.
    service_input: ServiceInputRecord | None = None
    target_transform: TargetTransformRecord | None = None

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, fixed indent, so equal manifests are equal bytes."""
        return canonical_json(self.model_dump(mode="json", by_alias=True))


def canonical_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


class ManifestError(Nb2ProdError):
    """A manifest file is missing, of another version, or not a manifest."""


def read_manifest(path: Path) -> Manifest:
    """Read and check `manifest.json`; raise ManifestError naming the file and the problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ManifestError(f"{path}: cannot read the manifest: {err}", hint="Convert the notebook again.") from err
    version = raw.get("manifest_version") if isinstance(raw, dict) else None
    if version != MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: manifest format {version!r}, but this nb2prod reads format {MANIFEST_VERSION}.",
            hint="Use the nb2prod version that wrote it, or convert the notebook again.",
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as err:
        # An unknown field usually explains the rest (a typo, or a newer writer): name it first.
        first = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(f"{path}: {where}: {first['msg']}", hint="Convert the notebook again.") from err

"""The diff's typed results: one pydantic model per section, and the whole report.

The JSON form (`nb2prod diff --format json`) is this model dumped; `schema.json` beside this
module is its JSON Schema, shipped with nb2prod so consumers can validate it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

REPORT_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("schema.json")

Severity = Literal["breaking", "compatible"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApiChange(_Part):
    """One change of the service's contract. `where`: `input`, `output`, `task` or `v2`;
    `field`: the input field, class or v2 tensor it is about (None for the task)."""

    severity: Severity
    where: Literal["input", "output", "task", "v2"]
    field: str | None
    change: str  # a short kind: removed, added, renamed, retyped, made required, category removed, ...
    detail: str
    value: Any = None  # the category or class, for category and class changes


class ApiSection(_Part):
    changes: list[ApiChange]

    @property
    def breaking(self) -> list[ApiChange]:
        return [c for c in self.changes if c.severity == "breaking"]


class ClassChange(_Part):
    """How much one class's probability (or, for a regressor, the value) moved between versions."""

    name: str
    largest: float
    mean: float


class ChangedRow(_Part):
    row: int
    change: float
    old: Any
    new: Any


class RowSetAnswers(_Part):
    """Both versions' answers on one set of rows: OLD's golden rows, NEW's, or `--rows FILE`."""

    rows: str  # what the rows are
    scored: int
    changed: int  # predictions (labels, or values beyond 1e-9 relative) that differ
    classes: list[ClassChange]
    most_changed: list[ChangedRow]
    problem: str | None = None  # why this set could not be scored by one of the versions


class AnswersSection(_Part):
    sets: list[RowSetAnswers]
    scored: int
    changed: int
    changed_fraction: float
    max_changed: float | None  # --max-changed, when given
    exceeded: bool


class FeatureShift(_Part):
    """The shift of one feature between the two training samples. Numbers: `psi` and the change
    of min, max and null share; listed values: new and vanished values and frequency changes."""

    name: str
    kind: str
    psi: float | None = None
    old_min: float | None = None
    new_min: float | None = None
    old_max: float | None = None
    new_max: float | None = None
    old_null_share: float
    new_null_share: float
    new_values: list[Any] = []
    vanished_values: list[Any] = []
    frequency_changes: dict[str, float] = {}  # value -> new share - old share
    flagged: list[str] = []  # why this shift is large, with the threshold


class TrainingDataSection(_Part):
    old_rows: int | None
    new_rows: int | None
    thresholds: dict[str, float]
    features: list[FeatureShift]
    problem: str | None = None  # a manifest that holds no training profile


class MetricChange(_Part):
    name: str
    old: float | None
    new: float | None
    change: float | None


class DataFileChange(_Part):
    path: str
    status: Literal["unchanged", "changed", "added", "removed"]


class PackageChange(_Part):
    name: str
    old: str | None
    new: str | None


class LineageSection(_Part):
    old_notebook_hash: str
    new_notebook_hash: str
    notebook_changed: bool
    data_files: list[DataFileChange]
    packages: list[PackageChange]
    old_commit: str | None
    new_commit: str | None
    parameters: dict[str, list[Any]]  # name -> [old, new], for parameters that differ


class VersionInfo(_Part):
    folder: str
    name: str
    version: str


class DiffReport(_Part):
    report_version: int = REPORT_VERSION
    old: VersionInfo
    new: VersionInfo
    api: ApiSection
    answers: AnswersSection | None
    training_data: TrainingDataSection
    metrics: list[MetricChange]
    lineage: LineageSection
    breaking: bool  # an API break, or --max-changed exceeded: `nb2prod diff` exits 7

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def json_schema() -> dict[str, Any]:
    """The report's JSON Schema, as pydantic derives it (the shipped `schema.json` must equal it)."""
    schema = DiffReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "nb2prod diff report"
    return schema

"""All options of one conversion, validated once at the edge (CLI flags, later server config)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nb2prod.errors import OptionsError
from nb2prod.manifest import HistoryRecord

REQUIREMENT = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.-]*)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$"
)
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class MetricRequirement(BaseModel):
    """`--require 'accuracy>=0.9'`: the conversion fails unless the notebook's metric passes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> MetricRequirement:
        match = REQUIREMENT.match(text)
        if match is None:
            raise OptionsError(
                f"--require {text!r}: not a metric requirement.",
                hint="Write it as METRIC>=NUMBER, e.g. --require 'accuracy>=0.9' (also <=, >, <, ==).",
            )
        return cls(metric=match["metric"], op=match["op"], value=float(match["value"]))

    def holds(self, actual: float) -> bool:
        checks = {
            ">=": actual >= self.value,
            "<=": actual <= self.value,
            ">": actual > self.value,
            "<": actual < self.value,
            "==": actual == self.value,
        }
        return checks[self.op]

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


class ConvertOptions(BaseModel):
    """Everything `convert` needs. Unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notebook: Path
    output: Path | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    model: str | None = None
    features: str | None = None
    raw: str | None = Field(default=None, description="the raw frame replayed preprocess cells start from")
    requirements: tuple[MetricRequirement, ...] = ()
    seed: int = 0
    compile_model: bool = Field(default=True, description="try the compiled (ONNX) inference path")
    kernel: str | None = None
    timeout: int = Field(default=600, gt=0, description="seconds one cell may run")
    force: bool = False
    discard_changes: bool = Field(default=False, description="with force: also delete files the user added")
    version: str | None = None
    compatible_with: Path | None = Field(
        default=None, description="an earlier conversion's folder: refuse a version that would break its clients"
    )
    canary: int | None = Field(
        default=None, ge=0, le=100, description="with compatible_with: the KServe traffic share of the new version"
    )
    history: HistoryRecord | None = Field(
        default=None, description="a check recorded by an earlier conversion, replayed as it was (verify)"
    )

    @model_validator(mode="after")
    def _canary_needs_a_base(self) -> ConvertOptions:
        if self.canary is not None and self.compatible_with is None and self.history is None:
            raise ValueError("--canary needs --compatible-with OLD: a canary shares traffic with the version before")
        return self

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError(
                f"--name {value!r}: use lowercase letters, digits and single dashes, starting with a letter"
            )
        return value

    @field_validator("model", "features", "raw")
    @classmethod
    def _valid_variable(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$", value):
            raise ValueError(
                f"{value!r} is not a variable name (dotted attributes like search.best_estimator_ are fine)"
            )
        return value


def build_options(**values: Any) -> ConvertOptions:
    """Validate raw values into ConvertOptions, turning pydantic's errors into an OptionsError."""
    from pydantic import ValidationError

    try:
        return ConvertOptions(**values)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise OptionsError(f"invalid options: {problems}", hint="See `nb2prod convert --help`.") from err


def slug_name(stem: str) -> str:
    """A service name from a notebook file name: `Iris Model (v2)` -> `iris-model-v2`."""
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = "model-" + slug if slug else "model"
    return slug


def package_name(name: str) -> str:
    """The generated package's import name for a service name: `iris-model` -> `iris_model`."""
    return name.replace("-", "_")

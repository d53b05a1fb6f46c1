"""Schema stage: the captured sample becomes the service's input schema.

`InputSchema` holds one `Feature` per column (or per array position) with what the generated
pydantic models and the frame rebuilding need, plus a JSON Schema for the manifest.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from nb2prod.run.captured import Capture, Column, FeatureKind

PYTHON_TYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}
JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean", "string": "string"}
RESERVED = {
    "model_config",
    "model_fields",
    "model_computed_fields",
    "copy",
    "dict",
    "json",
    "schema",
    "construct",
    "validate",
    "fields",
    "features",
    "records",
}


@dataclass(frozen=True)
class Feature:
    """One input field of the service: its JSON name, Python identifier and type."""

    name: str
    identifier: str
    column: Column

    @property
    def python_type(self) -> str:
        if self.column.kind == "category":
            values = self.column.categories or ()
            base = python_type_of(values)
        else:
            base = PYTHON_TYPES[self.column.kind]
        return base

    @property
    def json_type(self) -> str:
        if self.column.kind == "category":
            return {"int": "integer", "float": "number", "bool": "boolean"}.get(self.python_type, "string")
        return JSON_TYPES[self.column.kind]

    @property
    def free_text(self) -> bool:
        """A text column described by a count, its values never listed (too many, or mostly distinct)."""
        return self.column.kind == "string" and (self.column.free_text or self.column.categories is None)

    @property
    def bounds(self) -> tuple[int | float, int | float] | None:
        """The range of the column's dtype, for a number field (a value outside it would wrap or overflow)."""
        return dtype_bounds(self.column.dtype) if self.column.kind in ("integer", "number") else None


@dataclass(frozen=True)
class InputSchema:
    kind: FeatureKind
    features: tuple[Feature, ...]
    array_dtype: str | None

    @property
    def array_bounds(self) -> tuple[int | float, int | float] | None:
        """The range of an array model's dtype (None for float64, whose range JSON cannot leave)."""
        return dtype_bounds(self.array_dtype or "float64")

    @property
    def array_of_integers(self) -> bool:
        return self.kind == "array" and np.dtype(self.array_dtype or "float64").kind in "iu"

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of one record, as /predict takes it."""
        if self.kind == "array":
            nullable = any(f.column.nullable for f in self.features)
            number = "integer" if self.array_of_integers else "number"
            item: dict[str, Any] = {"type": [number, "null"] if nullable else number}
            item.update(_range(self.array_bounds))
            n = len(self.features)
            return {
                "type": "object",
                "properties": {"features": {"type": "array", "items": item, "minItems": n, "maxItems": n}},
                "required": ["features"],
                "additionalProperties": False,
            }
        properties = {f.name: _property(f) for f in self.features}
        return {
            "type": "object",
            "properties": properties,
            "required": [f.name for f in self.features if not f.column.nullable or f.column.nullable_because],
            "additionalProperties": False,
        }

    def feature_stats(self) -> list[dict[str, Any]]:
        """Per-feature dtype, min, max, seen categories and nullability (for the manifest)."""
        stats = []
        for f in self.features:
            c = f.column
            entry: dict[str, Any] = {"name": f.name, "dtype": c.dtype, "kind": c.kind, "nullable": c.nullable}
            if c.nullable_because:  # no nulls in training; a null is taken, with a warning, and counted as drift
                entry["nullable_because"] = c.nullable_because
            if c.kind in ("integer", "number"):
                entry.update(min=c.minimum, max=c.maximum)
            if f.free_text:
                entry.update(free_text=True, distinct=c.distinct_count)
            elif c.categories is not None:
                entry["categories"] = list(c.categories)
            if c.kind == "category":
                entry["ordered"] = c.ordered
                entry["category_dtype"] = c.category_dtype
            if c.kind in ("string", "boolean") and c.nullable:
                entry["null_value"] = c.null_value
            stats.append(entry)
        return stats


def python_type_of(values: tuple[Any, ...]) -> str:
    """The narrowest of bool, int, float, str that holds all `values`."""
    kinds = {type(v) for v in values}
    if kinds <= {bool}:
        return "bool"
    if kinds <= {int}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    return "str"


def dtype_bounds(dtype: str) -> tuple[int | float, int | float] | None:
    """The smallest and largest value of a NumPy (or pandas nullable) number dtype; None for float64."""
    try:
        numpy_dtype = np.dtype(dtype.lower())  # pandas' nullable Int64, UInt8, Float32 ... by their NumPy names
    except TypeError:
        return None
    if numpy_dtype.kind in "iu":
        integers = np.iinfo(numpy_dtype)
        return int(integers.min), int(integers.max)
    if numpy_dtype.kind == "f" and numpy_dtype.itemsize < 8:
        largest = float(np.finfo(numpy_dtype).max)
        return -largest, largest
    return None


def _range(bounds: tuple[int | float, int | float] | None) -> dict[str, int | float]:
    return {} if bounds is None else {"minimum": bounds[0], "maximum": bounds[1]}


def _property(feature: Feature) -> dict[str, Any]:
    c = feature.column
    prop: dict[str, Any] = {"type": [feature.json_type, "null"] if c.nullable else feature.json_type}
    prop.update(_range(feature.bounds))
    if c.kind == "category" and c.categories is not None:
        prop["enum"] = list(c.categories) + ([None] if c.nullable else [])
    prop["x-dtype"] = c.dtype
    return prop


def infer_schema(capture: Capture) -> InputSchema:
    """Name each feature for Python and JSON; the sample's stats come from the kernel."""
    taken: set[str] = set()
    features = []
    for column in capture.features.columns:
        identifier = _identifier(column.name, taken)
        taken.add(identifier)
        features.append(Feature(column.name, identifier, column))
    return InputSchema(capture.features.kind, tuple(features), capture.features.array_dtype)


def _identifier(name: str, taken: set[str]) -> str:
    ident = re.sub(r"\W+", "_", name).strip("_").lower() or "field"
    if ident[0].isdigit():
        ident = "f_" + ident
    if keyword.iskeyword(ident) or ident in RESERVED or ident.startswith("model_"):
        ident += "_"
    base, n = ident, 2
    while ident in taken:
        ident, n = f"{base}_{n}", n + 1
    return ident

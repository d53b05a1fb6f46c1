"""The API check: every change of a service's contract between two manifests, breaking or compatible.

Breaking: a field removed, renamed, retyped or made required (or added as required); a category
removed; a narrower integer dtype; an output class removed; a task change; and the same seen
through the Open Inference Protocol's (v2) inputs and outputs. Compatible: an optional field
added, a category added, a wider type or range, a field made optional, a class added.
"""

from __future__ import annotations

from typing import Any

from nb2prod.diff.report import ApiChange, ApiSection, Severity
from nb2prod.manifest import Manifest

_INTEGER_BOUNDS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_V2_INTEGERS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
_V2_FLOATS = {"FP16", "FP32", "FP64"}


def compare_api(old: Manifest, new: Manifest) -> ApiSection:
    """Every contract change from `old` to `new`, inputs first, then outputs, task and v2."""
    changes = _input_changes(old, new) + _output_changes(old, new) + _v2_changes(old, new)
    return ApiSection(changes=changes)


def _change(
    severity: Severity, where: str, field: str | None, change: str, detail: str, value: Any = None
) -> ApiChange:
    return ApiChange(
        severity=severity,
        where=where,  # type: ignore[arg-type]
        field=field,
        change=change,
        detail=detail,
        value=value,
    )


def _features(manifest: Manifest) -> dict[str, dict[str, Any]]:
    return {str(f["name"]): f for f in manifest.input_schema.features}


def _required(manifest: Manifest) -> set[str]:
    if manifest.input_schema.kind == "array":
        return set(_features(manifest))
    return set(manifest.input_schema.json_schema.get("required", []))


def _input_changes(old: Manifest, new: Manifest) -> list[ApiChange]:
    if old.input_schema.kind != new.input_schema.kind:
        shape = {"frame": "a record keyed by column", "array": '{"features": [...]}'}
        detail = f"the input was {shape[old.input_schema.kind]}, now {shape[new.input_schema.kind]}"
        return [_change("breaking", "input", None, "retyped", detail)]
    before, after = _features(old), _features(new)
    removed = [name for name in before if name not in after]
    added = [name for name in after if name not in before]
    renamed = _likely_renames(before, after, removed, added)
    changes = []
    for name in removed:
        if name in renamed:
            target = renamed[name]
            detail = f"`{name}` is gone and `{target}` is new, with the same dtype and training statistics"
            changes.append(_change("breaking", "input", name, "renamed", detail + f": likely renamed to `{target}`"))
        else:
            changes.append(_change("breaking", "input", name, "removed", f"field `{name}` was removed"))
    required = _required(new)
    for name in added:
        if name in renamed.values():
            continue
        if name in required:
            detail = f"field `{name}` was added and is required: clients that do not send it are refused"
            changes.append(_change("breaking", "input", name, "added (required)", detail))
        else:
            detail = f"field `{name}` ({after[name]['dtype']}) was added and may be left out"
            changes.append(_change("compatible", "input", name, "added (optional)", detail))
    for name in before:
        if name in after:
            changes += _field_changes(name, before[name], after[name], name in _required(old), name in required)
    return changes


def _likely_renames(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], removed: list[str], added: list[str]
) -> dict[str, str]:
    """Pairs of a removed and an added field with the same dtype and statistics (name aside)."""

    def signature(feature: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(sorted((k, repr(v)) for k, v in feature.items() if k != "name"))

    pairs: dict[str, str] = {}
    for name in removed:
        same = [other for other in added if signature(after[other]) == signature(before[name])]
        if len(same) == 1 and same[0] not in pairs.values():
            pairs[name] = same[0]
    return pairs


def _field_changes(
    name: str, old: dict[str, Any], new: dict[str, Any], was_required: bool, is_required: bool
) -> list[ApiChange]:
    changes = _type_changes(name, old, new)
    if not was_required and is_required:
        changes.append(
            _change("breaking", "input", name, "made required", f"`{name}` may no longer be null or left out")
        )
    elif was_required and not is_required:
        changes.append(_change("compatible", "input", name, "made optional", f"`{name}` may now be null or left out"))
    if old["kind"] == new["kind"]:
        changes += _category_changes(name, old, new) + _range_changes(name, old, new)
    return changes


def _type_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[ApiChange]:
    kinds = (old["kind"], new["kind"])
    if kinds == ("integer", "number"):
        return [_change("compatible", "input", name, "widened", f"`{name}` was an integer, now takes any number")]
    if kinds[0] != kinds[1]:
        detail = f"`{name}` was {old['kind']} ({old['dtype']}), now {new['kind']} ({new['dtype']})"
        return [_change("breaking", "input", name, "retyped", detail)]
    if old["kind"] != "integer" or old["dtype"] == new["dtype"]:
        return []
    was, now = _INTEGER_BOUNDS.get(str(old["dtype"]).lower()), _INTEGER_BOUNDS.get(str(new["dtype"]).lower())
    if was is None or now is None:
        return []
    if now[0] > was[0] or now[1] < was[1]:
        detail = f"`{name}` was {old['dtype']}, now {new['dtype']}: values {was[0]}..{was[1]} no longer all fit"
        return [_change("breaking", "input", name, "narrower integer dtype", detail)]
    return [
        _change("compatible", "input", name, "wider integer dtype", f"`{name}` was {old['dtype']}, now {new['dtype']}")
    ]


def _category_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[ApiChange]:
    before, after = old.get("categories"), new.get("categories")
    if before is None or after is None:
        return []
    gone = [c for c in before if c not in after]
    came = [c for c in after if c not in before]
    changes = []
    # A category column takes only its categories; a text column's listed values are what training saw.
    enforced = old["kind"] == "category"
    for value in gone:
        if enforced:
            detail = f"`{name}` no longer takes {value!r}: requests with it are refused"
            changes.append(_change("breaking", "input", name, "category removed", detail, value))
        else:
            detail = f"`{name}`: {value!r} was not seen in the new training data (requests with it are still taken)"
            changes.append(_change("compatible", "input", name, "value not seen", detail, value))
    for value in came:
        detail = f"`{name}` now takes {value!r}"
        changes.append(_change("compatible", "input", name, "category added", detail, value))
    return changes


def _range_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[ApiChange]:
    if old.get("min") is None or new.get("min") is None:
        return []
    wider = new["min"] < old["min"] or new["max"] > old["max"]
    narrower = new["min"] > old["min"] or new["max"] < old["max"]
    span = f"training range {old['min']}..{old['max']} -> {new['min']}..{new['max']}"
    if wider and not narrower:
        return [_change("compatible", "input", name, "wider range", f"`{name}`: {span}")]
    if narrower or wider:
        detail = f"`{name}`: {span} (values outside it are still taken; the drift counters use the new range)"
        return [_change("compatible", "input", name, "range moved", detail)]
    return []


def _output_changes(old: Manifest, new: Manifest) -> list[ApiChange]:
    changes = []
    if old.model.task != new.model.task:
        detail = f"the model was a {old.model.task} model, now a {new.model.task} model"
        changes.append(_change("breaking", "task", None, "task changed", detail))
    before, after = old.output.classes or [], new.output.classes or []
    for value in before:
        if value not in after:
            detail = f"class {value!r} is no longer predicted (nor keyed in `probabilities`)"
            changes.append(_change("breaking", "output", str(value), "class removed", detail, value))
    for value in after:
        if value not in before:
            detail = f"class {value!r} is new: `probabilities` gains the key"
            changes.append(_change("compatible", "output", str(value), "class added", detail, value))
    return changes


# --- the Open Inference Protocol (v2) -------------------------------------------------------


def v2_tensors(manifest: Manifest) -> tuple[dict[str, tuple[str, list[int]]], dict[str, tuple[str, list[int]]]]:
    """The v2 inputs and outputs the service publishes, name -> (datatype, shape), as its v2 module
    derives them from the manifest."""
    features = manifest.input_schema.features
    if manifest.input_schema.kind == "array":
        inputs = {"input-0": (_datatype(features[0]), [-1, len(features)])}
    else:
        inputs = {str(f["name"]): (_datatype(f), [-1]) for f in features}
    classes = manifest.output.classes
    outputs = {"predict": ("FP64" if classes is None else _datatype_of_values(classes), [-1])}
    if classes is not None and "predict_proba" in manifest.model.predict_methods:
        outputs["predict_proba"] = ("FP64", [-1, len(classes)])
    return inputs, outputs


def _datatype_of_values(values: list[Any]) -> str:
    types = {type(v) for v in values}
    if types <= {bool}:
        return "BOOL"
    if types <= {int}:
        return "INT64"
    return "FP64" if types <= {int, float} else "BYTES"


def _datatype(feature: dict[str, Any]) -> str:
    kind = feature["kind"]
    if kind == "category":
        return _datatype_of_values(feature.get("categories") or ["text"])
    if kind in ("boolean", "string"):
        return "BOOL" if kind == "boolean" else "BYTES"
    name = str(feature["dtype"]).upper().replace("FLOAT", "FP")
    allowed = _V2_INTEGERS if kind == "integer" else _V2_FLOATS
    return name if name in allowed else ("INT64" if kind == "integer" else "FP64")


def _v2_changes(old: Manifest, new: Manifest) -> list[ApiChange]:
    (old_in, old_out), (new_in, new_out) = v2_tensors(old), v2_tensors(new)
    changes = []
    for kind, before, after in (("input", old_in, new_in), ("output", old_out, new_out)):
        for name, (datatype, shape) in before.items():
            if name not in after:
                changes.append(_change("breaking", "v2", name, f"{kind} removed", f"v2 {kind} `{name}` is gone"))
            elif after[name] != (datatype, shape):
                now = after[name]
                detail = f"v2 {kind} `{name}` was {datatype} {shape}, now {now[0]} {now[1]}"
                changes.append(_change(_v2_severity(kind, datatype, now[0]), "v2", name, f"{kind} retyped", detail))
        for name, (datatype, shape) in after.items():
            if name not in before:
                optional = kind == "output" or name not in _required(new)
                detail = f"v2 {kind} `{name}` ({datatype} {shape}) is new" + ("" if optional else " and required")
                changes.append(_change("compatible" if optional else "breaking", "v2", name, f"{kind} added", detail))
    return changes


def _v2_severity(kind: str, old: str, new: str) -> Severity:
    """An input that now takes floats where it took integers, or a wider integer type, still takes
    what clients send (the service accepts any integer datatype for an integer input)."""
    if kind == "input" and old in _V2_INTEGERS and new in _V2_FLOATS:
        return "compatible"
    if kind == "input" and old in _V2_INTEGERS and new in _V2_INTEGERS:
        was, now = _INTEGER_BOUNDS[old.lower()], _INTEGER_BOUNDS[new.lower()]
        return "compatible" if now[0] <= was[0] and now[1] >= was[1] else "breaking"
    return "breaking"

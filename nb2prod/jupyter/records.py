"""JSON records the runner writes and the server answers with: progress, result, error, lint findings.

Serialized generically (dataclass fields, enums as their values, paths as text), so a field added
to a result or a finding reaches the frontend without a change here.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from pathlib import Path
from typing import Any

from nb2prod.errors import Nb2ProdError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TRACEBACK_LIMIT = 20_000
_BASE_ERROR_FIELDS = {"message", "hint", "notebook", "cell_index", "findings", "traceback"}


def plain(value: Any) -> Any:
    """A JSON-ready copy of `value`: dataclasses and mappings as objects, enums as values, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or Infinity
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def progress_record(event: Any) -> dict[str, Any]:
    """A progress event of `convert()` (reported before each cell runs)."""
    return {
        "event": "progress",
        "cell": event.position,
        "total": event.total,
        "elapsed": round(float(event.elapsed), 3),
        "first_line": event.first_line,
        "cell_index": event.source_index,
    }


def result_record(result: Any) -> dict[str, Any]:
    """A successful `ConversionResult`; `output` is still an absolute path here."""
    return {"event": "result", **plain(result)}


def error_body(error: Nb2ProdError) -> dict[str, Any]:
    """What the user needs from an nb2prod error: message, hint, exit-code class, 0-based cell index."""
    body: dict[str, Any] = {
        "kind": type(error).__name__,
        "message": error.message,
        "hint": error.hint,
        "exit_code": error.exit_code,
        "cell_index": error.cell_index,
    }
    findings = getattr(error, "findings", None)
    if findings:
        body["findings"] = [plain(finding) for finding in findings]
    cell_traceback = getattr(error, "traceback", "")
    if cell_traceback:
        body["traceback"] = _ANSI.sub("", str(cell_traceback))[-_TRACEBACK_LIMIT:]
    for name, value in vars(error).items():
        if name not in _BASE_ERROR_FIELDS and not name.startswith("_"):
            body[name] = plain(value)
    return body


def error_record(error: Nb2ProdError) -> dict[str, Any]:
    return {"event": "error", **error_body(error)}


def internal_error_record(error: BaseException) -> dict[str, Any]:
    """An exception nb2prod did not raise on purpose: a bug to report, with the traceback in the log."""
    return {
        "event": "error",
        "kind": "InternalError",
        "message": f"unexpected error: {type(error).__name__}: {error}",
        "hint": "The job's log has the traceback; please report it with the notebook if you can.",
        "exit_code": 70,
        "cell_index": None,
    }


def findings_body(findings: list[Any]) -> dict[str, Any]:
    """Lint findings as JSON, with the number of errors (which block a conversion)."""
    items = [plain(finding) for finding in findings]
    return {"findings": items, "errors": sum(1 for item in items if item.get("severity") == "error")}

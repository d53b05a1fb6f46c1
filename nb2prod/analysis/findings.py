"""What lint reports: one problem per `Finding`, located at a cell and a line when known."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One problem, located at a cell (and line within it when known)."""

    severity: Severity
    code: str
    message: str
    hint: str = ""
    cell_index: int | None = None
    line: int | None = None

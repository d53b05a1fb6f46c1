"""What the replay says about the statements it leaves out (notes) or cannot replay (errors).

Every message names the notebook, the cell and the line; every refusal says the ways out.
"""

from __future__ import annotations

import ast

from nb2prod.analysis.findings import Finding, Severity
from nb2prod.notebook.spec import Cell

WAYS_OUT = (
    "Ways out: name the raw input frame with --raw VAR or notebook metadata nb2prod.raw so nb2prod replays "
    "these statements as preprocess(frame); or write preprocess(frame) yourself; or move the statement to a "
    "cell that is not tagged `preprocess`."
)


class IssueLog:
    """The findings of one replay, in the order the statements were met."""

    def __init__(self) -> None:
        self.issues: list[Finding] = []
        self.notebook = ""

    def refuse(self, cell: Cell, line: int, what: str, hint: str, code: str = "replay") -> None:
        where = f"{self.notebook}, {cell.label}, line {line}"
        self.issues.append(Finding(Severity.ERROR, code, f"{where}: {what}.", hint, cell.index, line))

    def note(self, cell: Cell, line: int, what: str) -> None:
        where = f"{self.notebook}, {cell.label}, line {line}"
        self.issues.append(Finding(Severity.NOTE, "replay-note", f"{where}: {what}.", "", cell.index, line))

    def random_fill(self, cell: Cell, call: ast.Call) -> None:
        self.refuse(
            cell,
            call.lineno,
            f"`{ast.unparse(call.func)}(...)` draws random numbers; a random fill cannot be replayed per request "
            "(each request would get other values than training did)",
            "Fill with a training statistic instead (e.g. fillna(train[col].median())), or fill inside a "
            "model Pipeline; nb2prod does not change your method silently.",
            code="random-fill",
        )

    def mixed(self, cell: Cell, line: int, text: str, frame: str) -> None:
        self.refuse(
            cell,
            line,
            f"`{text}` combines the request frame with `{frame}`",
            "Keep other frames out of the preprocess cells (e.g. concatenate train and test in a load cell).",
        )

    def label_feature(self, cell: Cell, line: int, text: str, column: str | None) -> None:
        self.refuse(
            cell,
            line,
            f"`{text}` uses the label column `{column}` to build a feature; a request does not have the label",
            "Build features only from input columns, or compute the value in the notebook and freeze it "
            "(e.g. a per-category mean taken from training data).",
        )

    def cannot_ship(self, cell: Cell, line: int, text: str, *, raw_known: bool) -> None:
        """A statement on notebook data that the service could not run at import time."""
        hint = (
            "Move the statement to a cell that is not tagged `preprocess`, or into preprocess(frame)."
            if raw_known
            else WAYS_OUT
        )
        self.refuse(cell, line, f"`{text}` reads notebook data the service does not have", hint)

    def beside_function(self, cell: Cell, line: int, text: str) -> None:
        self.refuse(
            cell,
            line,
            f"`{text}` changes training data at import time, and the cells also define `preprocess(frame)`",
            "Move the statement into preprocess(frame), with training values as constants, or into a cell "
            "that is not tagged `preprocess`.",
        )

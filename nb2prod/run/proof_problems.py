"""Phrasing what the kernel reports about the shipped preprocessing: the proof, frozen values.

Each message names the notebook, the cell (and line when known) and the column and row the
proof stopped at, and says how to fix it; `run.problems` hands these kinds to this module.
"""

from __future__ import annotations

import re
from typing import Any

from nb2prod.analysis.preprocess import PreprocessModule
from nb2prod.errors import CaptureError
from nb2prod.notebook.spec import Cell, NotebookSpec
from nb2prod.run.captured import CaptureProblem

Located = tuple[str, str, int | None, int | None]  # message, hint, cell index, line
PER_REQUEST = (
    "A value computed from the request itself (a mean, a standard deviation, a category list) changes with the "
    "rows sent: compute it from the training data in the notebook and use that constant in preprocess(frame)."
)


def proof_error(spec: NotebookSpec, module: PreprocessModule, problem: CaptureProblem) -> CaptureError | None:
    """The error for a preprocessing problem, or None when the kind is not one of them."""
    builders = {
        "proof_values": _values,
        "proof_columns": _columns,
        "proof_rows": _rows,
        "proof_raised": _raised,
        "frozen_type": _frozen_type,
        "frozen_varies": _frozen_varies,
        "module_import": _module_import,
        "raw_missing": _raw_missing,
        "not_transformer": _not_transformer,
    }
    builder = builders.get(problem.kind)
    if builder is None:
        return None
    message, hint, cell_index, line = builder(spec, module, problem.message, problem.details)
    return CaptureError(
        f"{spec.path.name}: {message}",
        hint=hint,
        notebook=spec.path,
        cell_index=cell_index,
        line=line,
        rule=problem.kind,
    )


def _function(module: PreprocessModule, details: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """What was proven (`preprocess(frame)` and/or the composed transformers) and where it is."""
    transformers = details.get("transformers") or []
    composed = f" followed by {', '.join(f'`{t}`' for t in transformers)}" if transformers else ""
    replay = module.replay
    if module.generates_preprocess and replay is not None:
        first = min(replay.line_cells, key=lambda entry: entry[1].index, default=None)
        return f"the replayed preprocess(frame){composed}", first[1].index if first else None, None
    for cell in module.cells:
        for number, text in enumerate(cell.source.splitlines(), start=1):
            if text.startswith("def preprocess("):
                return f"preprocess(frame) of {cell.label}{composed}", cell.index, number
    return (
        ("the fitted transformers " + ", ".join(f"`{t}`" for t in transformers))
        if transformers
        else "the preprocessing",
        None,
        None,
    )


def _pass(details: dict[str, Any]) -> str:
    if details.get("mode") == "single":
        return f"with training row {details.get('row')} sent alone"
    return "on all training rows at once"


def _assigning_line(module: PreprocessModule, column: object) -> tuple[int, int] | None:
    """(cell index, line) of the first preprocess line that assigns `column` (`x["column"] = ...`)."""
    pattern = re.compile(rf"""\[\s*["']{re.escape(str(column))}["']\s*\]\s*=[^=]""")
    for cell in module.cells:
        for number, text in enumerate(cell.source.splitlines(), start=1):
            if pattern.search(text):
                return cell.index, number
    return None


def _values(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    what, cell, line = _function(module, details)
    single = details.get("mode") == "single"
    made = ""
    assigned = _assigning_line(module, details.get("column"))
    if assigned is not None:
        numbers = {c.index: c.number for c in module.cells}
        made = (
            f" (made at line {assigned[1]})"
            if assigned[0] == cell
            else f" (made in cell {numbers[assigned[0]]}, line {assigned[1]})"
        )
        cell, line = assigned
    return (
        f"{what} does not reproduce the model's fit input: column `{details.get('column')}`{made}, training row "
        f"{details.get('row')}, {_pass(details)}: {message}.",
        PER_REQUEST
        if single
        else "It must compute the fit input from the raw frame exactly as the notebook did; "
        "check how that column is made.",
        cell,
        line,
    )


def _columns(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    what, cell, line = _function(module, details)
    return (
        f"{what} does not reproduce the model's fit input {_pass(details)}: {message}.",
        "It must return the fit input's columns, in the fit input's order (one-hot columns included).",
        cell,
        line,
    )


def _rows(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    what, cell, line = _function(module, details)
    return (
        f"{what} cannot be checked row by row against the model's fit input: {message}.",
        "Keep one output row per input row; drop training rows in a load cell, before the raw frame is taken.",
        cell,
        line,
    )


def _raised(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    what, cell, line = _function(module, details)
    single = details.get("mode") == "single"
    at = ""
    raised_at = _raising_line(module, details)
    if raised_at is not None:
        raising_cell, line = raised_at
        place = "" if raising_cell.label in what else f"{raising_cell.label}, "
        cell = raising_cell.index
        lines = raising_cell.source.splitlines()
        text = lines[line - 1].strip() if line <= len(lines) else ""
        at = f", at {place}line {line}" + (f" (`{text}`)" if text else "")
    return (
        f"{what} raised {message} {details.get('where', '')}{at}, the way the service will call it.",
        PER_REQUEST if single else "Make it work on the raw frame's columns (the label column is not in a request).",
        cell,
        line,
    )


def _raising_line(module: PreprocessModule, details: dict[str, Any]) -> tuple[Cell, int] | None:
    """(cell, line) of the notebook line whose statement raised in the shipped module.

    The kernel reports the module line with frozen values filled in; the same statement's text is
    looked up in the module nb2prod assembled (nearest to that line), which knows each line's cell.
    """
    reported = details.get("module_line")
    if not isinstance(reported, int) or not module.line_cells:
        return None
    text = str(details.get("module_text") or "")
    lines = module.source.splitlines()
    same = [number for number, line in enumerate(lines, start=1) if text and line.strip() == text]
    number = min(same, key=lambda n: abs(n - reported)) if same else reported
    if number < module.line_cells[0][0] or number > len(lines):
        return None  # a line nb2prod wrote (the frozen values, the column alignment), not a notebook line
    cell, line = module.locate(number)
    return (cell, line) if cell.index >= 0 else None


def _frozen(module: PreprocessModule, details: dict[str, Any]) -> tuple[str, int | None, int | None]:
    found = module.replay.frozen_at(str(details.get("key"))) if module.replay is not None else None
    if found is None:
        return f"`{details.get('key')}`", None, None
    cell = next((c for c in module.cells if c.index == found.cell_index), None)
    where = f"{cell.label}, line {found.line}: " if cell else ""
    return f"{where}`{found.text}`", found.cell_index, found.line


def _frozen_type(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    what, cell, line = _frozen(module, details)
    return (
        f"{what} is a training value the service needs, but {message}.",
        "Frozen values are numbers, strings, lists, dicts, Series, arrays and fitted scikit-learn objects; "
        "compute this one in a cell that is not `preprocess`, or inside preprocess(frame) from the request.",
        cell,
        line,
    )


def _frozen_varies(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    what, cell, line = _frozen(module, details)
    return (
        f"{what} took different values while the cells ran, so no one training value can be frozen.",
        "Compute it once, before any loop, from the training frame; or loop over a constant list of columns.",
        cell,
        line,
    )


def _module_import(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    cell = module.cells[0] if module.cells else None
    return (
        f"the preprocessing module nb2prod would ship does not import: {message}.",
        "Preprocess cells must stand alone: import and define everything they use in preprocess cells.",
        cell.index if cell else None,
        None,
    )


def _raw_missing(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    index = module.replay.snapshot_before if module.replay is not None else None
    return (
        f"the raw frame `{details.get('name')}` does not exist when the first replayed cell runs.",
        "Name the frame the load cells make with --raw VAR or notebook metadata nb2prod.raw.",
        index,
        None,
    )


def _not_transformer(spec: NotebookSpec, module: PreprocessModule, message: str, details: dict[str, Any]) -> Located:
    return (
        f"`{details.get('name')}` is applied to the fit input before `fit`, but {message}.",
        "Apply fitted scikit-learn transformers (fit_transform, then transform) or put the step in a Pipeline.",
        None,
        None,
    )

"""nb2prod's view of a notebook for the browser, from static analysis only (no kernel).

`cell_roles` is what the role labels show; `convert_choices` fills the convert dialog; and
`service_input_summary` is the one sentence above its options: what the service will take.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from nb2prod.analysis.flow import cell_facts
from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.analysis.roles import propose_roles
from nb2prod.analysis.service_input import planned_input
from nb2prod.analysis.targets import model_candidates
from nb2prod.errors import Nb2ProdError
from nb2prod.jupyter.records import error_body
from nb2prod.notebook.spec import NotebookSpec, Role, read_notebook

_LOCATED = re.compile(r"^.*?, line \d+: ")  # a finding's "nb.ipynb, cell 4 (`...`), line 7: " prefix


def cell_roles(notebook: Path, model: str | None = None) -> dict[str, Any]:
    """Each code cell's current roles and the role `nb2prod tag` proposes for it, with the reason."""
    spec = read_notebook(notebook)
    cells: dict[int, dict[str, Any]] = {
        cell.index: {"cell_index": cell.index, "roles": [role.value for role in cell.roles], "proposed": None}
        for cell in spec.code_cells()
    }
    answer: dict[str, Any] = {"cells": list(cells.values()), "model": None, "error": None}
    try:
        plan = propose_roles(spec, model)
    except Nb2ProdError as error:
        answer["error"] = error_body(error)
        return answer
    answer["model"] = plan.model
    for proposal in plan.proposals:
        if proposal.cell_index in cells:
            cells[proposal.cell_index]["proposed"] = {
                "roles": list(proposal.roles),
                "reason": proposal.reason,
                "fixed": proposal.fixed,
            }
    return answer


def convert_choices(notebook: Path, model: str | None = None, raw: str | None = None) -> dict[str, Any]:
    """What the convert dialog offers: model candidates, parameters with types, the input sentence."""
    spec = read_notebook(notebook)
    running = [cell_facts(cell) for cell in spec.code_cells() if not cell.has(Role.SKIP)]
    candidates = [candidate.variable for candidate in model_candidates(running)]
    choices: dict[str, Any] = {
        "models": candidates,
        "model": model or spec.config.model or (candidates[-1] if len(candidates) == 1 else None),
        "raw": raw or spec.config.raw,
        "parameters": [{"name": p.name, "value": p.value, "type": p.type_name} for p in spec.parameters],
        "summary": None,
        "summary_error": None,
    }
    try:
        choices["summary"] = service_input_summary(spec, model=model, raw=raw)
    except Nb2ProdError as error:
        choices["summary_error"] = error_body(error)
    return choices


def service_input_summary(spec: NotebookSpec, *, model: str | None = None, raw: str | None = None) -> str:
    """What the service will take, before anything runs: the raw frame's columns, or the model's
    engineered input and why the preprocessing cannot be replayed on request rows."""
    module = assemble_preprocess(spec, raw=raw, model=model)
    taken = planned_input(spec, raw=raw, model=model, module=module)
    if taken.kind == "raw" and "preprocess" in module.callables:
        return "raw rows, passed through the notebook's own `preprocess(frame)`"
    if taken.kind == "raw":
        count = _csv_columns(spec.path.parent / taken.file) if taken.file and taken.file.endswith(".csv") else None
        read = f" read from {taken.file}" if taken.file else ""
        return f"raw columns of `{taken.frame}`{read}" + (f" ({count} columns)" if count is not None else "")
    sentence = f"engineered columns of `{spec.config.features or taken.frame or 'X'}`"
    stop = taken.blocking
    if stop is None:
        return sentence + ": no preprocess cell rebuilds them from raw rows"
    where = f"cell {stop.cell_number}" if stop.cell_number is not None else "a cell"
    where += f" line {stop.line}" if stop.line else ""
    because = _LOCATED.sub("", stop.reason, count=1).rstrip(".")
    return sentence + f": {where} stops the replay because {because}"


def _csv_columns(file: Path) -> int | None:
    try:
        with file.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), None)
    except OSError:
        return None
    return len(header) if header else None

"""nb2prod's view of a notebook for the browser, from static analysis only (no kernel).

`cell_roles` is what the role labels show; `convert_choices` fills the convert dialog; and
`service_input_summary` is the one sentence above its options: what the service will take.
"""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path
from typing import Any

from nb2prod.analysis.flow import cell_facts
from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.analysis.roles import propose_roles
from nb2prod.analysis.targets import model_candidates
from nb2prod.errors import Nb2ProdError
from nb2prod.jupyter.records import error_body
from nb2prod.notebook.spec import NotebookSpec, Role, read_notebook

_LOCATED = re.compile(r"^.*?, line \d+: ")  # a finding's "nb.ipynb, cell 4 (`...`), line 7: " prefix
_READERS = ("read_csv", "read_parquet", "read_excel", "read_json", "read_feather", "read_table", "read_pickle")


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
    replay = module.replay
    if replay is not None and replay.generates_function and replay.raw and not replay.errors:
        where, count = _read_from(spec, replay.raw)
        counted = f" ({count} columns)" if count is not None else ""
        return f"raw columns of `{replay.raw}`{f' read from {where}' if where else ''}{counted}"
    if "preprocess" in module.callables:
        return "raw rows, passed through the notebook's own `preprocess(frame)`"
    chain = module.fits.chain(model.split(".")[0] if model else None) if module.fits else None
    if chain is None and module.fits is not None and module.fits.chains:
        chain = module.fits.chains[-1]
    features = spec.config.features or (chain.features if chain is not None else "X")
    sentence = f"engineered columns of `{features}`"
    stop = replay.errors[0] if replay is not None and replay.errors else None
    if stop is not None:
        where = f"cell {stop.cell_index + 1}" if stop.cell_index is not None else "a cell"
        where += f" line {stop.line}" if stop.line else ""
        because = _LOCATED.sub("", stop.message, count=1).rstrip(".")
        sentence += f": {where} stops the replay because {because}"
    else:
        sentence += ": no preprocess cell rebuilds them from raw rows"
    return sentence


def _read_from(spec: NotebookSpec, frame: str) -> tuple[str | None, int | None]:
    """The file `frame = pd.read_xxx("file")` reads (as written), and its column count for a CSV."""
    for cell in spec.code_cells():
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
                continue
            if not any(isinstance(target, ast.Name) and target.id == frame for target in node.targets):
                continue
            call = node.value
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if name in _READERS and call.args and isinstance(call.args[0], ast.Constant):
                text = str(call.args[0].value)
                return text, _csv_columns(spec.path.parent / text) if name == "read_csv" else None
    return None, None


def _csv_columns(file: Path) -> int | None:
    try:
        with file.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), None)
    except OSError:
        return None
    return len(header) if header else None

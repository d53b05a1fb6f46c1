"""A cell that joins a second data file into the frame being prepared: raw rows stop there.

`df = df.merge(pd.read_csv("districts.csv"), on="district")` after the cleaning has started means
that a request's row would need the other file's columns, which the service does not have. `tag`
then proposes the engineered input, and names this cell and line as the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from nb2prod.analysis import names as analysis
from nb2prod.analysis.findings import Finding, Severity
from nb2prod.analysis.flow import CellFacts
from nb2prod.analysis.service_input import READERS
from nb2prod.notebook.spec import NotebookSpec


def joined_file(spec: NotebookSpec, running: Sequence[CellFacts], loads: Sequence[int]) -> Finding | None:
    """The first cell after the first load cell (`loads`: cell indexes proposed `load`) that reads a
    file and also reads a frame an earlier load cell made, as a finding with its cell and line."""
    if len(loads) < 2:
        return None
    made: set[str] = set()
    for facts in running:
        index = facts.cell.index
        if index < loads[0]:
            continue
        if index in loads and index != loads[0]:
            call = _file_read(facts)
            joined = sorted(set(facts.uses) & made)
            if call is not None and joined:
                return _finding(spec, facts, call, joined[0])
        made |= facts.binds
    return None


def _file_read(facts: CellFacts) -> ast.Call | None:
    tree = analysis.parse_cell(facts.cell)
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READERS:
            return node
    return None


def _finding(spec: NotebookSpec, facts: CellFacts, call: ast.Call, frame: str) -> Finding:
    first = call.args[0] if call.args else None
    path = f" ({first.value})" if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
    cell = facts.cell
    return Finding(
        Severity.ERROR,
        "joined-file",
        f"{spec.path.name}, {cell.label}, line {call.lineno}: `{ast.unparse(call)}` joins a second data "
        f"file{path} to `{frame}`; a request carries only its own row, and the service has no data files.",
        "To serve raw rows, join the files in the cell that reads the data, so that a request carries the "
        "joined columns; or call the service with the engineered columns, as it asks now.",
        cell.index,
        call.lineno,
    )

"""The lines after the read in the raw frame's own cell, replayed per request like a preprocess cell.

People clean the frame in the cell that reads it: `df = pd.read_csv("cars.csv")`, then
`df.drop(columns=["Car_ID"], inplace=True)` and `df["age"] = 2024 - df["Year"]` below it. The
cell stays `load` (it reads a file, and runs in the production run as written), but when the fit
input is replayed from the raw frame (preprocess cells below it), the statements after the read
join the replay: the service takes the file's columns, not the frame as the cell leaves it.

`read_tail` gives that part as a `preprocess` Cell with the cell's own index, whose source is the
cell's source with everything up to and including the read blanked out, character for character
(imports, definitions and literal constants above the read are kept: the tail may use them). So
offsets, line numbers and messages ("cell 4, line 3") are the user's, and the replay, the
recording edits and lint need no change. The raw frame is copied for the proof right after the
read, inside the cell (`snapshot_offset`).
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass

from nb2prod.analysis.fitchain import FitChain, cell_text, editable_tree
from nb2prod.analysis.flow import cell_facts, reads_data, with_containers
from nb2prod.analysis.raw_origin import changed_after, find_raw_origin
from nb2prod.analysis.splice import Positions
from nb2prod.notebook.spec import Cell, NotebookSpec, Role

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class ReadTail:
    """The replayed part of the cell that reads the raw frame, and where the frame is copied."""

    cell: Cell  # roles (preprocess,), the cell's index, its source with the read blanked out
    frame: str  # the raw frame's name
    snapshot_offset: int  # offset in the cell's source right after the read statement
    line: int  # the first line that changes the frame after the read
    text: str  # that line, shortened


def read_tail(spec: NotebookSpec, chain: FitChain | None, labels: frozenset[str], raw: str | None) -> ReadTail | None:
    """The tail of the raw frame's cell when it is replayed: the frame is read from a file in a cell
    that is `load` or untagged, above the fit, preprocess cells below it replay the fit input, the
    cell changes the frame after the read and reads nothing more, and no other raw frame was named
    (`raw`)."""
    if chain is None:
        return None
    facts = with_containers([cell_facts(c) for c in spec.code_cells()])
    running = [f for f in facts if not f.cell.has(Role.SKIP)]
    origin = find_raw_origin(running, chain.cell.index, chain.features)
    if origin is None or not origin.how.startswith("reads") or (raw is not None and raw != origin.frame):
        return None
    cell = spec.cells[origin.cell_index]
    if cell.roles not in ((), (Role.LOAD,)) or origin.cell_index >= chain.cell.index:
        return None
    below = [c for c in spec.code_cells(Role.PREPROCESS) if origin.cell_index < c.index]
    if not below:
        return None
    changed = changed_after(origin, next(f for f in running if f.cell.index == origin.cell_index), labels)
    tree = editable_tree(cell)
    if changed is None or tree is None:
        return None
    read = next((n for n in tree.body if n.lineno <= origin.line <= (n.end_lineno or n.lineno)), None)
    if read is None:
        return None
    text = cell_text(cell)
    positions = Positions(text)
    end = positions.end(read)
    spans = [(positions.start(n), positions.end(n)) for n in tree.body if positions.start(n) < end and not _kept(n)]
    source = _blank_out(cell.source, spans)
    tail = dataclasses.replace(cell, source=source, roles=(Role.PREPROCESS,))
    if reads_data(cell_facts(tail)) is not None:
        return None  # a second read below the first (`df.merge(pd.read_csv(...))`) is data, not a request's
    return ReadTail(tail, origin.frame, end, changed[0], changed[1])


def _kept(node: ast.stmt) -> bool:
    """Imports, definitions and literal constants above the read stay: the tail may use them."""
    if isinstance(node, KEPT):
        return True
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        return True
    return False


def _blank_out(source: str, spans: list[tuple[int, int]]) -> str:
    """`source` with the characters of `spans` turned into spaces (newlines kept): same offsets,
    same line numbers, and Python reads whitespace-only lines as blank."""
    chars = list(source)
    for start, stop in spans:
        for i in range(start, stop):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)

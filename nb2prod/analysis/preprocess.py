"""The preprocess cells assembled into one module source, with a map back to the cells.

Pure (no kernel, no files): lint checks the module before any run, the capture cell rebinds its
definitions, and the build stage ships it as the package's `preprocessing` module. The pipeline
assembles it once per conversion and hands it to each of them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.notebook.spec import Cell, NotebookSpec, Role


@dataclass(frozen=True)
class PreprocessModule:
    """The assembled preprocessing source and where each of its lines came from."""

    source: str
    cells: tuple[Cell, ...]
    line_cells: tuple[tuple[int, Cell, int], ...]  # (module line, cell, line within cell)
    callables: tuple[str, ...]  # classes and functions defined, to rebind for pickling
    imports: tuple[str, ...]  # top-level packages imported
    dropped: tuple[analysis.MagicUse, ...] = ()  # display-only magics left out of the source

    @property
    def defines_preprocess(self) -> bool:
        return "preprocess" in self.callables

    def locate(self, module_line: int) -> tuple[Cell, int]:
        """Map a line of the assembled module back to (cell, line within that cell)."""
        best = self.line_cells[0]
        for entry in self.line_cells:
            if entry[0] <= module_line:
                best = entry
        module_start, cell, cell_start = best
        return cell, cell_start + (module_line - module_start)


DROPPED = "# {line}  (display-only magic: dropped by nb2prod)"

HEADER = (
    '"""Preprocessing code extracted by nb2prod from {notebook}.\n\n'
    'Each block below is one `preprocess` cell of the notebook, verbatim, in cell order.\n"""\n'
)


def assemble_preprocess(spec: NotebookSpec) -> PreprocessModule:
    """Concatenate the preprocess cells into one module (does not check it; lint does)."""
    cells = tuple(spec.code_cells(Role.PREPROCESS))
    parts = [HEADER.format(notebook=spec.path.name)]
    line_cells: list[tuple[int, Cell, int]] = []
    line = parts[0].count("\n") + 1
    dropped: list[analysis.MagicUse] = []
    for cell in cells:
        banner = f"\n# --- cell {cell.number} ---\n"
        line += banner.count("\n")
        line_cells.append((line, cell, 1))
        body = _without_display_magics(cell, dropped).rstrip("\n") + "\n"
        parts.append(banner + body)
        line += body.count("\n")
    source = "".join(parts)
    callables: list[str] = []
    imports: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is not None:
        callables = analysis.defined_callables(tree)
        imports = analysis.imported_modules(tree)
    if not line_cells:
        line_cells.append((line, Cell(index=-1, cell_type="code", source=""), 1))
    return PreprocessModule(source, cells, tuple(line_cells), tuple(callables), tuple(sorted(imports)), tuple(dropped))


def _without_display_magics(cell: Cell, dropped: list[analysis.MagicUse]) -> str:
    """The cell's source with display-only magics commented out (line numbers kept)."""
    lines = cell.source.splitlines()
    for use in analysis.find_magics(cell):
        if use.display_only:
            lines[use.line_number - 1] = DROPPED.format(line=use.line)
            dropped.append(use)
    return "\n".join(lines)

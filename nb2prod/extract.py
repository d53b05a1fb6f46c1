"""Extract stage: preprocess cells become the generated package's `preprocessing` module.

The module is the preprocess cells verbatim, in cell order, each under a comment that names the
cell it came from. `assemble_preprocess` is pure so lint can check the module before any run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2prod import analysis
from nb2prod.notebook import Cell, NotebookSpec, Role


@dataclass(frozen=True)
class PreprocessModule:
    """The assembled preprocessing source and where each of its lines came from."""

    source: str
    cells: tuple[Cell, ...]
    line_cells: tuple[tuple[int, Cell, int], ...]  # (module line, cell, line within cell)
    callables: tuple[str, ...]  # classes and functions defined, to rebind for pickling
    imports: tuple[str, ...]  # top-level packages imported

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


@dataclass(frozen=True)
class ExtractedCode:
    """What the extract stage hands to rendering: the module source and its pins."""

    preprocess: PreprocessModule
    pins: tuple[tuple[str, str], ...]  # (distribution, version), sorted by name
    test_pins: tuple[tuple[str, str], ...]


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
    for cell in cells:
        banner = f"\n# --- cell {cell.number} ---\n"
        line += banner.count("\n")
        line_cells.append((line, cell, 1))
        body = cell.source.rstrip("\n") + "\n"
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
        line_cells.append((line, Cell(index=-1, cell_type="code", source="", role=None), 1))
    return PreprocessModule(source, cells, tuple(line_cells), tuple(callables), tuple(sorted(imports)))


SERVICE_DISTRIBUTIONS = ("fastapi", "uvicorn", "pydantic")
# Starlette's TestClient moved from httpx to httpx2; pin whichever this environment has (httpx2 first).
TEST_CLIENTS = ("httpx2", "httpx")


def extract_code(module: PreprocessModule, kernel_distributions: dict[str, str]) -> ExtractedCode:
    """The preprocessing module and exact pins: the kernel's for model and preprocess code,
    this environment's for the service's own web stack and test tools."""
    service = _closure(SERVICE_DISTRIBUTIONS)
    pins = {**service, **kernel_distributions}
    client = next((name for name in TEST_CLIENTS if _closure((name,))), "httpx")
    tests = {k: v for k, v in _closure(("pytest", client)).items() if k not in pins}
    return ExtractedCode(
        preprocess=module,
        pins=tuple(sorted(pins.items())),
        test_pins=tuple(sorted(tests.items())),
    )


def _normal(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(roots: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `roots` and of everything they require here (no extras).

    kernel_capture._distributions does the same walk inside the kernel, without `packaging`,
    because it may run in an environment that has neither nb2prod nor packaging.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    versions: dict[str, str] = {}
    queue = list(roots)
    while queue:
        name = queue.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = _normal(dist.metadata["Name"])
        if key in versions:
            continue
        versions[key] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    return versions

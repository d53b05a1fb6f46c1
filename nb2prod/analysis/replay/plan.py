"""The replay plan: what the preprocess cells become in the service, and what the run records.

Pure data, built by `nb2prod.analysis.replay` and read by lint (its issues), the capture step
(the module template and which values to record) and the run (the recording edits).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from nb2prod.analysis.findings import Finding, Severity
from nb2prod.analysis.splice import Edit
from nb2prod.notebook.spec import Cell, NotebookSpec

FROZEN = "FROZEN"
FROZEN_PLACEHOLDER = f"{FROZEN} = {{}}"
ALIGN = "align_columns"
CATEGORIES = "with_categories"
RECORDERS = ("_nb2prod_freeze", "_nb2prod_columns", "_nb2prod_bins", "_nb2prod_categories", "_nb2prod_frames")


ReplayIssue = Finding  # a statement that cannot be replayed (error) or is left out (note)


@dataclass(frozen=True)
class FrozenValue:
    """A training value: recorded in the run under `key`, read from FROZEN by the service."""

    key: str
    what: str  # "value", "columns", "bins" or "categories"
    cell_index: int
    line: int
    text: str  # the expression as the notebook wrote it


@dataclass(frozen=True)
class ReplayPlan:
    """The preprocessing module to ship (with a FROZEN placeholder) and how the run feeds it."""

    template: str
    line_cells: tuple[tuple[int, Cell, int], ...]
    raw: str | None  # the request frame's name in the notebook, when a function is generated
    generates_function: bool
    frozen: tuple[FrozenValue, ...]
    run_edits: dict[int, list[Edit]]
    snapshot_before: int | None  # cell index: the raw frame is copied just before it runs
    issues: tuple[ReplayIssue, ...]
    label_columns: tuple[str, ...]
    composed: tuple[str, ...] = ()  # transformer variables composed with the model
    # set when the read's own cell is replayed after the read: the copy is made inside cell
    # `snapshot_before`, at this offset of its source (right after the read), not before it
    snapshot_offset: int | None = None

    @property
    def errors(self) -> tuple[ReplayIssue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    def frozen_at(self, key: str) -> FrozenValue | None:
        return next((f for f in self.frozen if f.key == key), None)


@dataclass
class Emitted:
    """A statement's text in the generated module, and where it came from."""

    cell: Cell
    line: int
    text: str
    gap: bool = False  # a blank line before it (as in the notebook)


@dataclass
class ModuleParts:
    """The generated module, as it is being built."""

    module: list[Emitted] = field(default_factory=list)
    body: list[Emitted] = field(default_factory=list)
    frozen_cells: set[int] = field(default_factory=set)  # cells whose module-level code reads FROZEN


def raw_from_config(spec: NotebookSpec, raw: str | None) -> str | None:
    """`--raw VAR`, else notebook metadata `nb2prod.raw`."""
    return raw or spec.config.raw


def frame_root(node: ast.expr, modules: set[str]) -> str | None:
    """The frame an expression is computed from: `train` for `pd.get_dummies(train.drop(...))`."""
    while True:
        if isinstance(node, ast.Name):
            return None if node.id in modules else node.id
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call):
            func = node.func
            receiver = func.value if isinstance(func, ast.Attribute) else None
            if receiver is not None and not _is_module(receiver, modules):
                node = receiver
            elif node.args:
                node = node.args[0]
            else:
                return None
        elif isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            node = node.elts[0]  # `pd.concat([train, dummies], axis=1)` is built from `train`
        else:
            return None


def _is_module(node: ast.expr, modules: set[str]) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in modules


def imported_names(trees: list[ast.Module]) -> set[str]:
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def random_names(trees: list[ast.Module]) -> frozenset[str]:
    """Variables any cell binds to a random generator (`rng = np.random.default_rng(0)`)."""
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                callee = ast.unparse(node.value.func)
                if "random" in callee or "default_rng" in callee or "RandomState" in callee:
                    found |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return frozenset(found)

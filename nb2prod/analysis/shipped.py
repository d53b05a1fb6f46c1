"""Which notebook definitions the served model refers to, and so must ship in the service.

A pickled model refers to classes by reference (its custom transformers) and to functions it
holds (a `FunctionTransformer(func)`), so those definitions go into preprocess cells, with the
imports and constants their bodies need. A function the notebook only *calls* to build the
model is not referred to, but what it builds may be, so its body is followed instead.
Everything here works on statements: a cell's position and its top-level statements.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from nb2prod.analysis import names as analysis
from nb2prod.analysis.flow import CellFacts, Statement

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
SHIPPABLE = (ast.Import, ast.ImportFrom, *DEFINITIONS, ast.Pass)


@dataclass(frozen=True)
class Located:
    """A statement and where it is: (position in the run order of cells, position in the cell)."""

    facts: CellFacts
    position: int
    statement: Statement


@dataclass
class ShippedCode:
    """Cells whose definitions the model needs, and cells those definitions need."""

    definitions: dict[int, list[str]] = field(default_factory=dict)  # cell index -> names used by the model
    support: dict[int, set[str]] = field(default_factory=dict)  # cell index -> names definitions need
    needed_by: dict[int, int] = field(default_factory=dict)  # support cell index -> a definition cell index

    @property
    def cells(self) -> set[int]:
        return set(self.definitions) | set(self.support)


class ShippedCodeFinder:
    """Walks from the model's construction to the definitions it refers to."""

    def __init__(self, running: Sequence[CellFacts]) -> None:
        self.statements = [
            Located(facts, position, statement)
            for position, facts in enumerate(running)
            for statement in facts.statements
        ]
        self.order = {id(located.statement): i for i, located in enumerate(self.statements)}
        self.result = ShippedCode()
        self.seen: set[tuple[int, bool]] = set()
        self.shipped: set[int] = set()

    def find(self, model: str, start: Sequence[Statement], called_preprocess: bool) -> ShippedCode:
        """`start`: the statements that make and configure the model (fit arguments are data)."""
        for statement in start:
            at = self.order[id(statement)]
            for name, called in _model_names(statement.node, model):
                self._follow(name, called, at)
        if called_preprocess and start:
            found = self._reaching("preprocess", self.order[id(start[-1])])
            if found is not None and isinstance(found.statement.node, DEFINITIONS):
                self._ship(found)
        return self.result

    def _reaching(self, name: str, before: int) -> Located | None:
        for located in reversed(self.statements[:before]):
            if name in located.statement.binds:
                return located
        return None

    def _follow(self, name: str, called: bool, before: int) -> None:
        """A name the model's construction reads: ship what the pickled model will refer to."""
        found = self._reaching(name, before)
        if found is None or (id(found.statement), called) in self.seen:
            return
        self.seen.add((id(found.statement), called))
        node = found.statement.node
        at = self.order[id(found.statement)]
        if isinstance(node, ast.ClassDef) or (isinstance(node, DEFINITIONS) and not called):
            self._ship(found)
        elif isinstance(node, DEFINITIONS):  # a builder function: what it builds is the model
            for inner, inner_called in _body_names(node):
                self._follow(inner, inner_called, at)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            for inner, inner_called in _model_names(node, None):
                self._follow(inner, inner_called, at)

    def _ship(self, located: Located) -> None:
        """A definition the model refers to goes into the service, with its whole cell."""
        node = located.statement.node
        names = self.result.definitions.setdefault(located.facts.cell.index, [])
        if isinstance(node, DEFINITIONS) and node.name not in names:
            names.append(node.name)
        self._ship_cell(located.facts)

    def _ship_cell(self, facts: CellFacts) -> None:
        """Every name a shipped cell reads must be shipped too: the service has only these cells."""
        if facts.cell.index in self.shipped:
            return
        self.shipped.add(facts.cell.index)
        for statement in facts.statements:
            for name in sorted(statement.uses):
                found = self._reaching(name, self.order[id(statement)])
                if found is None or found.facts is facts:
                    continue
                support = found.facts.cell.index
                self.result.support.setdefault(support, set()).add(name)
                self.result.needed_by.setdefault(support, facts.cell.index)
                self._ship_cell(found.facts)


def _model_names(node: ast.AST, model: str | None) -> Iterator[tuple[str, bool]]:
    """Names a statement reads, and whether only as a callee, leaving out the data passed to
    `fit` (the model's input is not part of the model)."""
    skipped: set[int] = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and _method(call) in analysis.FIT_METHODS:
            skipped |= {id(n) for arg in [*call.args, *call.keywords] for n in ast.walk(arg)}
    callees = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    for name in ast.walk(node):
        if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Load) and id(name) not in skipped:
            if name.id != model:
                yield name.id, id(name) in callees


def _method(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _body_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Iterator[tuple[str, bool]]:
    local = {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
    local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for statement in node.body:
        for name, called in _model_names(statement, None):
            if name not in local:
                yield name, called


def unshippable_line(facts: CellFacts) -> tuple[int, str] | None:
    """The first statement that cannot go into the service: anything but imports, definitions,
    literal constants, docstrings and display-only magics. None when the whole cell can ship."""
    display = {use.line_number for use in analysis.find_magics(facts.cell) if use.display_only}
    for statement in facts.statements:
        node = statement.node
        if isinstance(node, SHIPPABLE) or node.lineno in display or _is_constant(node) or _display_setting(node):
            continue
        return node.lineno, ast.unparse(node).splitlines()[0][:60]
    return None


def _is_constant(node: ast.stmt) -> bool:
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant)  # a docstring or a bare literal
    value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    if value is None:
        return False
    try:
        ast.literal_eval(value)
    except ValueError:
        return False
    return True


DISPLAY_ROOTS = frozenset({"plt", "sns", "matplotlib", "mpl", "seaborn", "warnings"})


def _display_setting(node: ast.stmt) -> bool:
    """A setting of how output looks (`sns.set()`, `plt.style.use("ggplot")`,
    `plt.rcParams["figure.figsize"] = (8, 4)`, `pd.set_option("display.max_columns", 50)`,
    `warnings.filterwarnings("ignore")`): harmless in the service, so an imports cell holding one
    can still ship as `preprocess` (the README says its imports then ship too)."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        callee = ast.unparse(node.value.func)
        root = callee.split(".")[0]
        return root in DISPLAY_ROOTS or callee in ("pd.set_option", "pandas.set_option")
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = ast.unparse(node.targets[0])
        return target.split(".")[0].split("[")[0] in DISPLAY_ROOTS or target.startswith("pd.options.display.")
    return False

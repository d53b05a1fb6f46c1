"""Def-use facts of each cell, read from its AST: what it reads from earlier cells, what it binds.

Cells run top to bottom in one namespace, so "which cell does this cell need" is a question of
reaching definitions at cell granularity: a name a cell reads before binding it comes from the
last cell above that binds it. A cell that changes an object in place (`df["a"] = ...`,
`df.dropna(inplace=True)`, `model.fit(...)`) both reads and binds that name, so chains of
in-place edits are followed back to the cell that made the object.
"""

from __future__ import annotations

import ast
import copy
import re
import symtable
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from nb2prod.analysis import names as analysis
from nb2prod.notebook.spec import Cell

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
MUTATING_METHODS = frozenset(
    {"append", "extend", "insert", "pop", "remove", "clear", "sort", "update", "add", "discard", "setdefault"}
    | {"set_params", "partial_fit", "fit", "fit_transform", "fit_predict"}
)
# Functions that change their first argument in place.
ARGUMENT_MUTATORS = re.compile(r"(^|\.)(shuffle|setattr|delattr|copyto|putmask)$")
# Names the kernel provides without any cell binding them.
KERNEL_NAMES = frozenset({"display", "get_ipython", "In", "Out", "_", "__", "___", "exit", "quit"})


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a cell, with the names it reads from outside the cell."""

    node: ast.stmt
    binds: frozenset[str]
    uses: frozenset[str]  # every name it reads (also those bound by earlier statements of the cell)
    called: frozenset[str]  # names read only as the function of a call (`build()`, not `build`)


@dataclass(frozen=True)
class CellFacts:
    """What a cell reads from earlier cells and binds for later ones."""

    cell: Cell
    parsed: bool
    uses: tuple[str, ...]  # read before bound in this cell, in first-use order
    deferred_uses: frozenset[str]  # read only inside function bodies (resolved when called)
    binds: frozenset[str]
    mutates: frozenset[str]
    definitions: tuple[str, ...]  # classes and functions defined at top level
    calls: tuple[str, ...]  # dotted callees, e.g. `pd.read_csv`, `df.head`, `accuracy_score`
    fits: tuple[analysis.FitCall, ...]
    statements: tuple[Statement, ...] = field(default=(), repr=False)
    star_import: bool = False  # `from x import *`: the cell may bind any name

    @property
    def immediate_uses(self) -> tuple[str, ...]:
        """Names the cell needs at the moment it runs (function bodies wait until called)."""
        return tuple(n for n in self.uses if n not in self.deferred_uses)


def cell_facts(cell: Cell) -> CellFacts:
    """Def-use facts of one code cell (IPython syntax allowed)."""
    return _facts(cell, cell.source)


@lru_cache(maxsize=4096)
def _facts(cell: Cell, source: str) -> CellFacts:
    tree = analysis.parse_cell(cell)
    if tree is None:
        return CellFacts(cell, False, (), frozenset(), frozenset(), frozenset(), (), (), ())
    reader = _Reader()
    statements = tuple(reader.statement(node) for node in tree.body)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return CellFacts(
        cell=cell,
        parsed=True,
        uses=tuple(reader.uses),
        deferred_uses=frozenset(reader.deferred - reader.immediate),
        binds=frozenset(reader.bound),
        mutates=frozenset(reader.mutated),
        definitions=tuple(node.name for node in tree.body if isinstance(node, kinds)),
        calls=tuple(dict.fromkeys(_callees(tree))),
        fits=tuple(analysis.fit_calls(cell)),
        statements=statements,
        star_import=reader.star_import,
    )


class _Reader:
    """Walks a cell's statements in execution order, separating outside reads from local ones."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.mutated: set[str] = set()
        self.uses: list[str] = []
        self.immediate: set[str] = set()
        self.deferred: set[str] = set()
        self.current: set[str] = set()
        self.current_bound: set[str] = set()
        self.star_import = False

    def statement(self, node: ast.stmt) -> Statement:
        before = set(self.bound)
        self.current = set()
        self.current_bound = set()
        called: set[str] = set()
        mutated = _mutated_roots(node)
        loop_variables = set(_loop_sources(node)) - self.bound
        for name in sorted(mutated - loop_variables):  # a loop variable is bound by its loop, not read
            self._read(name)
        self._visit(node, called)
        binds = frozenset(self.bound - before) | mutated
        self.mutated |= mutated
        self.bound |= mutated
        return Statement(node, binds, frozenset(self.current), frozenset(called - _plain_reads(node)))

    def _read(self, name: str, deferred: bool = False) -> None:
        if name not in self.current_bound:
            self.current.add(name)
        if name in self.bound:
            return
        (self.deferred if deferred else self.immediate).add(name)
        if name not in self.uses:
            self.uses.append(name)

    def _visit(self, node: ast.AST, called: set[str]) -> None:
        if isinstance(node, SCOPES + COMPREHENSIONS + (ast.ClassDef,)):
            self._scope(node, called)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self._read(node.id)
            else:
                self._bind(node.id)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    self.star_import = True
                else:
                    self._bind((alias.asname or alias.name).split(".")[0])
            return
        if isinstance(node, ast.ExceptHandler):  # `except E as err:` binds `err` (a string, not a Name)
            if node.type is not None:
                self._visit(node.type, called)
            if node.name:
                self._bind(node.name)
            for inner in node.body:
                self._visit(inner, called)
            return
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            self._bind(node.name)
        if isinstance(node, ast.MatchMapping) and node.rest:
            self._bind(node.rest)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
        for child in _in_execution_order(node):
            self._visit(child, called)

    def _scope(self, node: ast.AST, called: set[str]) -> None:
        """A def, lambda, class or comprehension: outside names it reads, and the name it binds."""
        direct, nested = _free_globals(node)
        for name in sorted(direct):
            self._read(name, deferred=isinstance(node, SCOPES))
        for name in sorted(nested - direct):
            self._read(name, deferred=not isinstance(node, COMPREHENSIONS))
        for outer in _evaluated_at_definition(node):
            self._visit(outer, called)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._bind(node.name)

    def _bind(self, name: str) -> None:
        self.bound.add(name)
        self.current_bound.add(name)


def _in_execution_order(node: ast.AST) -> list[ast.AST]:
    """Children in the order Python evaluates them: the value before the targets it is stored in."""
    if isinstance(node, ast.Assign):
        return [node.value, *node.targets]
    if isinstance(node, ast.AugAssign):
        target = node.target
        load = ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else target
        return [load, node.value, target]
    if isinstance(node, ast.AnnAssign):
        return [n for n in (node.value, node.target) if n is not None]
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.iter, node.target, *node.body, *node.orelse]
    if isinstance(node, ast.NamedExpr):
        return [node.value, node.target]
    return list(ast.iter_child_nodes(node))


def _evaluated_at_definition(node: ast.AST) -> list[ast.AST]:
    """Decorators, defaults and bases run when the def/class statement runs."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    if isinstance(node, ast.Lambda):
        return [*node.args.defaults]
    if isinstance(node, COMPREHENSIONS):
        return [node.generators[0].iter]
    return []


def _free_globals(node: ast.AST) -> tuple[frozenset[str], frozenset[str]]:
    """Global names a nested scope reads: in its own body, and in scopes nested in it (methods)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        body = ast.Module(body=[_bare(node)], type_ignores=[])
    else:
        body = ast.Module(body=[ast.Expr(value=node)], type_ignores=[])  # type: ignore[arg-type]
    return _globals_read(ast.unparse(ast.fix_missing_locations(body)))


def _bare(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> ast.stmt:
    """The statement without what runs at definition time (visited separately)."""
    bare = copy.copy(node)
    bare.decorator_list = []
    if isinstance(bare, ast.ClassDef):
        bare.bases, bare.keywords = [], []
        return bare
    assert not isinstance(node, ast.ClassDef)
    bare.returns = None
    arguments = bare.args = copy.copy(node.args)
    arguments.defaults = []
    arguments.kw_defaults = [None] * len(arguments.kwonlyargs)
    arguments.posonlyargs, arguments.args, arguments.kwonlyargs = (
        [ast.arg(a.arg) for a in group] for group in (arguments.posonlyargs, arguments.args, arguments.kwonlyargs)
    )
    return bare


@lru_cache(maxsize=8192)
def _globals_read(source: str) -> tuple[frozenset[str], frozenset[str]]:
    table = symtable.symtable(source, "<scope>", "exec")
    top_bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    ignored = top_bound | analysis.NOTEBOOK_BUILTINS
    direct: set[str] = set()
    nested: set[str] = set()
    for scope in table.get_children():
        direct |= _referenced_globals(scope)
        stack = list(scope.get_children())
        while stack:
            child = stack.pop()
            stack.extend(child.get_children())
            nested |= _referenced_globals(child)
    return frozenset(direct - ignored), frozenset(nested - ignored)


def _referenced_globals(table: symtable.SymbolTable) -> set[str]:
    return {s.get_name() for s in table.get_symbols() if s.is_referenced() and (s.is_global() or s.is_free())}


def _mutated_roots(node: ast.stmt) -> frozenset[str]:
    """Names whose object this statement changes in place (also inside loops and branches).

    A change through a loop variable changes what the loop iterates over: `for df in [train, test]:
    df["x"] = ...` changes `train` and `test`, `for row in records: row["a"] = ...` changes `records`.
    """
    found: set[str] = set()
    if isinstance(node, (*SCOPES, ast.ClassDef)):
        return frozenset()  # a body changes objects when it is called, not when it is defined
    loops = _loop_sources(node)
    for child in _same_scope_nodes(node):
        targets: list[ast.expr] = []
        if isinstance(child, ast.Assign):
            targets = list(child.targets)
        elif isinstance(child, (ast.AugAssign, ast.AnnAssign)):
            targets = [child.target]
        elif isinstance(child, ast.Delete):
            targets = list(child.targets)
        for target in targets:
            for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
                if isinstance(element, (ast.Subscript, ast.Attribute)):
                    found.add(_root(element) or "")
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
            inplace = any(k.arg == "inplace" and _is_true(k.value) for k in child.keywords)
            if child.func.attr in MUTATING_METHODS or inplace:
                found.add(_root(child.func.value, through_calls=False) or "")
        if isinstance(child, ast.Call) and child.args:
            callee = dotted(child.func) or ""
            if ARGUMENT_MUTATORS.search(callee):  # `np.random.shuffle(x)`, `setattr(obj, ...)`
                found.add(_root(child.args[0], through_calls=False) or "")
    pending = list(found)
    while pending:
        for source in loops.get(pending.pop(), ()):
            if source not in found:
                found.add(source)
                pending.append(source)
    return frozenset(found - {""})


def _loop_sources(node: ast.stmt) -> dict[str, set[str]]:
    """Loop variable -> the names its loop iterates over (`frames` in `for df in frames`,
    `train` and `test` in `for i, df in enumerate([train, test])`)."""
    sources: dict[str, set[str]] = {}
    for child in _same_scope_nodes(node):
        if isinstance(child, (ast.For, ast.AsyncFor)):
            callees = {id(n.func) for n in ast.walk(child.iter) if isinstance(n, ast.Call)}
            iterated = {
                n.id
                for n in ast.walk(child.iter)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in callees
            }
            for target in ast.walk(child.target):
                if isinstance(target, ast.Name):
                    sources.setdefault(target.id, set()).update(iterated - {target.id})
    return sources


def containers(facts: CellFacts) -> dict[str, frozenset[str]]:
    """Top-level `frames = [train, test]` (a list, tuple, set or dict of names): changing an
    element of `frames` changes `train` or `test`."""
    found: dict[str, frozenset[str]] = {}
    for statement in facts.statements:
        node = statement.node
        if not (isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple, ast.Set, ast.Dict))):
            continue
        value = node.value
        elements = value.values if isinstance(value, ast.Dict) else value.elts
        names = frozenset(e.id for e in elements if isinstance(e, ast.Name))
        if names:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = names
    return found


def _same_scope_nodes(node: ast.AST) -> list[ast.AST]:
    """`node` and its descendants, without entering function or class bodies."""
    found = [node]
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (*SCOPES, ast.ClassDef)):
            found.extend(_same_scope_nodes(child))
    return found


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _root(node: ast.expr, *, through_calls: bool = True) -> str | None:
    """`df` for `df["a"].b[0]`; None when the chain does not start at a name (or, unless
    `through_calls`, when it passes a call: `Model().fit(...)` changes a new object)."""
    kinds = (ast.Attribute, ast.Subscript, ast.Call) if through_calls else (ast.Attribute, ast.Subscript)
    while isinstance(node, kinds):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _plain_reads(node: ast.stmt) -> set[str]:
    """Names read other than as a callee (`f` in `g(f)`), to tell referencing from calling."""
    callees = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in callees
    }


def dotted(node: ast.expr) -> str | None:
    """`pd.read_csv` for the callee of `pd.read_csv(...)`; None for computed callees."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    if isinstance(node, (ast.Call, ast.Subscript)) and parts:  # `df.groupby(...).mean` -> `.mean`
        return "." + ".".join(reversed(parts))
    return None


def _callees(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if name:
                found.append(name)
    return found


def last_expression(facts: CellFacts) -> str | None:
    """Source of the cell's final bare expression (what Jupyter displays), if any."""
    if facts.statements and isinstance(facts.statements[-1].node, ast.Expr):
        text = ast.unparse(facts.statements[-1].node)
        return text if len(text) <= 50 else text[:47] + "..."
    return None


def assigned_call(facts: CellFacts, name: str) -> str | None:
    """The callee of the last `name = Callee(...)` in the cell, e.g. `RandomForestClassifier`."""
    found = None
    for statement in facts.statements:
        node = statement.node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "fit":
                value = value.func.value  # `SVC().fit(X, y)`
            if isinstance(value, ast.Call):
                callee = dotted(value.func)
                found = callee.split(".")[-1] if callee else found
    return found


READS = re.compile(
    r"(^|\.)(read_\w+|open|load|loadtxt|genfromtxt|fromfile|urlretrieve|load_\w+|fetch_\w+|load_dataset)$"
    r"|^(requests|urllib\.request)\.(get|urlopen)$"
)
GENERATED_DATASETS = re.compile(
    r"(^|\.)make_(classification|regression|blobs|moons|circles|friedman\d|hastie_10_2|s_curve|swiss_roll"
    r"|gaussian_quantiles|multilabel_classification|sparse_uncorrelated|low_rank_matrix)$"
)


def reads_data(facts: CellFacts) -> str | None:
    """The first call that reads a file or data set (`pd.read_csv`, `open`, `load_iris`), if any."""
    for call in facts.calls:
        if READS.search(call):
            return call
        if GENERATED_DATASETS.search(call):
            return call
    return None


def with_containers(facts: Sequence[CellFacts]) -> list[CellFacts]:
    """The cells' facts, where changing an element of a container another cell built from names
    (`combine = [train, test]`, then `for df in combine: df["x"] = ...`) also changes those names."""
    held: dict[str, set[str]] = {}
    for cell in facts:
        for name, names in containers(cell).items():
            held.setdefault(name, set()).update(names)
    if not held:
        return list(facts)
    expanded = []
    for cell in facts:
        changed = set(cell.mutates)
        pending = [n for n in changed if n in held]
        while pending:
            for name in held.get(pending.pop(), ()):
                if name not in changed:
                    changed.add(name)
                    pending.append(name)
        extra = changed - cell.mutates
        if not extra:
            expanded.append(cell)
            continue
        uses = cell.uses + tuple(sorted(extra - set(cell.uses) - cell.binds))
        expanded.append(replace(cell, uses=uses, binds=cell.binds | extra, mutates=frozenset(changed)))
    return expanded

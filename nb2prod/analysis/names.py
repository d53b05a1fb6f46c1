"""Static analysis of cell code: names, magics, `fit` calls. Pure functions, no kernel.

Cells other than `preprocess` may contain IPython syntax; they are turned into plain Python by
IPython's own transformer before parsing. Preprocess cells must already be plain Python.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from dataclasses import dataclass
from functools import lru_cache

from nb2prod.notebook.spec import Cell

MAGIC_LINE = re.compile(r"^\s*(%{1,2}\w|!|\w+\s*=\s*!|\w+\s*=\s*%)")
HELP_LINE = re.compile(r"^[^#'\"]*\w\?{1,2}\s*$")
# Magics that only change how output is shown in the notebook; dropped from shipped code.
DISPLAY_MAGIC = re.compile(r"^\s*%(matplotlib|config|autoreload)\b|^\s*%load_ext\s+autoreload\s*$")
# Magics that run their Python body unchanged (timing, output capture): analysed as that body.
TIMING_CELL_MAGIC = re.compile(r"^\s*%%(time|timeit|capture)\b[^\n]*\n")
TIMING_LINE_MAGIC = re.compile(r"^(?P<indent>\s*)%(time|timeit)\s+(?:-\S+\s+)*(?P<code>\S.*)$", re.MULTILINE)
NOTEBOOK_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__doc__", "__builtins__", "__spec__"}


@dataclass(frozen=True)
class MagicUse:
    """A line of IPython-only syntax (magic, shell escape, help) in a cell."""

    cell: Cell
    line_number: int
    line: str

    @property
    def display_only(self) -> bool:
        """`%matplotlib`, `%config`, `%load_ext autoreload`, `%autoreload`: safe to drop."""
        return bool(DISPLAY_MAGIC.match(self.line))


@dataclass(frozen=True)
class FitCall:
    """`<receiver>.fit(<features>, ...)` found in a cell; `line` is 1-based within the cell."""

    cell: Cell
    receiver: str
    features: str | None
    method: str = "fit"
    has_target: bool = False  # a `y` was passed: a supervised estimator, not a transformer
    line: int = 0


def find_magics(cell: Cell) -> list[MagicUse]:
    """Lines that only IPython understands: `%magic`, `!shell`, `x = !cmd`, `obj?`, get_ipython()."""
    found = []
    for number, line in enumerate(cell.source.splitlines(), start=1):
        if MAGIC_LINE.match(line) or HELP_LINE.match(line) or "get_ipython()" in line:
            found.append(MagicUse(cell, number, line.strip()))
    return found


def to_python(cell: Cell) -> str:
    """The cell's source as plain Python (IPython syntax translated).

    `%%time`/`%%timeit`/`%%capture` cells and `%time stmt` lines run their Python unchanged, so
    they are analysed as that Python; a fit hidden in a magic's string would be invisible.
    """
    return _python_source(cell.source)


@lru_cache(maxsize=4096)
def _python_source(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    match = TIMING_CELL_MAGIC.match(source)
    if match:
        source = "\n" + source[match.end() :]  # keep line numbers
    source = TIMING_LINE_MAGIC.sub(lambda m: m["indent"] + m["code"], source)
    return str(TransformerManager().transform_cell(source))


def parse_cell(cell: Cell) -> ast.Module | None:
    """Parse a cell (IPython syntax allowed); None when it is not valid Python at all."""
    return _parse(cell.source)


@lru_cache(maxsize=4096)
def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_python_source(source))
    except SyntaxError:
        return None


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module-level block binds: assignments, imports, defs, classes, loop targets."""
    return set(_top_level_names(ast.unparse(tree)))


@lru_cache(maxsize=4096)
def _top_level_names(source: str) -> frozenset[str]:
    table = symtable.symtable(source, "<cell>", "exec")
    return frozenset(s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported())


def cells_binding(cells: list[Cell], name: str) -> list[Cell]:
    """The cells, in order, that bind `name` at top level (`a.b` looks for `a`)."""
    root = name.split(".")[0]
    found = []
    for cell in cells:
        tree = parse_cell(cell)
        if tree is not None and root in top_level_names(tree):
            found.append(cell)
    return found


def defining_cell(cells: list[Cell], name: str, *, before: int | None = None) -> Cell | None:
    """The cell whose binding of `name` is in effect at cell index `before` (or at the end):
    the last binder above that point. A class or function is attributed to the cell whose
    `class`/`def` statement made it, not to an earlier cell that bound the same name."""
    binders = [c for c in cells_binding(cells, name) if before is None or c.index < before]
    return binders[-1] if binders else None


def defined_callables(tree: ast.Module) -> list[str]:
    """Classes and functions defined at the top level, in order."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node.name for node in tree.body if isinstance(node, kinds)]


def imported_modules(tree: ast.Module) -> set[str]:
    """Top-level package names the code imports (`sklearn` for `from sklearn.x import y`)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def free_names(source: str) -> list[str]:
    """Global names the code reads but never binds (and that are not builtins), in first-use order."""
    table = symtable.symtable(source, "<preprocess>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    missing: set[str] = set()
    _collect_free(table, bound, missing)
    order = [n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)]
    return sorted(missing, key=lambda name: order.index(name) if name in order else len(order))


def _collect_free(table: symtable.SymbolTable, bound: set[str], missing: set[str]) -> None:
    for symbol in table.get_symbols():
        name = symbol.get_name()
        if symbol.is_referenced() and symbol.is_global() and name not in bound and name not in NOTEBOOK_BUILTINS:
            missing.add(name)
    for child in table.get_children():
        _collect_free(child, bound, missing)


def first_use_line(source: str, name: str) -> int | None:
    """Line (1-based) where `name` is first read."""
    lines = [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and n.id == name]
    return min(lines) if lines else None


FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict"})


def fit_calls(cell: Cell) -> list[FitCall]:
    """Every `name.fit(X, ...)` (also `fit_transform`, `fit_predict`) in the cell, and
    `name = <estimator expression>.fit(X, ...)`, since `fit` returns the estimator."""
    tree = parse_cell(cell)
    if tree is None:
        return []
    chained = {
        id(node.value): node.targets[0].id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and _is_fit_call(node.value, {"fit"})
    }
    found = []
    for node in ast.walk(tree):
        if not _is_fit_call(node, FIT_METHODS):
            continue
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        receiver = node.func.value
        name = receiver.id if isinstance(receiver, ast.Name) else chained.get(id(node))
        if name is not None:
            has_target = len(node.args) > 1 or any(k.arg == "y" for k in node.keywords)
            found.append(
                FitCall(cell, name, _features_argument(node), node.func.attr, has_target, getattr(node, "lineno", 0))
            )
    return sorted(found, key=lambda call: call.line)


def _is_fit_call(node: ast.AST, methods: set[str] | frozenset[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods


def _features_argument(call: ast.Call) -> str | None:
    """The X of fit(X, y) as source text (`X_train`, `X.values`); `preprocess(X)` gives `X`."""
    arg: ast.expr | None = call.args[0] if call.args else None
    for keyword in call.keywords:
        if keyword.arg == "X":
            arg = keyword.value
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "preprocess" and arg.args:
        arg = arg.args[0]
    return ast.unparse(arg) if arg is not None else None


def calls_passing(cell: Cell, name: str) -> list[str]:
    """Names of the functions a cell passes `name` to as an argument (e.g. cross_validate)."""
    tree = parse_cell(cell)
    if tree is None:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(isinstance(a, ast.Name) and a.id == name for a in node.args):
            func = node.func
            found.append(func.id if isinstance(func, ast.Name) else ast.unparse(func))
    return found

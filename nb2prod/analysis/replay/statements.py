"""Questions about one statement of a preprocess cell, asked while replaying it.

What it binds, changes and reads, whether it only removes training rows, where its text starts.
Pure AST helpers for the `walker`.
"""

from __future__ import annotations

import ast

from nb2prod.analysis.replay.freeze import Classifier, Kind, Scope
from nb2prod.analysis.splice import Positions

MUTATORS = frozenset({"insert", "update", "pop"})
ROW_FILTERS = frozenset({"dropna", "drop_duplicates", "query", "sample", "head", "tail", "nlargest", "nsmallest"})


def update_scope(scope: Scope, node: ast.stmt) -> None:
    """After `name = value`: `name` follows the request if the value does, else it is a constant."""
    value = value_of(node)
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or value is None:
        return
    bound = bound_names(node)
    if Classifier(scope).kind(value) is Kind.ROW:
        scope.lineage |= bound
        scope.constants -= bound
    else:
        scope.constants |= bound
        scope.lineage -= bound


def headers(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, (ast.If, ast.While)):
        return [node.test]
    if isinstance(node, ast.With):
        return [item.context_expr for item in node.items]
    return []


def bodies(node: ast.stmt) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        found += getattr(node, name, [])
    for handler in getattr(node, "handlers", []):
        found += handler.body
    return found


def target_roots(node: ast.stmt) -> set[str]:
    """The names whose objects a statement assigns or changes."""
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = list(node.targets)
    elif isinstance(node, ast.Expr) and mutates(node.value):
        targets = [node.value.func.value]  # type: ignore[attr-defined]
    roots: set[str] = set()
    for target in targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            while isinstance(element, (ast.Attribute, ast.Subscript, ast.Call)):
                element = element.func if isinstance(element, ast.Call) else element.value
            if isinstance(element, ast.Name):
                roots.add(element.id)
    return roots


def callee_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def is_split(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "train_test_split"


def first_line(positions: Positions, node: ast.stmt) -> int:
    """The statement's first line, counting the comment lines right above it."""
    line = node.lineno
    while line > 1 and positions.lines[line - 2].strip().startswith("#"):
        line -= 1
    return line


def first_text(positions: Positions, node: ast.stmt) -> str:
    text = positions.text(node).split("\n")[0].strip()
    return text if len(text) <= 60 else text[:57] + "..."


def is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def bound_names(node: ast.stmt) -> set[str]:
    found: set[str] = set()
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            found.add(child.id)
    return found


def touched_names(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def value_of(node: ast.stmt) -> ast.expr | None:
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
        return node.value
    return None


def expressions(node: ast.stmt) -> list[ast.expr]:
    """The expressions of a statement the request evaluates (targets' subscripts too)."""
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        found = [node.value] if node.value is not None else []
        return found + [t.slice for t in targets if isinstance(t, ast.Subscript)]
    if isinstance(node, ast.Expr):
        return [node.value]
    if isinstance(node, ast.Delete):
        return [t.slice for t in node.targets if isinstance(t, ast.Subscript)]
    return []


def mutates(value: ast.expr) -> bool:
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return False
    inplace = any(
        k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True for k in value.keywords
    )
    return inplace or value.func.attr in MUTATORS


def is_row_filter(node: ast.stmt, lineage: set[str]) -> bool:
    """`train = train[train.Fare < 500]`, `train = train.dropna()`, `train.drop_duplicates(inplace=True)`."""
    value = value_of(node)
    if isinstance(node, ast.Assign) and not (target_roots(node) & roots(value)):
        return False  # `ages = train["Age"].dropna()` makes a new value; the frame keeps its rows
    if isinstance(node, ast.Expr) and not mutates(node.value):
        return False
    if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and value.value.id in lineage:
        key = value.slice
        masks = ("isin", "notna", "notnull", "between")
        return isinstance(key, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp)) or (
            isinstance(key, ast.Call) and isinstance(key.func, ast.Attribute) and key.func.attr in masks
        )
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in ROW_FILTERS:
        axis = [k.value for k in value.keywords if k.arg == "axis"]
        return not (axis and isinstance(axis[0], ast.Constant) and axis[0].value in (1, "columns"))
    return False


def roots(node: ast.expr | None) -> set[str]:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def string_items(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []

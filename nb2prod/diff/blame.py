"""Which cell made a breaking change: best effort, from the notebook's code, without a kernel.

A change about a field (or a category, or a class) is put on the last cell that ran and changes
it: names it as a string literal in a comparison (a row filter), a `del`, or a call that drops,
renames or recodes (`drop`, `remove_categories`, ...). Failing that, on the last cell that names
it at all; a change no literal points at, on the cell that fits the model.
"""

from __future__ import annotations

import ast
from typing import Any

from nb2prod.diff.report import ApiChange
from nb2prod.notebook.spec import Cell, NotebookSpec, Role


def blame(spec: NotebookSpec, change: ApiChange) -> Cell | None:
    """The cell whose code most likely made `change`, or None when no cell ran."""
    ran = [c for c in spec.code_cells() if not c.has(Role.SKIP, Role.PARAMETERS)]
    wanted = [v for v in (change.value, change.field) if isinstance(v, str)]
    for value in wanted:
        changing = [c for c in ran if value in _literals(c.source, changing=True)]
        naming = [c for c in ran if value in _literals(c.source)]
        if changing or naming:
            return (changing or naming)[-1]
    fitting = [c for c in ran if c.has(Role.TRAIN)]
    return fitting[-1] if fitting else (ran[-1] if ran else None)


# Methods that drop, rename or recode columns, rows or categories.
CHANGING_CALLS = {
    "drop",
    "pop",
    "remove_categories",
    "set_categories",
    "rename_categories",
    "rename",
    "replace",
    "isin",
    "dropna",
    "filter",
    "query",
    "where",
    "mask",
}


def _literals(source: str, *, changing: bool = False) -> set[Any]:
    """The string literals of `source`; with `changing`, only those inside a comparison, a `del`
    or a call of one of CHANGING_CALLS."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    roots: list[ast.AST] = [tree]
    if changing:
        roots = [
            node
            for node in ast.walk(tree)
            if isinstance(node, (ast.Compare, ast.Delete))
            or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CHANGING_CALLS
            )
        ]
    return {
        node.value
        for root in roots
        for node in ast.walk(root)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _method(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None

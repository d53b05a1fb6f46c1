"""A statement that rewrites the label in place (`df["default"] = df["default"].astype(int)`) is not a feature.

Encoding the label where the frame is cleaned (`astype(int)`, `map({"yes": 1, "no": 0})`,
`replace(...)`, `df["y"].fillna(0, inplace=True)`) changes only the column the model learns
from; a request has no label, so the replayed `preprocess(frame)` leaves such a statement out,
with a note, instead of refusing it as a feature built from the label.
"""

from __future__ import annotations

import ast

from nb2prod.analysis.replay.freeze import Classifier

IN_PLACE = frozenset({"replace", "fillna", "clip", "where", "mask", "update"})


def rewritten_label(node: ast.stmt, classifier: Classifier) -> str | None:
    """The label column `node` rewrites in place, when that is all it writes; else None."""
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        columns = {classifier.label_column(_column(t)) for t in targets}
        return next(iter(columns)) if len(columns) == 1 and None not in columns else None
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        func = call.func
        in_place = any(k.arg == "inplace" and _true(k.value) for k in call.keywords)
        if isinstance(func, ast.Attribute) and func.attr in IN_PLACE and in_place:
            return classifier.label_column(func.value)
    return None


def _column(target: ast.expr) -> ast.expr:
    """`df.loc[:, "y"]` is the column `df["y"]`."""
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute):
        holder = target.value
        if holder.attr in ("loc", "iloc") and isinstance(target.slice, ast.Tuple) and len(target.slice.elts) == 2:
            column = target.slice.elts[1]
            return ast.Subscript(value=holder.value, slice=column, ctx=ast.Load())
    return target


def _true(value: ast.expr) -> bool:
    return isinstance(value, ast.Constant) and value.value is True

"""The form a frame is given for `fit`: an array (`X_train.values`, `.to_numpy()`) or dicts (`to_dict("records")`).

People fit on `X_train.values` or on `df[features].to_dict("records")`. The frame inside is what
the replay rebuilds from a request; the form is put back around it, so the shipped
`preprocess(frame)` hands the model what it was fitted on. Such a fit input has no index of its
own, so the run also records the fit's label (`y_train` keeps the training rows' index): the
proof finds with it which raw rows the fit input's rows came from.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

ARRAY_ATTRIBUTE = "values"
ARRAY_METHOD = "to_numpy"
RECORDS = "records"
ROWS_KEY = "rows:"


@dataclass(frozen=True)
class FitForm:
    """`frame` is the expression inside the form; `around(text)` puts the form back on `text`."""

    frame: str
    node: ast.expr  # the form's expression, with `frame` as its receiver

    def around(self, text: str) -> str:
        """The form applied to `text` (parenthesised when it needs to be): `X.values`, `(a + b).values`."""
        inner = ast.parse(text, mode="eval").body
        outer = _with_receiver(self.node, inner)
        return ast.unparse(outer)


def peel(text: str) -> FitForm | None:
    """`X_train.values` -> FitForm("X_train", ...); `X.to_numpy()` likewise; None for anything else."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    receiver = _form_receiver(node)
    return FitForm(ast.unparse(receiver), node) if receiver is not None else None


def per_row(node: ast.Call) -> bool:
    """`frame.to_dict("records")` (or `orient="records"`): one dict per row, not a training value."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "to_dict"):
        return False
    orient = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "orient"), None)
    return isinstance(orient, ast.Constant) and orient.value == RECORDS


def rows_key(receiver: str) -> str:
    """The recording key of the fit's label for `receiver` (see the module docstring)."""
    return ROWS_KEY + receiver


def _form_receiver(node: ast.expr) -> ast.expr | None:
    if isinstance(node, ast.Attribute) and node.attr == ARRAY_ATTRIBUTE:
        return node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == ARRAY_METHOD
        and not node.args
        and not node.keywords
    ):
        return node.func.value
    return None


def _with_receiver(node: ast.expr, receiver: ast.expr) -> ast.expr:
    if isinstance(node, ast.Attribute):
        return ast.Attribute(receiver, node.attr, ast.Load())
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    return ast.Call(ast.Attribute(receiver, node.func.attr, ast.Load()), node.args, node.keywords)


def unindexed(statements: Sequence[Statement], start: str, before: int) -> bool:
    """Is the fit input `start` an array or a list of dicts made from a frame (so the proof needs
    the label's index)? `X_train.values`, or a name bound, through splits, to `to_dict("records")`."""
    if peel(start) is not None:
        return True
    name: str | None = start if start.isidentifier() else None
    seen: set[str] = set()
    while name is not None and name not in seen:
        seen.add(name)
        found = _bound(statements, name, before)
        if found is None:
            return False
        value, before = found
        if peel(ast.unparse(value)) is not None or any(isinstance(n, ast.Call) and per_row(n) for n in ast.walk(value)):
            return True  # `X = df.drop(columns=[...]).values`, `records = df[cols].to_dict("records")`
        name = value.id if isinstance(value, ast.Name) else None
    return False


class Statement(Protocol):
    """A top-level statement of a running cell, in run order (`fitchain.Located`)."""

    @property
    def order(self) -> int: ...

    @property
    def node(self) -> ast.stmt: ...


def _bound(statements: Sequence[Statement], name: str, before: int) -> tuple[ast.expr, int] | None:
    """What the last `name = ...` before `before` binds it to; through a split, the list it splits."""
    for located in reversed(statements[:before]):
        node = located.node
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == name:
            return node.value, located.order
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Call):
            names = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
            if name in names:
                position = names.index(name) // 2
                args = node.value.args
                return (args[position], located.order) if position < len(args) else None
    return None


def unkeyed_reason(receiver: str, features: str, label: str) -> tuple[str, str]:
    """(why, fix) when neither the fit input nor the label has an index: the proof cannot tell
    which raw rows the training rows are, so raw rows are not served."""
    why = (
        f"`{receiver}` is fitted on `{features}` with the label `{label}`, both without an index (arrays or "
        "lists), so nothing tells which raw rows the training rows came from and the replay cannot be proven "
        "on them"
    )
    fix = (
        f'Keep the label a pandas Series (e.g. `y = df["label"]` rather than `.values`): its index names the '
        f"training rows, and `{features}` may stay an array."
    )
    return why, fix

"""The transform a notebook applies to the label before the fit (`y = np.log1p(df["price"])`).

The served model answers on that scale, not in the label's own units; the manifest and the README
name the transform, and the way back (`np.expm1(prediction)`), so that users read answers right.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2prod.analysis.fitchain import Located, label_sources, run_statements
from nb2prod.notebook.spec import NotebookSpec, Role

# function -> its inverse, written on `prediction`
INVERSES = {
    "log1p": "np.expm1({})",
    "log": "np.exp({})",
    "log2": "2 ** {}",
    "log10": "10 ** {}",
    "sqrt": "{} ** 2",
    "cbrt": "{} ** 3",
    "exp": "np.log({})",
    "expm1": "np.log1p({})",
}
NUMERIC_MODULES = ("np", "numpy", "math")
OPERATOR_INVERSES = {ast.Div: "{} * {}", ast.Mult: "{} / {}", ast.Add: "{} - {}", ast.Sub: "{} + {}"}
MAX_HOPS = 12


@dataclass(frozen=True)
class TargetTransform:
    """`expression` as the notebook writes it, where, and how to undo it on an answer."""

    expression: str
    cell_number: int
    line: int
    inverse: str | None  # e.g. "np.expm1(prediction)"


def find_target_transform(spec: NotebookSpec, model: str) -> TargetTransform | None:
    """The transform on the label that `model`'s last fit in a train cell learns from, if any."""
    statements = run_statements(spec)
    fit = _last_fit(statements, model.split(".")[0])
    if fit is None:
        return None
    located, node = fit
    for _ in range(MAX_HOPS):
        if node is None:
            return None
        found = _transform(node)
        if found is not None:
            return TargetTransform(ast.unparse(node), located.cell.number, node.lineno, found)
        if not isinstance(node, ast.Name):
            return None
        source = _source(statements, node.id, located.order)
        if source is None:
            return None
        located, node = source
    return None


def _last_fit(statements: list[Located], receiver: str) -> tuple[Located, ast.expr | None] | None:
    found = None
    for located in statements:
        if not located.cell.has(Role.TRAIN):
            continue
        for node in ast.walk(located.node):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fit":
                if (
                    isinstance(node.func.value, ast.Name)
                    and node.func.value.id == receiver
                    or _assigns(located.node, node, receiver)
                ):
                    target = node.args[1] if len(node.args) > 1 else None
                    found = (located, next((k.value for k in node.keywords if k.arg == "y"), target))
    return found


def _assigns(statement: ast.stmt, call: ast.Call, receiver: str) -> bool:
    """`model = Estimator(...).fit(X, y)`."""
    return (
        isinstance(statement, ast.Assign)
        and statement.value is call
        and any(isinstance(t, ast.Name) and t.id == receiver for t in statement.targets)
    )


def _source(statements: list[Located], name: str, before: int) -> tuple[Located, ast.expr] | None:
    """What the last top-level assignment to `name` above statement `before` assigns; through
    `train_test_split(X, y)` to `y` (the lookup the label's own tracing uses)."""
    found = label_sources(statements, name, before)
    if not found:
        return None
    value, order = found[0]
    return next(located for located in statements if located.order == order), value


def _transform(node: ast.expr) -> str | None:
    """How to undo `node` on a prediction, when it is a known numeric transform of a column or
    a name ("" when the inverse is not known); None when it is no transform."""
    if isinstance(node, ast.Call) and node.args and _column(node.args[0]):
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in NUMERIC_MODULES:
            inverse = INVERSES.get(func.attr)
            return inverse.format("prediction") if inverse else None
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATOR_INVERSES and _column(node.left):
        if isinstance(node.right, ast.Constant) and isinstance(node.right.value, (int, float)):
            return OPERATOR_INVERSES[type(node.op)].format("prediction", node.right.value)
    return None


def _column(node: ast.expr) -> bool:
    return isinstance(node, (ast.Subscript, ast.Attribute, ast.Name))

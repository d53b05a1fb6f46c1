"""Metrics a notebook computes without a `metrics` dict, found in its evaluate cells.

People write `accuracy_score(y_test, pred)` or `model.score(X_test, y_test)`, not a dict. In the
evaluate cells, a call of a `*_score` or `*_error` function, or the model's own `score`, that reads
the served model or what it predicted is a metric, named after the function (`accuracy_score`,
`score`). The capture step evaluates each such call again at the end of the run, so only calls
whose inputs no later statement changes are taken, and only on held-out data (nothing passed to
the model's `fit`, nothing named `train`). A `metrics` dict, when the notebook sets one, wins.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from nb2prod.analysis.fitchain import fit_receivers
from nb2prod.analysis.flow import CellFacts, Statement, cell_facts, dotted
from nb2prod.notebook.spec import Cell, NotebookSpec, Role

METRIC_FUNCTION = re.compile(r"(^|\.)(\w+_score|\w+_error)$")
NOT_SCALAR = re.compile(r"(^|\.)(cross_val_score|cross_validate|learning_curve|validation_curve)$")
NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class MetricCall:
    """`accuracy_score(y_test, pred)` in an evaluate cell: its name and its source text."""

    name: str
    expression: str
    cell: Cell


def metric_calls(spec: NotebookSpec, model: str | None) -> list[MetricCall]:
    """The metric calls of the evaluate cells on the served model's predictions, one per name
    (the last one)."""
    roots = set(fit_receivers(spec, model))
    if not roots or not spec.code_cells(Role.EVALUATE):
        return []
    running = [cell_facts(c) for c in spec.code_cells() if not c.has(Role.SKIP)]
    statements = [(facts, s) for facts in running for s in facts.statements]
    derived = set(roots)
    training = _fit_arguments(statements, roots)
    found: dict[str, MetricCall] = {}
    for position, (facts, statement) in enumerate(statements):
        reads = {n.id for n in ast.walk(statement.node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if facts.cell.has(Role.EVALUATE):
            later = set().union(*(s.binds for _, s in statements[position + 1 :]))
            for call in _calls(statement.node):
                metric = _metric(call, derived, later | training)
                if metric is not None:
                    found.pop(metric, None)
                    found[metric] = MetricCall(metric, ast.unparse(call), facts.cell)
        if reads & derived:
            derived |= statement.binds - roots
        else:
            derived -= statement.binds - roots
    return list(found.values())


def _fit_arguments(statements: list[tuple[CellFacts, Statement]], roots: set[str]) -> set[str]:
    """Names passed to the served model's `fit`: its training data, never held out."""
    found: set[str] = set()
    for _, statement in statements:
        if not statement.binds & roots:  # `model.fit(X, y)` and `model = Tree().fit(X, y)` both bind it
            continue
        for node in ast.walk(statement.node):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fit":
                arguments = [*node.args, *(k.value for k in node.keywords)]
                found |= {n.id for a in arguments for n in ast.walk(a) if isinstance(n, ast.Name)}
    return found


def _calls(node: ast.AST) -> list[ast.Call]:
    """Calls evaluated at the top level of a statement (not in function bodies or loops)."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, NESTED):
            continue
        if isinstance(child, ast.Call):
            found.append(child)
        found += _calls(child)
    return found


def _metric(call: ast.Call, derived: set[str], excluded: set[str]) -> str | None:
    callee = dotted(call.func) or ""
    names = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
    if isinstance(call.func, ast.Attribute) and call.func.attr == "score":
        receiver = call.func.value
        if not (isinstance(receiver, ast.Name) and receiver.id in derived):
            return None
        name = "score"
    elif METRIC_FUNCTION.search(callee) and not NOT_SCALAR.search(callee) and names & derived:
        name = callee.split(".")[-1]
    else:
        return None
    if any("train" in n.lower() for n in names) or names & excluded:
        return None  # training data, or inputs a later statement changes
    return name

"""The two edits of each replayed statement: the service's code and the recording run's.

For every training value found by `freeze`, the generated code reads `FROZEN[key]` where the
notebook computed it, and the run wraps the same expression in a recorder call that stores its
value under `key` (in the training pass of a frame loop only). `get_dummies` results are
aligned to the recorded training columns; `qcut`/`cut(x, n)` become `cut` on recorded edges;
`astype("category")` takes the recorded categories; `le.fit_transform(x)` becomes training's
fitted `le` transforming `x`.
Label columns a request lacks are taken out of `drop(...)` calls.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

from nb2prod.analysis.replay.freeze import Findings, Freeze, bins_argument, drop_columns_node
from nb2prod.analysis.replay.plan import ALIGN, CATEGORIES, FROZEN, Emitted, FrozenValue
from nb2prod.analysis.replay.statements import callee_name, string_items
from nb2prod.analysis.splice import Edit, Positions, replace, wrap
from nb2prod.notebook.spec import Cell


@dataclass
class StatementEdits:
    """The edits of one statement: of the generated code, of the run, and the values recorded."""

    code: list[Edit] = field(default_factory=list)
    run: list[Edit] = field(default_factory=list)
    frozen: list[FrozenValue] = field(default_factory=list)


@dataclass
class EditMaker:
    """Makes the edits; keeps the keys unique across the whole module."""

    pandas: str = "pandas"
    uses_pandas: bool = False  # the generated code names pandas itself (a bare `qcut`)
    taken: set[str] = field(default_factory=set)

    def freeze(self, cell: Cell, positions: Positions, found: Findings, loop_id: str | None) -> StatementEdits:
        edits = StatementEdits()
        loop = f'"{loop_id}"' if loop_id else "None"
        for freeze in found.freezes:
            value = self._key(cell, freeze)
            edits.frozen.append(value)
            read, varies = _subscript(freeze), f"({', '.join(freeze.loop_vars)},)" if freeze.loop_vars else "()"
            key = json.dumps(value.key, ensure_ascii=False)  # a Python literal in ruff's quotes
            if freeze.what == "value":
                edits.code.append(replace(positions, freeze.node, f"{FROZEN}[{key}]{read}"))
                edits.run += wrap(positions, freeze.node, f"_nb2prod_freeze({key}, ", f", {loop}, {varies})")
            elif freeze.what == "columns":
                edits.code += wrap(positions, freeze.node, f"{ALIGN}(", f", {FROZEN}[{key}]{read})")
                edits.code += _all_categories(positions, freeze.node)
                edits.run += wrap(positions, freeze.node, f"_nb2prod_columns({key}, ", f", {loop}, {varies})")
            elif freeze.what == "fitted":
                assert isinstance(freeze.node, ast.Call) and isinstance(freeze.node.func, ast.Attribute)
                receiver = freeze.node.func.value
                edits.code.append(replace(positions, receiver, f"{FROZEN}[{key}]{read}"))
                end = positions.end(freeze.node.func)
                edits.code.append(Edit(end - len("fit_transform"), end, "transform"))
                before = f"_nb2prod_fitted({key}, {positions.text(receiver)}, "
                edits.run += wrap(positions, freeze.node, before, f", {loop}, {varies})")
            elif freeze.what == "categories":
                assert isinstance(freeze.node, ast.Call) and isinstance(freeze.node.func, ast.Attribute)
                receiver = freeze.node.func.value
                edits.code.append(Edit(positions.start(freeze.node), positions.start(freeze.node), f"{CATEGORIES}("))
                tail = f", {FROZEN}[{key}]{read})"
                edits.code.append(Edit(positions.end(receiver), positions.end(freeze.node), tail))
                edits.run += wrap(positions, freeze.node, f"_nb2prod_categories({key}, ", f", {loop}, {varies})")
            else:
                assert isinstance(freeze.node, ast.Call)
                edits.code += self._bins(positions, freeze.node, f"{FROZEN}[{key}]{read}")
                edits.run += wrap(positions, freeze.node.func, f"_nb2prod_bins({key}, {loop}, {varies}, ", ")")
        return edits

    def _key(self, cell: Cell, freeze: Freeze) -> FrozenValue:
        node = freeze.node
        text = ast.unparse(node.func.value if freeze.what == "fitted" else node)  # type: ignore[attr-defined]
        key = text if freeze.what == "value" else f"{text} {freeze.what}"
        unique, number = key, 2
        while unique in self.taken:
            unique, number = f"{key} #{number}", number + 1
        self.taken.add(unique)
        return FrozenValue(unique, freeze.what, cell.index, node.lineno, text)

    def _bins(self, positions: Positions, call: ast.Call, frozen: str) -> list[Edit]:
        """`pd.qcut(x, 4, labels=False)` -> `pd.cut(x, FROZEN[...], labels=False, include_lowest=True)`."""
        edits: list[Edit] = []
        bins = bins_argument(call)
        keyword = next((k for k in call.keywords if k.value is bins), None)
        if keyword is not None:
            edits.append(replace(positions, keyword, f"bins={frozen}"))
        elif bins is not None:
            edits.append(replace(positions, bins, frozen))
        if callee_name(call) != "qcut":
            return edits
        func = call.func
        if isinstance(func, ast.Attribute):
            end = positions.end(func)
            edits.append(Edit(end - len("qcut"), end, "cut"))
        else:
            edits.append(replace(positions, func, f"{self.pandas}.cut"))
            self.uses_pandas = True
        closing = positions.end(call) - 1
        comma = positions.source[:closing].rstrip().endswith(",")
        edits.append(Edit(closing, closing, " include_lowest=True" if comma else ", include_lowest=True"))
        return edits


def label_drop_edits(positions: Positions, found: Findings, labels: frozenset[str]) -> list[Edit]:
    """`train.drop("Survived", axis=1)`: a request has no label, so only the other columns go."""
    edits: list[Edit] = []
    for call in found.label_drops:
        columns = drop_columns_node(call)
        kept = [c for c in string_items(columns) if c not in labels]
        if kept and columns is not None:
            edits.append(replace(positions, columns, repr(kept)))
        else:
            receiver = call.func.value  # type: ignore[attr-defined]
            edits.append(Edit(positions.end(receiver), positions.end(call), ""))
    return edits


def tolerant_drops(positions: Positions, node: ast.stmt, found: Findings, labels: frozenset[str]) -> list[Edit]:
    """`frame.drop(columns=["id"])` with `errors="ignore"` in the service: a request need not send
    the columns the notebook drops (the proof leaves out those it never reads)."""
    removed = {
        id(c) for c in found.label_drops if not [x for x in string_items(drop_columns_node(c)) if x not in labels]
    }
    edits: list[Edit] = []
    for call in ast.walk(node):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "drop"):
            continue
        if id(call) in removed or any(k.arg in ("errors", "index") or k.arg is None for k in call.keywords):
            continue
        closing = positions.end(call) - 1
        comma = positions.source[:closing].rstrip().endswith((",", "("))
        edits.append(Edit(closing, closing, 'errors="ignore"' if comma else ', errors="ignore"'))
    return edits


def label_free_columns(positions: Positions, node: ast.stmt, labels: frozenset[str]) -> list[Edit]:
    """`frame.columns = ["a", "b", "label"]`: a request has no label column, so the service names
    the columns it has, in the same order, without the label's name."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, (ast.List, ast.Tuple))):
        return []
    target = node.targets[0]
    if not (isinstance(target, ast.Attribute) and target.attr == "columns"):
        return []
    names = string_items(node.value)
    if len(names) != len(node.value.elts) or not set(names) & labels:
        return []
    return [replace(positions, node.value, repr([n for n in names if n not in labels]))]


def _all_categories(positions: Positions, node: ast.expr) -> list[Edit]:
    """`get_dummies(..., drop_first=True)` on one request row would drop the row's only category:
    the service makes every column and keeps training's (the first category's column is not one)."""
    if not isinstance(node, ast.Call):
        return []
    return [
        replace(positions, k.value, "False")
        for k in node.keywords
        if k.arg == "drop_first" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
    ]


def _subscript(freeze: Freeze) -> str:
    """`[col]` when the value varies with a loop over constants (`for col in [...]`)."""
    if not freeze.loop_vars:
        return ""
    if len(freeze.loop_vars) == 1:
        return f"[{freeze.loop_vars[0]}]"
    return f"[({', '.join(freeze.loop_vars)})]"


@dataclass(frozen=True)
class Pending:
    """A frozen assignment (`median = train["Age"].median()`), shipped only if shipped code reads
    the names it binds."""

    emitted: Emitted
    cell: Cell
    edits: StatementEdits
    binds: frozenset[str]
    text: str


def used_assignments(pending: list[Pending], shipped: list[str]) -> list[Pending]:
    """The frozen assignments that shipped code reads, directly or through another of them."""
    read = set().union(*(_names_in(text) for text in shipped))
    used: list[Pending] = []
    changed = True
    while changed:
        changed = False
        for assignment in pending:
            if assignment not in used and assignment.binds & read:
                used.append(assignment)
                read |= _names_in(assignment.emitted.text)
                changed = True
    return used


def _names_in(text: str) -> set[str]:
    try:
        tree = ast.parse(text.strip())
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}

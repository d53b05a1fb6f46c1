"""Where the raw frame begins: the first frame in the fit input's lineage not computed from another frame.

The rule, read without a kernel: follow the model's fit input back through the assignments that
make it (`X_train` from `train_test_split(X, ...)`, `X` from `pd.get_dummies(df.drop(...))`, `df`
from ...). The first frame reached that the notebook *makes*, instead of computing it from
another frame, is where the raw frame begins:

- a file read: `df = pd.read_csv("loans.csv")` (any `pd.read_*`);
- a frame the notebook builds: `df = pd.DataFrame({... random draws ...})`, or
  `df = pd.DataFrame(records)` from records read with the csv module (a `DataFrame(...)` of
  something that is not itself a frame: `pd.DataFrame(other_df)` is followed back to `other_df`);
- a data set's frame: `load_wine(as_frame=True).frame`, `wine.frame`, `sns.load_dataset(...)`.

That statement's cell is the origin cell. It and every cell above it run as the notebook wrote
them (the origin cell is proposed `load`); the fit-input cells below it are proposed `preprocess`
and replayed per request. The service takes the columns that the frame has when the origin cell
ends (what the cell does after making the frame, such as encoding the label in place, is part of
making the data), with the label and the columns the notebook drops left out. When the frame is
read from a file and the same cell goes on to change it (`df["age"] = 2024 - df["year"]` below the
`pd.read_csv`; `changed_after` finds the first such line), those lines are replayed per request
with the preprocess cells below (see `read_tail`), so the service takes the file's columns.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nb2prod.analysis.flow import CellFacts, dotted
from nb2prod.analysis.replay.plan import frame_root

READER = re.compile(r"(^|\.)read_\w+$")
CONSTRUCTOR = re.compile(r"(^|\.)DataFrame(\.from_records|\.from_dict)?$")
DATASET = re.compile(r"(^|\.)(load_\w+|fetch_\w+|load_dataset)$")
TRANSFORMS = frozenset({"transform", "fit_transform"})
SPLITS = re.compile(r"(^|\.)train_test_split$")


@dataclass(frozen=True)
class RawOrigin:
    """The statement that makes the raw frame: its name, cell, line and how it is made."""

    frame: str
    cell_index: int
    line: int
    how: str  # "reads it with `pd.read_csv`", "builds it with `pd.DataFrame`", ...
    is_frame: bool = True  # False for a data set loaded as a bunch or arrays (`load_wine()`)


def changed_after(origin: RawOrigin, facts: CellFacts, labels: frozenset[str]) -> tuple[int, str] | None:
    """The first line of the origin cell, below a file read, that changes the raw frame (a column
    other than the label, the frame rebound, an in-place method), with its text; None if none."""
    if not origin.how.startswith("reads"):
        return None
    for statement in facts.statements:
        node = statement.node
        if node.lineno > origin.line and _changes(node, origin.frame, labels):
            return node.lineno, ast.unparse(node).split("\n")[0][:60]
    return None


def _changes(node: ast.stmt, frame: str, labels: frozenset[str]) -> bool:
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(_changed_column(t, frame, labels) for t in targets)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        in_place = any(k.arg == "inplace" for k in call.keywords)
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        return in_place and receiver is not None and _changed_column(receiver, frame, labels)
    return False


def _changed_column(target: ast.expr, frame: str, labels: frozenset[str]) -> bool:
    """`frame`, `frame.columns`, `frame["x"]` or `frame.loc[..., "x"]` with `x` not the label."""
    if isinstance(target, ast.Name):
        return target.id == frame
    if isinstance(target, ast.Attribute):
        return isinstance(target.value, ast.Name) and target.value.id == frame and target.attr not in labels
    if not isinstance(target, ast.Subscript):
        return False
    column = target.slice.elts[-1] if isinstance(target.slice, ast.Tuple) and target.slice.elts else target.slice
    holder = target.value
    if isinstance(holder, ast.Attribute) and holder.attr in ("loc", "iloc"):
        holder = holder.value
    named = isinstance(column, ast.Constant) and column.value in labels
    return isinstance(holder, ast.Name) and holder.id == frame and not named


@dataclass(frozen=True)
class _Statement:
    cell_index: int
    node: ast.stmt


def find_raw_origin(running: Sequence[CellFacts], fit_cell: int, features: str | None) -> RawOrigin | None:
    """Where the raw frame of the fit input `features` (the `X` of the served model's fit, in cell
    `fit_cell`) begins, following the rule of the module docstring; None when the lineage does not
    reach a frame the notebook makes (an array from `load_iris(return_X_y=True)`, a loop, ...)."""
    if not features:
        return None
    try:
        start = ast.parse(features, mode="eval").body
    except SyntaxError:
        return None
    statements = [_Statement(f.cell.index, s.node) for f in running if f.cell.index <= fit_cell for s in f.statements]
    modules = {n for f in running for s in f.statements if _is_import(s.node) for n in s.binds}
    return _Tracer(statements, modules).trace(frame_root(start, modules), len(statements))


class _Tracer:
    def __init__(self, statements: list[_Statement], modules: set[str]) -> None:
        self.statements = statements
        self.modules = modules

    def trace(self, name: str | None, at: int) -> RawOrigin | None:
        seen: set[tuple[str, int]] = set()
        while name is not None and (name, at) not in seen:
            seen.add((name, at))
            found = self._binding(name, at)
            if found is None:
                return None
            position, node = found
            value = node.value
            split = _split_source(node, name)
            if split is not None:
                name, at = split, position
                continue
            made = self._made(value, position)
            if made is not None:
                how, is_frame = made
                return RawOrigin(name, self.statements[position].cell_index, node.lineno, how, is_frame)
            name, at = self._source(value), position
        return None

    def _source(self, value: ast.expr) -> str | None:
        """The frame `value` is computed from; through a fitted transformer's `transform(X)` or
        `fit_transform(X)` (`imputer.transform(X_train.values)`), its input."""
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.args:
            if value.func.attr in TRANSFORMS:
                return frame_root(value.args[0], self.modules)
        return frame_root(value, self.modules)

    def _binding(self, name: str, before: int) -> tuple[int, ast.Assign] | None:
        """The last plain assignment to `name` above statement `before`."""
        for position in range(before - 1, -1, -1):
            node = self.statements[position].node
            if isinstance(node, ast.Assign) and name in _assigned_names(node):
                return position, node
        return None

    def _made(self, value: ast.expr, position: int) -> tuple[str, bool] | None:
        """How `value` makes data that is not computed from another frame, and whether it is
        surely a frame; None when it is computed from something else."""
        if isinstance(value, ast.Attribute) and value.attr == "frame":
            return "takes a data set's frame (`.frame`)", True
        if not isinstance(value, ast.Call):
            return None
        callee = dotted(value.func) or ""
        if READER.search(callee):
            return f"reads it with `{callee}`", True
        if DATASET.search(callee):
            as_frame = any(k.arg == "as_frame" for k in value.keywords) or callee.endswith("load_dataset")
            return f"loads it with `{callee}`", as_frame
        if CONSTRUCTOR.search(callee):
            first = value.args[0] if value.args else None
            source = frame_root(first, self.modules) if first is not None else None
            origin = self.trace(source, position) if source is not None else None
            if origin is not None and origin.is_frame:
                return None  # `pd.DataFrame(other_frame)`: computed from another frame
            return f"builds it with `{callee}`", True
        return None


def _is_import(node: ast.stmt) -> bool:
    return isinstance(node, (ast.Import, ast.ImportFrom))


def _assigned_names(node: ast.Assign) -> set[str]:
    found: set[str] = set()
    for target in node.targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            if isinstance(element, ast.Name):
                found.add(element.id)
    return found


def _split_source(node: ast.Assign, name: str) -> str | None:
    """In `X_tr, X_te, y_tr, y_te = train_test_split(X, y)`, `X_tr` comes from `X`."""
    target = node.targets[0]
    value = node.value
    if not (isinstance(target, ast.Tuple) and isinstance(value, ast.Call) and SPLITS.search(dotted(value.func) or "")):
        return None
    names = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
    position = names.index(name) // 2 if name in names else len(value.args)
    source = value.args[position] if position < len(value.args) else None
    return source.id if isinstance(source, ast.Name) else None

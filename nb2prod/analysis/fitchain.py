"""What the model's fit input is built from: fitted transformers, `preprocess(...)`, the label.

Walking back from `model.fit(X, y)` through the assignments that made `X`:
`X = scaler.fit_transform(X_imputed)`, `X_imputed = imputer.fit_transform(X_train)` gives the
chain imputer -> scaler from `X_train`; `X = preprocess(X_raw)` is a function step. The served
model is the chain composed with the model, so the service takes what the chain starts from.
The `y` side names the label: the columns a request never has.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass

from nb2prod.analysis.names import TIMING_CELL_MAGIC, find_magics, fit_calls
from nb2prod.analysis.replay.forms import rows_key, unindexed
from nb2prod.analysis.splice import Edit, Positions, wrap
from nb2prod.notebook.spec import Cell, NotebookSpec, Role

TRANSFORM_METHODS = frozenset({"fit_transform", "transform"})
KEEP = "_nb2prod_keep"


@dataclass(frozen=True)
class Located:
    """A top-level statement of a cell that runs, in run order."""

    order: int
    cell: Cell
    node: ast.stmt


@dataclass(frozen=True)
class FitChain:
    """How the input of `receiver.fit(X, y)` is made."""

    receiver: str
    cell: Cell
    features: str  # X as written in the fit call
    transformers: tuple[str, ...]  # fitted transformer variables, in the order they apply
    function: bool  # a `preprocess(...)` step
    start: str  # the expression the chain starts from (what the service takes)
    steps: frozenset[tuple[int, int]]  # (cell index, line) of the statements that are chain steps
    label_names: frozenset[str]
    label_columns: frozenset[str]
    label: str = ""  # y as written in the fit call
    unkeyed_line: int | None = None  # the fit's line when neither X nor y has an index (see replay.forms)

    @property
    def composed(self) -> bool:
        return bool(self.transformers) or self.function


@dataclass(frozen=True)
class FitAnalysis:
    chains: tuple[FitChain, ...]
    edits: dict[int, list[Edit]]  # cell index -> recording edits (wrapping X and the chain start)

    def chain(self, receiver: str | None) -> FitChain | None:
        found = [c for c in self.chains if c.receiver == receiver]
        if not found and receiver is None and len(self.chains) == 1:
            found = list(self.chains)
        return found[-1] if found else None

    @property
    def label_columns(self) -> frozenset[str]:
        return frozenset().union(*(c.label_columns for c in self.chains)) if self.chains else frozenset()

    @property
    def label_names(self) -> frozenset[str]:
        return frozenset().union(*(c.label_names for c in self.chains)) if self.chains else frozenset()


def cell_text(cell: Cell) -> str:
    """The cell's source with display-only magics and a `%%time` line turned into comments of
    the same length, so offsets in it are offsets in the cell (the run is edited at them)."""
    lines = cell.source.split("\n")
    for use in find_magics(cell):
        if use.display_only and use.line_number <= len(lines):
            lines[use.line_number - 1] = lines[use.line_number - 1].replace("%", "#", 1)
    if TIMING_CELL_MAGIC.match(cell.source):  # `%%time`: the rest of the cell is plain Python
        lines[0] = "#" + lines[0][1:]
    return "\n".join(lines)


def editable_tree(cell: Cell) -> ast.Module | None:
    """The cell parsed as plain Python (display magics as comments), None if it is not."""
    try:
        return ast.parse(cell_text(cell))
    except SyntaxError:
        return None


def fit_receivers(spec: NotebookSpec, model: str | None) -> tuple[str, ...]:
    """The model's variable when named, else every variable train cells fit with a target."""
    if model:
        return (model.split(".")[0],)
    found = [c for cell in spec.code_cells(Role.TRAIN) for c in fit_calls(cell) if c.method == "fit"]
    supervised = [c.receiver for c in found if c.has_target]
    return tuple(dict.fromkeys(supervised or [c.receiver for c in found]))


def run_statements(spec: NotebookSpec) -> list[Located]:
    found: list[Located] = []
    for cell in spec.code_cells():
        if cell.has(Role.SKIP):
            continue
        tree = editable_tree(cell)
        for node in tree.body if tree is not None else []:
            found.append(Located(len(found), cell, node))
    return found


def analyse_fits(spec: NotebookSpec, receivers: tuple[str, ...]) -> FitAnalysis:
    """Chains of the last fit of each receiver in train cells, and the edits that record them."""
    statements = run_statements(spec)
    chains: list[FitChain] = []
    edits: dict[int, list[Edit]] = {}
    for receiver in receivers:
        fit = _last_fit(statements, receiver)
        if fit is None:
            continue
        located, call = fit
        chain, start = _walk(statements, located, call, receiver)
        positions = Positions(cell_text(located.cell))
        features = _features_node(call)
        if features is not None:
            edits.setdefault(located.cell.index, []).extend(
                wrap(positions, features, f'{KEEP}("fit:{receiver}", ', ")")
            )
        target = _target_node(call)
        if target is not None and unindexed(statements, chain.start, located.order):
            edits.setdefault(located.cell.index, []).extend(
                wrap(positions, target, f'{KEEP}("{rows_key(receiver)}", ', ")")
            )
            if unindexed(statements, ast.unparse(target), located.order):
                chain = dataclasses.replace(chain, label=ast.unparse(target), unkeyed_line=call.lineno)
        chains.append(chain)
        if chain.composed and start is not None:
            start_cell, start_node = start
            edits.setdefault(start_cell.index, []).extend(
                wrap(Positions(cell_text(start_cell)), start_node, f'{KEEP}("start:{receiver}", ', ")")
            )
    return FitAnalysis(tuple(chains), edits)


def _last_fit(statements: list[Located], receiver: str) -> tuple[Located, ast.Call] | None:
    found = None
    for located in statements:
        if not located.cell.has(Role.TRAIN):
            continue
        for node in ast.walk(located.node):
            if _is_fit_of(node, receiver, located.node):
                found = (located, node)
    return found  # type: ignore[return-value]


def _is_fit_of(node: ast.AST, receiver: str, statement: ast.stmt) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fit"):
        return False
    target = node.func.value
    if isinstance(target, ast.Name):
        return target.id == receiver
    # `model = Estimator(...).fit(X, y)`
    return (
        isinstance(statement, ast.Assign)
        and statement.value is node
        and any(isinstance(t, ast.Name) and t.id == receiver for t in statement.targets)
    )


def _features_node(call: ast.Call) -> ast.expr | None:
    node = call.args[0] if call.args else None
    return next((k.value for k in call.keywords if k.arg == "X"), node)


def _target_node(call: ast.Call) -> ast.expr | None:
    node = call.args[1] if len(call.args) > 1 else None
    return next((k.value for k in call.keywords if k.arg == "y"), node)


def _walk(
    statements: list[Located], fit: Located, call: ast.Call, receiver: str
) -> tuple[FitChain, tuple[Cell, ast.expr] | None]:
    node = _features_node(call)
    features = ast.unparse(node) if node is not None else ""
    transformers: list[str] = []
    function = False
    steps: set[tuple[int, int]] = set()
    where: Located = fit
    while node is not None:
        step = _step(node)
        if step is not None:
            name, argument = step
            if name == "preprocess":
                function = True
            else:
                transformers.insert(0, name)
            steps.add((where.cell.index, where.node.lineno))
            node = argument
            continue
        if isinstance(node, ast.Name):
            binding = _binding(statements, node.id, where.order)
            if binding is not None and isinstance(binding.node, ast.Assign) and _chain_value(binding.node.value):
                where, node = binding, binding.node.value
                continue
        break
    names, columns = _labels(statements, _target_node(call), fit.order)
    chain = FitChain(
        receiver=receiver,
        cell=fit.cell,
        features=features,
        transformers=tuple(transformers),
        function=function,
        start=ast.unparse(node) if node is not None else features,
        steps=frozenset(steps),
        label_names=frozenset(names),
        label_columns=frozenset(columns),
    )
    return chain, ((where.cell, node) if node is not None else None)


def _step(node: ast.expr) -> tuple[str, ast.expr] | None:
    """`preprocess(W)` or `T.fit_transform(W)` / `T.transform(W)` -> (name, W)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id == "preprocess":
        return "preprocess", node.args[0]
    if isinstance(func, ast.Attribute) and func.attr in TRANSFORM_METHODS and isinstance(func.value, ast.Name):
        return func.value.id, node.args[0]
    return None


def _chain_value(value: ast.expr) -> bool:
    return _step(value) is not None or isinstance(value, ast.Name)


def _binding(statements: list[Located], name: str, before: int) -> Located | None:
    """The last top-level `name = ...` before statement `before`."""
    for located in reversed(statements[:before]):
        node = located.node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return located
    return None


def _labels(statements: list[Located], target: ast.expr | None, before: int) -> tuple[set[str], set[str]]:
    """Names that hold the label, and the frame columns it was taken from."""
    names: set[str] = set()
    columns: set[str] = set()
    pending: list[tuple[ast.expr, int]] = [(target, before)] if target is not None else []
    while pending:
        node, at = pending.pop()
        column = _column_of(_with_constants(statements, node, at))
        if column is not None:
            columns.add(column)
        elif isinstance(node, ast.Name) and node.id not in names:
            names.add(node.id)
            pending += label_sources(statements, node.id, at)
        elif (inner := _encoded_from(node)) is not None:
            pending.append((inner, at))
    return names, columns


# Methods that turn a label column into the values the model learns (`df["Churn"].map({...})`).
LABEL_METHODS = frozenset({"map", "replace", "astype", "apply", "eq", "ne", "round", "clip", "fillna", "copy"})


def _encoded_from(node: ast.expr) -> ast.expr | None:
    """What an encoded or transformed label is made from: `df["Churn"].map({...})`,
    `(df["Churn"] == "Yes").astype(int)`, `np.log1p(df["price"])`, `df["price"] / 1000`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LABEL_METHODS:
        return node.func.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        return node.args[0] if len(node.args) == 1 and node.func.value.id in ("np", "numpy") else None
    if isinstance(node, ast.BinOp) and isinstance(node.right, ast.Constant):
        return node.left
    if isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.comparators[0], ast.Constant):
        return node.left
    return None


def label_sources(statements: list[Located], name: str, before: int) -> list[tuple[ast.expr, int]]:
    for located in reversed(statements[:before]):
        node = located.node
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                return [(node.value, located.order)]
            if isinstance(target, ast.Tuple) and name in _tuple_names(target):
                return _split_source(target, node.value, name, located.order)
    return []


def _with_constants(statements: list[Located], node: ast.expr, before: int) -> ast.expr:
    """`train[LABEL]` as `train["Survived"]` when `LABEL = "Survived"` above (also through
    `target = LABEL`), so a label named through a constant or a variable is still the label."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Name):
        return node
    name, at, seen = node.slice.id, before, set()
    while name not in seen:
        seen.add(name)
        binding = _binding(statements, name, at)
        if binding is None or not isinstance(binding.node, ast.Assign):
            return node
        value = binding.node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return ast.Subscript(node.value, ast.Constant(value.value), ast.Load())
        if not isinstance(value, ast.Name):
            return node
        name, at = value.id, binding.order
    return node


def _tuple_names(target: ast.Tuple) -> list[str]:
    return [e.id if isinstance(e, ast.Name) else "" for e in target.elts]


def _split_source(target: ast.Tuple, value: ast.expr, name: str, order: int) -> list[tuple[ast.expr, int]]:
    """`X_tr, X_te, y_tr, y_te = train_test_split(X, y, ...)`: y_tr comes from y."""
    if not isinstance(value, ast.Call) or not value.args:
        return []
    position = _tuple_names(target).index(name)
    source = position // 2
    return [(value.args[source], order)] if source < len(value.args) else []


def _column_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr not in ("values",):
        return node.attr
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop" and node.args:
        first = node.args[0]
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    return None

"""Which parts of a replayed statement depend on the request, and which are training values.

A replayed statement runs on the request frame. Its sub-expressions are of three kinds:
`ROW` (depends on the request's rows: `dataset["Age"]`), `CONST` (literals, imported modules,
definitions of the preprocess cells) and `STAT` (computed from the training data without
depending on the request: `train["Age"].median()`, a notebook variable, `len(train)`). Each
largest `STAT` part inside a `ROW` expression is a training statistic: the run records its
value and the generated code reads the recorded constant, so a request never recomputes it.
Some pandas calls also learn from the data they get and are frozen the same way: the columns
`get_dummies` makes, the bin edges of `qcut` and of `cut` with a number of bins, and the
categories of `astype("category")`, and an estimator's `fit_transform` (training's fitted
estimator transforms the request).
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from nb2prod.analysis.names import NOTEBOOK_BUILTINS
from nb2prod.analysis.replay.forms import per_row

REDUCTIONS = frozenset(
    {"mean", "median", "mode", "std", "var", "sum", "min", "max", "quantile", "count", "nunique", "unique"}
    | {"value_counts", "idxmax", "idxmin", "describe", "prod", "sem", "skew", "kurt", "kurtosis", "agg"}
    | {"aggregate", "first", "last", "nlargest", "nsmallest", "cov", "corr", "to_dict", "tolist"}
)
SHAPE_ATTRIBUTES = frozenset({"shape", "columns", "dtypes", "size", "ndim"})
ROW_WISE_AXIS = (1, "columns")
RANDOM_CALLS = frozenset({"sample"})
RANDOM_MODULES = ("random", "np.random", "numpy.random")
# Making a generator draws nothing: the draws through it (`rng.integers(...)`) are the random fill.
GENERATOR_MAKERS = frozenset({"default_rng", "RandomState", "Generator", "SeedSequence", "Random"})


# Expressions with names of their own: a lambda's arguments, a comprehension's targets.
SCOPED = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class Kind(enum.IntEnum):
    CONST = 0
    STAT = 1
    ROW = 2


@dataclass
class Scope:
    """What the names mean at one point of the replay."""

    lineage: set[str]  # bound to the request frame or values computed per row from it
    constants: set[str]  # definitions, imports, frozen and constant local values
    label_columns: frozenset[str]
    randoms: frozenset[str]  # notebook variables holding random generators
    loop_vars: tuple[str, ...] = ()  # enclosing loops over constants (frozen values vary with them)

    def name_kind(self, name: str) -> Kind:
        if name in self.lineage:
            return Kind.ROW
        if name in self.constants or name in NOTEBOOK_BUILTINS:
            return Kind.CONST
        return Kind.STAT  # a notebook variable: the run knows its value, the service does not

    def child(self, constants: set[str], loop_vars: tuple[str, ...] = ()) -> Scope:
        """A nested scope (loop body, lambda): new constants; lineage changes are shared."""
        return Scope(
            self.lineage,
            self.constants | constants,
            self.label_columns,
            self.randoms,
            self.loop_vars + loop_vars,
        )


@dataclass(frozen=True)
class Freeze:
    """A training value to record in the run and read from the recorded constants on a request."""

    node: ast.expr
    what: str  # "value", "columns" (get_dummies), "bins" (cut/qcut), "categories" (astype("category"))
    # or "fitted" (`le.fit_transform(x)`: training's fitted `le` transforms the request)
    loop_vars: tuple[str, ...]  # constant loop variables the value depends on


@dataclass
class Findings:
    """What the analysis of one statement found."""

    freezes: list[Freeze] = field(default_factory=list)
    label_reads: list[ast.expr] = field(default_factory=list)
    randoms: list[ast.Call] = field(default_factory=list)
    label_drops: list[ast.Call] = field(default_factory=list)


class Classifier:
    """Kinds of expressions in one scope, and the training values inside request expressions."""

    def __init__(self, scope: Scope, *, ignore_labels: bool = False, found: Findings | None = None) -> None:
        self.scope = scope
        self.ignore_labels = ignore_labels
        self.found = found if found is not None else Findings()

    def within(self, scope: Scope) -> Classifier:
        """The same findings, collected in a nested scope."""
        return Classifier(scope, ignore_labels=self.ignore_labels, found=self.found)

    def kind(self, node: ast.AST) -> Kind:
        if isinstance(node, ast.Constant):
            return Kind.CONST
        if isinstance(node, ast.Name):
            return self.scope.name_kind(node.id)
        if isinstance(node, SCOPED):
            return Classifier(self.scope.child(_local_names(node)), ignore_labels=self.ignore_labels)._children(node)
        if self.label_column(node) is not None:
            return Kind.CONST if self.ignore_labels else Kind.ROW
        if isinstance(node, ast.Call):
            return self._call_kind(node)
        if isinstance(node, ast.Attribute) and node.attr in SHAPE_ATTRIBUTES - {"columns"}:
            return Kind.STAT if self.kind(node.value) is Kind.ROW else self.kind(node.value)
        return self._children(node)

    def _children(self, node: ast.AST) -> Kind:
        kinds = [self.kind(child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]
        kinds += [self.kind(k.value) for k in ast.iter_child_nodes(node) if isinstance(k, ast.keyword)]
        kinds += [self.kind(c) for c in ast.iter_child_nodes(node) if isinstance(c, ast.comprehension)]
        if isinstance(node, ast.comprehension):
            kinds = [self.kind(node.iter), *(self.kind(i) for i in node.ifs)]
        return max(kinds, default=Kind.CONST)

    def _call_kind(self, node: ast.Call) -> Kind:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in REDUCTIONS and not _row_wise(node):
            receiver = self.kind(func.value)
            return Kind.STAT if receiver is Kind.ROW else max(receiver, self._arguments(node))
        if isinstance(func, ast.Name) and func.id == "len" and node.args:
            argument = self.kind(node.args[0])
            return Kind.STAT if argument is Kind.ROW else argument
        if isinstance(func, ast.Attribute) and func.attr == "fit" and self._arguments(node) is Kind.ROW:
            return Kind.STAT  # `StandardScaler().fit(train[cols])`: an estimator that learned from training data
        return max(self.kind(func), self._arguments(node))

    def _arguments(self, node: ast.Call) -> Kind:
        return max([self.kind(a) for a in node.args] + [self.kind(k.value) for k in node.keywords], default=Kind.CONST)

    def label_column(self, node: ast.AST) -> str | None:
        """`train["Survived"]`, `train.Survived`, `train.pop("Survived")` on the request frame."""
        value: ast.expr | None = None
        column: object = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            value, column = node.value, node.slice.value
        elif isinstance(node, ast.Attribute) and node.attr in self.scope.label_columns:
            value, column = node.value, node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop":
            first = node.args[0] if node.args else None
            value, column = node.func.value, first.value if isinstance(first, ast.Constant) else None
        if value is None or column not in self.scope.label_columns:
            return None
        return str(column) if isinstance(value, ast.Name) and value.id in self.scope.lineage else None

    # --- what to freeze -------------------------------------------------------------------

    def collect(self, node: ast.AST) -> None:
        """Walk a request expression: freeze each largest training value inside it."""
        self._randoms(node)
        self._collect(node)

    def _collect(self, node: ast.AST) -> None:
        kind = self.kind(node)
        if kind is Kind.CONST:
            return
        if isinstance(node, SCOPED) and kind is Kind.ROW:
            self._collect_scoped(node)
            return
        if kind is Kind.STAT and isinstance(node, ast.expr):
            # inside `for i in range(2)`, a value may vary with `i` through names bound in the loop
            self.found.freezes.append(Freeze(node, "value", self.scope.loop_vars))
            return
        if self.label_column(node) is not None:
            self.found.label_reads.append(node)  # type: ignore[arg-type]
            return
        skipped = self._special_call(node) if isinstance(node, ast.Call) else None
        for child in _expression_children(node):
            if isinstance(node, ast.Call) and child is node.func and isinstance(child, ast.Attribute):
                child = child.value  # `encoder.transform(x)`: freeze the encoder, not its bound method
            if child is not skipped:
                self._collect(child)

    def _collect_scoped(self, node: ast.expr) -> None:
        """A comprehension or lambda on the request: its own names (`c` in `[c for c in df.columns]`) are
        not notebook values. A training value inside that varies with them (`train[c].median()` for
        each `c`) has no one value to record: then the whole expression is training's, recorded whole."""
        local = _local_names(node)
        inner = Classifier(self.scope.child(local), ignore_labels=self.ignore_labels)
        for child in _expression_children(node):
            inner._collect(child)
        found = inner.found
        if any(local & {n.id for n in ast.walk(f.node) if isinstance(n, ast.Name)} for f in found.freezes):
            self.found.freezes.append(Freeze(node, "value", self.scope.loop_vars))
            return
        self.found.freezes += found.freezes
        self.found.label_reads += found.label_reads
        self.found.label_drops += found.label_drops
        self.found.randoms += [call for call in found.randoms if call not in self.found.randoms]

    def _special_call(self, node: ast.Call) -> ast.expr | None:
        """Record get_dummies columns and cut/qcut bins; returns the bins argument (replaced whole)."""
        name = _callee_name(node)
        if name == "get_dummies":
            self.found.freezes.append(Freeze(node, "columns", self.scope.loop_vars))
        elif name in ("cut", "qcut") and node.args and self.kind(node.args[0]) is Kind.ROW:
            bins = bins_argument(node)
            if name == "qcut" or not isinstance(bins, (ast.List, ast.Tuple)):
                self.found.freezes.append(Freeze(node, "bins", self.scope.loop_vars))
                return bins
        elif name == "drop" and isinstance(node.func, ast.Attribute) and self.kind(node.func.value) is Kind.ROW:
            if dropped_labels(node, self.scope.label_columns):
                self.found.label_drops.append(node)
        elif name == "fit_transform" and fitted_receiver(node) is not None and self._arguments(node) is Kind.ROW:
            self.found.freezes.append(Freeze(node, "fitted", self.scope.loop_vars))
        elif name == "astype" and _to_category(node) and self.kind(node.func.value) is Kind.ROW:  # type: ignore[attr-defined]
            self.found.freezes.append(Freeze(node, "categories", self.scope.loop_vars))
        return None

    def randoms_in(self, node: ast.AST) -> Findings:
        """The random draws in `node`, found without freezing anything."""
        found = Classifier(self.scope, ignore_labels=self.ignore_labels)
        found._randoms(node)
        return found.found

    def _randoms(self, node: ast.AST) -> None:
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and self.is_random(call) and call not in self.found.randoms:
                self.found.randoms.append(call)

    def is_random(self, call: ast.Call) -> bool:
        text = _dotted(call.func) or ""
        if text.rsplit(".", 1)[-1] in GENERATOR_MAKERS:
            return False
        if any(text.startswith(module + ".") for module in RANDOM_MODULES):
            return True
        root = text.split(".")[0]
        if root in self.scope.randoms and "." in text:
            return True
        return (
            isinstance(call.func, ast.Attribute)
            and call.func.attr in RANDOM_CALLS
            and self.kind(call.func.value) is Kind.ROW
        )


def _expression_children(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.keyword):
            yield child.value
        elif isinstance(child, (ast.expr, ast.comprehension)):
            yield child


def _local_names(node: ast.AST) -> set[str]:
    found = {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
    for generator in (g for g in ast.walk(node) if isinstance(g, ast.comprehension)):
        found |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
    return found


def _row_wise(node: ast.Call) -> bool:
    if per_row(node):
        return True  # `df[features].to_dict("records")`
    for keyword in node.keywords:
        if keyword.arg == "axis" and isinstance(keyword.value, ast.Constant):
            return keyword.value.value in ROW_WISE_AXIS
    return False


def _callee_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def fitted_receiver(node: ast.Call) -> str | None:
    """`le` in `le.fit_transform(x)` / `le.fit(x)`: the estimator a statement fits."""
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in ("fit", "fit_transform") and isinstance(func.value, ast.Name):
        return func.value.id
    return None


def _to_category(node: ast.Call) -> bool:
    """`x.astype("category")`: the categories would be learned from the request."""
    first = node.args[0] if node.args else None
    return isinstance(first, ast.Constant) and first.value == "category"


def bins_argument(node: ast.Call) -> ast.expr | None:
    """The `bins` of `cut(x, bins)` or the `q` of `qcut(x, q)`, positional or keyword."""
    if len(node.args) > 1:
        return node.args[1]
    return next((k.value for k in node.keywords if k.arg in ("bins", "q")), None)


def dropped_labels(node: ast.Call, labels: frozenset[str]) -> list[str]:
    """Label columns a `frame.drop(...)` of columns removes."""
    columns = _drop_columns(node)
    if columns is None:
        return []
    return [c for c in _strings(columns) if c in labels]


def _drop_columns(node: ast.Call) -> ast.expr | None:
    keyword = next((k.value for k in node.keywords if k.arg == "columns"), None)
    if keyword is not None:
        return keyword
    axis = next((k.value for k in node.keywords if k.arg == "axis"), node.args[1] if len(node.args) > 1 else None)
    if node.args and isinstance(axis, ast.Constant) and axis.value in ROW_WISE_AXIS:
        return node.args[0]
    labels = next((k.value for k in node.keywords if k.arg == "labels"), None)
    return labels if labels is not None and isinstance(axis, ast.Constant) and axis.value in ROW_WISE_AXIS else None


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def drop_columns_node(node: ast.Call) -> ast.expr | None:
    return _drop_columns(node)

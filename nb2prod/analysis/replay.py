"""Replay the statements of preprocess cells as a generated `preprocess(frame)`.

Preprocess cells often hold plain pandas statements on the training frame (`train["Age"] =
train["Age"].fillna(train["Age"].median())`, often in `for dataset in [train, test]:`). Shipped
verbatim they would refer to training data the service does not have. Instead each statement
is sorted: definitions stay at module level; statements on the raw frame go into the body of
`preprocess(frame)`, which binds the request to the raw frame's name; statements on other
frames, on the label only, and row filters are left out with a note; training statistics are
frozen (see `freeze`); a random fill, or anything else that cannot run per request, stops the
conversion with the cell and the line. The run then records the frozen values (see the edits),
and the capture step proves the function reproduces the fit input.
"""

from __future__ import annotations

import ast

from nb2prod.analysis.findings import Severity
from nb2prod.analysis.fitchain import FitChain, cell_text
from nb2prod.analysis.freeze import Classifier, Findings, Kind, Scope, bins_argument, drop_columns_node
from nb2prod.analysis.replay_plan import FROZEN, Emitted, FrozenValue, ModuleParts, ReplayIssue
from nb2prod.analysis.splice import Edit, Positions, replace, statement_text, wrap
from nb2prod.notebook.spec import Cell

DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)
ROW_FILTERS = frozenset({"dropna", "drop_duplicates", "query", "sample", "head", "tail", "nlargest", "nsmallest"})
MUTATORS = frozenset({"insert", "update", "pop"})
COMPOUND = (ast.For, ast.While, ast.If, ast.With, ast.Try)


class Replayer:
    """Walks preprocess statements in order, sorting them into module, function body or notes."""

    def __init__(
        self,
        *,
        raw: str | None,
        chain: FitChain | None,
        label_names: frozenset[str],
        label_columns: frozenset[str],
        randoms: frozenset[str],
        modules: set[str],
        user_function: bool,
        pandas: str = "pandas",
    ) -> None:
        self.raw = raw
        self.pandas = pandas
        self.uses_pandas = False  # the generated code names `pandas` itself
        self.chain = chain
        self.scope = Scope(set([raw] if raw else []), set(modules), label_columns, randoms)
        self.others: set[str] = set()
        self.frame_lists: dict[str, list[str]] = {}
        self.labels = set(label_names)
        self.user_function = user_function
        self.parts = ModuleParts()
        self.frozen: list[FrozenValue] = []
        self.run_edits: dict[int, list[Edit]] = {}
        self.issues: list[ReplayIssue] = []
        self.loops = 0
        self.aliases: dict[str, str] = {}  # split halves -> the frame they were split from
        self.first_body_cell: int | None = None
        self.notebook = ""

    # --- cells and top-level statements -------------------------------------------------

    def cell(self, cell: Cell, tree: ast.Module, notebook: str) -> None:
        self.notebook = notebook
        positions = Positions(cell_text(cell))
        previous: ast.stmt | None = None
        for node in tree.body:
            gap = previous is not None and _first_line(positions, node) - int(previous.end_lineno or 0) > 1
            self._top(cell, positions, node, gap)
            previous = node

    def _top(self, cell: Cell, positions: Positions, node: ast.stmt, gap: bool) -> None:
        if self.chain is not None and (cell.index, node.lineno) in self.chain.steps:
            return  # a fitted transformer step: composed with the model
        if isinstance(node, DEFINITIONS) or _is_docstring(node):
            self._module(cell, positions, node, [], gap)
            self.scope.constants |= _bound_names(node)
            return
        if self._binds_composed(node):
            return
        loop = self._frame_loop(node)
        if loop is not None:
            self._replay_frame_loop(cell, positions, node, loop)  # type: ignore[arg-type]
            return
        self._statement(cell, positions, node, loop_id=None, top=True, gap=gap)

    def _binds_composed(self, node: ast.stmt) -> bool:
        """`scaler = StandardScaler()` or `scaler.fit(X)` of a transformer composed with the model."""
        composed = set(self.chain.transformers) if self.chain else set()
        if isinstance(node, ast.Assign) and {n.id for n in node.targets if isinstance(n, ast.Name)} & composed:
            return True
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in composed
        return False

    # --- frame loops: `for dataset in [train, test]:` -------------------------------------

    def _frame_loop(self, node: ast.stmt) -> list[str] | None:
        if not isinstance(node, ast.For) or not isinstance(node.target, ast.Name) or node.orelse:
            return None
        names = self._frames_listed(node.iter)
        if names and any(n in self.scope.lineage for n in names):
            return names
        return None

    def _frames_listed(self, node: ast.expr) -> list[str] | None:
        if isinstance(node, ast.Name):
            return self.frame_lists.get(node.id)
        if isinstance(node, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Name) for e in node.elts):
            names = [e.id for e in node.elts]  # type: ignore[attr-defined]
            return names if any(n in self.scope.lineage or n in self.others for n in names) else None
        return None

    def _replay_frame_loop(self, cell: Cell, positions: Positions, node: ast.For, names: list[str]) -> None:
        request = next(n for n in names if n in self.scope.lineage)
        skipped = [n for n in names if n != request]
        self.others |= set(skipped)
        variable = node.target.id  # type: ignore[attr-defined]
        loop_id = f"L{self.loops}"
        self.loops += 1
        self._edit_run(cell, wrap(positions, node.iter, f'_nb2prod_frames("{loop_id}", ', f", {request})"))
        header = positions.text(node).split("\n")[0].strip()
        self._body(cell, node.lineno, f"# {header}  (replayed on the request frame only)\n{variable} = {request}")
        self.scope.lineage.add(variable)
        if skipped:
            listed = ", ".join(f"`{n}`" for n in skipped)
            self._note(
                cell,
                node.lineno,
                f"the loop over {ast.unparse(node.iter)} runs on the request frame only; {listed} is not replayed",
            )
        for statement in node.body:
            if self._frame_loop(statement) is not None:
                self._refuse(cell, statement.lineno, "a loop over frames inside another one", "Flatten the loops.")
                continue
            self._statement(cell, positions, statement, loop_id=loop_id, top=False, gap=False)

    # --- one statement --------------------------------------------------------------------

    def _statement(
        self, cell: Cell, positions: Positions, node: ast.stmt, *, loop_id: str | None, top: bool, gap: bool
    ) -> None:
        if self._frame_list(node) or self._split(cell, node):
            return
        touched = _touched(node)
        on_request = bool(touched & self.scope.lineage)
        on_others = touched & (self.others | set(self.frame_lists))
        targets = _target_roots(node)
        if targets and targets <= self.others | set(self.frame_lists):
            on_request, on_others = False, targets
        if not on_request:
            self._off_request(cell, positions, node, on_others, loop_id=loop_id, top=top, gap=gap)
            return
        if self._left_out(cell, node, touched):
            return
        self._replay(cell, positions, node, loop_id)

    def _frame_list(self, node: ast.stmt) -> bool:
        """`combine = [train, test]`: remembered for the loops over it, not replayed."""
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return False
        names = self._frames_listed(node.value) if isinstance(node.value, (ast.List, ast.Tuple)) else None
        if names is None or len(names) < 2:
            return False
        self.frame_lists[node.targets[0].id] = names
        self.others |= {n for n in names if n not in self.scope.lineage}
        return True

    def _split(self, cell: Cell, node: ast.stmt) -> bool:
        """`X_tr, X_va, y_tr, y_va = train_test_split(X, y)`: training picks rows; a request keeps its own."""
        value = _value(node)
        if not (isinstance(node, ast.Assign) and isinstance(value, ast.Call) and _is_split(value)):
            return False
        target = node.targets[0]
        if not isinstance(target, ast.Tuple) or not value.args:
            return False
        names = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
        for position, name in enumerate(names):
            source = value.args[position // 2] if position // 2 < len(value.args) else None
            if name and isinstance(source, ast.Name):
                self.aliases[name] = self.aliases.get(source.id, source.id)
        self._note(cell, node.lineno, "the train/test split picks training rows; a request keeps all of its rows")
        return True

    def _off_request(
        self,
        cell: Cell,
        positions: Positions,
        node: ast.stmt,
        on_others: set[str],
        *,
        loop_id: str | None,
        top: bool,
        gap: bool,
    ) -> None:
        if on_others:
            self._track_others(node)
            listed = ", ".join(f"`{n}`" for n in sorted(on_others))
            self._note(cell, node.lineno, f"`{_first(positions, node)}` only changes {listed}; not replayed")
            return
        classifier = Classifier(self.scope)
        value = _value(node)
        kind = classifier.kind(value) if value is not None else classifier.kind(node)
        if isinstance(node, ast.Expr) and kind is not Kind.CONST:
            return  # shows a value only
        if kind is Kind.CONST:
            self._constant(cell, positions, node, loop_id, top, gap)
            return
        if isinstance(node, ast.Assign) and value is not None and all(isinstance(t, ast.Name) for t in node.targets):
            self._frozen_assignment(cell, positions, node, value, loop_id, top, gap)
            return
        self._cannot_ship(cell, positions, node)

    def _constant(
        self, cell: Cell, positions: Positions, node: ast.stmt, loop_id: str | None, top: bool, gap: bool
    ) -> None:
        if top:
            self._module(cell, positions, node, [], gap)
        else:
            self._body(cell, node.lineno, statement_text(positions, node, []))
        self.scope.constants |= _bound_names(node)
        self.scope.lineage -= _bound_names(node)

    def _frozen_assignment(
        self,
        cell: Cell,
        positions: Positions,
        node: ast.Assign,
        value: ast.expr,
        loop_id: str | None,
        top: bool,
        gap: bool,
    ) -> None:
        """`median = train["Age"].median()`: the run records it, the module reads the constant."""
        classifier = Classifier(self.scope)
        classifier.collect(value)
        if self._refuse_randoms(cell, classifier.found):
            return
        edits = self._freeze_edits(cell, positions, classifier.found, loop_id)
        if top and not self.scope.loop_vars:
            self._module(cell, positions, node, edits, gap)
            self.parts.frozen_cells.add(cell.index)
        else:
            self._body(cell, node.lineno, statement_text(positions, node, edits))
        self.scope.constants |= _bound_names(node)
        self.scope.lineage -= _bound_names(node)

    def _left_out(self, cell: Cell, node: ast.stmt, touched: set[str]) -> bool:
        """Label-only statements, row filters and displays are not replayed."""
        label = Classifier(self.scope, ignore_labels=True)
        value = _value(node)
        if isinstance(node, ast.Delete) and all(Classifier(self.scope).label_column(t) for t in node.targets):
            return True
        if value is not None and label.kind(value) is not Kind.ROW and Classifier(self.scope).kind(value) is Kind.ROW:
            if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
                self.labels |= _bound_names(node)
                return True  # `y = train["Survived"]`
            if isinstance(node, ast.Expr):
                return True  # `train.pop("Survived")`
        if _row_filter(node, self.scope.lineage):
            self._note(cell, node.lineno, f"`{ast.unparse(node)[:60]}` removes training rows; requests keep theirs")
            return True
        if isinstance(node, ast.Expr) and not _mutates(node.value):
            return True  # shows a value only
        if touched & self.labels and not _bound_names(node) & self.scope.lineage:
            return True
        return False

    def _replay(self, cell: Cell, positions: Positions, node: ast.stmt, loop_id: str | None) -> None:
        if self.user_function:
            self._refuse(
                cell,
                node.lineno,
                f"`{_first(positions, node)}` changes the training frame at import time, and the cells also "
                "define `preprocess(frame)`",
                "Move the statement into preprocess(frame), or into a cell that is not tagged `preprocess`.",
            )
            return
        classifier = Classifier(self.scope)
        self._collect(classifier, node)
        found = classifier.found
        if self._refuse_randoms(cell, found) or self._refuse_mixed(cell, positions, node, found):
            return
        if found.label_reads:
            column = Classifier(self.scope).label_column(found.label_reads[0])
            self._refuse(
                cell,
                found.label_reads[0].lineno,
                f"`{_first(positions, node)}` uses the label column `{column}` to build a feature; "
                "a request does not have the label",
                "Build features only from input columns, or compute the value in the notebook and freeze it "
                "(e.g. a per-category mean taken from training data).",
            )
            return
        edits = self._freeze_edits(cell, positions, found, loop_id) + self._label_drop_edits(positions, found)
        if self.first_body_cell is None:
            self.first_body_cell = cell.index
        self._body(cell, node.lineno, statement_text(positions, node, edits))

    def _collect(self, classifier: Classifier, node: ast.stmt) -> None:
        """Collect what to freeze in a statement, following loops and branches inside it."""
        if isinstance(node, (ast.For, ast.AsyncFor)):
            classifier.collect(node.iter)
            names = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            inner = classifier.within(classifier.scope.child(names, tuple(sorted(names))))
            for child in [*node.body, *node.orelse]:
                self._collect(inner, child)
            return
        if isinstance(node, COMPOUND):
            for expression in _headers(node):
                classifier.collect(expression)
            for child in _bodies(node):
                self._collect(classifier, child)
            return
        for expression in _expressions(node):
            classifier.collect(expression)
        _update_scope(classifier.scope, node)

    def _update_scope(self, node: ast.stmt) -> None:
        if not isinstance(node, COMPOUND):
            _update_scope(self.scope, node)

    def _track_others(self, node: ast.stmt) -> None:
        self.others |= _bound_names(node)

    # --- edits ------------------------------------------------------------------------------

    def _freeze_edits(self, cell: Cell, positions: Positions, found: Findings, loop_id: str | None) -> list[Edit]:
        """Edits of the generated code (returned) and of the run (kept per cell)."""
        edits: list[Edit] = []
        loop = f'"{loop_id}"' if loop_id else "None"
        for freeze in found.freezes:
            key = self._key(cell, freeze.node, freeze.what)
            sub = "".join(f"[{v}]" for v in freeze.loop_vars[:1]) if len(freeze.loop_vars) == 1 else ""
            if len(freeze.loop_vars) > 1:
                sub = f"[({', '.join(freeze.loop_vars)})]"
            varies = f"({', '.join(freeze.loop_vars)},)" if freeze.loop_vars else "()"
            if freeze.what == "value":
                edits.append(replace(positions, freeze.node, f"{FROZEN}[{key!r}]{sub}"))
                run = wrap(positions, freeze.node, f"_nb2prod_freeze({key!r}, ", f", {loop}, {varies})")
            elif freeze.what == "columns":
                edits += wrap(positions, freeze.node, "align_columns(", f", {FROZEN}[{key!r}]{sub})")
                run = wrap(positions, freeze.node, f"_nb2prod_columns({key!r}, ", f", {loop}, {varies})")
            else:
                edits += self._bins_edits(positions, freeze.node, f"{FROZEN}[{key!r}]{sub}")  # type: ignore[arg-type]
                func = freeze.node.func  # type: ignore[attr-defined]
                run = wrap(positions, func, f"_nb2prod_bins({key!r}, {loop}, {varies}, ", ")")
            self._edit_run(cell, run)
        return edits

    def _bins_edits(self, positions: Positions, call: ast.Call, frozen: str) -> list[Edit]:
        """`pd.qcut(x, 4, labels=False)` -> `pd.cut(x, FROZEN[...], labels=False, include_lowest=True)`."""
        edits: list[Edit] = []
        bins = bins_argument(call)
        keyword = next((k for k in call.keywords if k.value is bins), None)
        if keyword is not None:
            edits.append(replace(positions, keyword, f"bins={frozen}"))
        elif bins is not None:
            edits.append(replace(positions, bins, frozen))
        func = call.func
        if _callee(call) == "qcut":
            if isinstance(func, ast.Attribute):
                end = positions.end(func)
                edits.append(Edit(end - len("qcut"), end, "cut"))
            else:
                edits.append(replace(positions, func, f"{self.pandas}.cut"))
                self.uses_pandas = True
            closing = positions.end(call) - 1
            before = positions.source[:closing].rstrip()
            edits.append(
                Edit(closing, closing, " include_lowest=True" if before.endswith(",") else ", include_lowest=True")
            )
        return edits

    def _label_drop_edits(self, positions: Positions, found: Findings) -> list[Edit]:
        """`train.drop("Survived", axis=1)`: a request has no label, so only the other columns go."""
        edits: list[Edit] = []
        for call in found.label_drops:
            columns = drop_columns_node(call)
            kept = [c for c in _string_items(columns) if c not in self.scope.label_columns]
            if kept:
                edits.append(replace(positions, columns, repr(kept)))  # type: ignore[arg-type]
            else:
                receiver = call.func.value  # type: ignore[attr-defined]
                edits.append(Edit(positions.end(receiver), positions.end(call), ""))
        return edits

    def _key(self, cell: Cell, node: ast.expr, what: str) -> str:
        text = ast.unparse(node)
        key = text if what == "value" else f"{text} {what}"
        taken = {f.key for f in self.frozen}
        number = 2
        unique = key
        while unique in taken:
            unique, number = f"{key} #{number}", number + 1
        self.frozen.append(FrozenValue(unique, what, cell.index, node.lineno, text))
        return unique

    def _edit_run(self, cell: Cell, edits: list[Edit]) -> None:
        self.run_edits.setdefault(cell.index, []).extend(edits)

    # --- refusals and notes -------------------------------------------------------------------

    def _refuse_randoms(self, cell: Cell, found: Findings) -> bool:
        for call in found.randoms:
            self._refuse(
                cell,
                call.lineno,
                f"`{ast.unparse(call)[:60]}` draws random numbers; a random fill cannot be replayed per request "
                "(each request would get other values than training did)",
                "Fill with a training statistic instead (e.g. fillna(train[col].median())), or fill inside a "
                "model Pipeline; nb2prod does not change your method silently.",
                code="random-fill",
            )
        return bool(found.randoms)

    def _refuse_mixed(self, cell: Cell, positions: Positions, node: ast.stmt, found: Findings) -> bool:
        mixed = [
            f
            for f in found.freezes
            if isinstance(f.node, ast.Name) and f.node.id in self.others | set(self.frame_lists)
        ]
        if mixed:
            self._refuse(
                cell,
                node.lineno,
                f"`{_first(positions, node)}` combines the request frame with `{mixed[0].node.id}`",  # type: ignore[attr-defined]
                "Keep other frames out of the preprocess cells (e.g. concatenate train and test in a load cell).",
            )
        return bool(mixed)

    def _cannot_ship(self, cell: Cell, positions: Positions, node: ast.stmt) -> None:
        why = "reads notebook data the service does not have"
        if self.raw is None:
            hint = (
                "Ways out: name the raw input frame with --raw VAR or notebook metadata nb2prod.raw so nb2prod "
                "replays these statements as preprocess(frame); or write preprocess(frame) yourself; or move "
                "the statement to a cell that is not tagged `preprocess`."
            )
        else:
            hint = "Move the statement to a cell that is not tagged `preprocess`, or into preprocess(frame)."
        self._refuse(cell, node.lineno, f"`{_first(positions, node)}` {why}", hint)

    def _refuse(self, cell: Cell, line: int, what: str, hint: str, code: str = "replay") -> None:
        self.issues.append(
            ReplayIssue(
                Severity.ERROR, code, f"{self.notebook}, {cell.label}, line {line}: {what}.", hint, cell.index, line
            )
        )

    def _note(self, cell: Cell, line: int, what: str) -> None:
        self.issues.append(
            ReplayIssue(
                Severity.NOTE,
                "replay-note",
                f"{self.notebook}, {cell.label}, line {line}: {what}.",
                "",
                cell.index,
                line,
            )
        )

    # --- output -------------------------------------------------------------------------------

    def _module(self, cell: Cell, positions: Positions, node: ast.stmt, edits: list[Edit], gap: bool) -> None:
        self.parts.module.append(
            Emitted(cell, _first_line(positions, node), statement_text(positions, node, edits), gap)
        )

    def _body(self, cell: Cell, line: int, text: str) -> None:
        self.parts.body.append(Emitted(cell, line, text))


def _update_scope(scope: Scope, node: ast.stmt) -> None:
    """After `name = value`: `name` follows the request if the value does, else it is a constant."""
    value = _value(node)
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or value is None:
        return
    bound = _bound_names(node)
    if Classifier(scope).kind(value) is Kind.ROW:
        scope.lineage |= bound
        scope.constants -= bound
    else:
        scope.constants |= bound
        scope.lineage -= bound


def _headers(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, (ast.If, ast.While)):
        return [node.test]
    if isinstance(node, ast.With):
        return [item.context_expr for item in node.items]
    return []


def _bodies(node: ast.stmt) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        found += getattr(node, name, [])
    for handler in getattr(node, "handlers", []):
        found += handler.body
    return found


def _target_roots(node: ast.stmt) -> set[str]:
    """The names whose objects a statement assigns or changes."""
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = list(node.targets)
    elif isinstance(node, ast.Expr) and _mutates(node.value):
        targets = [node.value.func.value]  # type: ignore[attr-defined]
    roots: set[str] = set()
    for target in targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            while isinstance(element, (ast.Attribute, ast.Subscript, ast.Call)):
                element = element.func if isinstance(element, ast.Call) else element.value
            if isinstance(element, ast.Name):
                roots.add(element.id)
    return roots


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_split(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "train_test_split"


def _first_line(positions: Positions, node: ast.stmt) -> int:
    """The statement's first line, counting the comment lines right above it."""
    line = node.lineno
    while line > 1 and positions.lines[line - 2].strip().startswith("#"):
        line -= 1
    return line


def _first(positions: Positions, node: ast.stmt) -> str:
    text = positions.text(node).split("\n")[0].strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _bound_names(node: ast.stmt) -> set[str]:
    found: set[str] = set()
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            found.add(child.id)
    return found


def _touched(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _value(node: ast.stmt) -> ast.expr | None:
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
        return node.value
    return None


def _expressions(node: ast.stmt) -> list[ast.expr]:
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


def _mutates(value: ast.expr) -> bool:
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return False
    inplace = any(
        k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True for k in value.keywords
    )
    return inplace or value.func.attr in MUTATORS


def _row_filter(node: ast.stmt, lineage: set[str]) -> bool:
    """`train = train[train.Fare < 500]`, `train = train.dropna()`, `train.drop_duplicates(inplace=True)`."""
    value = _value(node)
    if isinstance(node, ast.Assign) and not (_target_roots(node) & _roots(value)):
        return False  # `ages = train["Age"].dropna()` makes a new value; the frame keeps its rows
    if isinstance(node, ast.Expr) and not _mutates(node.value):
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


def _roots(node: ast.expr | None) -> set[str]:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def _string_items(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []

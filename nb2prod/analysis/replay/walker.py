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

from nb2prod.analysis.fitchain import FitChain, cell_text
from nb2prod.analysis.replay.edits import (
    EditMaker,
    Pending,
    StatementEdits,
    label_drop_edits,
    label_free_columns,
    tolerant_drops,
    used_assignments,
)
from nb2prod.analysis.replay.freeze import Classifier, Findings, Kind, Scope, fitted_receiver
from nb2prod.analysis.replay.issues import IssueLog
from nb2prod.analysis.replay.label_rewrite import rewritten_label
from nb2prod.analysis.replay.plan import Emitted, FrozenValue, ModuleParts
from nb2prod.analysis.replay.statements import (
    bodies,
    bound_names,
    expressions,
    first_line,
    first_text,
    headers,
    is_docstring,
    is_row_filter,
    is_split,
    mutates,
    target_roots,
    touched_names,
    update_scope,
    value_of,
)
from nb2prod.analysis.splice import Edit, Positions, statement_text, wrap
from nb2prod.notebook.spec import Cell

DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)
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
        self.chain = chain
        self.scope = Scope(set([raw] if raw else []), set(modules), label_columns, randoms)
        self.others: set[str] = set()
        self.frame_lists: dict[str, list[str]] = {}
        self.labels = set(label_names)
        self.user_function = user_function
        self.parts = ModuleParts()
        self.frozen: list[FrozenValue] = []
        self.run_edits: dict[int, list[Edit]] = {}
        self.maker = EditMaker(pandas)
        self.pending: list[Pending] = []
        self.skipped: dict[int, tuple[set[str], list[int]]] = {}  # cell -> (other frames, lines)
        self.frame_loops: dict[int, tuple[list[str], set[str], list[int]]] = {}  # cell -> (iterables, frames, lines)
        self.log = IssueLog()
        self.loops = 0
        self.aliases: dict[str, str] = {}  # split halves -> the frame they were split from
        self.first_body_cell: int | None = None

    # --- cells and top-level statements -------------------------------------------------

    def cell(self, cell: Cell, tree: ast.Module, notebook: str) -> None:
        self.log.notebook = notebook
        positions = Positions(cell_text(cell))
        previous: ast.stmt | None = None
        for node in tree.body:
            gap = previous is not None and first_line(positions, node) - int(previous.end_lineno or 0) > 1
            self._top(cell, positions, node, gap)
            previous = node

    def _top(self, cell: Cell, positions: Positions, node: ast.stmt, gap: bool) -> None:
        if self.chain is not None and (cell.index, node.lineno) in self.chain.steps:
            return  # a fitted transformer step: composed with the model
        if isinstance(node, DEFINITIONS) or is_docstring(node):
            self._module(cell, positions, node, [], gap)
            self.scope.constants |= bound_names(node)
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
        self.run_edits.setdefault(cell.index, []).extend(
            wrap(positions, node.iter, f'_nb2prod_frames("{loop_id}", ', f", {request})")
        )
        header = positions.text(node).split("\n")[0].strip()
        self._body(cell, node.lineno, f"# {header}  (replayed on the request frame only)\n{variable} = {request}")
        self.scope.lineage.add(variable)
        if skipped:
            loops, frames, lines = self.frame_loops.setdefault(cell.index, ([], set(), []))
            loops.append(ast.unparse(node.iter))
            frames |= set(skipped)
            lines.append(node.lineno)
        for statement in node.body:
            if self._frame_loop(statement) is not None:
                self.log.refuse(cell, statement.lineno, "a loop over frames inside another one", "Flatten the loops.")
                continue
            self._statement(cell, positions, statement, loop_id=loop_id, top=False, gap=False)

    # --- one statement --------------------------------------------------------------------

    def _statement(
        self, cell: Cell, positions: Positions, node: ast.stmt, *, loop_id: str | None, top: bool, gap: bool
    ) -> None:
        if self._frame_list(node) or self._split(cell, node):
            return
        touched = touched_names(node)
        on_request = bool(touched & self.scope.lineage)
        on_others = touched & (self.others | set(self.frame_lists))
        targets = target_roots(node)
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
        value = value_of(node)
        if not (isinstance(node, ast.Assign) and isinstance(value, ast.Call) and is_split(value)):
            return False
        target = node.targets[0]
        if not isinstance(target, ast.Tuple) or not value.args:
            return False
        names = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
        for position, name in enumerate(names):
            source = value.args[position // 2] if position // 2 < len(value.args) else None
            if name and isinstance(source, ast.Name):
                self.aliases[name] = self.aliases.get(source.id, source.id)
        self.log.note(cell, node.lineno, "the train/test split picks training rows; a request keeps all of its rows")
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
            frames, lines = self.skipped.setdefault(cell.index, (set(), []))
            frames |= on_others & (self.others | set(self.frame_lists))
            lines.append(node.lineno)
            return
        classifier = Classifier(self.scope)
        value = value_of(node)
        kind = classifier.kind(value) if value is not None else classifier.kind(node)
        if not isinstance(node, ast.Expr) and self._refuse_randoms(cell, classifier.randoms_in(node)):
            return  # `draws = np.random.randint(...)` then `dataset.loc[missing, "Age"] = draws`
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
        self.scope.constants |= bound_names(node)
        self.scope.lineage -= bound_names(node)

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
        """`median = train["Age"].median()`: the run records it, the module reads the constant.
        Shipped only if shipped code reads the name (see `prune`)."""
        classifier = Classifier(self.scope)
        classifier.collect(value)
        if self._refuse_randoms(cell, classifier.found):
            return
        edits = self._edits(cell, positions, classifier.found, loop_id)
        if top:
            emitted = self._module(cell, positions, node, edits.code, gap)
        else:
            emitted = self._body(cell, node.lineno, statement_text(positions, node, edits.code))
        self.pending.append(Pending(emitted, cell, edits, frozenset(bound_names(node)), first_text(positions, node)))
        self.scope.constants |= bound_names(node)
        self.scope.lineage -= bound_names(node)

    def _left_out(self, cell: Cell, node: ast.stmt, touched: set[str]) -> bool:
        """Label-only statements, row filters and displays are not replayed."""
        label = Classifier(self.scope, ignore_labels=True)
        value = value_of(node)
        if isinstance(node, ast.Delete) and all(Classifier(self.scope).label_column(t) for t in node.targets):
            return True
        if value is not None and label.kind(value) is not Kind.ROW and Classifier(self.scope).kind(value) is Kind.ROW:
            if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
                self.labels |= bound_names(node)
                return True  # `y = train["Survived"]`
            if isinstance(node, ast.Expr):
                return True  # `train.pop("Survived")`
        column = rewritten_label(node, Classifier(self.scope))
        if column is not None:
            self.log.note(cell, node.lineno, f"rewrites the label `{column}`; a request has no label: left out")
            return True
        if is_row_filter(node, self.scope.lineage):
            self.log.note(cell, node.lineno, f"`{ast.unparse(node)[:60]}` removes training rows; requests keep theirs")
            return True
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and fitted_receiver(node.value):
            self.scope.constants.discard(str(fitted_receiver(node.value)))  # `le.fit(train.Sex)`: used fitted
            return True
        if isinstance(node, ast.Expr) and not mutates(node.value):
            return True  # shows a value only
        if touched & self.labels and not bound_names(node) & self.scope.lineage:
            return True
        return False

    def _replay(self, cell: Cell, positions: Positions, node: ast.stmt, loop_id: str | None) -> None:
        if self.user_function:
            self.log.beside_function(cell, node.lineno, first_text(positions, node))
            return
        classifier = Classifier(self.scope)
        self._collect(classifier, node)
        found = classifier.found
        if self._refuse_randoms(cell, found) or self._refuse_mixed(cell, positions, node, found):
            return
        if found.label_reads:
            column = Classifier(self.scope).label_column(found.label_reads[0])
            self.log.label_feature(cell, found.label_reads[0].lineno, first_text(positions, node), column)
            return
        edits = self._edits(cell, positions, found, loop_id)
        edits.code += tolerant_drops(positions, node, found, self.scope.label_columns)
        edits.code += label_free_columns(positions, node, self.scope.label_columns)
        self._keep(cell, edits)
        if self.first_body_cell is None:
            self.first_body_cell = cell.index
        self._body(cell, node.lineno, statement_text(positions, node, edits.code))
        for freeze in found.freezes:  # after `le.fit_transform(x)`, `le` is training's fitted `le`
            if freeze.what == "fitted":
                self.scope.constants.discard(str(fitted_receiver(freeze.node)))  # type: ignore[arg-type]

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
            for expression in headers(node):
                classifier.collect(expression)
            for child in bodies(node):
                self._collect(classifier, child)
            return
        for expression in expressions(node):
            classifier.collect(expression)
        update_scope(classifier.scope, node)

    def update_scope(self, node: ast.stmt) -> None:
        if not isinstance(node, COMPOUND):
            update_scope(self.scope, node)

    def _track_others(self, node: ast.stmt) -> None:
        self.others |= bound_names(node)

    # --- edits ------------------------------------------------------------------------------

    def _edits(self, cell: Cell, positions: Positions, found: Findings, loop_id: str | None) -> StatementEdits:
        edits = self.maker.freeze(cell, positions, found, loop_id)
        edits.code += label_drop_edits(positions, found, self.scope.label_columns)
        return edits

    def _keep(self, cell: Cell, edits: StatementEdits) -> None:
        """The statement is shipped: its values are recorded in the run."""
        self.frozen += edits.frozen
        self.run_edits.setdefault(cell.index, []).extend(edits.run)

    # --- refusals ------------------------------------------------------------------------------

    def _refuse_randoms(self, cell: Cell, found: Findings) -> bool:
        for call in found.randoms:
            self.log.random_fill(cell, call)
        return bool(found.randoms)

    def _refuse_mixed(self, cell: Cell, positions: Positions, node: ast.stmt, found: Findings) -> bool:
        frames = self.others | set(self.frame_lists)
        mixed = [f.node.id for f in found.freezes if isinstance(f.node, ast.Name) and f.node.id in frames]
        if mixed:
            self.log.mixed(cell, node.lineno, first_text(positions, node), mixed[0])
        return bool(mixed)

    def _cannot_ship(self, cell: Cell, positions: Positions, node: ast.stmt) -> None:
        if self.user_function:
            self.log.beside_function(cell, node.lineno, first_text(positions, node))
        else:
            self.log.cannot_ship(cell, node.lineno, first_text(positions, node), raw_known=self.raw is not None)

    # --- output -------------------------------------------------------------------------------

    def _module(self, cell: Cell, positions: Positions, node: ast.stmt, edits: list[Edit], gap: bool) -> Emitted:
        emitted = Emitted(cell, first_line(positions, node), statement_text(positions, node, edits), gap)
        self.parts.module.append(emitted)
        return emitted

    def _body(self, cell: Cell, line: int, text: str) -> Emitted:
        emitted = Emitted(cell, line, text)
        self.parts.body.append(emitted)
        return emitted

    # --- after the last cell ----------------------------------------------------------------

    def finish(self, cells: tuple[Cell, ...], returned: str | None) -> None:
        """After the last cell: one note per cell for statements on other frames; unused values out."""
        for cell in cells:
            if cell.index in self.frame_loops:
                loops, frames, lines = self.frame_loops[cell.index]
                listed = ", ".join(f"`{n}`" for n in sorted(frames))
                what = (
                    f"the loop over {loops[0]}"
                    if len(lines) == 1
                    else f"the loops over {', '.join(dict.fromkeys(loops))}"
                )
                where = "" if len(lines) == 1 else f" (lines {', '.join(map(str, lines))})"
                verb = "runs" if len(lines) == 1 else "run"
                self.log.note(
                    cell, lines[0], f"{what}{where} {verb} on the request frame only; {listed} is not replayed"
                )
            if cell.index in self.skipped:
                frames, lines = self.skipped[cell.index]
                listed = ", ".join(f"`{n}`" for n in sorted(frames)) or "other frames"
                where = f"line {lines[0]}" if len(lines) == 1 else f"lines {', '.join(map(str, lines))}"
                self.log.note(
                    cell, lines[0], f"statements on {listed} ({where}) are not replayed: a request is one frame"
                )
        self._prune(returned)

    def _prune(self, returned: str | None) -> None:
        """Ship a frozen assignment only if shipped code reads what it binds (`X_test_scaled =
        scaler.transform(X_test)` is the notebook's business, not the service's)."""
        pending = {id(p.emitted) for p in self.pending}
        shipped = [e.text for e in self.parts.module + self.parts.body if id(e) not in pending]
        used = used_assignments(self.pending, [*shipped, returned or ""])
        for assignment in self.pending:
            if assignment in used:
                self._keep(assignment.cell, assignment.edits)
                if assignment.emitted in self.parts.module:
                    self.parts.frozen_cells.add(assignment.cell.index)
                continue
            self.parts.module = [e for e in self.parts.module if e is not assignment.emitted]
            self.parts.body = [e for e in self.parts.body if e is not assignment.emitted]
            line, text = assignment.emitted.line, assignment.text
            self.log.note(assignment.cell, line, f"`{text}` is not used by the shipped code; left out")

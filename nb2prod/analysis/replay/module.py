"""Plan the preprocessing module: verbatim cells, or definitions plus a replayed `preprocess(frame)`.

`plan_replay` decides, without a kernel, what the preprocess cells become: nothing changes for
cells of definitions only; otherwise the statements are sorted by `walker.Replayer`, the raw
frame is found (`--raw`, metadata `nb2prod.raw`, or the one frame the fit input is built
from), and the module is assembled with a `FROZEN = {}` placeholder that the capture step
fills with the values the run recorded.
"""

from __future__ import annotations

import ast

from nb2prod.analysis.findings import Severity
from nb2prod.analysis.fitchain import FitAnalysis, FitChain, Located, cell_text, editable_tree, run_statements
from nb2prod.analysis.names import NOTEBOOK_BUILTINS
from nb2prod.analysis.read_tail import ReadTail
from nb2prod.analysis.replay.edits import label_drop_edits
from nb2prod.analysis.replay.forms import peel, unkeyed_reason
from nb2prod.analysis.replay.freeze import Classifier, Kind
from nb2prod.analysis.replay.plan import (
    ALIGN,
    CATEGORIES,
    FROZEN,
    FROZEN_PLACEHOLDER,
    ReplayIssue,
    ReplayPlan,
    frame_root,
    imported_names,
    random_names,
)
from nb2prod.analysis.replay.statements import is_docstring
from nb2prod.analysis.replay.walker import DEFINITIONS, Replayer
from nb2prod.analysis.splice import Positions, apply_edits, indent
from nb2prod.notebook.spec import Cell, NotebookSpec

HEADER = '"""Preprocessing code extracted by nb2prod from {notebook}.\n\n{what}\n"""\n'
VERBATIM = "Each block below is one `preprocess` cell of the notebook, verbatim, in cell order."
REPLAYED = (
    "Definitions of the `preprocess` cells are copied verbatim. Their statements on the training frame\n"
    "`{raw}` are replayed by `preprocess(frame)` at the end, on the request frame instead, with every\n"
    "training statistic frozen in FROZEN (recorded in the production run, never recomputed on a request)."
)
FROZEN_ONLY = (
    "The `preprocess` cells, in cell order; values they computed from training data are frozen in\n"
    "FROZEN (recorded in the production run)."
)
FROZEN_COMMENT = (
    "# Training values recorded by nb2prod in the production run, keyed by the notebook expression\n"
    "# that computed them. They are never recomputed on a request.\n"
)
ALIGN_SOURCE = '''

def {align}(frame, columns):
    """The columns `get_dummies` made in training, in training order: a category this request
    lacks is a column of zeros, a category training never saw is dropped."""
    for name, dtype in columns:
        if name not in frame.columns:
            frame[name] = {pandas}.Series(0, index=frame.index).astype(dtype)
    return frame[[name for name, _ in columns]]
'''


CATEGORIES_SOURCE = '''

def {categories}(values, categories):
    """`astype("category")` with training's categories, in training's order: a value training
    never saw is missing, as it would be for the model."""
    if isinstance(categories, dict):
        return values.astype({{name: {pandas}.CategoricalDtype(c) for name, c in categories.items()}})
    return values.astype({pandas}.CategoricalDtype(categories))
'''


def plan_replay(
    spec: NotebookSpec,
    cells: tuple[Cell, ...],
    fits: FitAnalysis,
    *,
    raw: str | None,
    model: str | None,
    tail: ReadTail | None = None,
) -> ReplayPlan | None:
    """None when the preprocess cells hold only definitions and constants (shipped verbatim).
    `tail`: the raw frame's own cell after the read is among `cells` (see `read_tail`)."""
    trees = [(cell, editable_tree(cell)) for cell in cells]
    if any(tree is None for _, tree in trees) or not _has_statements(trees):  # type: ignore[arg-type]
        return None
    parsed = [(cell, tree) for cell, tree in trees if tree is not None]
    everything = [t for t in (editable_tree(c) for c in spec.code_cells()) if t is not None]
    modules = imported_names(everything)
    chain = fits.chain(model.split(".")[0] if model else None) or (fits.chains[-1] if fits.chains else None)
    user_function = any(isinstance(n, ast.FunctionDef) and n.name == "preprocess" for _, t in parsed for n in t.body)
    statements = run_statements(spec)
    pandas = _pandas_alias(parsed)
    raw = raw or (None if user_function else _infer_raw(statements, cells, chain, modules))
    replayer = Replayer(
        raw=raw,
        chain=chain,
        label_names=fits.label_names,
        label_columns=fits.label_columns,
        randoms=random_names(everything),
        modules=modules,
        user_function=user_function,
        pandas=pandas or "pandas",
    )
    for cell, tree in parsed:
        replayer.cell(cell, tree, spec.path.name)
    returned = _returned(replayer, statements, chain, cells) if replayer.parts.body else None
    if replayer.parts.body and returned is None:
        replayer.log.issues.append(_no_return(spec, chain, cells))
    if returned is not None and chain is not None and chain.unkeyed_line is not None:
        why, fix = unkeyed_reason(chain.receiver, chain.features, chain.label)
        replayer.log.refuse(chain.cell, chain.unkeyed_line, why, fix, code="replay-rows")
    replayer.finish(cells, returned)
    return _plan(spec, replayer, returned, fits, chain, pandas, tail)


def _has_statements(trees: list[tuple[Cell, ast.Module]]) -> bool:
    """Anything besides imports, definitions, docstrings and constants reading nothing of the notebook."""
    bound: set[str] = set()
    for _, tree in trees:
        for node in tree.body:
            if isinstance(node, DEFINITIONS) or is_docstring(node):
                bound |= _names_bound(node)
                continue
            read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            if read - bound - NOTEBOOK_BUILTINS:
                return True
            bound |= _names_bound(node)
    return False


def _names_bound(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _infer_raw(
    statements: list[Located], cells: tuple[Cell, ...], chain: FitChain | None, modules: set[str]
) -> str | None:
    """The frame the fit input is built from, followed back through assignments to the last name
    bound before the first preprocess cell: the raw frame the load cells make."""
    if chain is None or not cells:
        return None
    # the first cell with statements: an imports cell above the load cell may be `preprocess` too
    trees = [(c, editable_tree(c)) for c in cells]
    with_statements = [c.index for c, t in trees if t is not None and _has_statements([(c, t)])]
    first = min(with_statements or [c.index for c in cells])
    name = frame_root(ast.parse(chain.start, mode="eval").body, modules)
    at = len(statements)
    seen: set[tuple[str, int]] = set()
    while name is not None and (name, at) not in seen:
        seen.add((name, at))
        binding = _last_binding(statements, name, at)
        if binding is None or binding.cell.index < first:
            return name
        value = binding.node.value if isinstance(binding.node, ast.Assign) else None
        if value is None:
            return None
        if isinstance(value, ast.Call) and _split_source(binding.node, name) is not None:
            name, at = _split_source(binding.node, name), binding.order
            continue
        name, at = frame_root(value, modules), binding.order
    return None


def _last_binding(statements: list[Located], name: str, before: int) -> Located | None:
    for located in reversed(statements[:before]):
        node = located.node
        if isinstance(node, ast.Assign) and name in _assigned_names(node):
            return located
    return None


def _assigned_names(node: ast.Assign) -> set[str]:
    """Names the assignment binds (`a` and `b` in `a, b = ...`, not `df` in `df["x"] = ...`)."""
    found: set[str] = set()
    for target in node.targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            if isinstance(element, ast.Name):
                found.add(element.id)
    return found


def _split_source(node: ast.stmt, name: str) -> str | None:
    """In `X_tr, X_te, y_tr, y_te = train_test_split(X, y)`, X_tr comes from X."""
    if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)):
        return None
    value = node.value
    if not (isinstance(value, ast.Call) and "split" in ast.unparse(value.func)):
        return None
    names = [e.id if isinstance(e, ast.Name) else "" for e in node.targets[0].elts]
    position = names.index(name) // 2 if name in names else len(value.args)
    source = value.args[position] if position < len(value.args) else None
    return source.id if isinstance(source, ast.Name) else None


def _returned(
    replayer: Replayer, statements: list[Located], chain: FitChain | None, cells: tuple[Cell, ...]
) -> str | None:
    """What the function returns: the fit input's start, as the replayed statements leave it
    (`X_train.values`: the frame `X_train` comes from, as an array again, see `forms`)."""
    if chain is None:
        return None
    form = peel(chain.start)
    if form is None:
        return _returned_frame(replayer, statements, chain.start, cells)
    frame = _returned_frame(replayer, statements, form.frame, cells)
    return form.around(frame) if frame is not None else None


def _returned_frame(replayer: Replayer, statements: list[Located], start: str, cells: tuple[Cell, ...]) -> str | None:
    text = replayer.aliases.get(start, start)
    found = _in_scope(replayer, text)
    if found is not None:
        return found
    if text.isidentifier():  # built after the preprocess cells, e.g. `X = train.drop("y", axis=1)`
        binding = _last_binding(statements, text, len(statements))
        if binding is not None and binding.cell.index > max(c.index for c in cells):
            assert isinstance(binding.node, ast.Assign)
            source = _split_source(binding.node, text)
            value = source or Positions(cell_text(binding.cell)).text(binding.node.value)
            return _in_scope(replayer, value)
    return None


def _in_scope(replayer: Replayer, text: str) -> str | None:
    """`text` if the function can evaluate it from the request, with label drops skipped."""
    text = text.strip()
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    scope = replayer.scope
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if not names & scope.lineage or not names <= scope.lineage | scope.constants | NOTEBOOK_BUILTINS:
        return None
    classifier = Classifier(scope)
    classifier.collect(node)
    if Classifier(scope).kind(node) is not Kind.ROW or classifier.found.freezes:
        return None
    positions = Positions(text)
    return apply_edits(text, label_drop_edits(positions, classifier.found, scope.label_columns))


def _no_return(spec: NotebookSpec, chain: FitChain | None, cells: tuple[Cell, ...]) -> ReplayIssue:
    what = f"the fit input `{chain.start}`" if chain else "the model's fit input"
    return ReplayIssue(
        Severity.ERROR,
        "replay",
        f"{spec.path.name}: the preprocess cells change the training frame, but {what} is not built from "
        "what they leave, so nb2prod cannot tell what preprocess(frame) should return.",
        "Build the fit input in a preprocess cell (e.g. `X = train.drop(columns=[...])`), or name the raw "
        "frame with --raw VAR.",
        cells[-1].index,
        None,
    )


def _pandas_alias(parsed: list[tuple[Cell, ast.Module]]) -> str | None:
    for _, tree in parsed:
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "pandas":
                        return alias.asname or "pandas"
    return None


def _plan(
    spec: NotebookSpec,
    replayer: Replayer,
    returned: str | None,
    fits: FitAnalysis,
    chain: FitChain | None,
    pandas: str | None,
    tail: ReadTail | None = None,
) -> ReplayPlan:
    function = bool(replayer.parts.body) and returned is not None
    columns = any(f.what in ("columns", "categories") for f in replayer.frozen)
    needs_pandas = function and pandas is None and (columns or replayer.maker.uses_pandas)
    pandas_name = pandas or "pandas"
    template, line_cells = _assemble(spec, replayer, returned if function else None, pandas_name, needs_pandas)
    edits = {i: e for i, e in replayer.run_edits.items()}
    for index, more in fits.edits.items():
        edits.setdefault(index, []).extend(more)
    return ReplayPlan(
        template=template,
        line_cells=tuple(line_cells),
        raw=replayer.raw if function else None,
        generates_function=function,
        frozen=tuple(replayer.frozen),
        run_edits=edits,
        # the frame is copied before the first replayed cell runs, or, when the read's own cell is
        # replayed after the read, inside that cell right after the read
        snapshot_before=(tail.cell.index if tail else replayer.first_body_cell) if function else None,
        snapshot_offset=tail.snapshot_offset if function and tail else None,
        issues=tuple(replayer.log.issues),
        label_columns=tuple(sorted(fits.label_columns)),
        composed=chain.transformers if chain else (),
    )


def _assemble(
    spec: NotebookSpec, replayer: Replayer, returned: str | None, pandas: str, needs_pandas: bool
) -> tuple[str, list[tuple[int, Cell, int]]]:
    what = REPLAYED.format(raw=replayer.raw) if returned else (FROZEN_ONLY if replayer.frozen else VERBATIM)
    lines = [HEADER.format(notebook=spec.path.name, what=what)]
    line_cells: list[tuple[int, Cell, int]] = []
    if needs_pandas:
        lines.append("\nimport pandas\n")
    placed = False
    current: Cell | None = None
    for part in replayer.parts.module:
        if replayer.frozen and not placed and part.cell.index in replayer.parts.frozen_cells:
            lines.append("\n" + FROZEN_COMMENT + FROZEN_PLACEHOLDER + "\n")
            placed = True
        if part.cell is not current:
            lines.append(f"\n# --- cell {part.cell.number} ---\n")
            current = part.cell
        elif part.gap:
            lines.append("\n")
        line_cells.append((_count(lines) + 1, part.cell, part.line))
        lines.append(part.text + "\n")
    if returned is not None:
        if replayer.frozen and not placed:
            lines.append("\n\n" + FROZEN_COMMENT + FROZEN_PLACEHOLDER + "\n")
        if any(f.what == "columns" for f in replayer.frozen):
            lines.append(ALIGN_SOURCE.format(align=ALIGN, pandas=pandas))
        if any(f.what == "categories" for f in replayer.frozen):
            lines.append(CATEGORIES_SOURCE.format(categories=CATEGORIES, pandas=pandas))
        _function(spec, replayer, returned, lines, line_cells)
    return "".join(lines), line_cells


def _function(
    spec: NotebookSpec, replayer: Replayer, returned: str, lines: list[str], line_cells: list[tuple[int, Cell, int]]
) -> None:
    numbers = sorted({p.cell.number for p in replayer.parts.body})
    cells = f"cell {numbers[0]}" if len(numbers) == 1 else f"cells {numbers[0]}-{numbers[-1]}"
    lines.append(
        "\n\ndef preprocess(frame):\n"
        f'    """{cells} of {spec.path.name}, replayed on one request frame (`{replayer.raw}` is the request).\n\n'
        f"    Training statistics come from {FROZEN}; nothing is learned from the request.\n"
        '    """\n'
        f"    {replayer.raw} = frame.copy()\n"
    )
    current: Cell | None = None
    for part in replayer.parts.body:
        if part.cell is not current:
            lines.append(f"    # cell {part.cell.number}\n")
            current = part.cell
        line_cells.append((_count(lines) + 1, part.cell, part.line))
        lines.append(indent(part.text, 4) + "\n")
    lines.append(f"    return {returned}\n")


def _count(lines: list[str]) -> int:
    return sum(text.count("\n") for text in lines)

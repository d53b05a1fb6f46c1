"""What the service will take as input: the raw data file's columns, or the engineered fit input.

One typed answer, read without a kernel, for `tag`, `convert`, the generated README and the
JupyterLab dialog. The service takes raw columns when the preprocess cells replay as a generated
(or hand-written) `preprocess(frame)`; otherwise it takes the model's fit input as the notebook
built it, and the answer names the cell and line that stop the replay, and the fix.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from nb2prod.analysis.findings import Finding, Severity
from nb2prod.analysis.preprocess import PreprocessModule, assemble_preprocess
from nb2prod.notebook.spec import Cell, NotebookSpec, Role

READERS = ("read_csv", "read_parquet", "read_excel", "read_json", "read_table", "read_feather", "read_pickle")


@dataclass(frozen=True)
class ReplayBlocker:
    """The statement that keeps the service from taking raw rows, and what to do about it."""

    cell_index: int | None
    cell_number: int | None
    line: int | None
    reason: str  # the full message: notebook, cell, line and why
    fix: str


@dataclass(frozen=True)
class ServiceInput:
    """The input the service will take. `kind` is "raw" (the data file's columns, label and
    dropped columns left out) or "engineered" (the model's fit input as the notebook built it).
    `columns` is empty before the run; the conversion fills it from the captured sample."""

    kind: Literal["raw", "engineered"]
    frame: str | None  # the raw frame, or the fit input's variable
    file: str | None = None  # the data file the raw frame was read from, when a literal path
    columns: tuple[str, ...] = ()
    blocking: ReplayBlocker | None = None

    def describe(self) -> str:
        """One line for people: "raw columns of `df` from data/train.csv" or "engineered columns
        of `X_train`: 14 columns, `age_years`, ..."."""
        name = f"`{self.frame}`" if self.frame else "the fit input"
        if self.kind == "raw":
            text = f"raw columns of {name}" + (f" from {self.file}" if self.file else "")
        else:
            text = f"engineered columns of {name}"
        if self.columns:
            shown = ", ".join(f"`{c}`" for c in self.columns[:6]) + (", ..." if len(self.columns) > 6 else "")
            text += f": {len(self.columns)} columns, {shown}"
        return text

    def explain(self) -> str:
        """`describe()`, and for engineered input why raw rows cannot be served and the fix."""
        text = f"the service will take {self.describe()}"
        if self.kind == "engineered" and self.blocking is not None:
            text += f", not the raw data: {self.blocking.reason}"
            if self.blocking.fix:
                text += f" Fix: {self.blocking.fix}"
        return text


def service_input(
    spec: NotebookSpec,
    *,
    raw: str | None = None,
    model: str | None = None,
    module: PreprocessModule | None = None,
    fit_input: str | None = None,
    blocking: ReplayBlocker | None = None,
) -> ServiceInput:
    """What the service will take for `spec` as tagged (`raw`/`model` are the --raw and --model
    flags; `fit_input` names the engineered input when known; `blocking` is why raw rows were not
    proposed, when `tag` found out)."""
    module = module or assemble_preprocess(spec, raw=raw, model=model)
    replay = module.replay
    if replay is not None and replay.generates_function and not replay.errors:
        return ServiceInput("raw", replay.raw, data_file(spec, replay.raw))
    chains = module.fits.chains if module.fits is not None else ()
    start = fit_input or next((c.start for c in reversed(chains)), None)
    if "preprocess" in module.callables:
        return ServiceInput("raw", start, None)
    if blocking is None and replay is not None and replay.errors:
        blocking = blocker(spec, replay.errors[0])
    return ServiceInput("engineered", start, None, (), blocking)


def planned_input(
    spec: NotebookSpec, *, raw: str | None, model: str | None, module: PreprocessModule | None = None
) -> ServiceInput:
    """What `convert` tells before the run: `service_input`, with the reason for engineered input."""
    return explain_engineered(spec, service_input(spec, raw=raw, model=model, module=module), model=model)


def explain_engineered(spec: NotebookSpec, found: ServiceInput, *, model: str | None) -> ServiceInput:
    """`found`, and for engineered input that no tag explains (the cells `tag` could not replay
    run untagged), the cell and line that stop the replay, as `tag` names them."""
    if found.kind != "engineered" or found.blocking is not None or spec.config.raw:
        return found
    from nb2prod.analysis.roles import propose_roles
    from nb2prod.errors import Nb2ProdError

    try:
        proposed = propose_roles(spec, model).service_input
    except Nb2ProdError:
        return found  # no proposal to learn from: lint and the run say what is wrong
    if proposed is None or proposed.kind != "engineered" or proposed.blocking is None:
        return found
    return dataclasses.replace(found, blocking=proposed.blocking)


def blocker(spec: NotebookSpec, finding: Finding) -> ReplayBlocker:
    number = spec.cells[finding.cell_index].number if finding.cell_index is not None else None
    return ReplayBlocker(finding.cell_index, number, finding.line, finding.message, finding.hint)


def data_file(spec: NotebookSpec, frame: str | None) -> str | None:
    """The literal path of the `pd.read_*("...")` that last binds `frame` in a running cell."""
    if frame is None:
        return None
    found: str | None = None
    for cell in spec.code_cells():
        if cell.has(Role.SKIP):
            continue
        try:
            tree = ast.parse(_python(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == frame for t in node.targets):
                path = _read_path(node.value)
                if path is not None:
                    found = path
    return found


def _read_path(node: ast.expr) -> str | None:
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in READERS:
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return first.value
    return None


def _python(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def with_roles(spec: NotebookSpec, roles: Mapping[int, Sequence[str]]) -> NotebookSpec:
    """`spec` as it would read after `nb2prod tag --write` stored `roles` (cell index -> roles)."""
    cells: list[Cell] = []
    for cell in spec.cells:
        if cell.index in roles:
            cell = dataclasses.replace(cell, roles=tuple(Role(r) for r in roles[cell.index]))
        cells.append(cell)
    return dataclasses.replace(spec, cells=tuple(cells))


def replay_errors(spec: NotebookSpec, model: str | None) -> list[Finding]:
    """The errors lint would report about the preprocess cells of `spec` (no kernel)."""
    from nb2prod.analysis.lint import lint_notebook

    try:
        findings = lint_notebook(spec, model_var=model)
    except Exception:  # noqa: BLE001 - a proposal that lint cannot even read is not proposed
        return [Finding(Severity.ERROR, "replay", f"{spec.path.name}: the preprocess cells cannot be analysed.")]
    return [f for f in findings if f.severity is Severity.ERROR]

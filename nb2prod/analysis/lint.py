"""Lint stage: problems we can see without a kernel (roles, free names, magics, hidden state)."""

from __future__ import annotations

import ast
import enum
import itertools
from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.analysis.preprocess import PreprocessModule, assemble_preprocess
from nb2prod.notebook.spec import NotebookSpec, Role


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One problem, located at a cell (and line within it when known)."""

    severity: Severity
    code: str
    message: str
    hint: str = ""
    cell_index: int | None = None
    line: int | None = None


def lint_notebook(
    spec: NotebookSpec, *, model_var: str | None = None, module: PreprocessModule | None = None
) -> list[Finding]:
    """All findings for `spec`, errors first. `model_var` is the `--model` flag if given; `module`
    is the assembled preprocess code when the caller already has it."""
    module = module or assemble_preprocess(spec)
    findings = [Finding(Severity.NOTE, "foreign-tag", note) for note in spec.notes]
    findings += _check_preprocess(spec, module)
    findings += _check_train(spec, model_var)
    findings += _check_hidden_state(spec)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _check_preprocess(spec: NotebookSpec, module: PreprocessModule) -> list[Finding]:
    findings = []
    for cell in module.cells:
        for use in analysis.find_magics(cell):
            findings.append(
                Finding(
                    Severity.ERROR,
                    "magic",
                    f"{spec.path.name}, {cell.label}, line {use.line_number}: `{use.line}` is IPython syntax "
                    "(a magic, shell escape or help); it cannot go into the service.",
                    "Move it to a cell without the preprocess role, or write it as plain Python.",
                    cell.index,
                    use.line_number,
                )
            )
    if findings:
        return findings
    try:
        ast.parse(module.source)
    except SyntaxError as err:
        cell, line = module.locate(err.lineno or 1)
        return [
            Finding(
                Severity.ERROR,
                "syntax",
                f"{spec.path.name}, {cell.label}, line {line}: not valid Python: {err.msg}.",
                "Fix the syntax; preprocess cells must be plain Python.",
                cell.index,
                line,
            )
        ]
    return [_free_name_finding(spec, module, name) for name in analysis.free_names(module.source)]


def _free_name_finding(spec: NotebookSpec, module: PreprocessModule, name: str) -> Finding:
    use_line = analysis.first_use_line(module.source, name) or 1
    cell, line = module.locate(use_line)
    others = [c for c in spec.code_cells() if c.role is not Role.PREPROCESS]
    definers = analysis.cells_binding(others, name)
    if definers:
        where = f"it is defined in {definers[0].label}, which is not a preprocess cell"
        hint = f"Tag {definers[0].label.split(' (')[0]} `preprocess`, or define `{name}` inside a preprocess cell."
    else:
        where = "no cell of the notebook defines it"
        hint = f"Import or define `{name}` in a preprocess cell."
    return Finding(
        Severity.ERROR,
        "free-name",
        f"{spec.path.name}, {cell.label}, line {line}: preprocess code uses `{name}`, but {where}. "
        "The service only has the preprocess cells.",
        hint,
        cell.index,
        line,
    )


def _check_train(spec: NotebookSpec, model_var: str | None) -> list[Finding]:
    if model_var or spec.config.model or spec.code_cells(Role.TRAIN):
        return []
    return [
        Finding(
            Severity.ERROR,
            "no-train",
            f"{spec.path.name}: cannot tell which object is the model: no cell has the role `train`.",
            "Tag the cells that fit the model `train`, or name the model with --model VAR "
            '(or notebook metadata "nb2prod": {"model": "VAR"}).',
        )
    ]


def _check_hidden_state(spec: NotebookSpec) -> list[Finding]:
    """Saved execution counts that go down mean the author ran cells out of order."""
    ran = [c for c in spec.code_cells() if c.execution_count is not None and c.role is not Role.SKIP]
    for earlier, later in itertools.pairwise(ran):
        if later.execution_count is not None and earlier.execution_count is not None:
            if later.execution_count < earlier.execution_count:
                return [
                    Finding(
                        Severity.WARNING,
                        "hidden-state",
                        f"{spec.path.name}: cells were last run out of order ({later.label} ran before "
                        f"{earlier.label}); the production run goes top to bottom and may give a different model.",
                        "Restart the kernel and run all cells to check the notebook works in order.",
                        later.index,
                    )
                ]
    return []

"""Lint stage: problems we can see without a kernel (roles, free names, magics, hidden state,
names only skipped cells define, and a model or input sample that cannot be found)."""

from __future__ import annotations

import ast
import itertools
import re
import shlex

from nb2prod.analysis import names as analysis
from nb2prod.analysis.findings import Finding, Severity
from nb2prod.analysis.flow import KERNEL_NAMES, CellFacts, cell_facts
from nb2prod.analysis.preprocess import PreprocessModule, assemble_preprocess
from nb2prod.analysis.service_input import READERS
from nb2prod.analysis.targets import check_targets
from nb2prod.notebook.spec import Cell, NotebookSpec, Role

__all__ = ["Finding", "Severity", "lint_notebook"]


def lint_notebook(
    spec: NotebookSpec,
    *,
    model_var: str | None = None,
    module: PreprocessModule | None = None,
    features_var: str | None = None,
) -> list[Finding]:
    """All findings for `spec`, errors first. `model_var`/`features_var` are the `--model` and
    `--features` flags if given; `module` is the assembled preprocess code when the caller has it."""
    findings = [Finding(Severity.NOTE, "foreign-tag", note) for note in spec.notes]
    if not spec.has_roles:
        return [_no_roles(spec), *findings]
    module = module or assemble_preprocess(spec)
    findings += _check_preprocess(spec, module)
    findings += _check_train(spec, model_var)
    findings += check_targets(spec, model_var=model_var, features_var=features_var)
    findings += _check_skipped_definitions(spec)
    findings += _check_undefined_names(spec)
    findings += _check_hidden_state(spec)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _no_roles(spec: NotebookSpec) -> Finding:
    path = shlex.quote(str(spec.path))
    return Finding(
        Severity.ERROR,
        "no-roles",
        f"{spec.path.name}: no cell has an nb2prod role, so there is no model to convert yet.",
        f"Run `nb2prod tag {path}` to see proposed roles, then `nb2prod tag {path} --write` to store them as "
        "cell tags.",
    )


def _dropped_magics(spec: NotebookSpec, module: PreprocessModule) -> list[Finding]:
    """Display-only magics are forgiven in preprocess cells: a note, not an error."""
    return [
        Finding(
            Severity.NOTE,
            "display-magic",
            f"{spec.path.name}, {use.cell.label}, line {use.line_number}: `{use.line}` only changes how the "
            "notebook shows output; it runs in the notebook but is left out of the service's preprocessing module.",
            "",
            use.cell.index,
            use.line_number,
        )
        for use in module.dropped
    ]


def _check_preprocess(spec: NotebookSpec, module: PreprocessModule) -> list[Finding]:
    findings = _dropped_magics(spec, module)
    for cell in module.cells:
        findings += _file_reads(spec, cell)
        for use in (u for u in analysis.find_magics(cell) if not u.display_only):
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
    if any(f.severity is Severity.ERROR for f in findings):
        return findings
    try:
        ast.parse(module.source)
    except SyntaxError as err:
        cell, line = module.locate(err.lineno or 1)
        return findings + [
            Finding(
                Severity.ERROR,
                "syntax",
                f"{spec.path.name}, {cell.label}, line {line}: not valid Python: {err.msg}.",
                "Fix the syntax; preprocess cells must be plain Python.",
                cell.index,
                line,
            )
        ]
    if module.replay is not None:  # statements on training data: replayed, frozen, left out or refused
        findings += module.replay.issues
        if module.replay.errors:
            return findings
    return findings + [_free_name_finding(spec, module, name) for name in analysis.free_names(module.source)]


FILE_READERS = frozenset(
    {
        *READERS,
        "read_sql",
        "read_hdf",
        "read_html",
        "read_xml",
        "read_stata",
        "read_sas",
        "load",
        "loadtxt",
        "genfromtxt",
    }
)


def _file_reads(spec: NotebookSpec, cell: Cell) -> list[Finding]:
    """A preprocess cell that reads a file: the service has no data files, and each request
    would read it again. Reading is the `load` role's work."""
    tree = analysis.parse_cell(cell)
    findings: list[Finding] = []
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if called in FILE_READERS or called == "open":
            line = getattr(node, "lineno", 1)
            findings.append(
                Finding(
                    Severity.ERROR,
                    "reads-files",
                    f"{spec.path.name}, {cell.label}, line {line}: a preprocess cell reads a file "
                    f"(`{ast.unparse(func)}(...)`); the service gets its rows from the request and has no data files.",
                    f"Tag cell {cell.number} `load` (and move any cleaning of what it reads to a cell of its own, "
                    "tagged `preprocess`).",
                    cell.index,
                    line,
                )
            )
            break  # one finding per cell: the first read names it
    return findings


def _free_name_finding(spec: NotebookSpec, module: PreprocessModule, name: str) -> Finding:
    use_line = analysis.first_use_line(module.source, name) or 1
    cell, line = module.locate(use_line)
    others = [c for c in spec.code_cells() if not c.has(Role.PREPROCESS)]
    # the definition in effect where the preprocess cell runs; else the first one below it
    definer = analysis.defining_cell(others, name, before=cell.index) or next(
        iter(analysis.cells_binding(others, name)), None
    )
    if definer is not None:
        where = f"it is defined in {definer.label}, which is not a preprocess cell"
        hint = f"Tag cell {definer.number} `preprocess`, or define `{name}` inside a preprocess cell."
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


def _check_skipped_definitions(spec: NotebookSpec) -> list[Finding]:
    """Names a cell that runs needs, which only `skip` cells (removed before the run) bind."""
    findings: list[Finding] = []
    bound: set[str] = set(KERNEL_NAMES)
    skipped: dict[str, Cell] = {}
    for cell in spec.code_cells():
        facts = cell_facts(cell)
        if cell.has(Role.SKIP):
            skipped.update((name, cell) for name in facts.binds if name not in skipped)
            continue
        if facts.star_import:
            return findings  # `from x import *` may bind anything
        for name in facts.immediate_uses:
            if name not in bound and name in skipped:
                findings.append(_skipped_definition(spec, cell, name, skipped[name]))
                bound.add(name)  # one finding per name
        bound |= facts.binds
    return findings


def _check_undefined_names(spec: NotebookSpec) -> list[Finding]:
    """Names a running cell reads that no running cell above it defines and no import provides:
    the run would stop there with NameError. Names that only skip cells define are reported by
    `_check_skipped_definitions`; after a cell that may bind any name (`from x import *`, `%run`,
    `exec`, `globals()[...]`), nothing more can be told."""
    findings: list[Finding] = []
    running = [cell_facts(c) for c in spec.code_cells() if not c.has(Role.SKIP)]
    skipped = {n for c in spec.code_cells(Role.SKIP) for n in cell_facts(c).binds}
    bound: set[str] = set(KERNEL_NAMES) | analysis.NOTEBOOK_BUILTINS
    for position, facts in enumerate(running):
        if not facts.parsed:
            continue
        for name in facts.immediate_uses:
            if name in bound or name in skipped or IPYTHON_HISTORY.match(name):
                continue
            if name in facts.binds:  # bound and read inside one compound statement (`if x: a = ...; a[0] = 1`)
                continue
            later = next((f.cell for f in running[position + 1 :] if name in f.binds), None)
            findings.append(_undefined_name(spec, facts.cell, name, later))
            bound.add(name)  # one finding per name
        if facts.star_import or _may_bind_anything(facts):
            break
        bound |= facts.binds
    return findings


IPYTHON_HISTORY = re.compile(r"^_(i{1,3}|ih|oh|dh|i?\d+)$")
ANY_BINDING_MAGIC = re.compile(r"^\s*(%run|%store|%load|%%capture\s+[A-Za-z_]|%%writefile)\b")
COMMON_IMPORTS = {
    "np": "import numpy as np",
    "pd": "import pandas as pd",
    "plt": "import matplotlib.pyplot as plt",
    "sns": "import seaborn as sns",
    "joblib": "import joblib",
}


def _may_bind_anything(facts: CellFacts) -> bool:
    if any(ANY_BINDING_MAGIC.match(m.line) for m in analysis.find_magics(facts.cell)):
        return True
    return any(c in ("exec", "globals", "locals", "vars", "__import__") for c in facts.calls)


def _undefined_name(spec: NotebookSpec, cell: Cell, name: str, later: Cell | None) -> Finding:
    line = analysis.first_use_line(analysis.to_python(cell), name)
    if later is not None:
        where = f"it is first defined in {later.label}, below it"
        hint = f"Move the definition of `{name}` above cell {cell.number}."
    else:
        where = "no cell that runs defines it and nothing imports it"
        suggestion = COMMON_IMPORTS.get(name)
        hint = f"Add `{suggestion}` to a cell above." if suggestion else f"Import or define `{name}` in a cell above."
    return Finding(
        Severity.ERROR,
        "undefined-name",
        f"{spec.path.name}, {cell.label}{f', line {line}' if line else ''}: uses `{name}`, but {where}: "
        "the run would stop there with NameError.",
        hint,
        cell.index,
        line,
    )


def _skipped_definition(spec: NotebookSpec, cell: Cell, name: str, definer: Cell) -> Finding:
    line = analysis.first_use_line(analysis.to_python(cell), name)
    return Finding(
        Severity.ERROR,
        "skipped-definition",
        f"{spec.path.name}, {cell.label}{f', line {line}' if line else ''}: uses `{name}`, which only "
        f"{definer.label} defines, and that cell is tagged `skip`: the run removes it, so this cell would fail "
        "with NameError.",
        f"Remove the `skip` tag from cell {definer.number}, define `{name}` in a cell that runs, "
        f"or skip cell {cell.number} too.",
        cell.index,
        line,
    )


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

"""Which notebook variables hold the model and its input sample, decided before running.

Explicit names win (`--model`, notebook metadata `nb2prod.model`); otherwise the candidates are
what train cells call `fit` on, and the capture step in the kernel picks the one fitted estimator.
`check_targets` makes the same decision without a kernel, so a notebook whose model or input
cannot be found fails before it runs, not after it.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.analysis.findings import Finding, Severity
from nb2prod.analysis.flow import CellFacts, assigned_call, cell_facts
from nb2prod.notebook.spec import Cell, NotebookSpec, Role

# Classes whose `fit` learns a transformation, not predictions: never the served model.
TRANSFORMER_CLASS = re.compile(
    r"(Scaler|Encoder|Imputer|Vectorizer|Transformer|Selector|Binarizer|Discretizer|Normalizer|PCA|SVD"
    r"|PolynomialFeatures|Split|KFold)$|^Select"
)
NAME_ROOT = re.compile(r"^[A-Za-z_]\w*")


@dataclass(frozen=True)
class CaptureTargets:
    """Names for the capture step; `model`/`features` are None when left to detection."""

    model: str | None
    features: str | None
    model_candidates: tuple[str, ...]
    fit_features: tuple[tuple[str, str], ...]  # (receiver, features variable) per fit call


@dataclass(frozen=True)
class ModelCandidate:
    """A variable the notebook fits that could be the served model."""

    variable: str
    cell: Cell  # the cell of its last fit
    kind: str | None  # the class it was made from, when the notebook shows it
    supervised: bool  # fitted with a target `y`

    def describe(self) -> str:
        kind = f"{self.kind}, " if self.kind else ""
        return f"`{self.variable}` ({kind}cell {self.cell.number})"


def find_targets(spec: NotebookSpec, *, model: str | None, features: str | None) -> CaptureTargets:
    """Combine flags, notebook metadata and the train cells' fit calls."""
    train_cells = spec.code_cells(Role.TRAIN)
    calls = [call for cell in train_cells for call in analysis.fit_calls(cell)]
    candidates = list(dict.fromkeys(call.receiver for call in calls))
    if not candidates:
        for cell in train_cells:
            tree = analysis.parse_cell(cell)
            if tree is not None:
                candidates += [n for n in sorted(analysis.top_level_names(tree)) if n not in candidates]
    return CaptureTargets(
        model=model or spec.config.model,
        features=features or spec.config.features,
        model_candidates=tuple(candidates),
        fit_features=tuple((c.receiver, c.features) for c in calls if c.features),
    )


def model_candidates(facts: Sequence[CellFacts]) -> list[ModelCandidate]:
    """Variables these cells fit that look like a predictor: not loop variables, not made from a
    transformer class. When some are fitted with a target `y`, only those."""
    found: dict[str, ModelCandidate] = {}
    for cell in facts:
        loops = loop_targets(cell)
        for call in cell.fits:
            if call.method == "fit_transform" or call.receiver in loops:
                continue
            kind = constructor(facts, call.receiver, before=cell.cell.index + 1)
            if kind and TRANSFORMER_CLASS.search(kind):
                continue
            earlier = found.pop(call.receiver, None)
            supervised = call.has_target or (earlier is not None and earlier.supervised)
            found[call.receiver] = ModelCandidate(call.receiver, cell.cell, kind, supervised)
    candidates = list(found.values())
    return [c for c in candidates if c.supervised] or candidates


def constructor(facts: Sequence[CellFacts], name: str, *, before: int) -> str | None:
    """The class of the last `name = Class(...)` in cells above index `before`."""
    for cell in reversed([f for f in facts if f.cell.index < before]):
        kind = assigned_call(cell, name)
        if kind:
            return kind
    return None


def loop_targets(facts: CellFacts) -> set[str]:
    """Names a cell binds as `for` loop variables (a model fitted in a loop is one of many)."""
    found: set[str] = set()
    for statement in facts.statements:
        for node in ast.walk(statement.node):
            if isinstance(node, (ast.For, ast.AsyncFor)):
                found |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return found


def check_targets(spec: NotebookSpec, *, model_var: str | None, features_var: str | None) -> list[Finding]:
    """Find the model and its input the way the capture step will, and report what cannot work."""
    train = [cell_facts(c) for c in spec.code_cells(Role.TRAIN)]
    model = model_var or spec.config.model
    features = features_var or spec.config.features
    if not model and not train:
        return []  # lint reports the missing train cell itself
    findings = _check_train_cells(spec, train)
    for name, what in ((model, "model"), (features, "input sample")):
        if name:
            findings += _check_bound(spec, name, what)
    root = _root(model) if model else None
    if not model:
        candidates = model_candidates(train)
        if not candidates:
            return findings + [_no_fit(spec, train)]
        if sum(c.supervised for c in candidates) > 1:
            return findings + [_ambiguous(spec, candidates)]
        root = candidates[0].variable if len(candidates) == 1 else None
    if not features and root is not None and not any(c.receiver == root and c.features for f in train for c in f.fits):
        findings.append(_no_features(spec, root, train))
    return findings


def _check_train_cells(spec: NotebookSpec, train: list[CellFacts]) -> list[Finding]:
    """A train cell with no fit (when others fit), and a variable fitted twice in one cell."""
    findings = []
    fitting = [f for f in train if f.fits]
    for facts in train:
        cell = facts.cell
        if not facts.fits and fitting:
            findings.append(
                Finding(
                    Severity.WARNING,
                    "train-without-fit",
                    f"{spec.path.name}, {cell.label}: the cell is tagged `train` but calls no `fit`.",
                    "Untag it if it only prepares the model (it still runs), or fit the model there.",
                    cell.index,
                )
            )
        counts = Counter(c.receiver for c in facts.fits if c.method == "fit")
        for receiver in [r for r, n in counts.items() if n > 1]:
            lines = [c.line for c in facts.fits if c.receiver == receiver and c.method == "fit"]
            findings.append(
                Finding(
                    Severity.WARNING,
                    "fitted-twice",
                    f"{spec.path.name}, {cell.label}: `{receiver}` is fitted {len(lines)} times in this cell "
                    f"(lines {', '.join(map(str, lines))}); the last fit (line {lines[-1]}) is the one served.",
                    "Keep one fit per model, or make sure the last one is the fit you want to serve.",
                    cell.index,
                    lines[-1],
                )
            )
    return findings


def _root(name: str) -> str:
    """The notebook variable of a dotted name or expression: `search` for `search.best_estimator_`."""
    match = NAME_ROOT.match(name)
    return match.group(0) if match else name


def _check_bound(spec: NotebookSpec, name: str, what: str) -> list[Finding]:
    """A named model or input must be assigned by a cell that runs."""
    root = _root(name)
    running = [c for c in spec.code_cells() if not c.has(Role.SKIP)]
    if analysis.cells_binding(running, root):
        return []
    skipped = analysis.cells_binding(spec.code_cells(Role.SKIP), root)
    where = f"only {skipped[-1].label}, which is tagged `skip`, assigns `{root}`" if skipped else "no cell assigns it"
    return [
        Finding(
            Severity.ERROR,
            "unknown-target",
            f"{spec.path.name}: the {what} is `{name}`, but {where}.",
            "Check the name given by --model/--features or notebook metadata `nb2prod`"
            + (", or remove the `skip` tag." if skipped else "."),
            skipped[-1].index if skipped else None,
        )
    ]


def _no_fit(spec: NotebookSpec, train: list[CellFacts]) -> Finding:
    cells = ", ".join(f.cell.label for f in train)
    passed = [
        (name, callee)
        for f in train
        for name in sorted(f.binds)
        if assigned_call(f, name)
        for callee in analysis.calls_passing(f.cell, name)
    ]
    detail = f"; `{passed[0][0]}` is only passed to {passed[0][1]}, which fits copies" if passed else ""
    hint = f"Call `{passed[0][0]}.fit(X, y)` in a train cell" if passed else "Fit the model in a cell tagged `train`"
    return Finding(
        Severity.ERROR,
        "no-fit",
        f"{spec.path.name}: no fitted model can be found: the train cells ({cells}) call no `fit`{detail}.",
        hint + ", or name the model with --model VAR and its input with --features VAR.",
        train[0].cell.index,
    )


def _ambiguous(spec: NotebookSpec, candidates: list[ModelCandidate]) -> Finding:
    listed = ", ".join(c.describe() for c in candidates if c.supervised)
    return Finding(
        Severity.ERROR,
        "ambiguous-model",
        f"{spec.path.name}: more than one fitted estimator could be the model: {listed}.",
        'Choose one with --model VAR, or notebook metadata "nb2prod": {"model": "VAR"}.',
        candidates[-1].cell.index,
    )


def _no_features(spec: NotebookSpec, root: str, train: list[CellFacts]) -> Finding:
    fitted = sorted({c.receiver for f in train for c in f.fits})
    others = f" (they fit {', '.join(f'`{r}`' for r in fitted)})" if fitted else ""
    return Finding(
        Severity.ERROR,
        "no-features",
        f"{spec.path.name}: cannot tell which variable holds the model's training input: no "
        f"`{root}.fit(X, ...)` was found in the train cells{others}.",
        "Name it with --features VAR or notebook metadata nb2prod.features"
        + (f", or name the fitted model with --model {fitted[0]}." if len(fitted) == 1 else "."),
        train[0].cell.index if train else None,
    )

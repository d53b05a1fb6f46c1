"""Which variable is the served model, for `nb2prod tag`: named, or the one fitted estimator.

It never guesses: several candidate models without `--model` (or notebook metadata
`nb2prod.model`) is an error that lists them.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.analysis.flow import CellFacts, Statement
from nb2prod.analysis.targets import NAME_ROOT, model_candidates
from nb2prod.errors import ModelChoiceError
from nb2prod.notebook.spec import NotebookSpec


@dataclass(frozen=True)
class ServedModel:
    """The model variable, and the cells that make and fit it."""

    variable: str  # as named, e.g. `search.best_estimator_`
    root: str  # the notebook variable, e.g. `search`
    fit: CellFacts  # the last cell that fits it (or, for a model that is never fitted here, assigns it)
    birth: CellFacts  # the last cell at or above `fit` that assigns the variable
    fit_call: analysis.FitCall | None
    start: tuple[Statement, ...]  # statements from birth to fit that make or change the model

    @property
    def calls_preprocess(self) -> bool:
        """The fit input is wrapped in `preprocess(...)`, so the service applies it too."""
        tree = analysis.parse_cell(self.fit.cell)
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in analysis.FIT_METHODS and _names(node.func.value) == self.root and node.args:
                    first = node.args[0]
                    if isinstance(first, ast.Call) and isinstance(first.func, ast.Name):
                        return first.func.id == "preprocess"
        return False


def find_served_model(spec: NotebookSpec, running: Sequence[CellFacts], model: str | None) -> ServedModel:
    """The model named by `model` or metadata, else the single candidate the notebook fits."""
    variable = model or spec.config.model or _single_candidate(spec, running)
    match = NAME_ROOT.match(variable)
    root = match.group(0) if match else variable
    binders = [f for f in running if root in f.binds]
    if not binders:
        raise ModelChoiceError(
            f"{spec.path.name}: the model is `{variable}`, but no cell that runs assigns `{root}`.",
            candidates=(),
            hint="Check the name given by --model or notebook metadata `nb2prod.model`.",
            notebook=spec.path,
        )
    fits = [(f, c) for f in running for c in f.fits if c.receiver == root and c.method != "fit_transform"]
    fit, fit_call = fits[-1] if fits else (binders[-1], None)
    assigning = [f for f in binders if f.cell.index <= fit.cell.index and root in _assigned(f)]
    birth = assigning[-1] if assigning else fit
    start = tuple(
        s
        for f in running
        if birth.cell.index <= f.cell.index <= fit.cell.index
        for s in f.statements
        if root in s.binds
    )
    return ServedModel(variable, root, fit, birth, fit_call, start)


def _single_candidate(spec: NotebookSpec, running: Sequence[CellFacts]) -> str:
    candidates = model_candidates(running)
    name = spec.path.name
    if not candidates:
        raise ModelChoiceError(
            f"{name}: no cell fits a model, so there is nothing to start from: `nb2prod tag` keeps the cells "
            "the served model's fit depends on.",
            candidates=(),
            hint=f"Fit the model in the notebook (`model.fit(X, y)`), or name it: nb2prod tag {name} --model VAR.",
            notebook=spec.path,
        )
    if len(candidates) > 1:
        listed = ", ".join(c.describe() for c in candidates)
        raise ModelChoiceError(
            f"{name}: {len(candidates)} models are fitted: {listed}. nb2prod does not guess which one to serve.",
            candidates=tuple(c.variable for c in candidates),
            hint=f"Choose one: nb2prod tag {name} --model {candidates[-1].variable} "
            '(or set notebook metadata "nb2prod": {"model": "VAR"}).',
            notebook=spec.path,
            cell_index=candidates[-1].cell.index,
        )
    return candidates[0].variable


def _assigned(facts: CellFacts) -> set[str]:
    tree = analysis.parse_cell(facts.cell)
    return analysis.top_level_names(tree) if tree is not None else set()


def _names(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None

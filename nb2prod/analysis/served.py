"""Which fit is the served model, for `nb2prod tag`: named, or chosen among the notebook's fits.

A candidate is one top-level `fit` of an estimator, with its cell, whose predictions or scores
later cells use: fits inside functions (plot helpers, a helper's parameter) and loops are not
candidates, and neither are transformers. A name the notebook reuses later for another exercise
is another candidate. Among several, the one the notebook saves (`joblib.dump`, `pickle.dump`),
then the one it tunes (a search), then the one it predicts with last is served. It never guesses
beyond that: several candidates left without `--model` (or notebook metadata `nb2prod.model`) is
an error that lists them, each with its cell, class and what later cells do with it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.analysis.flow import CellFacts, Statement, dotted
from nb2prod.analysis.targets import NAME_ROOT, TRANSFORMER_CLASS, constructor, loop_targets
from nb2prod.errors import ModelChoiceError
from nb2prod.notebook.spec import NotebookSpec

PREDICT_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function"})
SAVE_CALL = re.compile(r"(^|\.)(dump|save|save_model)$")
SEARCH_CLASS = re.compile(r"SearchCV$")
NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class ServedModel:
    """The model variable, and the cells that make and fit it."""

    variable: str  # as named, e.g. `search.best_estimator_`
    root: str  # the notebook variable, e.g. `search`
    fit: CellFacts  # the cell of the served fit (or, for a model that is never fitted here, the last assignment)
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


@dataclass(frozen=True)
class FitCandidate:
    """One top-level fit that could be the served model, and what later cells do with it."""

    variable: str
    facts: CellFacts
    call: analysis.FitCall
    kind: str | None  # the class it was made from, when the notebook shows it
    uses: tuple[tuple[str, int], ...]  # (what, cell number): ("predicts", 7), ("saves", 9)
    last_prediction: tuple[int, int] | None  # (cell index, line) of its last predict call

    @property
    def supervised(self) -> bool:
        return self.call.has_target

    def does(self, what: str) -> bool:
        return any(w == what for w, _ in self.uses)

    def describe(self) -> str:
        kind = f"{self.kind}, " if self.kind else ""
        done: dict[str, list[int]] = {}
        for what, number in self.uses:
            done.setdefault(what, []).append(number)
        later = "; ".join(f"{what} in cell {', '.join(map(str, dict.fromkeys(n)))}" for what, n in done.items())
        return f"`{self.variable}` ({kind}cell {self.facts.cell.number}{': ' + later if later else ''})"


def find_served_model(spec: NotebookSpec, running: Sequence[CellFacts], model: str | None) -> ServedModel:
    """The model named by `model` or metadata, else the candidate the notebook serves."""
    variable = model or spec.config.model
    candidates = fit_candidates(running)
    chosen: FitCandidate | None = None
    if variable is None:
        chosen = _choose(spec, candidates)
        variable = chosen.variable
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
    if chosen is None:
        named = [c for c in candidates if c.variable == root]
        chosen = _preferred(named)[-1] if named else None
    fit_call: analysis.FitCall | None
    if chosen is not None:
        fit, fit_call = chosen.facts, chosen.call
    else:
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


def fit_candidates(running: Sequence[CellFacts]) -> list[FitCandidate]:
    """Top-level fits of estimators (not transformers), each with what later cells do with it;
    only those whose predictions or scores are used later, when some are; only those fitted
    with a target, when some are."""
    found: list[FitCandidate] = []
    for position, facts in enumerate(running):
        nested = _nested_lines(facts)
        loops = loop_targets(facts)
        for call in facts.fits:
            if call.method == "fit_transform" or call.receiver in loops or call.line in nested:
                continue
            kind = constructor(running, call.receiver, before=facts.cell.index + 1)
            if kind and TRANSFORMER_CLASS.search(kind):
                continue
            uses, last = _later_uses(running, position, call)
            if kind and SEARCH_CLASS.search(kind):
                uses = (("tunes", facts.cell.number), *uses)
            found.append(FitCandidate(call.receiver, facts, call, kind, uses, last))
    # a variable fitted twice in a row before anything uses it is one candidate: its last fit
    found = [c for i, c in enumerate(found) if not _refitted(c, found[i + 1 :])]
    found = [c for c in found if c.supervised] or found
    return [c for c in found if c.uses] or found


def _refitted(candidate: FitCandidate, later: list[FitCandidate]) -> bool:
    return not candidate.uses and any(c.variable == candidate.variable for c in later)


def _nested_lines(facts: CellFacts) -> set[int]:
    """Lines of fit calls inside a function, class, lambda or loop body."""
    tree = analysis.parse_cell(facts.cell)
    lines: set[int] = set()
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, NESTED):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                    if inner.func.attr in analysis.FIT_METHODS:
                        lines.add(getattr(inner, "lineno", 0))
    return lines


def _later_uses(
    running: Sequence[CellFacts], position: int, call: analysis.FitCall
) -> tuple[tuple[tuple[str, int], ...], tuple[int, int] | None]:
    """What the cells after the fit do with the fitted variable, until it is assigned again."""
    uses: list[tuple[str, int]] = []
    last: tuple[int, int] | None = None
    for facts in running[position:]:
        after = call.line if facts.cell.index == call.cell.index else 0
        refitted = after == 0 and any(c.receiver == call.receiver and c.method != "fit_transform" for c in facts.fits)
        if refitted or (after == 0 and call.receiver in _assigned(facts) and call.receiver not in facts.uses):
            break  # from here on the name holds another object, or another fit
        tree = analysis.parse_cell(facts.cell)
        for node in ast.walk(tree) if tree is not None else ():
            line = getattr(node, "lineno", 0)
            if not isinstance(node, ast.Call) or line < after or (after and line == after):
                continue
            what = _use_of(node, call.receiver)
            if what is not None:
                uses.append((what, facts.cell.number))
                if what == "predicts":
                    last = max(last or (0, 0), (facts.cell.index, line))
        if after == 0 and call.receiver in _assigned(facts):
            break
    return tuple(uses), last


def _use_of(node: ast.Call, name: str) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and _root(func.value) == name:
        if func.attr in PREDICT_METHODS:
            return "predicts"
        if func.attr == "score":
            return "scores"
        if func.attr in ("save_model", "save"):
            return "saves"
    callee = dotted(func) or ""
    if any(_root(a) == name for a in node.args[:1]):
        if SAVE_CALL.search(callee):
            return "saves"
        if "score" in callee or "cross_val" in callee or "validate" in callee:
            return "scores"
    return None


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _preferred(candidates: list[FitCandidate]) -> list[FitCandidate]:
    """The candidates left after preferring the saved, then the tuned, then the one the notebook
    predicts with last."""
    for what in ("saves", "tunes"):
        doing = [c for c in candidates if c.does(what)]
        if doing:
            candidates = doing
            if len(doing) == 1:
                return doing
    predicted = [c for c in candidates if c.last_prediction is not None]
    if predicted:
        return [max(predicted, key=lambda c: c.last_prediction or (0, 0))]
    return candidates


def _choose(spec: NotebookSpec, candidates: list[FitCandidate]) -> FitCandidate:
    name = spec.path.name
    if not candidates:
        raise ModelChoiceError(
            f"{name}: no cell fits a model, so there is nothing to start from: `nb2prod tag` keeps the cells "
            "the served model's fit depends on.",
            candidates=(),
            hint=f"Fit the model in the notebook (`model.fit(X, y)`), or name it: nb2prod tag {name} --model VAR.",
            notebook=spec.path,
        )
    left = _preferred(candidates)
    if len(left) > 1:
        listed = ", ".join(c.describe() for c in left)
        raise ModelChoiceError(
            f"{name}: {len(left)} models are fitted: {listed}. nb2prod does not guess which one to serve.",
            candidates=tuple(dict.fromkeys(c.variable for c in left)),
            hint=f"Choose one: nb2prod tag {name} --model {left[-1].variable} --write "
            '(stores it as notebook metadata "nb2prod": {"model": "VAR"}).',
            notebook=spec.path,
            cell_index=left[-1].facts.cell.index,
        )
    return left[0]


def _assigned(facts: CellFacts) -> set[str]:
    tree = analysis.parse_cell(facts.cell)
    return analysis.top_level_names(tree) if tree is not None else set()


def _names(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None

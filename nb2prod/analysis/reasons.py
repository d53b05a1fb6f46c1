"""One-line reasons for `skip` proposals: what a cell does that the model does not need."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from nb2prod.analysis import names as analysis
from nb2prod.analysis.flow import CellFacts, last_expression

PLOT_CALL = re.compile(
    r"^(plt|sns|px|go|alt|pyplot)\.|(^|\.)(plot|hist|boxplot|scatter|bar|barh|heatmap|pairplot|imshow|show|figure"
    r"|subplots|countplot|distplot|histplot|kdeplot|lineplot|scatterplot|plot_\w+)$|Display\.from_"
)


SAVE_CALL = re.compile(r"^(joblib|pickle|dill|cloudpickle|skops\.io)\.dump$|(^|\.)(save_model|to_pickle)$")


def listed(names: Iterable[str], limit: int = 4) -> str:
    """`a`, `b`, `c` (and 2 more)."""
    items = list(dict.fromkeys(names))
    shown = ", ".join(f"`{n}`" for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def describe_unneeded(facts: CellFacts, model: str, last_needed: int) -> str:
    """Why a cell can be skipped, e.g. "only displays `df.head()`"."""
    what = _what_it_does(facts, model)
    if facts.cell.index > last_needed:
        return f"after the last cell the model and its metrics need; {what}"
    return what


def _what_it_does(facts: CellFacts, model: str) -> str:
    if not facts.parsed:
        return "not valid Python, so nothing needs it"
    others = sorted({c.receiver for c in facts.fits if c.receiver != model})
    plot = next((c for c in facts.calls if PLOT_CALL.search(c)), None)
    shown = last_expression(facts)
    magics = [m.line for m in analysis.find_magics(facts.cell)]
    saves = next((c for c in facts.calls if SAVE_CALL.search(c)), None)
    if others:
        return f"fits {listed(others)}, not the served model `{model}`"
    if saves and all(isinstance(s.node, ast.Import | ast.ImportFrom) or not s.binds for s in facts.statements):
        return f"saves with `{saves}`; the service has its own copy of the model"
    if plot:
        return f"plots (`{plot}`)"
    if not facts.binds and shown:
        return f"only displays `{shown}`"
    if not facts.binds and magics:
        return f"only runs `{magics[0][:50]}`"
    if facts.binds:
        return f"explores: the model and its metrics do not use its {listed(sorted(facts.binds))}"
    return "nothing in it is needed by the model or its metrics"

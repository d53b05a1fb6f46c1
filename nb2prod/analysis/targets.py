"""Which notebook variables hold the model and its input sample, decided before running.

Explicit names win (`--model`, notebook metadata `nb2prod.model`); otherwise the candidates are
what train cells call `fit` on, and the capture step in the kernel picks the one fitted estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.notebook.spec import NotebookSpec, Role


@dataclass(frozen=True)
class CaptureTargets:
    """Names for the capture step; `model`/`features` are None when left to detection."""

    model: str | None
    features: str | None
    model_candidates: tuple[str, ...]
    fit_features: tuple[tuple[str, str], ...]  # (receiver, features variable) per fit call


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

"""The training-data section: how each feature of the training sample moved between two versions.

Each manifest keeps a profile of its training sample (`training_data`: nulls, the percentiles
0..100 of every number column, the count of every listed value), never the rows. Numbers get the
population stability index (PSI) over ten bins cut at OLD's deciles, NEW's shares read from its
percentiles by linear interpolation, and the change of min, max and null share; listed values
(categories, booleans, low-cardinality text) get new and vanished values, the change of each
value's share, and a PSI over the values. Nulls are a bin of their own in both.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from nb2prod.diff.report import FeatureShift, TrainingDataSection
from nb2prod.manifest import FeatureProfile, Manifest

# A PSI above 0.25 is the usual mark of a significant shift (0.1 to 0.25: moderate).
PSI_THRESHOLD = 0.25
NULL_SHARE_THRESHOLD = 0.05  # absolute change of the share of nulls
FREQUENCY_THRESHOLD = 0.10  # absolute change of one value's share
THRESHOLDS = {"psi": PSI_THRESHOLD, "null_share": NULL_SHARE_THRESHOLD, "frequency": FREQUENCY_THRESHOLD}
EPSILON = 1e-4  # the share an empty bin counts as, so the PSI stays finite
DECILES = 10


def compare_training_data(old: Manifest, new: Manifest) -> TrainingDataSection:
    missing = [m.version for m in (old, new) if m.training_data is None]
    if missing:
        return TrainingDataSection(
            old_rows=old.input_schema.training_rows,
            new_rows=new.input_schema.training_rows,
            thresholds=THRESHOLDS,
            features=[],
            problem=f"version {', '.join(missing)} keeps no training profile (converted by an older nb2prod)",
        )
    assert old.training_data is not None and new.training_data is not None
    after = {p.name: p for p in new.training_data}
    shifts = [feature_shift(p, after[p.name]) for p in old.training_data if p.name in after]
    return TrainingDataSection(
        old_rows=old.input_schema.training_rows,
        new_rows=new.input_schema.training_rows,
        thresholds=THRESHOLDS,
        features=shifts,
    )


def feature_shift(old: FeatureProfile, new: FeatureProfile) -> FeatureShift:
    """The shift of one feature present in both versions."""
    old_nulls, new_nulls = _share(old.null_count, old.rows), _share(new.null_count, new.rows)
    flagged = []
    if abs(new_nulls - old_nulls) > NULL_SHARE_THRESHOLD:
        flagged.append(f"null share {old_nulls:.3f} -> {new_nulls:.3f} (threshold {NULL_SHARE_THRESHOLD})")
    fields: dict[str, Any] = {}
    psi: float | None = None
    if old.quantiles and new.quantiles:
        psi = numeric_psi(old.quantiles, old_nulls, new.quantiles, new_nulls)
        fields.update(old_min=old.quantiles[0], new_min=new.quantiles[0])
        fields.update(old_max=old.quantiles[-1], new_max=new.quantiles[-1])
    elif old.frequencies is not None and new.frequencies is not None:
        fields, psi, listed_flags = _listed_shift(old, new)
        flagged += listed_flags
    if psi is not None and psi > PSI_THRESHOLD:
        flagged.insert(0, f"PSI {psi:.3f} (threshold {PSI_THRESHOLD})")
    return FeatureShift(
        name=old.name,
        kind=new.kind,
        psi=psi,
        old_null_share=old_nulls,
        new_null_share=new_nulls,
        flagged=flagged,
        **fields,
    )


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def cdf(quantiles: list[float], x: float) -> float:
    """The share of values <= x, read from the percentiles 0..100 (right-continuous, linear between)."""
    if x < quantiles[0]:
        return 0.0
    if x >= quantiles[-1]:
        return 1.0
    step = 1.0 / (len(quantiles) - 1)
    i = bisect.bisect_right(quantiles, x) - 1  # the last percentile <= x; quantiles[i + 1] > x
    low, high = quantiles[i], quantiles[i + 1]
    return (i + (x - low) / (high - low)) * step


def decile_edges(quantiles: list[float]) -> list[float]:
    """OLD's deciles 10..90, each once: the inner edges of the PSI's bins."""
    step = (len(quantiles) - 1) // DECILES
    return sorted({quantiles[k * step] for k in range(1, DECILES)})


def bin_shares(quantiles: list[float], null_share: float, edges: list[float]) -> list[float]:
    """Shares of the bins (-inf, e1], (e1, e2], ..., (ek, inf) and of nulls (last)."""
    points = [0.0] + [cdf(quantiles, e) for e in edges] + [1.0]
    present = 1.0 - null_share
    return [(b - a) * present for a, b in zip(points, points[1:], strict=False)] + [null_share]


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index: sum over bins of (actual - expected) * ln(actual / expected)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def numeric_psi(old: list[float], old_nulls: float, new: list[float], new_nulls: float) -> float:
    edges = decile_edges(old)
    return psi(bin_shares(old, old_nulls, edges), bin_shares(new, new_nulls, edges))


def _listed_shift(old: FeatureProfile, new: FeatureProfile) -> tuple[dict[str, Any], float, list[str]]:
    before = {_key(v): (v, n) for v, n in old.frequencies or []}
    after = {_key(v): (v, n) for v, n in new.frequencies or []}
    old_total = sum(n for _, n in before.values()) + old.null_count
    new_total = sum(n for _, n in after.values()) + new.null_count
    keys = sorted(before.keys() | after.keys())
    old_shares = {k: _share(before[k][1], old_total) if k in before else 0.0 for k in keys}
    new_shares = {k: _share(after[k][1], new_total) if k in after else 0.0 for k in keys}
    changes = {k: new_shares[k] - old_shares[k] for k in keys}
    value_psi = psi(
        [old_shares[k] for k in keys] + [_share(old.null_count, old_total)],
        [new_shares[k] for k in keys] + [_share(new.null_count, new_total)],
    )
    came = [after[k][0] for k in keys if k not in before]
    gone = [before[k][0] for k in keys if k not in after]
    flags = [f"new values {came}" for _ in came[:1]] + [f"vanished values {gone}" for _ in gone[:1]]
    flags += [
        f"share of {k} {old_shares[k]:.3f} -> {new_shares[k]:.3f} (threshold {FREQUENCY_THRESHOLD})"
        for k in keys
        if abs(changes[k]) > FREQUENCY_THRESHOLD
    ]
    fields = {"new_values": came, "vanished_values": gone, "frequency_changes": changes}
    return fields, value_psi, flags


def _key(value: Any) -> str:
    return str(value)

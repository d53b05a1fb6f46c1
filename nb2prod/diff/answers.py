"""The answers section: both versions score the same rows, each in its own process.

Each version scores with its own generated package, the way `nb2prod predict` does (it is run as
`python -m nb2prod predict` in a subprocess per version), so two versions whose packages share a
name can both be loaded. The rows: OLD's golden rows, NEW's golden rows and, when given, a CSV or
Parquet file. A set one version cannot take at all (say, NEW's rows lack a column OLD needs) is
reported with the reason; rows one version refuses are left out of the comparison and counted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nb2prod.diff.report import AnswersSection, ChangedRow, ClassChange, RowSetAnswers
from nb2prod.manifest import Manifest

MOST_CHANGED = 5  # rows listed per set
VALUE_TOLERANCE = 1e-9  # relative: a regression value that moves less has not changed
TIMEOUT = 900


@dataclass(frozen=True)
class Version:
    """One converted folder and its manifest."""

    folder: Path
    manifest: Manifest


def compare_answers(
    old: Version, new: Version, rows: Path | None = None, max_changed: float | None = None
) -> AnswersSection:
    sets: list[RowSetAnswers] = []
    with tempfile.TemporaryDirectory(prefix="nb2prod-diff-") as work:
        for label, version in (("OLD's golden rows", old), ("NEW's golden rows", new)):
            source = Path(work) / f"{len(sets)}.csv"
            _golden_frame(version).to_csv(source, index=False)
            sets.append(_compare_set(label, source, old, new, Path(work)))
        if rows is not None:
            sets.append(_compare_set(str(rows), rows, old, new, Path(work)))
    scored = sum(s.scored for s in sets)
    changed = sum(s.changed for s in sets)
    fraction = changed / scored if scored else 0.0
    return AnswersSection(
        sets=sets,
        scored=scored,
        changed=changed,
        changed_fraction=fraction,
        max_changed=max_changed,
        exceeded=max_changed is not None and fraction > max_changed,
    )


def _golden_frame(version: Version) -> pd.DataFrame:
    golden = json.loads((version.folder / "tests" / "golden.json").read_text(encoding="utf-8"))
    records = [example["input"] for example in golden["examples"]]
    names = [str(f["name"]) for f in version.manifest.input_schema.features]
    if version.manifest.input_schema.kind == "array":
        records = [dict(zip(names, record["features"], strict=True)) for record in records]
    return pd.DataFrame(records, columns=names)


def _compare_set(label: str, source: Path, old: Version, new: Version, work: Path) -> RowSetAnswers:
    answers = []
    for tag, version in (("old", old), ("new", new)):
        scored, problem = score_rows(version.folder, source, work / f"{source.stem}-{tag}")
        if problem is not None:
            which = "OLD" if tag == "old" else "NEW"
            return RowSetAnswers(
                rows=label, scored=0, changed=0, classes=[], most_changed=[], problem=f"{which}: {problem}"
            )
        answers.append(scored)
    return compare_frames(label, answers[0], answers[1], old.manifest.model.task == "classification")


def score_rows(folder: Path, source: Path, stem: Path) -> tuple[pd.DataFrame, str | None]:
    """`nb2prod predict FOLDER SOURCE` in a subprocess; the answers, or why there are none."""
    output, rejects = stem.with_suffix(".csv"), stem.with_name(stem.name + "-rejects.csv")
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "nb2prod", "predict", str(folder), str(source), "-o", str(output)]
    command += ["--rejects", str(rejects), "--force"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired:
        return pd.DataFrame(), f"scoring took longer than {TIMEOUT} s"
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        return pd.DataFrame(), " ".join(lines[:2]) or f"nb2prod predict exited with {done.returncode}"
    return pd.read_csv(output, keep_default_na=False, na_values=[""]), None


def compare_frames(label: str, old: pd.DataFrame, new: pd.DataFrame, classifier: bool) -> RowSetAnswers:
    """Rows both versions scored, matched by row number: changed labels (or values), and per class
    the largest and mean change of its probability (or of the value, for a regressor)."""
    both = old.merge(new, on="row", suffixes=("_old", "_new"))
    if classifier:
        changed = [str(a) != str(b) for a, b in zip(both["prediction_old"], both["prediction_new"], strict=True)]
        names = [c.removeprefix("probability_") for c in old.columns if c.startswith("probability_")]
        names = [n for n in names if f"probability_{n}" in new.columns]
        deltas = {n: (both[f"probability_{n}_new"] - both[f"probability_{n}_old"]).abs() for n in names}
    else:
        values_old, values_new = both["prediction_old"].astype(float), both["prediction_new"].astype(float)
        moved = (values_new - values_old).abs()
        changed = [d > VALUE_TOLERANCE * max(1.0, abs(v)) for d, v in zip(moved, values_old, strict=True)]
        deltas = {"value": moved}
    classes = [ClassChange(name=n, largest=_number(d.max()), mean=_number(d.mean())) for n, d in deltas.items()]
    largest = pd.concat(list(deltas.values()), axis=1).max(axis=1) if deltas else pd.Series(0.0, index=both.index)
    order = sorted(range(len(both)), key=lambda i: (-int(changed[i]), -float(largest.iloc[i]), i))
    most = [
        ChangedRow(
            row=int(both["row"].iloc[i]),
            change=_number(largest.iloc[i]),
            old=_plain(both["prediction_old"].iloc[i]),
            new=_plain(both["prediction_new"].iloc[i]),
        )
        for i in order[:MOST_CHANGED]
        if changed[i] or float(largest.iloc[i]) > 0
    ]
    return RowSetAnswers(rows=label, scored=len(both), changed=sum(changed), classes=classes, most_changed=most)


def _number(value: Any) -> float:
    number = float(value)
    return 0.0 if math.isnan(number) else number


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value

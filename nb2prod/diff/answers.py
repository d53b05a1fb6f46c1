"""The answers section: both versions score the same rows, each in its own process.

Each version scores with its own generated package, with `nb2prod predict`'s code, in a subprocess
of its own (`nb2prod.batch.several`, all row sets in one), so two versions whose packages share a
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
from typing import TYPE_CHECKING, Any

from nb2prod.diff.report import AnswersSection, ChangedRow, ClassChange, RowSetAnswers
from nb2prod.manifest import Manifest

if TYPE_CHECKING:  # pandas is imported where answers are compared: `convert` loads this module too
    import pandas as pd

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
    with tempfile.TemporaryDirectory(prefix="nb2prod-diff-") as folder:
        work = Path(folder)
        sources = {"OLD's golden rows": work / "old-golden.csv", "NEW's golden rows": work / "new-golden.csv"}
        # Each version's rows also carry the other's optional fields, left empty, as a client of the
        # other version sends them: a field added as optional must not stop the comparison.
        _golden_frame(old, _optional(new)).to_csv(sources["OLD's golden rows"], index=False)
        _golden_frame(new, _optional(old)).to_csv(sources["NEW's golden rows"], index=False)
        if rows is not None:
            sources[str(rows)] = rows
        answers = {
            tag: score_tables(version.folder, list(sources.values()), work / tag)
            for tag, version in (("old", old), ("new", new))
        }
        classifier = old.manifest.model.task == "classification"
        sets = []
        for i, label in enumerate(sources):
            (before, why_old), (after, why_new) = answers["old"][i], answers["new"][i]
            if why_old is not None or why_new is not None:
                problem = f"OLD: {why_old}" if why_old is not None else f"NEW: {why_new}"
                problem = problem.replace(str(sources[label]), "the rows")
                sets.append(
                    RowSetAnswers(rows=label, scored=0, changed=0, classes=[], most_changed=[], problem=problem)
                )
            else:
                sets.append(compare_frames(label, before, after, classifier))
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


def _optional(version: Version) -> list[str]:
    schema = version.manifest.input_schema
    # A column that takes a null only because the pipeline imputes it is still required (`nullable_because`).
    optional = [f for f in schema.features if f["nullable"] and not f.get("nullable_because")]
    return [] if schema.kind == "array" else [str(f["name"]) for f in optional]


def _golden_frame(version: Version, optional: list[str]) -> pd.DataFrame:
    import pandas as pd

    golden = json.loads((version.folder / "tests" / "golden.json").read_text(encoding="utf-8"))
    records = [example["input"] for example in golden["examples"]]
    names = [str(f["name"]) for f in version.manifest.input_schema.features]
    if version.manifest.input_schema.kind == "array":
        records = [dict(zip(names, record["features"], strict=True)) for record in records]
    return pd.DataFrame(records, columns=names + [name for name in optional if name not in names])


def score_tables(folder: Path, sources: list[Path], work: Path) -> list[tuple[pd.DataFrame, str | None]]:
    """Score every table with the service in `folder`, in one subprocess (`nb2prod.batch.several`):
    per table, the answers (columns `row`, `prediction`, `probability_<class>`), or why there are none."""
    import pandas as pd

    work.mkdir()
    jobs = [
        {"source": str(source), "output": str(work / f"{i}.csv"), "rejects": str(work / f"{i}-rejects.csv")}
        for i, source in enumerate(sources)
    ]
    (work / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "nb2prod.batch.several", str(folder), str(work / "jobs.json")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired:
        return [(pd.DataFrame(), f"scoring took longer than {TIMEOUT} s")] * len(jobs)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.strip().splitlines() if line.strip()]
        return [(pd.DataFrame(), lines[-1] if lines else f"scoring exited with {done.returncode}")] * len(jobs)
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        (pd.DataFrame(), problem)
        if problem is not None
        else (pd.read_csv(job["output"], keep_default_na=False, na_values=[""]), None)
        for job, problem in zip(jobs, problems, strict=True)
    ]


def compare_frames(label: str, old: pd.DataFrame, new: pd.DataFrame, classifier: bool) -> RowSetAnswers:
    """Rows both versions scored, matched by row number: changed labels (or values), and per class
    the largest and mean change of its probability (or of the value, for a regressor)."""
    import pandas as pd

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

"""`nb2prod diff OLD NEW`: the whole report, from two converted folders."""

from __future__ import annotations

from pathlib import Path

from nb2prod.diff.answers import Version, compare_answers
from nb2prod.diff.api import compare_api
from nb2prod.diff.data import compare_training_data
from nb2prod.diff.lineage import compare_lineage, compare_metrics
from nb2prod.diff.report import DiffReport, VersionInfo
from nb2prod.errors import DiffError
from nb2prod.manifest import Manifest, read_manifest


def read_version(folder: Path) -> Version:
    """A converted folder and its manifest, or a DiffError naming the folder."""
    found = sorted(folder.glob("src/*/artifacts/manifest.json"))
    if not folder.is_dir() or not found:
        raise DiffError(
            f"{folder} has no src/<package>/artifacts/manifest.json.",
            hint="Pass two folders written by `nb2prod convert`.",
        )
    return Version(folder=folder, manifest=read_manifest(found[0]))


def diff_manifests(old: Manifest, new: Manifest, old_folder: str = "OLD", new_folder: str = "NEW") -> DiffReport:
    """Every section that needs no model: API, training data, metrics and lineage."""
    api = compare_api(old, new)
    return DiffReport(
        old=VersionInfo(folder=old_folder, name=old.name, version=old.version),
        new=VersionInfo(folder=new_folder, name=new.name, version=new.version),
        api=api,
        answers=None,
        training_data=compare_training_data(old, new),
        metrics=compare_metrics(old, new),
        lineage=compare_lineage(old, new),
        breaking=bool(api.breaking),
    )


def diff_folders(
    old: Path, new: Path, *, rows: Path | None = None, max_changed: float | None = None, answers: bool = True
) -> DiffReport:
    """The full report: the manifests' sections, and both versions' answers on the same rows."""
    if rows is not None and not rows.is_file():
        raise DiffError(f"--rows {rows}: no such file.", hint="Give a CSV or Parquet file of records.")
    before, after = read_version(old), read_version(new)
    report = diff_manifests(before.manifest, after.manifest, str(old), str(new))
    if not answers:
        return report
    scored = compare_answers(before, after, rows, max_changed)
    return report.model_copy(update={"answers": scored, "breaking": report.breaking or scored.exceeded})

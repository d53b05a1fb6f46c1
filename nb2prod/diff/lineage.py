"""The metrics and lineage sections: each metric's old and new value; what the versions were made from."""

from __future__ import annotations

from nb2prod.diff.report import DataFileChange, LineageSection, MetricChange, PackageChange
from nb2prod.manifest import Manifest


def compare_metrics(old: Manifest, new: Manifest) -> list[MetricChange]:
    names = list(old.metrics) + [name for name in new.metrics if name not in old.metrics]
    changes = []
    for name in names:
        before, after = old.metrics.get(name), new.metrics.get(name)
        change = after - before if before is not None and after is not None else None
        changes.append(MetricChange(name=name, old=before, new=after, change=change))
    return changes


def compare_lineage(old: Manifest, new: Manifest) -> LineageSection:
    before = {f.path: f.sha256 for f in old.data_files}
    after = {f.path: f.sha256 for f in new.data_files}
    files = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            status = "removed"
        elif path not in before:
            status = "added"
        else:
            status = "unchanged" if before[path] == after[path] else "changed"
        files.append(DataFileChange(path=path, status=status))  # type: ignore[arg-type]
    packages = [
        PackageChange(name=name, old=old.packages.get(name), new=new.packages.get(name))
        for name in sorted(old.packages.keys() | new.packages.keys())
        if old.packages.get(name) != new.packages.get(name)
    ]
    if old.python != new.python:
        packages.insert(0, PackageChange(name="python", old=old.python, new=new.python))
    parameters = {
        name: [old.parameters.get(name), new.parameters.get(name)]
        for name in sorted(old.parameters.keys() | new.parameters.keys())
        if old.parameters.get(name) != new.parameters.get(name)
    }
    return LineageSection(
        old_notebook_hash=old.notebook.content_hash,
        new_notebook_hash=new.notebook.content_hash,
        notebook_changed=old.notebook.content_hash != new.notebook.content_hash,
        data_files=files,
        packages=packages,
        old_commit=_commit(old),
        new_commit=_commit(new),
        parameters=parameters,
    )


def _commit(manifest: Manifest) -> str | None:
    git = manifest.provenance.git
    if git is None or git.commit is None:
        return None
    return git.commit + (" (dirty)" if git.dirty else "")

"""`nb2prod verify`: prove that a converted folder is still what its notebook gives.

Four checks, each reported with what it found:

- **files**: every file nb2prod wrote is unchanged since (the marker lists their digests), and
  every artifact has the digest the manifest records;
- **notebook**: the notebook's cells hash to the manifest's `content_hash` (outputs don't count);
- **environment**: this Python and its packages are the versions the manifest records;
- **rerun** (not with `offline`): the notebook runs again with the recorded parameters, seed and
  names, and every file of the project comes out bit for bit as the marker lists it.

Nothing is written: the rerun builds the project in memory.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nb2prod.errors import Nb2ProdError
from nb2prod.generate.write import MARKER, written_files
from nb2prod.manifest import Manifest, digest, read_manifest
from nb2prod.notebook.spec import NotebookSpec, read_notebook
from nb2prod.options import build_options
from nb2prod.pipeline import reproduce
from nb2prod.run.execute import ProgressCallback

SHOWN = 8  # differences listed per check; the rest are counted
AUDIT_COPY = "notebook/executed.ipynb"
TIMINGS = ("start_time", "end_time", "duration")


class VerifyError(Nb2ProdError):
    """The folder cannot be verified at all (not a conversion, no notebook to compare with)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    output: Path
    notebook: Path
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def verify(
    output: Path, notebook: Path | None = None, *, offline: bool = False, progress: ProgressCallback | None = None
) -> VerifyReport:
    """Check `output` (a folder `nb2prod convert` wrote) against its notebook; see the module docstring."""
    output = output.resolve()
    manifest_path = _manifest_path(output)
    manifest = read_manifest(manifest_path)
    source = _notebook(output, manifest, notebook)
    written = written_files(output)
    spec = read_notebook(source)
    checks = [
        _files(output, manifest, manifest_path, written),
        _notebook_check(spec, manifest),
        _environment(manifest),
    ]
    if not offline:
        checks.append(_rerun(output, spec, manifest, written, progress))
    return VerifyReport(output, source, tuple(checks))


def _manifest_path(output: Path) -> Path:
    found = sorted(output.glob("src/*/artifacts/manifest.json"))
    if not (output / MARKER).is_file() or not found:
        raise VerifyError(
            f"{output} is not a folder written by `nb2prod convert` "
            f"(no {MARKER} or no src/<package>/artifacts/manifest.json).",
            hint="Pass the output folder of a conversion.",
        )
    return found[0]


def _notebook(output: Path, manifest: Manifest, given: Path | None) -> Path:
    if given is not None:
        if not given.is_file():
            raise VerifyError(
                f"--notebook {given}: no such file.", hint="Pass the notebook the folder was converted from."
            )
        return given.resolve()
    relative = manifest.provenance.notebook_path
    candidates = [output / relative] if relative else []
    candidates += [output.parent / manifest.notebook.file, output.parent / "notebooks" / manifest.notebook.file]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise VerifyError(
        f"{output}: cannot find {manifest.notebook.file}, the notebook it was converted from.",
        hint="Pass it with --notebook PATH.",
    )


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:SHOWN])
    return shown + (f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _files(output: Path, manifest: Manifest, manifest_path: Path, written: dict[str, str]) -> Check:
    problems = []
    for relative, expected in sorted(written.items()):
        path = output / relative
        if not path.is_file():
            problems.append(f"{relative} is missing")
        elif digest(path.read_bytes()) != expected:
            problems.append(f"{relative} was changed after the conversion")
    for name, expected in sorted(manifest.artifacts.items()):
        path = manifest_path.parent / name
        if path.is_file() and digest(path.read_bytes()) != expected:
            problems.append(f"artifact {name} does not have the digest the manifest records")
    if problems:
        return Check("files", False, _listed(problems))
    return Check("files", True, f"{len(written)} files as nb2prod wrote them; every artifact matches the manifest")


def _notebook_check(spec: NotebookSpec, manifest: Manifest) -> Check:
    source = spec.path
    if spec.content_hash != manifest.notebook.content_hash:
        return Check(
            "notebook",
            False,
            f"{source.name} changed since the conversion: its cells hash to {spec.content_hash}, "
            f"the manifest records {manifest.notebook.content_hash}",
        )
    return Check("notebook", True, f"{source.name}: the cells are those converted ({spec.content_hash[:19]}...)")


def _environment(manifest: Manifest) -> Check:
    problems = []
    here = platform.python_version()
    if here.split(".")[:2] != manifest.python.split(".")[:2]:
        problems.append(f"Python {here} here, {manifest.python} in the manifest")
    for name, recorded in sorted(manifest.packages.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed here ({recorded} in the manifest)")
            continue
        if installed != recorded:
            problems.append(f"{name} {installed} here, {recorded} in the manifest")
    if problems:
        return Check("environment", False, _listed(problems))
    return Check("environment", True, f"Python {here} and {len(manifest.packages)} packages as the manifest records")


def _rerun(
    output: Path, spec: NotebookSpec, manifest: Manifest, written: dict[str, str], progress: ProgressCallback | None
) -> Check:
    source = spec.path
    defaults = {p.name: p.value for p in spec.parameters}
    preprocessing = manifest.preprocessing
    options = build_options(
        notebook=source,
        output=output,
        # Only what differs from the notebook's own defaults, as the user passed it with -p.
        parameters={k: v for k, v in manifest.parameters.items() if k in defaults and defaults[k] != v},
        name=manifest.name,
        model=manifest.model.variable,
        features=manifest.input_schema.sample_variable,
        raw=preprocessing.raw_variable if preprocessing is not None else None,
        seed=manifest.seed,
        compile_model=manifest.inference.requested != "sklearn",
        version=manifest.version.split("+", 1)[0],
        history=manifest.history,
    )
    files = reproduce(options, progress)
    again = {relative: digest(content) for relative, content in files.items()}
    problems = [
        f"{name} differs"
        for name in sorted(again)
        if name in written and again[name] != written[name] and name != AUDIT_COPY
    ]
    problems += [f"{name} is no longer produced" for name in sorted(written.keys() - again.keys())]
    problems += [f"{name} is new" for name in sorted(again.keys() - written.keys())]
    if problems:
        return Check("rerun", False, _listed(problems))
    detail = f"the notebook ran again and all {len(again) - 1} project files came out bit for bit"
    if AUDIT_COPY in files and AUDIT_COPY in written and again[AUDIT_COPY] != written[AUDIT_COPY]:
        cells = _audit_differences((output / AUDIT_COPY).read_bytes(), files[AUDIT_COPY])
        if cells:
            detail += f"; the audit copy's printed outputs differ in cell(s) {', '.join(map(str, cells))}"
        else:
            detail += "; the audit copy differs only in timings"
    return Check("rerun", True, detail)


def _audit_differences(before: bytes, after: bytes) -> list[int]:
    """Cells (1-based) whose source or outputs differ between two audit copies, timings left out."""
    first, second = (_untimed(json.loads(data)) for data in (before, after))
    if len(first) != len(second):
        return list(range(1, max(len(first), len(second)) + 1))
    return [number for number, (a, b) in enumerate(zip(first, second, strict=True), start=1) if a != b]


def _untimed(notebook: dict[str, object]) -> list[object]:
    cells = notebook.get("cells")
    views: list[object] = []
    for cell in cells if isinstance(cells, list) else []:
        metadata = dict(cell.get("metadata", {}))
        metadata.pop("execution", None)  # nbclient's timestamps
        papermill = metadata.pop("papermill", {})
        metadata["papermill"] = {k: v for k, v in papermill.items() if k not in TIMINGS}
        views.append({**cell, "metadata": metadata})
    return views

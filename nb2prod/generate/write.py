"""Write stage: the only stage that writes into the user's folders.

Files are written into a staging folder beside OUT and moved into place at the end, so a failed
conversion never leaves a half-written OUT. An existing non-empty OUT is replaced only with
`--force`, and only when it is an earlier nb2prod output (never a folder of the user's own).
The marker file lists every file nb2prod wrote with its digest, so a file the user added or
edited since is named and kept, unless they also pass `--discard-changes`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from nb2prod.errors import OutputExistsError

MARKER = ".nb2prod-output"


def check_output(out: Path, notebook: Path, force: bool, discard_changes: bool = False) -> None:
    """Refuse, before any work, an OUT we must not write to."""
    out, notebook = out.resolve(), notebook.resolve()
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out} exists and is a file.", hint="Choose another folder with -o OUT.")
    if out == notebook.parent or out in notebook.parents:
        raise OutputExistsError(
            f"output {out} contains the notebook {notebook.name}; nb2prod will not write there.",
            hint="Choose a new folder with -o OUT.",
        )
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise OutputExistsError(
                f"output folder {out} exists and is not empty.",
                hint="Pass --force to replace it, or choose another folder with -o OUT.",
            )
        if not (out / MARKER).is_file():
            raise OutputExistsError(
                f"output folder {out} was not written by nb2prod; --force only replaces earlier nb2prod output.",
                hint="Choose another folder with -o OUT, or empty this one yourself.",
            )
        changed = user_changes(out)
        if changed and not discard_changes:
            listed = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
            raise OutputExistsError(
                f"output folder {out} holds files that nb2prod did not write, or that changed since: {listed}.",
                hint="Move them out of the folder first, or pass --force --discard-changes to delete them.",
            )


def user_changes(out: Path) -> list[str]:
    """Files under `out` that the marker does not list with their current digest (added or edited)."""
    written = written_files(out)
    changed = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() or p.is_symlink()):
        relative = path.relative_to(out).as_posix()
        if relative == MARKER:
            continue
        if path.is_symlink() or written.get(relative) != _digest(path.read_bytes()):
            changed.append(relative)
    return changed


def written_files(out: Path) -> dict[str, str]:
    """What the marker lists: each file nb2prod wrote into `out`, with the digest it had then."""
    try:
        listing = json.loads((out / MARKER).read_text(encoding="utf-8"))
        return dict(listing["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # a marker from an older nb2prod lists nothing: every file counts as the user's


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _marker(files: dict[str, bytes]) -> bytes:
    listing = {
        "written_by": "nb2prod; `nb2prod convert --force` may replace this folder, keeping files not listed here",
        "files": {name: _digest(content) for name, content in sorted(files.items())},
    }
    return (json.dumps(listing, indent=1, sort_keys=True) + "\n").encode()


def write_project(
    out: Path, files: dict[str, bytes], notebook: Path, force: bool, discard_changes: bool = False
) -> Path:
    """Write `files` to `out` atomically (staging folder + rename)."""
    out = out.resolve()
    check_output(out, notebook, force, discard_changes)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for relative, content in sorted({**files, MARKER: _marker(files)}.items()):
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        _swap_into_place(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _swap_into_place(staging: Path, out: Path) -> None:
    if out.exists():
        retired = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)


def keep_failed_run(executed: Path, out: Path) -> Path:
    """Move the executed notebook of a failed run beside OUT: `<OUT>.failed.ipynb` (never overwriting)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    target = out.with_name(f"{out.name}.failed.ipynb")
    n = 2
    while target.exists():
        target, n = out.with_name(f"{out.name}.failed-{n}.ipynb"), n + 1
    shutil.move(str(executed), target)
    return target

"""What the run depended on besides the capture: the files string parameters name, and the git
commit of the notebook's repository with whether the run's inputs are committed as they are.

The kernel notes the files the run read (`run.kernel.reads`); this module is the host's side:
it runs `git` as a subprocess, never in the kernel, and never writes to the repository.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nb2prod.manifest import GitRecord
from nb2prod.notebook.spec import NotebookSpec
from nb2prod.run.captured import DataRead

GIT_TIMEOUT = 20  # seconds, for each git command
# Set by git hooks and wrappers; they would point git at another repository than the notebook's.
# (GIT_LITERAL_PATHSPECS would turn our `:(exclude)` pathspecs into file names.)
_GIT_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_LITERAL_PATHSPECS")


def parameter_files(spec: NotebookSpec, parameters: dict[str, Any]) -> dict[str, Path]:
    """Parameter name -> the file its string value names (relative to the notebook's folder).

    These are hashed even when the kernel did not see them opened: C readers (pyarrow, sqlite)
    open files without an audit event."""
    found = {}
    for name, value in sorted(parameters.items()):
        if not isinstance(value, str) or not value or len(value) > 4096 or "\0" in value:
            continue
        path = Path(value) if Path(value).is_absolute() else spec.path.parent / value
        try:
            if path.is_file():
                found[name] = path
        except OSError:  # a name too long for the file system, a permission problem
            continue
    return found


def read_paths(spec: NotebookSpec, reads: Iterable[DataRead]) -> list[Path]:
    """The files the kernel saw read, as paths on the host."""
    return [Path(r.path) if Path(r.path).is_absolute() else spec.path.parent / r.path for r in reads]


def git_state(notebook: Path, inputs: Iterable[Path] = (), exclude: Iterable[Path] = ()) -> GitRecord | None:
    """The git commit (HEAD) of the work tree holding `notebook`, and whether it is dirty.

    Dirty: a tracked file of the repository has uncommitted changes (staged or not), or the
    notebook or one of `inputs` inside the repository is untracked. `exclude` (the folders nb2prod
    writes, e.g. OUT inside the repository) is left out, so a conversion does not make the next
    one dirty; untracked files that are not inputs (what a run writes) do not count either, and
    neither do ignored files. None when git is not installed or the notebook is not in a work tree;
    `commit` is None in a repository without commits.
    """
    folder = notebook.resolve().parent
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None or not top.strip():
        return None
    root = Path(top.strip()).resolve()
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    commit = head.strip() if head and head.strip() else None
    excluded = [f":(exclude,literal){rel}" for rel in _inside(root, exclude) if rel != "."]
    tracked = _git(root, "status", "--porcelain", "-z", "--untracked-files=no", "--", ".", *excluded)
    wanted = [f":(literal){rel}" for rel in _inside(root, [notebook, *inputs])]
    untracked = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", *wanted) if wanted else ""
    if tracked is None or untracked is None:
        return None
    return GitRecord(commit=commit, dirty=bool(tracked) or bool(untracked) or commit is None)


def _inside(root: Path, paths: Iterable[Path]) -> list[str]:
    """`paths` inside `root`, relative to it with `/`; others are left out."""
    found = set()
    for path in paths:
        try:
            relative = path.resolve().relative_to(root)
        except ValueError:
            continue
        found.add(relative.as_posix() or ".")
    return sorted(found)


def _git(cwd: Path, *args: str) -> str | None:
    """git's output, or None when git is missing, fails or hangs."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_VARIABLES}
    env |= {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None

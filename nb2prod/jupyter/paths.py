"""Notebook and output paths from HTTP requests, confined to the Jupyter server's root."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath


class PathError(ValueError):
    """A path a request may not use: absolute, with `..`, or leaving the root through a symlink."""


_DRIVE = re.compile(r"^[A-Za-z]:")


def confine(root: Path, relative: str, *, what: str = "path") -> Path:
    """The real location of `relative` under `root`; a PathError if it is not a path inside it."""
    if not isinstance(relative, str) or not relative.strip():
        raise PathError(f"{what} is missing: give a path relative to the Jupyter server's root.")
    if "\x00" in relative:
        raise PathError(f"{what} {relative!r} is not a valid path.")
    posix = relative.replace("\\", "/")
    pure = PurePosixPath(posix)
    if pure.is_absolute() or _DRIVE.match(posix):
        raise PathError(f"{what} {relative!r} is absolute: give a path relative to the Jupyter server's root.")
    if ".." in pure.parts:
        raise PathError(f"{what} {relative!r} contains '..': paths must stay inside the Jupyter server's root.")
    base = root.resolve()
    target = base.joinpath(*pure.parts).resolve()
    if not target.is_relative_to(base):
        raise PathError(f"{what} {relative!r} leads outside the Jupyter server's root (through a symbolic link).")
    return target


def relative_to_root(root: Path, path: Path | str) -> str:
    """`path` as the frontend names it: POSIX, relative to the root ('' for the root itself)."""
    resolved = Path(path).resolve()
    try:
        relative = resolved.relative_to(root.resolve())
    except ValueError:
        return resolved.name
    return "" if relative == Path(".") else relative.as_posix()

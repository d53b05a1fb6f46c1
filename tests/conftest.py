"""Shared test helpers: build notebooks inline, run the CLI as a user would."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every generated service a test starts serves gRPC on a free loopback port, never on 8081 of all
# interfaces (tests run side by side); tests that call it choose its port (tests/e2e/service.py).
os.environ.setdefault("GRPC_PORT", "0")
os.environ.setdefault("GRPC_HOST", "127.0.0.1")
EXAMPLES = ROOT / "notebooks"
FIXTURES = ROOT / "tests" / "notebooks"


def code(source: str, *tags: str, **metadata: Any) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    cell.metadata.update(metadata)
    return cell


def markdown(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source)


def write_notebook(path: Path, cells: list[nbformat.NotebookNode], **metadata: Any) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.update(metadata)
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def make_notebook(tmp_path: Path) -> Callable[..., Path]:
    """`make_notebook([cells], name="x.ipynb", **metadata)` writes a notebook into tmp_path."""

    def make(cells: list[nbformat.NotebookNode], name: str = "nb.ipynb", **metadata: Any) -> Path:
        return write_notebook(tmp_path / name, cells, **metadata)

    return make


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `nb2prod ...` in a subprocess (a real exit code and real terminal output)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nb2prod", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


ConvertExample = Callable[[Path], tuple[Path, subprocess.CompletedProcess[str]]]


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (across the processes of a parallel run)."""
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def convert_example(tmp_path_factory: pytest.TempPathFactory) -> ConvertExample:
    """`convert_example(notebook)` -> (output folder, CLI result): each example converted once per
    run with default options, for the tests that only read what the conversion wrote. Under
    pytest-xdist the workers share one folder, so the first worker to need an example converts it
    and the others wait for it and read the same output."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, above each worker's own
    shared = root / "converted-examples"
    shared.mkdir(exist_ok=True)

    def convert(notebook: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        folder = shared / f"{notebook.stem}-{hashlib.sha1(str(notebook).encode()).hexdigest()[:8]}"
        out, record = folder / "service", folder / "cli-result.json"
        with _exclusive(shared / f"{folder.name}.lock"):
            if not record.exists():
                folder.mkdir(exist_ok=True)
                done = run_cli("convert", notebook, "-o", out, timeout=600)
                record.write_text(json.dumps([done.returncode, done.stdout, done.stderr]))
        returncode, stdout, stderr = json.loads(record.read_text())
        args = [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(out)]
        return out, subprocess.CompletedProcess(args, returncode, stdout, stderr)

    return convert

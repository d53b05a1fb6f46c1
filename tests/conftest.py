"""Shared test helpers: build notebooks inline, run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
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


@pytest.fixture(scope="session")
def convert_example(tmp_path_factory: pytest.TempPathFactory) -> ConvertExample:
    """`convert_example(notebook)` -> (output folder, CLI result): each example converted once per
    session with default options, for the tests that only read what the conversion wrote."""
    done: dict[Path, tuple[Path, subprocess.CompletedProcess[str]]] = {}

    def convert(notebook: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        if notebook not in done:
            out = tmp_path_factory.mktemp(notebook.stem) / "service"
            done[notebook] = out, run_cli("convert", notebook, "-o", out, timeout=600)
        return done[notebook]

    return convert

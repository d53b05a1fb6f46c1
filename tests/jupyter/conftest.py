"""Fixtures for the Jupyter tests: real servers on 127.0.0.1 (always stopped) and job helpers."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, FIXTURES
from tests.jupyter.servers import JupyterServer, start_server

JOB_TIMEOUT = 240.0


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """JupyterLab with nb2prod's extensions, serving an empty root; shared by the REST and Lab tests."""
    home = tmp_path_factory.mktemp("lab-home")
    server = start_server("lab", home / "root", home)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notebook7_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """Notebook 7 with nb2prod's extensions."""
    home = tmp_path_factory.mktemp("notebook-home")
    server = start_server("notebook", home / "root", home)
    yield server
    server.stop()


def copy_example(server: JupyterServer, source: Path, relative: str) -> Path:
    """Copy a notebook into the server's root at `relative` (a new folder per test keeps outputs apart)."""
    target = server.root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def wait_for_job(server: JupyterServer, job: dict[str, Any], timeout: float = JOB_TIMEOUT) -> tuple[dict, list]:
    """Poll a job until it ends; return its last state and every progress record seen on the way."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with server.api() as client:
        while job["status"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise AssertionError(f"job still {job['status']} after {timeout:.0f}s; log:\n" + "\n".join(job["log"]))
            time.sleep(0.2)
            answer = client.get(f"/nb2prod/jobs/{job['id']}")
            assert answer.status_code == 200, answer.text
            job = answer.json()
            if job["progress"] and job["progress"] not in seen:
                seen.append(job["progress"])
    return job, seen


__all__ = ["EXAMPLES", "FIXTURES", "copy_example", "tags_on_disk", "untagged_copy", "wait_for_job"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so a fixture can screenshot a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def untagged_copy(server: JupyterServer, relative: str) -> Path:
    """iris_array.ipynb with its load, train and evaluate tags removed (parameters and skip kept)."""
    notebook = json.loads((EXAMPLES / "iris_array.ipynb").read_text())
    for cell in notebook["cells"]:
        tags = [tag for tag in cell["metadata"].get("tags", []) if tag not in ("load", "train", "evaluate")]
        cell["metadata"].pop("tags", None)
        if tags:
            cell["metadata"]["tags"] = tags
    target = server.root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1))
    return target


def tags_on_disk(path: Path) -> dict[int, list[str]]:
    return {i: c["metadata"].get("tags", []) for i, c in enumerate(json.loads(path.read_text())["cells"])}

"""Fixtures for the Jupyter tests: real servers on 127.0.0.1 (always stopped) and job helpers."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, FIXTURES, code, markdown, write_notebook
from tests.jupyter.browser import FLAGS, find_or_install_chromium
from tests.jupyter.servers import JupyterServer, start_server
from tests.jupyter.ui import ARTIFACTS, UI_TIMEOUT_MS

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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium, why_not = find_or_install_chromium()
    if chromium is None:
        pytest.skip(why_not)
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    opened = context.new_page()
    messages: list[str] = []
    opened.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    yield opened
    report = getattr(request.node, "rep_call", None)
    # NB2PROD_SCREENSHOTS=1 keeps a screenshot of every test, to look at what a user sees.
    if report is not None and (report.failed or os.environ.get("NB2PROD_SCREENSHOTS")):
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"
        opened.screenshot(path=str(shot), full_page=True)
        (shot.with_suffix(".console.txt")).write_text("\n".join(messages))
        print(f"screenshot of the failure: {shot}")
    context.close()


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


def houses_notebook(folder: Path) -> Path:
    """houses.ipynb beside a generated houses.csv: preprocess cells that nb2prod replays on raw rows."""
    import numpy as np

    rng = np.random.default_rng(3)
    area = rng.normal(120, 35, 300).round(1).clip(30, 300)
    rooms = rng.integers(1, 7, 300)
    age = rng.integers(0, 90, 300)
    price = (2500 * area + 8000 * rooms - 300 * age + rng.normal(0, 9000, 300)).round(0)
    lines = ["area,rooms,age,price"] + [f"{a},{r},{g},{p}" for a, r, g, p in zip(area, rooms, age, price, strict=True)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "houses.csv").write_text("\n".join(lines) + "\n")
    cells = [
        markdown("# House prices from a CSV"),
        code("import pandas as pd\nfrom sklearn.linear_model import Ridge", "load"),
        code('houses = pd.read_csv("houses.csv")\nhouses.head()', "load"),
        code("houses.describe()"),
        code('houses["area_per_room"] = houses["area"] / houses["rooms"]', "preprocess"),
        code('X = houses[["area", "rooms", "age", "area_per_room"]]\ny = houses["price"]', "load"),
        code("model = Ridge(alpha=1.0)\nmodel.fit(X, y)", "train"),
    ]
    return write_notebook(folder / "houses.ipynb", cells)

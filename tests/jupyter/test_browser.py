"""The "Convert to production" button in a real JupyterLab and a real Notebook 7, driven by Chromium.

Each test opens a notebook copied into the server's root, clicks the button, and reads the
notification. On failure a screenshot goes to test-artifacts/ (named in the failure report).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.jupyter.browser import FLAGS, find_or_install_chromium
from tests.jupyter.conftest import EXAMPLES, FIXTURES, copy_example, tags_on_disk, untagged_copy
from tests.jupyter.servers import TOKEN, JupyterServer

pytestmark = pytest.mark.slow

UIS = ["lab", "notebook"]
ARTIFACTS = ROOT / "test-artifacts"
CONVERT_TIMEOUT_MS = 240_000
UI_TIMEOUT_MS = 90_000


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
def ui(request: pytest.FixtureRequest) -> Iterator[JupyterServer]:
    """The server of the UI a test is parametrized with: JupyterLab or Notebook 7."""
    server: JupyterServer = request.getfixturevalue("lab_server" if request.param == "lab" else "notebook7_server")
    yield server
    with server.api() as client:  # the kernels the opened notebooks started are not needed any more
        for kernel in client.get("/api/kernels").json():
            client.delete(f"/api/kernels/{kernel['id']}")


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


def open_notebook(page: Any, server: JupyterServer, path: str) -> Any:
    """Open `path` alone (JupyterLab: in a new workspace, so no earlier test's tabs come back)."""
    workspace = re.sub(r"[^a-z0-9]+", "-", path.lower())
    route = f"lab/workspaces/{workspace}/tree" if server.app == "lab" else "notebooks"
    page.goto(f"{server.url}/{route}/{path}?token={TOKEN}")
    button = page.locator(".jp-NotebookPanel-toolbar .nb2prod-convert-button")
    button.wait_for(state="visible")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible")
    return button


def manifest_of(folder: Path) -> dict[str, Any]:
    manifests = list(folder.glob("src/*/artifacts/manifest.json"))
    assert len(manifests) == 1, f"no manifest under {folder}"
    return json.loads(manifests[0].read_text())


@pytest.mark.parametrize("ui", UIS, indirect=True)
def test_a_click_converts_the_notebook(ui: JupyterServer, page: Any) -> None:
    copy_example(ui, EXAMPLES / "iris_array.ipynb", "click/iris_array.ipynb")
    open_notebook(page, ui, "click/iris_array.ipynb").click()
    page.get_by_text(re.compile(r"cell \d+/\d+")).first.wait_for(timeout=CONVERT_TIMEOUT_MS)
    done = page.get_by_text(re.compile(r"nb2prod: iris-array \S+ → click/iris-array-service/")).first
    done.wait_for(timeout=CONVERT_TIMEOUT_MS)
    version = manifest_of(ui.root / "click" / "iris-array-service")["version"]
    assert f"iris-array {version}" in done.inner_text()
    assert "serve: nb2prod serve click/iris-array-service" in done.inner_text()


@pytest.mark.parametrize("ui", UIS, indirect=True)
def test_a_failing_cell_notification_goes_to_the_cell(ui: JupyterServer, page: Any) -> None:
    copy_example(ui, FIXTURES / "failing_cell.ipynb", "fails/failing.ipynb")
    open_notebook(page, ui, "fails/failing.ipynb").click()
    page.get_by_text(re.compile(r"raised IndexError")).first.wait_for(timeout=CONVERT_TIMEOUT_MS)
    cells = page.locator(".jp-Notebook .jp-Cell")
    assert "jp-mod-active" in (cells.nth(0).get_attribute("class") or "")
    page.get_by_role("button", name="Go to cell").first.click()
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-Notebook .jp-Cell')[2]?.classList.contains('jp-mod-active')"
    )
    assert "values[10]" in cells.nth(2).inner_text()


@pytest.mark.parametrize("ui", UIS, indirect=True)
def test_a_missing_server_extension_is_named(ui: JupyterServer, page: Any) -> None:
    copy_example(ui, FIXTURES / "failing_cell.ipynb", "missing/failing.ipynb")
    # What the frontend sees when the server extension is not enabled: jupyter_server's own 404 page.
    api = re.compile(r"/nb2prod/(lint|jobs)\b")
    page.route(api, lambda route: route.fulfill(status=404, content_type="text/html", body="<h1>404</h1>"))
    open_notebook(page, ui, "missing/failing.ipynb").click()
    page.get_by_text("the nb2prod server extension is not enabled").first.wait_for()
    assert page.get_by_text("jupyter server extension enable nb2prod.jupyter").count() >= 1


@pytest.mark.parametrize("ui", UIS, indirect=True)
def test_suggested_roles_become_tags_and_undo_restores_them(ui: JupyterServer, page: Any) -> None:
    notebook = untagged_copy(ui, "suggest/iris.ipynb")
    open_notebook(page, ui, "suggest/iris.ipynb")
    page.locator(".jp-Notebook .jp-Cell").nth(9).click(button="right")
    menu = page.locator(".lm-Menu")
    assert menu.get_by_text("Convert to production").count() == 1
    menu.get_by_text("Suggest nb2prod roles").click()
    page.get_by_text(re.compile(r"tagged 3 cell\(s\) of iris.ipynb")).first.wait_for()
    save(page)
    expected = {5: ["load"], 9: ["train"], 11: ["evaluate"], 3: ["parameters"], 7: ["skip"]}
    saved(notebook, lambda tags: all(tags[i] == roles for i, roles in expected.items()))
    page.get_by_role("button", name="Undo").first.click()
    save(page)
    saved(notebook, lambda tags: tags[9] == [] and tags[5] == [] and tags[3] == ["parameters"])


def save(page: Any) -> None:
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")


def saved(notebook: Path, check: Any, timeout: float = 30.0) -> None:
    """Wait until the notebook's tags on disk pass `check` (the save is asynchronous)."""
    deadline = time.monotonic() + timeout
    while not check(tags := tags_on_disk(notebook)):
        assert time.monotonic() < deadline, f"tags on disk: {tags}"
        time.sleep(0.2)

"""What the browser tests do in JupyterLab and Notebook 7: open a notebook, the dialog, screenshots."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.jupyter.servers import TOKEN, JupyterServer

ARTIFACTS = ROOT / "test-artifacts"
CONVERT_TIMEOUT_MS = 240_000
UI_TIMEOUT_MS = 90_000


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


def shot(page: Any, name: str) -> None:
    """With NB2PROD_SCREENSHOTS=1, keep a screenshot of what the user sees now."""
    if os.environ.get("NB2PROD_SCREENSHOTS"):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_dialog(page: Any, button: Any) -> Any:
    """Click "Convert to production" and wait for the dialog's sentence on what the service takes."""
    button.click()
    dialog = page.locator(".jp-Dialog")
    page.wait_for_function(
        "() => /The service will take: \\w/.test(document.querySelector('.nb2prod-input-summary')?.textContent ?? '')"
    )
    return dialog


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0

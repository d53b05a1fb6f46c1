"""Jobs survive a restart of the Jupyter server: history kept, a cut job interrupted and cleaned up.

One server is killed (SIGKILL, so nothing of it can clean up) while a conversion runs, after an
earlier conversion of the same notebook finished; a new server on the same data folder shows
both in the history, in the REST API and in JupyterLab's history dialog.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from nb2prod.jupyter.jobs import JOB_ENV
from nb2prod.jupyter.procs import tagged
from tests.conftest import code, write_notebook
from tests.jupyter.conftest import wait_for_job
from tests.jupyter.servers import JupyterServer, start_server
from tests.jupyter.ui import open_notebook, shot

pytestmark = pytest.mark.slow


def pausing_notebook(path: Path) -> Path:
    """A small classifier whose load cell sleeps `pause` seconds (a parameter)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_notebook(
        path,
        [
            code("pause = 0", "parameters"),
            code(
                "import time\nfrom sklearn.datasets import load_iris\n\nX, y = load_iris(return_X_y=True)\ntime.sleep(pause)",
                "load",
            ),
            code(
                "from sklearn.tree import DecisionTreeClassifier\n\nmodel = DecisionTreeClassifier(max_depth=3).fit(X, y)",
                "train",
            ),
        ],
    )


def ended(pid: int) -> bool:
    """The process is gone, or a zombie (dead; its parent was the killed server, nothing reaps it here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_running_in_kernel(server: JupyterServer, job: dict[str, Any], timeout: float = 120) -> list[int]:
    """Wait until the job's kernel runs the sleeping cell; the processes of the job (runner, kernel)."""
    deadline = time.monotonic() + timeout
    with server.api() as client:
        while True:
            job = client.get(f"/nb2prod/jobs/{job['id']}").json()
            processes = tagged(JOB_ENV, job["id"])
            if job["status"] == "running" and job["progress"] and job["progress"]["cell"] >= 2 and len(processes) >= 2:
                return processes
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline, f"the job never reached its sleeping cell: {job}"
            time.sleep(0.3)


def test_history_survives_a_restart_and_a_cut_job_is_interrupted_and_cleaned(
    tmp_path_factory: pytest.TempPathFactory, page: Any
) -> None:
    home = tmp_path_factory.mktemp("restart-home")
    root = home / "root"
    pausing_notebook(root / "restart" / "pausing.ipynb")
    server = start_server("lab", root, home)
    try:
        with server.api() as client:
            first = client.post("/nb2prod/jobs", json={"path": "restart/pausing.ipynb", "options": {"compile": False}})
            finished, _ = wait_for_job(server, first.json())
            assert finished["status"] == "succeeded", finished["error"]
            options = {"compile": False, "parameters": {"pause": "600"}, "output": "restart/second-service"}
            cut = client.post("/nb2prod/jobs", json={"path": "restart/pausing.ipynb", "options": options}).json()
        processes = wait_running_in_kernel(server, cut)
        assert list((home / "data").rglob("nb2prod-run-*")), "the running job has no temporary folder"
        server.process.kill()  # no shutdown hook runs: the next server cleans up
        server.process.wait(timeout=20)
    finally:
        server.stop()

    server = start_server("lab", root, home)
    try:
        assert tagged(JOB_ENV, cut["id"]) == [], "the cut job's runner or kernel still runs"
        assert all(ended(pid) for pid in processes), processes
        assert list(home.rglob("nb2prod-run-*")) == []
        with server.api() as client:
            history = client.get("/nb2prod/history", params={"path": "restart/pausing.ipynb"}).json()["jobs"]
            kept = client.get(f"/nb2prod/jobs/{first.json()['id']}").json()
        assert [job["status"] for job in history] == ["interrupted", "succeeded"], history
        assert history[0]["error"]["message"] and history[0]["options"]["parameters"] == {"pause": "600"}
        assert history[1]["result"]["version"] == finished["result"]["version"] == kept["result"]["version"]
        assert history[1]["elapsed"] > 0 and history[1]["result"]["output"] == "restart/pausing-service"

        open_notebook(page, server, "restart/pausing.ipynb")
        page.locator(".jp-NotebookPanel-toolbar .nb2prod-history-button").click()
        rows = page.locator(".nb2prod-history-row")
        rows.nth(1).wait_for()
        assert "interrupted" in rows.nth(0).inner_text() and "the Jupyter server stopped" in rows.nth(0).inner_text()
        assert "succeeded" in rows.nth(1).inner_text() and finished["result"]["version"] in rows.nth(1).inner_text()
        shot(page, "history-after-restart")
    finally:
        server.stop()

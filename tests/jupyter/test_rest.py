"""The server extension's REST API against a real JupyterLab server: auth, confinement, jobs, lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import code, write_notebook
from tests.jupyter.conftest import EXAMPLES, FIXTURES, copy_example, tags_on_disk, untagged_copy, wait_for_job
from tests.jupyter.servers import TOKEN, JupyterServer

pytestmark = pytest.mark.slow


def post_job(server: JupyterServer, path: str, **options: object) -> httpx.Response:
    with server.api() as client:
        return client.post("/nb2prod/jobs", json={"path": path, "options": options})


def test_anonymous_requests_get_403(lab_server: JupyterServer) -> None:
    with lab_server.api(headers={}) as anonymous:
        posted = anonymous.post("/nb2prod/jobs", json={"path": "x.ipynb"})
        others = [
            anonymous.get(f"/nb2prod/{endpoint}", params={"path": "x.ipynb"})
            for endpoint in ("lint", "roles", "choices", "history", "services")
        ]
        others.append(anonymous.post("/nb2prod/services", json={"output": "x-service"}))
        others.append(anonymous.delete("/nb2prod/services", params={"output": "x-service"}))
    assert posted.status_code == 403
    assert posted.json()["source"] == "nb2prod"
    assert [answer.status_code for answer in others] == [403] * len(others)


def test_cookie_post_without_xsrf_is_refused(lab_server: JupyterServer) -> None:
    with lab_server.api(headers={}) as browser:
        browser.get("/lab", params={"token": TOKEN})  # logs in: sets the login and _xsrf cookies
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf, "the login page set no _xsrf cookie"
        refused = browser.post("/nb2prod/jobs", json={"path": "missing.ipynb"})
        accepted = browser.post("/nb2prod/jobs", json={"path": "missing.ipynb"}, headers={"X-XSRFToken": xsrf})
    assert refused.status_code == 403
    assert "xsrf" in refused.json()["message"].lower()
    # With the token the same cookie session gets through to our handler (which finds no notebook).
    assert accepted.status_code == 404, accepted.text
    assert accepted.json()["source"] == "nb2prod"


@pytest.fixture
def outside(lab_server: JupyterServer) -> Path:
    """A notebook outside the server root, a symlink to its folder inside, and a notebook inside."""
    (lab_server.root / "confined").mkdir(exist_ok=True)
    write_notebook(lab_server.root / "confined" / "ok.ipynb", [code("x = 1", "train")])
    folder = lab_server.root.parent / "outside"
    folder.mkdir(exist_ok=True)
    notebook = folder / "secret.ipynb"
    if not notebook.exists():
        write_notebook(notebook, [code("x = 1", "train")])
    link = lab_server.root / "escape"
    if not link.is_symlink():
        link.symlink_to(folder, target_is_directory=True)
    return notebook


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("../outside/secret.ipynb", {}),
        ("OUTSIDE", {}),  # replaced by the absolute path of the notebook outside the root
        ("escape/secret.ipynb", {}),
        ("confined/ok.ipynb", {"output": "../stolen-service"}),
        ("confined/ok.ipynb", {"output": "OUTSIDE"}),
        ("confined/ok.ipynb", {"output": "escape/stolen-service"}),
    ],
    ids=["dotdot", "absolute", "symlink", "output-dotdot", "output-absolute", "output-symlink"],
)
def test_paths_outside_the_root_get_400(lab_server: JupyterServer, outside: Path, path: str, options: dict) -> None:
    path = str(outside) if path == "OUTSIDE" else path
    options = {key: str(outside.parent / "stolen") if value == "OUTSIDE" else value for key, value in options.items()}
    before = sorted(p.name for p in outside.parent.iterdir())
    answer = post_job(lab_server, path, **options)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["source"] == "nb2prod" and body["message"] and "Traceback" not in answer.text
    if not options:
        with lab_server.api() as client:
            for endpoint in ("lint", "roles", "choices", "history"):
                assert client.get(f"/nb2prod/{endpoint}", params={"path": path}).status_code == 400, endpoint
            folder = path.rsplit("/", 1)[0]
            assert client.post("/nb2prod/services", json={"output": folder}).status_code == 400
            assert client.delete("/nb2prod/services", params={"output": folder}).status_code == 400
    assert sorted(p.name for p in outside.parent.iterdir()) == before


def test_job_lifecycle_writes_a_service_and_reports_progress(lab_server: JupyterServer) -> None:
    copy_example(lab_server, EXAMPLES / "iris_array.ipynb", "lifecycle/iris.ipynb")
    answer = post_job(lab_server, "lifecycle/iris.ipynb", output="lifecycle/iris-service")
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] in ("queued", "running")
    job, seen = wait_for_job(lab_server, answer.json())
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert result["output"] == "lifecycle/iris-service"
    manifests = list((lab_server.root / "lifecycle" / "iris-service" / "src").glob("*/artifacts/manifest.json"))
    assert len(manifests) == 1
    assert json.loads(manifests[0].read_text())["version"] == result["version"]
    assert result["metrics"] and result["model_class"].endswith("LogisticRegression")
    assert result["next"]["serve"] == "nb2prod serve lifecycle/iris-service"
    cells = [record["cell"] for record in seen]
    assert len(set(cells)) >= 2 and cells == sorted(cells), f"progress did not move: {seen}"
    assert seen[-1]["total"] >= cells[-1] and any(record["first_line"] for record in seen)
    assert any(line.startswith("cell ") for line in job["log"])


def test_a_failing_cell_is_reported_by_its_index(lab_server: JupyterServer) -> None:
    copy_example(lab_server, FIXTURES / "failing_cell.ipynb", "failing/failing.ipynb")
    answer = post_job(lab_server, "failing/failing.ipynb")
    assert answer.status_code == 202, answer.text
    job, _ = wait_for_job(lab_server, answer.json())
    assert job["status"] == "failed"
    error = job["error"]
    assert error["cell_index"] == 2, error  # 0-based: a markdown cell, the load cell, then the failing one
    assert error["exit_code"] == 3 and error["kind"] == "CellExecutionError"
    assert "IndexError" in error["message"] and error["hint"]
    assert (lab_server.root / error["executed_notebook"]).is_file()


def test_a_lint_error_comes_back_before_any_kernel_starts(lab_server: JupyterServer) -> None:
    folder = lab_server.root / "lint"
    folder.mkdir(exist_ok=True)
    write_notebook(folder / "untrained.ipynb", [code("import numpy as np\nX = np.zeros((3, 2))", "load")])
    with lab_server.api() as client:
        report = client.get("/nb2prod/lint", params={"path": "lint/untrained.ipynb"})
    assert report.status_code == 200, report.text
    errors = [finding for finding in report.json()["findings"] if finding["severity"] == "error"]
    assert errors and errors[0]["message"] and report.json()["errors"] == len(errors)
    job, seen = wait_for_job(lab_server, post_job(lab_server, "lint/untrained.ipynb").json())
    assert job["status"] == "failed" and job["error"]["kind"] == "LintError", job
    assert job["error"]["exit_code"] == 1 and job["error"]["findings"]
    assert seen == [] and job["progress"] is None  # no cell ran: no kernel was started


def test_two_quick_posts_for_one_notebook_give_one_job(lab_server: JupyterServer) -> None:
    folder = lab_server.root / "twice"
    folder.mkdir(exist_ok=True)
    write_notebook(folder / "twice.ipynb", [code("raise RuntimeError('stop here')", "train")])
    first = post_job(lab_server, "twice/twice.ipynb")
    second = post_job(lab_server, "twice/twice.ipynb")
    assert (first.status_code, second.status_code) == (202, 200), (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    job, _ = wait_for_job(lab_server, second.json())
    assert job["status"] == "failed" and job["error"]["cell_index"] == 0


def test_bad_requests_get_json_errors(lab_server: JupyterServer) -> None:
    copy_example(lab_server, FIXTURES / "failing_cell.ipynb", "bad/nb.ipynb")
    with lab_server.api() as client:
        not_json = client.post("/nb2prod/jobs", content=b"{nope")
        unknown_option = client.post("/nb2prod/jobs", json={"path": "bad/nb.ipynb", "options": {"colour": "red"}})
        bad_require = client.post("/nb2prod/jobs", json={"path": "bad/nb.ipynb", "options": {"require": ["acc"]}})
        missing = client.get("/nb2prod/jobs/" + "0" * 32)
        odd_id = client.get("/nb2prod/jobs/not-a-job")
        unknown = client.post("/nb2prod/convert", json={})
    answers = (
        (not_json, 400),
        (unknown_option, 400),
        (bad_require, 400),
        (missing, 404),
        (odd_id, 404),
        (unknown, 404),
    )
    for answer, status in answers:
        assert answer.status_code == status, answer.text
        assert answer.json()["source"] == "nb2prod" and answer.json()["message"]
    assert bad_require.json()["exit_code"] == 2 and "accuracy>=0.9" in bad_require.json()["hint"]


def test_tag_proposes_roles_without_changing_the_notebook(lab_server: JupyterServer) -> None:
    notebook = untagged_copy(lab_server, "tag/iris.ipynb")
    before = notebook.read_bytes()
    with lab_server.api() as client:
        answer = client.get("/nb2prod/tag", params={"path": "tag/iris.ipynb"})
        outside = client.get("/nb2prod/tag", params={"path": "../tag/iris.ipynb"})
    assert answer.status_code == 200, answer.text
    proposed = {p["cell_index"]: p["roles"] for p in answer.json()["proposals"]}
    assert (proposed[5], proposed[9], proposed[11]) == (["load"], ["train"], ["evaluate"]), proposed
    assert "train" in answer.json()["role_tags"]
    assert notebook.read_bytes() == before and tags_on_disk(notebook)[9] == []
    assert outside.status_code == 400


def test_jupyter_lists_both_extensions_enabled_and_ok() -> None:
    commands = {"server": ["server", "extension", "list"], "lab": ["labextension", "list"]}
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "jupyter", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for name, args in commands.items()
    }
    output = {name: process.communicate(timeout=120)[0].decode() for name, process in running.items()}
    server_lines, lab_lines = _plain(output["server"]), _plain(output["lab"])
    assert any("nb2prod.jupyter enabled" in line for line in server_lines), server_lines
    assert any("nb2prod.jupyter" in line and "OK" in line for line in server_lines), server_lines
    assert any(line.startswith("nb2prod v") and "enabled" in line and "OK" in line for line in lab_lines), lab_lines


def _plain(text: str) -> list[str]:
    return [" ".join(re.sub(r"\x1b\[[0-9;]*m", "", line).split()) for line in text.splitlines()]


def test_roles_give_each_code_cell_its_role_and_the_reason(lab_server: JupyterServer) -> None:
    copy_example(lab_server, EXAMPLES / "iris_array.ipynb", "roles/iris.ipynb")
    with lab_server.api() as client:
        answer = client.get("/nb2prod/roles", params={"path": "roles/iris.ipynb"})
        services = client.post("/nb2prod/services", json={"output": "roles"})
    assert answer.status_code == 200, answer.text
    cells = {cell["cell_index"]: cell for cell in answer.json()["cells"]}
    assert sorted(cells) == [3, 5, 7, 9, 11]
    assert cells[9]["roles"] == ["train"] and cells[9]["proposed"]["roles"] == ["train"]
    assert cells[9]["proposed"]["reason"] and answer.json()["model"] == "model"
    # A folder that is no converted service is refused with what to do, and nothing starts.
    assert services.status_code == 409 and "app.py" in services.json()["message"], services.text

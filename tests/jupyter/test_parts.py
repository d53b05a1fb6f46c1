"""Fast checks of the server extension's parts: path confinement, job options, JSON records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import nb2prod
from nb2prod.errors import OptionsError
from nb2prod.jupyter.job_options import job_request, to_convert_options
from nb2prod.jupyter.paths import PathError, confine, relative_to_root
from nb2prod.jupyter.records import plain
from tests.conftest import ROOT


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "root" / "inner").symlink_to(tmp_path / "root" / "sub", target_is_directory=True)
    return tmp_path / "root"


@pytest.mark.parametrize("bad", ["", "../x.ipynb", "sub/../../x.ipynb", "/etc/passwd", "C:/x.ipynb", "link/x.ipynb"])
def test_paths_that_leave_the_root_are_refused(root: Path, bad: str) -> None:
    with pytest.raises(PathError):
        confine(root, bad)


def test_paths_inside_the_root_resolve(root: Path) -> None:
    assert confine(root, "sub/nb.ipynb") == (root / "sub" / "nb.ipynb").resolve()
    assert confine(root, "inner/nb.ipynb") == (root / "sub" / "nb.ipynb").resolve()  # a symlink that stays inside
    assert relative_to_root(root, root / "sub" / "out") == "sub/out"


def test_job_options_are_the_cli_options(root: Path) -> None:
    notebook = root / "sub" / "nb.ipynb"
    request = job_request(root, notebook, {"output": "sub/svc", "require": "accuracy>=0.9", "seed": 3, "force": True})
    options = to_convert_options(json.loads(json.dumps(request)))  # what the runner rebuilds
    assert options.output == (root / "sub" / "svc").resolve() and options.seed == 3 and options.force
    assert [str(r) for r in options.requirements] == ["accuracy>=0.9"]
    assert options.compile_model  # the CLI's default
    no_compile = job_request(root, notebook, {"compile": False})
    assert not to_convert_options(json.loads(json.dumps(no_compile))).compile_model  # --no-compile


@pytest.mark.parametrize(
    "options",
    [
        {"colour": "red"},
        {"seed": "3"},
        {"force": 1},
        {"seed": True},
        {"require": [1]},
        {"output": "."},
        {"name": "A b"},
    ],
)
def test_bad_job_options_are_refused_before_any_process(root: Path, options: dict) -> None:
    with pytest.raises(OptionsError):
        job_request(root, root / "sub" / "nb.ipynb", options)


def test_records_are_plain_json() -> None:
    assert plain({"a": (1, math.nan), "b": Path("x")}) == {"a": [1, None], "b": "x"}


def test_the_frontend_has_the_package_version() -> None:
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["version"] == nb2prod.__version__


def test_a_missing_chromium_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.jupyter import browser

    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)  # not root: nothing is installed
    path, why_not = browser.find_or_install_chromium()
    assert path is None and "chromium" in why_not and "apt-get install -y chromium" in why_not


def test_the_job_store_keeps_history_and_a_new_server_interrupts_orphans(tmp_path: Path) -> None:
    from nb2prod.jupyter.jobs import JobManager
    from nb2prod.jupyter.store import JobStore

    root, data = tmp_path / "root", tmp_path / "data"
    root.mkdir()
    store = JobStore(data / "jobs.sqlite", root.resolve())
    dead = 2**22 + 17  # above pid_max's default: no process has it
    base = {"path": "a.ipynb", "started": 1.0, "options": {"require": ["accuracy>=0.9"]}, "server_pid": dead}
    store.save(
        {**base, "id": "done", "status": "succeeded", "created": 1.0, "finished": 3.5, "result": {"version": "1"}}
    )
    store.save({**base, "id": "cut", "status": "running", "created": 2.0, "finished": None, "runner_pid": dead})
    (data / "runs" / "cut" / "nb2prod-run-x").mkdir(parents=True)
    (data / "runs" / "stale").mkdir()
    jobs = JobManager(root, data)  # what a restarted server does first
    history = jobs.history("a.ipynb")
    assert [job["status"] for job in history] == ["interrupted", "succeeded"]
    assert history[0]["error"]["kind"] == "Interrupted" and history[0]["elapsed"] == 0.0
    assert history[1]["elapsed"] == 2.5
    assert jobs.last_options("a.ipynb") == {"require": ["accuracy>=0.9"]}
    assert list((data / "runs").iterdir()) == []
    assert jobs.get("done")["result"] == {"version": "1"}
    assert JobStore(data / "jobs.sqlite", tmp_path).history() == []  # another root sees its own jobs only


def test_the_dialog_sentence_says_raw_or_engineered(tmp_path: Path) -> None:
    from nb2prod.jupyter.view import convert_choices
    from tests.jupyter.conftest import houses_notebook

    raw = convert_choices(houses_notebook(tmp_path / "houses"))
    assert raw["summary"] == "raw columns of `houses` read from houses.csv (4 columns)", raw
    engineered = convert_choices(ROOT / "notebooks" / "iris_array.ipynb")
    assert engineered["summary"].startswith("engineered columns of `X_train`"), engineered
    assert engineered["models"] == ["model"]
    blocked = convert_choices(ROOT / "tests" / "notebooks" / "random_fill.ipynb")["summary"]
    assert blocked.startswith("engineered columns of `X_train`: cell 4 line 7 stops the replay because"), blocked
    assert "random" in blocked, blocked
    # An untagged notebook: the cause `tag` finds (a second data file joined), as convert says it.
    merged = convert_choices(ROOT / "tests" / "notebooks" / "engineered_merge.ipynb")["summary"]
    assert "cell 9 line 1 stops the replay because" in merged and "districts.csv" in merged, merged
    assert {p["name"]: p["type"] for p in engineered["parameters"]}["max_iter"] == "int"


def test_serving_names_the_packages_the_servers_python_lacks(tmp_path: Path) -> None:
    from nb2prod.jupyter.serve import missing_requirements

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\ndependencies = ["packaging>=1", "nb2prod-no-such-package==1.0", "pytest==0.0.1"]\n'
    )
    missing, other = missing_requirements(tmp_path)
    assert missing == ["nb2prod-no-such-package==1.0"]
    assert len(other) == 1 and other[0].startswith("pytest==0.0.1 (installed: ")

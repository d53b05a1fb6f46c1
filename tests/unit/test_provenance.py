"""Provenance in the manifest, without a kernel: the content and cell hashes, the audit hook's
filter (run as the setup cell runs it, in a fresh interpreter), the data files and git state."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nb2prod.generate.artifact import cell_records, data_files, provenance_record
from nb2prod.manifest import GitRecord
from nb2prod.notebook.spec import read_notebook
from nb2prod.run.capture import kernel_source, setup_cell_source
from nb2prod.run.captured import Capture, CaptureReport, DataRead
from nb2prod.run.kernel.reads import _is_data_file, _python_dirs
from nb2prod.run.provenance import git_state
from tests.conftest import code, markdown
from tests.golden_render import CAPTURES


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_content_hash_covers_source_tags_and_config_not_outputs_or_counts(make_notebook) -> None:
    base = read_notebook(make_notebook([markdown("# m"), code("x = 1", "train")], name="a.ipynb"))
    ran = code("x = 1", "train", collapsed=True)
    ran.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=4)]
    ran.execution_count = 4
    same = read_notebook(make_notebook([markdown("# m"), ran], name="b.ipynb", widgets={"state": {}}))
    assert base.content_hash == same.content_hash and base.content_hash.startswith("sha256:")
    others = [
        make_notebook([markdown("# m"), code("x = 2", "train")], name="c.ipynb"),
        make_notebook([markdown("# m"), code("x = 1", "load")], name="d.ipynb"),
        make_notebook([markdown("# other"), code("x = 1", "train")], name="e.ipynb"),
        make_notebook([markdown("# m"), code("x = 1", "train")], name="f.ipynb", nb2prod={"model": "x"}),
    ]
    hashes = {read_notebook(path).content_hash for path in others}
    assert base.content_hash not in hashes and len(hashes) == len(others)


def test_cell_records_are_the_cells_that_ran(make_notebook) -> None:
    spec = read_notebook(
        make_notebook([markdown("# m"), code("a = 1", "parameters"), code("print(a)", "skip"), code("b = a")])
    )
    assert [cell.model_dump() for cell in cell_records(spec)] == [
        {"index": 1, "roles": ["parameters"], "sha256": _sha256(b"a = 1")},
        {"index": 3, "roles": [], "sha256": _sha256(b"b = a")},
    ]


def test_notebook_path_is_relative_to_out(make_notebook, tmp_path: Path) -> None:
    spec = read_notebook(make_notebook([code("a = 1")], name="n.ipynb"))
    assert provenance_record(spec, tmp_path / "svc", None).notebook_path == "../n.ipynb"
    assert provenance_record(spec, tmp_path / "deep" / "svc", None).notebook_path == "../../n.ipynb"
    assert provenance_record(spec, None, None).notebook_path == "n.ipynb"


def test_data_files_merge_kernel_reads_and_parameter_files(make_notebook, tmp_path: Path) -> None:
    spec = read_notebook(make_notebook([code("path = 'a.parquet'", "parameters")]))
    (tmp_path / "a.parquet").write_bytes(b"PAR1")  # read by C code: only the parameter names it
    (tmp_path / "b.csv").write_bytes(b"x\n1\n")
    report = CaptureReport.model_validate_json((CAPTURES / "iris_array.json").read_text())
    read = DataRead(path="b.csv", size=4, sha256=_sha256(b"x\n1\n"))
    capture = Capture(model_file=tmp_path / "m", report=report.model_copy(update={"data_reads": (read,)}))
    found = [f.model_dump() for f in data_files(spec, capture, {"path": "a.parquet", "b": "b.csv", "n": 3})]
    assert found == [
        {"path": "a.parquet", "size": 4, "sha256": _sha256(b"PAR1"), "parameters": ["path"]},
        {"path": "b.csv", "size": 4, "sha256": _sha256(b"x\n1\n"), "parameters": ["b"]},
    ]


def test_stored_captures_without_reads_still_load() -> None:
    for stored in sorted(CAPTURES.glob("*.json")):
        assert CaptureReport.model_validate_json(stored.read_text()).data_reads == ()


def test_filter_keeps_data_and_leaves_out_code_python_system_and_nb2prod(tmp_path: Path) -> None:
    root, work, home = tmp_path / "project", tmp_path / "work", tmp_path / "home"
    files = {
        "project/data.csv": True,
        "project/sub/more.json": True,
        "project/helpers.py": False,
        "project/__pycache__/x.bin": False,
        "project/.venv/lib/python3.11/site-packages/pkg/table.csv": False,
        "work/capture.json": False,
        "home/.cache/matplotlib/fontlist.json": False,
        "home/datasets/big.csv": True,
        "elsewhere/shared.csv": True,
    }
    for relative in files:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("1")
    python_dirs = _python_dirs()
    for relative, expected in files.items():
        path = str(tmp_path / relative)
        assert _is_data_file(path, str(root), python_dirs, [str(work)], home=str(home)) is expected, relative
    assert not _is_data_file(os.__file__, str(root), python_dirs, [], home=str(home))
    assert not _is_data_file("/etc/hostname", str(root), python_dirs, [], home=str(home))
    assert not _is_data_file(str(root / "missing.csv"), str(root), python_dirs, [], home=str(home))
    assert not _is_data_file(str(root), str(root), python_dirs, [], home=str(home))  # a folder


def test_setup_cell_records_reads_not_writes_and_goes_inert(tmp_path: Path) -> None:
    # In a fresh interpreter: audit hooks cannot be removed, so none is installed in pytest's.
    root, work = tmp_path / "nb", tmp_path / "work"
    (root / "data").mkdir(parents=True)
    work.mkdir()
    (root / "data" / "in.csv").write_text("a\n1\n")
    (tmp_path / "abs.txt").write_text("far")
    (work / "capture.json").write_text("{}")
    script = tmp_path / "run.py"
    script.write_text(
        setup_cell_source(notebook_dir=root, exclude=(work,))
        + "names = sorted(k for k in globals() if k.startswith('_nb2prod'))\n"
        + "import json, csv\n"
        + "open('data/in.csv').read()\n"
        + "open('data/in.csv', 'rb').read()\n"
        + f"open({str(tmp_path / 'abs.txt')!r}).read()\n"
        + f"open({str(work / 'capture.json')!r}).read()\n"
        + "open('made.txt', 'w').write('x')\nopen('made.txt').read()\n"
        + "open('both.txt', 'w').close()\nopen('both.txt', 'r+').close()\n"
        + "namespace = {}\n"
        + f"exec(compile({kernel_source(('reads',))!r}, 'k', 'exec'), namespace)\n"
        + "reads = namespace['_data_reads'](globals())\n"
        + "open('data/late.csv', 'w').write('z')\nopen('data/late.csv').read()\n"
        + "print(json.dumps({'names': names, 'reads': reads, 'after': namespace['_data_reads'](globals())}))\n"
    )
    done = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["names"] == ["_nb2prod_reads"]  # the setup leaves no imports in the notebook's globals
    expected = [
        {"path": str((tmp_path / "abs.txt").resolve()), "size": 3, "sha256": _sha256(b"far")},
        {"path": "data/in.csv", "size": 4, "sha256": _sha256(b"a\n1\n")},
    ]
    assert result["reads"] == expected
    assert result["after"] == expected  # inert: nothing opened after the capture switched it off


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "nb.ipynb").write_text("{}")
    (folder / "tracked.txt").write_text("a")
    (folder / "out").mkdir()
    (folder / "out" / "generated.txt").write_text("v1")
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "first")
    return folder


def _git(folder: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    env |= {"HOME": str(folder), "PATH": os.environ["PATH"]}
    done = subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_git_state_commit_and_dirty(repo: Path, tmp_path: Path) -> None:
    notebook, head = repo / "nb.ipynb", _git(repo, "rev-parse", "HEAD")
    assert git_state(notebook) == GitRecord(commit=head, dirty=False)
    (repo / "scratch.txt").write_text("written by a run")  # untracked, not an input
    (repo / "out" / "generated.txt").write_text("v2")  # tracked, but in OUT
    assert git_state(notebook, exclude=(repo / "out",)) == GitRecord(commit=head, dirty=False)
    assert git_state(notebook).dirty  # OUT not excluded: its tracked change counts
    (repo / "data.csv").write_text("1")
    assert git_state(notebook, [repo / "data.csv"], exclude=(repo / "out",)).dirty  # an untracked input
    assert not git_state(notebook, [tmp_path / "outside.csv"], exclude=(repo / "out",)).dirty
    (repo / "tracked.txt").write_text("b")
    assert git_state(notebook, exclude=(repo / "out",)).dirty  # a tracked file changed


def test_git_state_is_none_outside_a_repository_or_without_git(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "nb.ipynb").write_text("{}")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_state(tmp_path / "nb.ipynb") is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert git_state(tmp_path / "nb.ipynb") is None


def test_git_state_before_the_first_commit(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    (tmp_path / "nb.ipynb").write_text("{}")
    _git(tmp_path, "init", "-q")
    assert git_state(tmp_path / "nb.ipynb") == GitRecord(commit=None, dirty=True)

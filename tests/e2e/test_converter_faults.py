"""The converter under faults: timeouts, dying kernels, signals, stale outputs, a user's added files.

Each test runs the real CLI with a real kernel. Signals go only to the nb2prod process we started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.conftest import code, run_cli

pytestmark = pytest.mark.slow

TRAIN = [  # fresh cells per test: make_notebook stores the same objects
    code("import time\nimport numpy as np\nfrom sklearn.linear_model import LinearRegression", "load"),
    code("X = np.arange(20.0).reshape(10, 2)\ny = X.sum(axis=1)\nmodel = LinearRegression().fit(X, y)", "train"),
]


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """Temporary files and kernel connection files in folders the test can inspect."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    (tmp_path / "runtime").mkdir(exist_ok=True)
    return {
        **os.environ,
        "TMPDIR": str(tmp_path / "tmp"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tmp").iterdir()) + sorted(
        p.name for p in (tmp_path / "runtime").iterdir()
    )


def _kernels_of(tmp_path: Path) -> str:
    found = subprocess.run(["pgrep", "-af", str(tmp_path)], capture_output=True, text=True, check=False)
    return "\n".join(line for line in found.stdout.splitlines() if "ipykernel" in line)


def test_timeout_prints_no_traceback_and_no_kernel_chatter(make_notebook) -> None:
    notebook = make_notebook([*TRAIN, code("while True:\n    pass")])
    result = run_cli("convert", notebook, "-o", notebook.parent / "out", "--timeout", "3")
    assert result.returncode == 3
    assert "raised TimeoutError: the cell ran longer than 3 s" in result.stderr
    for noise in ("Traceback", "ZMQError", "Timeout waiting for execute reply", "zmq"):
        assert noise not in result.stderr, result.stderr


def test_a_dying_kernel_is_a_failed_cell_with_the_notebook_kept(make_notebook) -> None:
    notebook = make_notebook([*TRAIN, code("import os\nos._exit(1)")])
    result = run_cli("convert", notebook, "-o", notebook.parent / "out")
    assert result.returncode == 3, result.stderr
    assert "cell 3 (`import os`) raised DeadKernelError: the kernel died" in result.stderr
    kept = notebook.parent / "out.failed.ipynb"
    assert kept.is_file() and f"executed notebook kept at: {kept}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_shuts_the_kernel_down_and_leaves_nothing(make_notebook, tmp_path: Path, signum) -> None:
    notebook = make_notebook([*TRAIN, code("time.sleep(120)")])
    process = subprocess.Popen(
        [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(tmp_path / "out")],
        env=_isolated_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored, and a child
        # inherits that: give the conversion the default handling a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    for line in process.stderr:  # progress lines: wait until the sleeping cell has started
        if "time.sleep(120)" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    assert _kernels_of(tmp_path), "the kernel should be running now"
    process.send_signal(signum)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130
    assert "interrupted" in rest and "Traceback" not in rest
    assert _leftovers(tmp_path) == []
    assert _kernels_of(tmp_path) == ""
    assert not (tmp_path / "out").exists()


def test_the_audit_copy_carries_no_stale_outputs(make_notebook, tmp_path: Path) -> None:
    stale = "stale-output-" + "x" * 2_000_000
    cells = [*TRAIN, code("print('fresh')")]
    cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=stale)]
    notebook = make_notebook(cells)
    result = run_cli("convert", notebook, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    executed = (tmp_path / "out/notebook/executed.ipynb").read_text()
    assert "stale-output-" not in executed and "fresh" in executed
    assert len(executed) < len(stale) / 4  # the run adds only its own outputs and nb2prod's cells


def test_kernel_fallback_warning_comes_before_the_run(make_notebook, tmp_path: Path) -> None:
    notebook = make_notebook(TRAIN)
    document = json.loads(notebook.read_text())
    document["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "x", "language": "python"}
    notebook.write_text(json.dumps(document))
    result = run_cli("convert", notebook, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    warning = result.stderr.index("kernel `no-such-kernel` is not installed")
    assert warning < result.stderr.index("cell 1/")
    assert result.stderr.count("kernel `no-such-kernel` is not installed") == 1


def test_an_evaluate_cell_without_metrics_gets_a_note(make_notebook, tmp_path: Path) -> None:
    notebook = make_notebook([*TRAIN, code("score = model.score(X, y)", "evaluate")])
    result = run_cli("convert", notebook, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "set no `metrics` dict" in result.stderr


def test_force_keeps_files_the_user_added(make_notebook, tmp_path: Path) -> None:
    notebook = make_notebook(TRAIN)
    out = tmp_path / "out"
    assert run_cli("convert", notebook, "-o", out).returncode == 0
    (out / "DEPLOY-NOTES.md").write_text("ours")
    (out / "deploy" / "kubernetes" / "extra.yaml").write_text("kind: ConfigMap")
    refused = run_cli("convert", notebook, "-o", out, "--force")
    assert refused.returncode == 1
    assert "DEPLOY-NOTES.md" in refused.stderr and "deploy/kubernetes/extra.yaml" in refused.stderr
    assert "--discard-changes" in refused.stderr
    assert (out / "DEPLOY-NOTES.md").read_text() == "ours"
    replaced = run_cli("convert", notebook, "-o", out, "--force", "--discard-changes")
    assert replaced.returncode == 0, replaced.stderr
    assert not (out / "DEPLOY-NOTES.md").exists()

"""The seed cell imports the compiler's libraries on a background thread (kernel.preload), and
leaves nothing in the notebook's namespace; without compiling, it starts nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nb2prod.run.capture import setup_cell_source

REPORT = (
    "import json, sys, threading\n"
    "names = sorted(k for k in globals() if k.startswith('_nb2prod') or k in ('onnx', 'onnxruntime'))\n"
    "threads = [t for t in threading.enumerate() if t.name == 'nb2prod-preload']\n"
    "for t in threads:\n"
    "    t.join()\n"
    "print(json.dumps({'names': names, 'threads': len(threads), 'daemon': all(t.daemon for t in threads),"
    " 'loaded': sorted(m for m in ('onnx', 'onnxruntime', 'sklearn') if m in sys.modules)}))\n"
)


def run_setup(tmp_path: Path, preload: bool) -> dict[str, object]:
    # In a fresh interpreter: the setup installs an audit hook, which cannot be removed.
    script = tmp_path / "run.py"
    script.write_text(setup_cell_source(notebook_dir=tmp_path, exclude=(), preload=preload) + REPORT)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing printed into the notebook's first cell
    return json.loads(done.stdout)


def test_seed_cell_imports_onnx_in_the_background_and_leaves_the_namespace_alone(tmp_path: Path) -> None:
    result = run_setup(tmp_path, preload=True)
    assert result["names"] == ["_nb2prod_reads"]
    assert result["threads"] <= 1 and result["daemon"]  # 0 only if it has already finished
    assert result["loaded"] == ["onnx", "onnxruntime"]  # and nothing a notebook imports itself


def test_without_compiling_nothing_is_preloaded(tmp_path: Path) -> None:
    result = run_setup(tmp_path, preload=False)
    assert result == {"names": ["_nb2prod_reads"], "threads": 0, "daemon": True, "loaded": []}

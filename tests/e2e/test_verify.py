"""`nb2prod verify`: a conversion checks out against its notebook, and each way it can stop
checking out is named (a file edited after the conversion, an edited notebook, a notebook whose
run is not reproducible)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from tests.conftest import EXAMPLES, code, run_cli

pytestmark = pytest.mark.slow


def test_a_conversion_verifies_and_edits_on_either_side_are_named(tmp_path: Path) -> None:
    notebook = tmp_path / "iris_array.ipynb"
    shutil.copy(EXAMPLES / "iris_array.ipynb", notebook)
    out = tmp_path / "iris-service"
    assert run_cli("convert", notebook, "-o", out).returncode == 0

    checked = run_cli("verify", out)  # the notebook is found beside the folder
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok   rerun: the notebook ran again and all" in checked.stdout
    assert "reproduced bit for bit" in checked.stdout
    assert "cell 1/" in checked.stderr  # the rerun shows its progress

    app = next(out.glob("src/*/app.py"))
    app.write_text(app.read_text() + "\n# a hand edit\n")
    edited = run_cli("verify", out, "--offline")
    assert edited.returncode == 6
    assert f"FAIL files: src/{app.parent.name}/app.py was changed after the conversion" in edited.stdout
    assert "rerun" not in edited.stdout  # --offline runs nothing

    app.write_text(app.read_text().removesuffix("\n# a hand edit\n"))
    spec = nbformat.read(str(notebook), as_version=4)
    cell = next(c for c in spec.cells if "test_size = 0.25" in c.source)
    cell.outputs = [nbformat.v4.new_output("stream", text="outputs do not count\n")]
    nbformat.write(spec, str(notebook))
    assert run_cli("verify", out, "--offline").returncode == 0
    cell.source = cell.source.replace("test_size = 0.25", "test_size = 0.3")
    nbformat.write(spec, str(notebook))
    changed = run_cli("verify", out, "--offline")
    assert changed.returncode == 6
    assert "FAIL notebook: iris_array.ipynb changed since the conversion" in changed.stdout


def test_a_run_that_does_not_reproduce_is_caught(make_notebook: Callable[..., Path], tmp_path: Path) -> None:
    # A generator from OS entropy: nb2prod's seeding cannot reach it, so every run fits another model.
    notebook = make_notebook(
        [
            code(
                "import numpy as np\n"
                "rng = np.random.default_rng()\n"
                "X_train = rng.normal(size=(60, 3))\n"
                "y_train = (X_train[:, 0] + rng.normal(size=60) > 0).astype(int)\n",
                "load",
            ),
            code(
                "from sklearn.linear_model import LogisticRegression\n"
                "model = LogisticRegression().fit(X_train, y_train)\n",
                "train",
            ),
        ],
        name="entropy.ipynb",
    )
    out = tmp_path / "entropy-service"
    assert run_cli("convert", notebook, "-o", out).returncode == 0
    checked = run_cli("verify", out, "--notebook", notebook)
    assert checked.returncode == 6, checked.stdout
    assert "ok   notebook" in checked.stdout
    assert "FAIL rerun: " in checked.stdout
    assert "model.joblib differs" in checked.stdout
    assert "entropy.ipynb gives here (see FAIL above)" in checked.stderr

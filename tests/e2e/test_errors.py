"""Every bad case gets a non-zero exit and a message that says what, where and how to fix it.

Each test copies its fixture notebook (tests/notebooks/<behaviour>.ipynb) into a temporary folder,
runs the real CLI (and a real kernel where the case needs one), and checks the exit code and words.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, code, run_cli

pytestmark = pytest.mark.slow


def fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{name}.ipynb"
    shutil.copy(FIXTURES / f"{name}.ipynb", target)
    return target


def convert(notebook: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("convert", notebook, "-o", notebook.parent / "out", *args)


def test_failing_cell_names_cell_exception_and_kept_notebook(tmp_path: Path) -> None:
    notebook = fixture("failing_cell", tmp_path)
    before = notebook.read_bytes()
    result = convert(notebook)
    assert result.returncode == 3
    err = result.stderr
    assert "failing_cell.ipynb, cell 3 (`values = [1, 2, 3]`) raised IndexError: list index out of range" in err
    assert "Traceback" not in err
    kept = tmp_path / "out.failed.ipynb"
    assert f"executed notebook kept at: {kept}" in err
    executed = json.loads(kept.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "IndexError"
    assert not (tmp_path / "out").exists()
    assert notebook.read_bytes() == before


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = convert(fixture("failing_cell", tmp_path), "--debug")
    assert result.returncode == 3
    assert "Traceback" in result.stderr


def test_free_name_is_refused_before_running(tmp_path: Path) -> None:
    result = convert(fixture("free_name", tmp_path))
    assert result.returncode == 1
    assert "preprocess code uses `scale`" in result.stderr
    assert "it is defined in cell" in result.stderr and "which is not a preprocess cell" in result.stderr
    assert "cell 1/" not in result.stderr  # nothing ran


def test_magic_in_preprocess_names_cell_and_line(tmp_path: Path) -> None:
    result = convert(fixture("magic_in_preprocess", tmp_path))
    assert result.returncode == 1
    assert "cell 3 (`import numpy as np`), line 3: `!pip install numpy` is IPython syntax" in result.stderr
    assert "line 2" not in result.stderr  # `%matplotlib inline` only changes display: dropped, not refused
    assert "cell 1/" not in result.stderr  # nothing ran


def test_class_outside_preprocess_cells(tmp_path: Path) -> None:
    result = convert(fixture("class_outside_preprocess", tmp_path))
    assert result.returncode == 4
    assert "the model uses `AddOne`, defined in cell 3" in result.stderr
    assert "Move the class or function into a cell tagged `preprocess`" in result.stderr


def test_lambda_in_model(tmp_path: Path) -> None:
    result = convert(fixture("lambda_model", tmp_path))
    assert result.returncode == 4
    assert "holds a lambda, which cannot be serialized" in result.stderr
    assert "named function in a preprocess cell" in result.stderr


def test_open_file_in_model(tmp_path: Path) -> None:
    result = convert(fixture("open_file_model", tmp_path))
    assert result.returncode == 4
    assert "the model `model` (assigned in cell 3" in result.stderr
    assert "cannot be serialized" in result.stderr and "TextIOWrapper" in result.stderr


def test_no_model(tmp_path: Path) -> None:
    result = convert(fixture("no_model", tmp_path))
    assert result.returncode == 1  # found by lint, before the run
    assert "no fitted model can be found: the train cells (cell 3 (`X_mean = X.mean(axis=0)`)) call no `fit`" in (
        result.stderr
    )
    assert "cell 1/" not in result.stderr


def test_ambiguous_model_lists_candidates_and_flag_resolves_it(tmp_path: Path) -> None:
    notebook = fixture("ambiguous_model", tmp_path)
    result = convert(notebook)
    assert result.returncode == 1  # found by lint, before the run
    assert "more than one fitted estimator" in result.stderr
    assert "`tree` (DecisionTreeClassifier, cell 3), `forest` (RandomForestClassifier, cell 3)" in result.stderr
    assert "--model VAR" in result.stderr
    assert "cell 1/" not in result.stderr
    chosen = convert(notebook, "--model", "forest")
    assert chosen.returncode == 0, chosen.stderr
    assert "model `forest`" in chosen.stdout


def test_model_only_cross_validated_is_not_fitted(tmp_path: Path) -> None:
    result = convert(fixture("not_fitted", tmp_path))
    assert result.returncode == 1  # found by lint, before the run
    assert "call no `fit`; `model` is only passed to cross_validate, which fits copies" in result.stderr
    assert "Call `model.fit(X, y)` in a train cell" in result.stderr
    assert "cell 1/" not in result.stderr


def test_model_named_but_not_fitted_is_caught_at_capture(tmp_path: Path) -> None:
    result = convert(fixture("not_fitted", tmp_path), "--model", "model", "--features", "X")
    assert result.returncode == 4
    assert "the model `model` (assigned in cell 3" in result.stderr
    assert "is not fitted; it was only passed to cross_validate" in result.stderr


def test_named_model_that_is_not_an_estimator(tmp_path: Path) -> None:
    notebook = fixture("not_estimator", tmp_path)
    early = convert(notebook)
    assert early.returncode == 1  # lint: the train cells fit `clf`, not `X`
    assert "no `X.fit(X, ...)` was found in the train cells (they fit `clf`)" in early.stderr
    result = convert(notebook, "--features", "X")
    assert result.returncode == 4
    assert "the model `X`" in result.stderr
    assert "pandas.DataFrame" in result.stderr and "not a scikit-learn-compatible estimator" in result.stderr


def test_not_a_notebook(tmp_path: Path) -> None:
    result = convert(fixture("not_a_notebook", tmp_path))
    assert result.returncode == 1
    assert "not_a_notebook.ipynb is not a notebook: it is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_only_roles_combine_on_one_cell(tmp_path: Path) -> None:
    result = convert(fixture("load_and_train_cell", tmp_path))
    assert result.returncode == 0, result.stderr
    assert "model `model`" in result.stdout


def test_unknown_kernel_falls_back_with_a_warning(tmp_path: Path) -> None:
    result = convert(fixture("unknown_kernel", tmp_path))
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "kernel `no-such-kernel-xyz` is not installed" in result.stderr


def test_unknown_kernel_flag_is_refused(tmp_path: Path) -> None:
    result = convert(fixture("ok_minimal", tmp_path), "--kernel", "no-such-kernel-xyz")
    assert result.returncode == 2
    assert "--kernel no-such-kernel-xyz: no such kernel is installed" in result.stderr


def test_kale_tags_and_role_lines(tmp_path: Path) -> None:
    result = convert(fixture("kale_tags", tmp_path))
    assert result.returncode == 0, result.stderr
    assert "nb2prod ignores tags that are not its roles: Kale's" in result.stderr
    assert result.stderr.count("nb2prod ignores tags") == 1


def test_existing_output_is_never_overwritten_without_force(tmp_path: Path) -> None:
    notebook = fixture("ok_minimal", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = convert(notebook)
    assert result.returncode == 1
    assert "exists and is not empty" in result.stderr and "--force" in result.stderr
    assert (out / "notes.txt").read_text() == "mine"
    forced = convert(notebook, "--force")
    assert forced.returncode == 1
    assert "was not written by nb2prod" in forced.stderr
    assert (out / "notes.txt").read_text() == "mine"


def test_force_replaces_an_earlier_conversion_and_notebook_is_untouched(tmp_path: Path) -> None:
    notebook = fixture("ok_minimal", tmp_path)
    before = notebook.read_bytes()
    assert convert(notebook).returncode == 0
    again = convert(notebook)
    assert again.returncode == 1 and "--force" in again.stderr
    forced = convert(notebook, "--force")
    assert forced.returncode == 0, forced.stderr
    assert notebook.read_bytes() == before


def test_parameters_are_injected_and_recorded(tmp_path: Path) -> None:
    notebook = fixture("ok_minimal", tmp_path)
    result = convert(notebook, "-p", "max_depth", "1")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(next((tmp_path / "out").glob("src/*/artifacts/manifest.json")).read_text())
    assert manifest["parameters"] == {"max_depth": 1}
    assert manifest["metrics"]["accuracy"] < 0.9  # a depth-1 tree cannot separate three classes
    executed = (tmp_path / "out" / "notebook" / "executed.ipynb").read_text()
    assert "injected-parameters" in executed and "matplotlib" not in executed


def test_unknown_parameter_is_refused(tmp_path: Path) -> None:
    result = convert(fixture("ok_minimal", tmp_path), "-p", "depth", "2")
    assert result.returncode == 2
    assert "does not set `depth` (it sets: max_depth)" in result.stderr


def test_requirement_gate(tmp_path: Path) -> None:
    notebook = fixture("ok_minimal", tmp_path)
    failed = convert(notebook, "--require", "accuracy>=0.999")
    assert failed.returncode == 5
    assert "accuracy is 0.97" in failed.stderr and "--require asks accuracy>=0.999" in failed.stderr
    assert not (tmp_path / "out").exists()
    assert convert(notebook, "--require", "accuracy>=0.9").returncode == 0


def _artifact_hashes(out: Path) -> dict[str, str]:
    files = sorted(out.glob("src/*/artifacts/*")) + [out / "tests" / "golden.json", out / "pyproject.toml"]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_conversion_is_deterministic_even_without_random_state(tmp_path: Path) -> None:
    notebook = fixture("random_unseeded", tmp_path)
    # In a git repository: the first conversion's output (untracked) must not change the second's manifest.
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for git in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "notebook"]):
        subprocess.run(["git", *git], cwd=tmp_path, check=True, capture_output=True)
    first = run_cli("convert", notebook, "-o", tmp_path / "a")
    second = run_cli("convert", notebook, "-o", tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert _artifact_hashes(tmp_path / "a") == _artifact_hashes(tmp_path / "b")
    git = json.loads(next((tmp_path / "a").glob("src/*/artifacts/manifest.json")).read_text())["provenance"]["git"]
    assert git is not None and git["dirty"] is False
    other_seed = run_cli("convert", notebook, "-o", tmp_path / "c", "--seed", "1")
    assert other_seed.returncode == 0
    assert _artifact_hashes(tmp_path / "c")["model.joblib"] != _artifact_hashes(tmp_path / "a")["model.joblib"]


def test_custom_transformer_unpickles_in_a_fresh_interpreter(tmp_path: Path) -> None:
    notebook = fixture("custom_transformer", tmp_path)
    assert convert(notebook).returncode == 0
    out = tmp_path / "out"
    package = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())["package"]
    probe = (
        f"from {package}.model import Predictor\np = Predictor.load()\nprint(type(p.model.steps[0][1]).__module__)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"{package}.preprocessing"


def test_tampered_model_is_refused_by_the_service(tmp_path: Path) -> None:
    notebook = fixture("ok_minimal", tmp_path)
    assert convert(notebook).returncode == 0
    out = tmp_path / "out"
    model = next(out.glob("src/*/artifacts/model.joblib"))
    model.write_bytes(model.read_bytes() + b"\0")
    package = model.parent.parent.name
    loaded = subprocess.run(
        [sys.executable, "-c", f"from {package}.model import Predictor; Predictor.load()"],
        env={"PYTHONPATH": str(out / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode != 0
    assert "the artifact was changed or corrupted" in loaded.stderr


def test_cell_timeout_names_the_cell(make_notebook) -> None:
    notebook = make_notebook(
        [
            code("import time", "load"),
            code("time.sleep(30)\nx = 1"),
            code(
                "from sklearn.datasets import load_iris\nfrom sklearn.tree import DecisionTreeClassifier\n"
                "X, y = load_iris(return_X_y=True)\nmodel = DecisionTreeClassifier().fit(X, y)",
                "train",
            ),
        ]
    )
    result = convert(notebook, "--timeout", "2")
    assert result.returncode == 3
    assert "cell 2 (`time.sleep(30)`) raised TimeoutError: the cell ran longer than 2 s" in result.stderr


def test_named_model_that_does_not_exist(tmp_path: Path) -> None:
    result = convert(fixture("ok_minimal", tmp_path), "--model", "nope")
    assert result.returncode == 1  # found by lint, before the run
    assert "the model is `nope`, but no cell assigns it" in result.stderr


def test_model_fitted_without_preprocess_is_caught_at_capture(make_notebook) -> None:
    notebook = make_notebook(
        [
            code("from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True, as_frame=True)", "load"),
            code("def preprocess(frame):\n    return frame.assign(extra=1.0)", "preprocess"),
            code(
                "from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier().fit(X, y)\nclf.fit(X, y)",
                "train",
            ),
        ]
    )
    result = convert(notebook)
    assert result.returncode == 4
    assert "the model could not predict row 0 of its own input sample (preprocess(row))" in result.stderr
    assert "model.predict(preprocess(X))" in result.stderr


def test_unsupported_column_type(make_notebook) -> None:
    notebook = make_notebook(
        [
            code(
                "import pandas as pd\nX = pd.DataFrame({'when': pd.date_range('2024-01-01', periods=6), 'v': range(6)})\n"
                "y = [0, 1, 0, 1, 0, 1]",
                "load",
            ),
            code("from sklearn.dummy import DummyClassifier\nclf = DummyClassifier()\nclf.fit(X, y)", "train"),
        ]
    )
    result = convert(notebook)
    assert result.returncode == 4
    assert "column `when` has dtype datetime64" in result.stderr
    assert "convert other columns (dates, objects)" in result.stderr


def test_metrics_that_are_not_numbers(make_notebook) -> None:
    notebook = make_notebook(
        [
            code("from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)", "load"),
            code(
                "from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier()\nclf.fit(X, y)",
                "train",
            ),
            code("metrics = {'accuracy': 'high'}", "evaluate"),
        ]
    )
    result = convert(notebook)
    assert result.returncode == 0, result.stderr  # a warning, never a failure
    assert "warning:" in result.stderr
    assert "`metrics['accuracy']` is 'high', not a finite number; it is left out of the manifest's metrics" in (
        result.stderr
    )
    required = convert(notebook, "--require", "accuracy>=0.5", "--force")
    assert required.returncode == 5
    assert "no metric `accuracy` (metrics: none): `metrics['accuracy']` is 'high', not a finite number" in (
        required.stderr
    )

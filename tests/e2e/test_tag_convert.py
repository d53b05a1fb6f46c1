"""`nb2prod tag --write`, then `convert`, on notebooks nobody tagged by hand.

The examples with their role tags stripped must convert to the same service as their hand-tagged
versions (same golden answers, same model file). The tutorial-style notebooks in tests/notebooks
(EDA, plots, several candidate models, `from sklearn import metrics`, `%matplotlib inline`) must
become convertible, and their services must answer like the notebook: the generated tests, which
replay the notebook's own answers, pass against the generated app in this environment. Those that
build their frame themselves (`pd.DataFrame({...draws...})`, `pd.DataFrame(records)`) serve that
frame's columns (label and dropped columns left out), and answer its rows under uvicorn exactly as
the notebook's model answers its engineered rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import numpy as np
import pytest

from tests.conftest import EXAMPLES, FIXTURES, ConvertExample, code, run_cli
from tests.e2e.service import run_notebook_here, serving_here

pytestmark = pytest.mark.slow
ROLES = {"parameters", "load", "preprocess", "train", "evaluate", "skip"}
COMPARED = ("model", "input_schema", "output", "metrics", "parameters")


def strip_roles(source: Path, target: Path) -> Path:
    """A copy of `source` without nb2prod role tags (other tags and metadata stay)."""
    notebook = nbformat.read(str(source), as_version=4)
    for cell in notebook.cells:
        tags = [t for t in cell.metadata.get("tags", []) if t not in ROLES]
        cell.metadata.pop("tags", None)
        if tags:
            cell.metadata["tags"] = tags
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(target))
    return target


def converted(notebook: Path, out: Path, *args: str) -> tuple[dict, dict, str]:
    result = run_cli("convert", notebook, "-o", out, *args, timeout=600)
    return written(out, result)


def written(out: Path, result: subprocess.CompletedProcess[str]) -> tuple[dict, dict, str]:
    assert result.returncode == 0, result.stderr
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    golden = json.loads((out / "tests" / "golden.json").read_text())
    return manifest, golden, result.stderr


def tag_write(notebook: Path, *args: str) -> str:
    result = run_cli("tag", notebook, *args, "--write")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_tagging_an_untagged_example_gives_the_hand_tagged_service(
    example: Path, tmp_path: Path, convert_example: ConvertExample
) -> None:
    auto = strip_roles(example, tmp_path / "auto" / example.name)
    assert run_cli("convert", auto, "-o", tmp_path / "refused").returncode == 1  # no roles yet
    tag_write(auto)
    hand_manifest, hand_golden, _ = written(*convert_example(example))  # the hand-tagged example, as it is
    auto_manifest, auto_golden, _ = converted(auto, tmp_path / "auto-out")
    assert auto_golden["examples"] == hand_golden["examples"]
    for key in COMPARED:
        assert auto_manifest[key] == hand_manifest[key], key
    assert auto_manifest["artifacts"]["model.joblib"] == hand_manifest["artifacts"]["model.joblib"]


def run_generated_tests(out: Path) -> None:
    """The generated project's own tests, against its app, with this environment's packages."""
    env = {**os.environ, "PYTHONPATH": str(out / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tests")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=out,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def tutorial(name: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{name}.ipynb"
    shutil.copy(FIXTURES / f"{name}.ipynb", target)
    return target


def converted_raw(notebook: Path, out: Path, frame: str, *args: str) -> tuple[dict, str]:
    """Convert; the service must take the raw columns of `frame`, and say so."""
    result = run_cli("convert", notebook, "-o", out, *args, timeout=600)
    manifest, _, _ = written(out, result)
    assert f"input: raw columns of `{frame}`" in result.stdout, result.stdout
    return manifest, result.stdout


def assert_answers_raw_rows(here: Path, out: Path, frame: str, model: str) -> None:
    """Rows of the notebook's raw frame, sent to the service under uvicorn as the client has them
    (its input fields only), get the answers of the notebook's own model on its engineered rows
    (`X`, run here from `here`: the notebook as it ran)."""
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    fields = [f["name"] for f in manifest["input_schema"]["features"]]
    namespace = run_notebook_here(here)
    rows = namespace[frame].index[:40]
    records = json.loads(namespace[frame].loc[rows, fields].to_json(orient="records"))
    fitted, engineered = namespace[model], namespace["X"].loc[rows]
    with serving_here(out, out / "server.log") as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    answers = response.json()
    if hasattr(fitted, "predict_proba"):
        assert answers["predictions"] == fitted.predict(engineered).tolist()
        classes = [str(c) for c in fitted.classes_]
        served = [[p[c] for c in classes] for p in answers["probabilities"]]
        np.testing.assert_allclose(served, fitted.predict_proba(engineered), rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(answers["predictions"], fitted.predict(engineered), rtol=1e-9)


def test_churn_tutorial_compares_models_and_serves_the_frame_it_fits_on_as_values(tmp_path: Path) -> None:
    notebook = tutorial("tutorial_churn", tmp_path)
    shown = tag_write(notebook)
    # the frame of random draws is where the raw frame begins; the dummies and `.values` are replayed
    assert "(`rng = np.random.default_rng(7)`)  load: makes the raw frame `df` (line 3 builds it with" in shown
    assert "(`df.head()`)  skip: only displays `df.head()`" in shown
    assert "skip: fits `candidate`, not the served model `clf`" in shown
    assert "train, evaluate: fits `clf` (the served model); computes `accuracy_score`" in shown
    assert "preprocess: prepares the fit input: defines `X`" in shown
    assert "the service will take raw columns of `df`" in shown
    result = run_cli("convert", notebook, "-o", tmp_path / "out", timeout=600)
    manifest, golden, stderr = written(tmp_path / "out", result)
    raw = ["tenure", "monthly_charges", "support_calls", "contract", "paperless"]
    assert f"input: raw columns of `df`: 5 columns, {', '.join(f'`{c}`' for c in raw)}" in result.stdout
    # `from sklearn import metrics` makes `metrics` a module; the evaluate cell's metric call is the metric
    assert "`metrics` is the module sklearn.metrics" not in stderr
    assert set(manifest["metrics"]) == {"accuracy_score"} and manifest["metrics"]["accuracy_score"] > 0.5
    assert [f["name"] for f in manifest["input_schema"]["features"]] == raw  # no label, no dummy columns
    assert golden["examples"] and set(golden["examples"][0]["input"]) == set(raw)
    run_generated_tests(tmp_path / "out")
    assert_answers_raw_rows(notebook, tmp_path / "out", "df", "clf")


def test_houses_tutorial_serves_the_model_it_predicts_with_last(tmp_path: Path) -> None:
    notebook = tutorial("tutorial_houses", tmp_path)
    shown = tag_write(notebook)  # three models are compared; the residuals plot predicts with `gbr`
    assert "skip: fits `ridge`, not the served model `gbr`" in shown
    assert "(`SEED = 3`)  parameters" in shown and "(`%%time`)  train: fits `gbr`" in shown
    assert "load: makes the raw frame `houses` (line 2 builds it with `pd.DataFrame`)" in shown
    assert '(`features = ["area", "rooms", "age", "distance_km"]`)  preprocess: prepares the fit input' in shown
    assert "the service will take raw columns of `houses`" in shown
    manifest, stdout = converted_raw(notebook, tmp_path / "out", "houses", "-p", "N_HOUSES", "300")
    assert manifest["model"]["variable"] == "gbr" and manifest["parameters"]["N_HOUSES"] == 300
    assert "input: raw columns of `houses`: 4 columns, `area`, `rooms`, `age`, `distance_km`" in stdout
    fields = [f["name"] for f in manifest["input_schema"]["features"]]
    assert fields == ["area", "rooms", "age", "distance_km"]  # the frame's columns without the label `price`
    run_generated_tests(tmp_path / "out")
    here = nbformat.read(notebook, as_version=4)  # the notebook as it ran: with the parameter given
    parameters = next(c for c in here.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = parameters.source.replace("N_HOUSES = 600", "N_HOUSES = 300")
    nbformat.write(here, str(tmp_path / "as_run.ipynb"))
    assert_answers_raw_rows(tmp_path / "as_run.ipynb", tmp_path / "out", "houses", "gbr")


def test_transformer_tutorial_ships_its_class_and_drops_display_magics(tmp_path: Path) -> None:
    notebook = tutorial("tutorial_transformer", tmp_path)
    shown = tag_write(notebook)
    assert "preprocess: imports `BaseEstimator`, `TransformerMixin`, `np` for the preprocess code in cell 7" in shown
    assert "preprocess: defines `LogMoney`, used by `pipe`" in shown
    assert "load: makes the raw frame `loans` (line 3 builds it with `pd.DataFrame`)" in shown
    assert "the service will take raw columns of `loans`" in shown
    result = run_cli("convert", notebook, "-o", tmp_path / "out", timeout=600)
    manifest, _, stderr = written(tmp_path / "out", result)
    assert "input: raw columns of `loans`: 4 columns" in result.stdout
    fields = [f["name"] for f in manifest["input_schema"]["features"]]
    assert fields == ["income", "loan_amount", "years_employed", "credit_lines"]  # without the label `default`
    assert "`%matplotlib inline` only changes how the notebook shows output" in stderr
    assert "`%load_ext autoreload`" in stderr and "`%autoreload 2`" in stderr
    module = next((tmp_path / "out").glob("src/*/preprocessing.py")).read_text()
    # the module replays the cells: the display magics stay, as comments, where the notebook had them
    assert "\n#matplotlib inline\n#load_ext autoreload\n#autoreload 2\n" in module and "%" not in module
    assert "class LogMoney" in module and "def signed_log" in module
    run_generated_tests(tmp_path / "out")
    assert_answers_raw_rows(notebook, tmp_path / "out", "loans", "pipe")


def test_a_write_changes_cell_metadata_only(tmp_path: Path) -> None:
    notebook = tutorial("tutorial_churn", tmp_path)
    before = notebook.read_text().splitlines()
    tag_write(notebook)
    after = notebook.read_text().splitlines()
    removed = [line for line in before if line not in after]
    added = [line.strip() for line in after if line not in before]
    assert removed == [line for line in before if line.strip() == '"metadata": {},'][: len(removed)]
    allowed = {
        '"metadata": {',
        '"tags": [',
        '"skip"',
        '"train"',
        '"evaluate"',
        '"load"',
        '"preprocess"',
        "]",
        "},",
        '"train",',
    }
    assert set(added) <= allowed


def test_metrics_module_is_a_warning_and_a_named_dict_is_used(make_notebook, tmp_path: Path) -> None:
    cells = [
        code("from sklearn import metrics\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"),
        code("from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier(max_depth=2).fit(X, y)"),
        code("accuracy = metrics.accuracy_score(y, clf.predict(X))\nresults = {'accuracy': accuracy}"),
    ]
    plain = make_notebook(cells, name="plain.ipynb")
    tag_write(plain)
    required = run_cli("convert", plain, "-o", tmp_path / "plain-out", "--require", "accuracy>=0.5")
    assert required.returncode == 5
    assert (
        "no metric `accuracy` (metrics: none): `metrics` is the module sklearn.metrics, not a dict" in required.stderr
    )
    named = make_notebook(cells, name="named.ipynb", nb2prod={"metrics": "results"})
    tag_write(named)
    manifest, _, stderr = converted(named, tmp_path / "named-out", "--require", "accuracy>=0.5")
    assert manifest["metrics"]["accuracy"] > 0.9 and "warning:" not in stderr


def test_metadata_labels_name_the_classes_of_a_0_1_model(make_notebook, tmp_path: Path) -> None:
    cells = [
        code(
            "import numpy as np\nimport pandas as pd\nrng = np.random.default_rng(0)\n"
            "X = pd.DataFrame({'a': rng.normal(size=200), 'b': rng.normal(size=200)})\ny = (X['a'] + X['b'] > 0).astype(int)"
        ),
        code("from sklearn.linear_model import LogisticRegression\nclf = LogisticRegression().fit(X, y)"),
    ]
    wrong = make_notebook(cells, name="wrong.ipynb", nb2prod={"labels": {"no": "stay", "yes": "churn"}})
    tag_write(wrong)
    refused = run_cli("convert", wrong, "-o", tmp_path / "wrong-out")
    assert refused.returncode == 4
    assert "names no, yes, but the model's classes are 0, 1" in refused.stderr
    notebook = make_notebook(cells, name="labelled.ipynb", nb2prod={"labels": {"0": "stay", "1": "churn"}})
    tag_write(notebook)
    manifest, golden, stderr = converted(notebook, tmp_path / "out")
    assert "classes 0 -> 'stay', 1 -> 'churn' (notebook metadata nb2prod.labels)" in stderr
    assert manifest["output"]["classes"] == ["stay", "churn"]
    assert {e["prediction"] for e in golden["examples"]} <= {"stay", "churn"}
    assert set(golden["examples"][0]["probabilities"]) == {"stay", "churn"}
    run_generated_tests(tmp_path / "out")


def test_loans_tutorial_runs_its_record_loop_and_reports_its_metric_calls(tmp_path: Path) -> None:
    """The cell that converts the CSV records' numbers in place, through a loop over the records,
    must run: skipped, the numbers stay text and `get_dummies` turns each distinct value into a
    column. The evaluate cell's `accuracy_score(y_test, pred)` and `model.score(X_test, y_test)` are
    the metrics, and `--require` gates on them."""
    from nb2prod.errors import RequirementNotMet
    from nb2prod.notebook.spec import read_notebook
    from nb2prod.options import MetricRequirement
    from nb2prod.pipeline import check_requirements

    notebook = tutorial("tutorial_loans", tmp_path)
    shutil.copy(FIXTURES / "loans.csv", tmp_path / "loans.csv")
    shown = tag_write(notebook)
    assert '(`NUMBERS = ["income", "amount", "years", "default"]`)  (untagged): prepares the fit input: ' in shown
    assert "skip: fits `lr`, not the served model `model`" in shown
    # the raw frame begins where the records become a frame; the label encoded there is not a feature
    assert "(`df = pd.DataFrame(records)`)  load: makes the raw frame `df` (line 1 builds it with" in shown
    assert '(`df["ratio"] = df["amount"] / df["income"]`)  preprocess: prepares the fit input' in shown
    assert "the service will take raw columns of `df`" in shown
    result = run_cli("convert", notebook, "-o", tmp_path / "out", "--require", "accuracy_score>=0.6", timeout=600)
    manifest, golden, stderr = written(tmp_path / "out", result)
    assert "input: raw columns of `df`: 4 columns, `income`, `amount`, `years`, `purpose`" in result.stdout
    assert set(manifest["metrics"]) == {"accuracy_score", "f1_score", "score"}
    assert manifest["metrics"]["score"] == manifest["metrics"]["accuracy_score"] > 0.6
    features = {f["name"]: f["dtype"] for f in manifest["input_schema"]["features"]}
    # loans.csv's columns without the label; `ratio` and the dummies are made per request
    assert features == {"income": "float64", "amount": "float64", "years": "float64", "purpose": "str"}
    assert len(golden["examples"]) == 20
    assert_answers_raw_rows(notebook, tmp_path / "out", "df", "model")
    spec = read_notebook(notebook)
    check_requirements(spec, (MetricRequirement.parse("score>=0.6"),), manifest["metrics"])
    with pytest.raises(RequirementNotMet, match=r"f1_score is 0\.\d+, but --require asks f1_score>=0\.99"):
        check_requirements(spec, (MetricRequirement.parse("f1_score>=0.99"),), manifest["metrics"])

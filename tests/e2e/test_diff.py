"""`nb2prod diff` and `convert --compatible-with` on real conversions.

The customers example retrained with more rows and another seed: the report's metric change,
changed answers and training-data shift are checked against the same figures computed here, from
the notebook's own data regenerated in this process and the two models. A subscriptions notebook
whose parameters drop a column, narrow a category or add an optional column: the break exits 7
naming both and `--compatible-with` refuses it, writing nothing; the optional column passes, with
a KServe canary.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import jsonschema
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from nb2prod.diff.report import SCHEMA_FILE
from tests.conftest import EXAMPLES, FIXTURES, ConvertExample, run_cli

pytestmark = pytest.mark.slow

CUSTOMERS = EXAMPLES / "customers_mixed.ipynb"
RETRAIN = {"n_rows": 900, "seed": 7}


@pytest.fixture(scope="module")
def retrained(convert_example: ConvertExample, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    old, done = convert_example(CUSTOMERS)
    assert done.returncode == 0, done.stderr
    new = tmp_path_factory.mktemp("retrained") / "service"
    parameters = [arg for name, value in RETRAIN.items() for arg in ("-p", name, str(value))]
    done = run_cli("convert", CUSTOMERS, "-o", new, *parameters, timeout=600)
    assert done.returncode == 0, done.stderr
    return old, new


def training_frame(n_rows: int, seed: int) -> pd.DataFrame:
    """X_train of the customers notebook, by running its load and split cells here."""
    cells = nbformat.read(str(CUSTOMERS), as_version=4).cells
    sources = [c.source for c in cells if "default_rng(seed)" in c.source or "train_test_split(" in c.source]
    namespace: dict[str, Any] = {"n_rows": n_rows, "seed": seed, "test_size": 0.25}
    for source in sources:
        exec(source, namespace)  # noqa: S102 - the example notebook's own cells
    return namespace["X_train"]


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads(next(folder.glob("src/*/artifacts/manifest.json")).read_text(encoding="utf-8"))


def golden_of(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "tests" / "golden.json").read_text(encoding="utf-8"))["examples"]


def psi_by_rows(old: pd.Series, new: pd.Series) -> float:
    """PSI over ten bins cut at OLD's deciles, plus a bin of nulls, from the rows themselves."""
    edges = np.unique(np.quantile(old.dropna(), np.arange(1, 10) / 10))
    shares = []
    for values in (old, new):
        counts = np.histogram(values.dropna(), bins=[-np.inf, *edges, np.inf])[0]
        counts = np.append(counts, values.isna().sum())
        shares.append(np.maximum(counts / len(values), 1e-4))
    return float(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))


def test_retrained_example_reports_metrics_answers_and_training_shift(
    retrained: tuple[Path, Path], tmp_path: Path
) -> None:
    old, new = retrained
    before, after = training_frame(600, 42), training_frame(**RETRAIN)
    rows = tmp_path / "rows.csv"
    after.head(50).to_csv(rows, index=False)
    done = run_cli("diff", old, new, "--format", "json", "--rows", rows, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    assert report["api"]["changes"] == [] or not any(c["severity"] == "breaking" for c in report["api"]["changes"])
    assert report["lineage"]["parameters"] == {"n_rows": [600, 900], "seed": [42, 7]}
    assert report["lineage"]["notebook_changed"] is False

    old_manifest, new_manifest = manifest_of(old), manifest_of(new)
    for metric in report["metrics"]:
        expected = new_manifest["metrics"][metric["name"]] - old_manifest["metrics"][metric["name"]]
        assert metric["change"] == pytest.approx(expected)
    assert {m["name"] for m in report["metrics"]} == {"accuracy", "roc_auc"}

    assert report["training_data"]["old_rows"] == len(before) and report["training_data"]["new_rows"] == len(after)
    shifts = {f["name"]: f for f in report["training_data"]["features"]}
    for name in ("age", "income", "monthly spend"):
        shift = shifts[name]
        assert (shift["old_min"], shift["new_max"]) == (before[name].min(), after[name].max())
        assert shift["new_null_share"] == pytest.approx(after[name].isna().mean())
        assert shift["psi"] == pytest.approx(psi_by_rows(before[name], after[name]), abs=0.02)
    city = shifts["city"]
    old_share = before["city"].value_counts().get("Oslo", 0) / len(before)
    new_share = after["city"].value_counts().get("Oslo", 0) / len(after)
    assert city["frequency_changes"]["Oslo"] == pytest.approx(new_share - old_share)
    assert city["new_null_share"] == pytest.approx(after["city"].isna().mean())

    # Each model on the other's golden rows, computed here with the two model files.
    models = {folder: joblib.load(next(folder.glob("src/*/artifacts/model.joblib"))) for folder in (old, new)}
    sets = {s["rows"]: s for s in report["answers"]["sets"]}
    for label, scorer, other in (("OLD's golden rows", new, old), ("NEW's golden rows", old, new)):
        examples = golden_of(other)
        frame = pd.DataFrame([e["input"] for e in examples])[list(before.columns)].astype(before.dtypes.to_dict())
        probabilities = models[scorer].predict_proba(frame)
        churn = list(models[scorer].classes_).index("churn")
        moved = [abs(p[churn] - e["probabilities"]["churn"]) for p, e in zip(probabilities, examples, strict=True)]
        labels = models[scorer].predict(frame)
        changed = sum(label != e["prediction"] for label, e in zip(labels, examples, strict=True))
        assert sets[label]["scored"] == len(examples)
        assert sets[label]["changed"] == changed
        by_class = {c["name"]: c for c in sets[label]["classes"]}
        assert by_class["churn"]["largest"] == pytest.approx(max(moved), abs=1e-9)
        assert by_class["churn"]["mean"] == pytest.approx(float(np.mean(moved)), abs=1e-9)
    flipped = models[old].predict(after.head(50)) != models[new].predict(after.head(50))
    assert (sets[str(rows)]["scored"], sets[str(rows)]["changed"]) == (50, int(flipped.sum()))
    assert report["answers"]["changed"] == sum(s["changed"] for s in sets.values())

    text = run_cli("diff", old, new, "--max-changed", "0", timeout=600)
    for title in ("API", "Answers:", "Training data:", "Metrics", "Lineage"):
        assert title in text.stdout
    if report["answers"]["changed"]:
        assert text.returncode == 7 and "answers changed (--max-changed 0)" in text.stdout
    else:
        assert text.returncode == 0


@pytest.fixture(scope="module")
def subscriptions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The subscriptions notebook (in a folder of its own) and its default conversion."""
    folder = tmp_path_factory.mktemp("subscriptions")
    notebook = folder / "subscriptions_retrain.ipynb"
    shutil.copy(FIXTURES / "subscriptions_retrain.ipynb", notebook)
    base = folder / "base"
    done = run_cli("convert", notebook, "-o", base, timeout=600)
    assert done.returncode == 0, done.stderr
    return notebook, base


def test_dropped_column_and_narrowed_category_exit_7_and_are_refused(
    subscriptions: tuple[Path, Path], tmp_path: Path
) -> None:
    notebook, base = subscriptions
    breaking = ["-p", "drop_region", "true", "-p", "narrow_plans", "true"]
    broken = tmp_path / "broken"
    assert run_cli("convert", notebook, "-o", broken, *breaking, timeout=600).returncode == 0
    done = run_cli("diff", base, broken, timeout=600)
    assert done.returncode == 7, done.stdout + done.stderr
    assert "field `region` was removed" in done.stdout
    assert "`plan` no longer takes 'premium'" in done.stdout
    assert "breaking: 3 breaking API change(s)" in done.stdout  # the two, and the v2 input `region`
    assert "lacks the column(s) `region`" in done.stdout  # OLD cannot score NEW's rows, and says why

    refused = tmp_path / "refused"
    done = run_cli("convert", notebook, "-o", refused, *breaking, "--compatible-with", base, timeout=600)
    assert done.returncode == 7, done.stdout + done.stderr
    assert "nothing was written" in done.stderr
    cell = "cell 6 (`# what changed in this month's export`)"
    assert f"field `region` was removed (made by {cell})" in done.stderr
    assert f"`plan` no longer takes 'premium': requests with it are refused (made by {cell})" in done.stderr
    assert not refused.exists()
    assert not list(tmp_path.glob("*.failed.ipynb"))


def test_added_optional_column_is_compatible_and_can_be_a_canary(
    subscriptions: tuple[Path, Path], tmp_path: Path
) -> None:
    notebook, base = subscriptions
    added = tmp_path / "added"
    done = run_cli(
        "convert",
        notebook,
        "-o",
        added,
        "-p",
        "add_channel",
        "true",
        "--compatible-with",
        base,
        "--canary",
        "10",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    old_version = manifest_of(base)["version"]
    history = manifest_of(added)["history"]
    assert history["checked_against"] == old_version and history["breaking"] == 0
    added_field = [c for c in history["changes"] if c.startswith("field `channel` (")]
    assert len(added_field) == 1 and added_field[0].endswith(") was added and may be left out")
    readme = (added / "README.md").read_text(encoding="utf-8")
    assert f"## Changes since {old_version}" in readme and "### Canary" in readme
    service = yaml.safe_load((added / "deploy/kubernetes/kserve/inferenceservice.yaml").read_text())
    assert service["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")

    done = run_cli("diff", base, added, "--format", "json", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    changes = report["api"]["changes"]
    assert ("compatible", "channel", "added (optional)") in {(c["severity"], c["field"], c["change"]) for c in changes}
    assert all(c["severity"] == "compatible" for c in changes)
    # NEW takes OLD's golden rows without the optional field, and OLD takes NEW's (it ignores `channel`).
    assert [(s["scored"], s["problem"]) for s in report["answers"]["sets"]] == [(20, None), (20, None)]

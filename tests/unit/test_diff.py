"""`nb2prod diff`'s sections on manifests, without a kernel: the API check, the training-data
shift, metrics and lineage, the JSON Schema, the cell a breaking change is put on, and the KServe
canary and README of a version checked with `--compatible-with`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import yaml

from nb2prod.diff.api import compare_api
from nb2prod.diff.blame import blame
from nb2prod.diff.compare import diff_manifests
from nb2prod.diff.data import DECILES, bin_shares, cdf, compare_training_data, decile_edges, feature_shift, psi
from nb2prod.diff.report import SCHEMA_FILE, ApiChange, json_schema
from nb2prod.manifest import FeatureProfile, HistoryRecord, Manifest
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code, run_cli, write_notebook
from tests.golden_render import render_branch, stored_capture


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in model files: rendering reads their bytes only for the digest."""
    folder = tmp_path_factory.mktemp("models")
    report = stored_capture("customers_mixed", folder).report
    for name in filter(None, [report.model_file, report.inference.file]):
        (folder / name).write_bytes(b"stand-in")
    return folder


@pytest.fixture(scope="module")
def customers(model_dir: Path) -> Manifest:
    """The manifest of the customers example (age, income, city, plan, is_member, monthly spend)."""
    files = render_branch("customers_mixed", model_dir)
    return Manifest.model_validate_json(files["src/customers_mixed/artifacts/manifest.json"])


def with_features(manifest: Manifest, change: Any) -> Manifest:
    """`manifest` with its features edited by `change(features)`, the JSON Schema's `required` to fit."""
    features = [dict(f) for f in manifest.input_schema.features]
    features = change(features) or features
    schema = dict(manifest.input_schema.json_schema)
    schema["required"] = [f["name"] for f in features if not f["nullable"] or f.get("nullable_because")]
    record = manifest.input_schema.model_copy(update={"features": features, "json_schema": schema})
    return manifest.model_copy(update={"input_schema": record})


def feature(features: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(f for f in features if f["name"] == name)


def summary(changes: list[ApiChange]) -> set[tuple[str, str, str | None, str]]:
    return {(c.severity, c.where, c.field, c.change) for c in changes}


# --- the API check ------------------------------------------------------------------------------


def test_same_manifest_has_no_api_change(customers: Manifest) -> None:
    assert compare_api(customers, customers).changes == []


def test_dropped_column_and_narrowed_category_are_breaking(customers: Manifest) -> None:
    def change(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        feature(features, "plan")["categories"] = ["basic", "plus"]
        return [f for f in features if f["name"] != "city"]

    api = compare_api(customers, with_features(customers, change))
    assert summary(api.breaking) == {
        ("breaking", "input", "city", "removed"),
        ("breaking", "input", "plan", "category removed"),
        ("breaking", "v2", "city", "input removed"),
    }
    (removed_plan,) = [c for c in api.breaking if c.change == "category removed"]
    assert removed_plan.value == "premium"
    assert "premium" in removed_plan.detail


def test_added_optional_field_and_category_and_wider_range_are_compatible(customers: Manifest) -> None:
    def change(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        feature(features, "plan")["categories"] = ["basic", "plus", "premium", "family"]
        feature(features, "age")["max"] = 95
        channel = {"name": "channel", "dtype": "object", "kind": "string", "nullable": True, "categories": ["web"]}
        return [*features, channel]

    api = compare_api(customers, with_features(customers, change))
    assert api.breaking == []
    assert summary(api.changes) == {
        ("compatible", "input", "channel", "added (optional)"),
        ("compatible", "input", "plan", "category added"),
        ("compatible", "input", "age", "wider range"),
        ("compatible", "v2", "channel", "input added"),
    }


def test_added_required_field_and_made_required_are_breaking(customers: Manifest) -> None:
    def change(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        feature(features, "income")["nullable"] = False
        return [
            *features,
            {"name": "tenure", "dtype": "int64", "kind": "integer", "nullable": False, "min": 0, "max": 9},
        ]

    assert summary(compare_api(customers, with_features(customers, change)).breaking) == {
        ("breaking", "input", "tenure", "added (required)"),
        ("breaking", "input", "income", "made required"),
        ("breaking", "v2", "tenure", "input added"),
    }


def test_rename_with_same_statistics_is_reported_as_likely(customers: Manifest) -> None:
    def change(features: list[dict[str, Any]]) -> None:
        feature(features, "income")["name"] = "salary"

    api = compare_api(customers, with_features(customers, change))
    (renamed,) = [c for c in api.changes if c.where == "input"]
    assert (renamed.severity, renamed.field, renamed.change) == ("breaking", "income", "renamed")
    assert "likely renamed to `salary`" in renamed.detail


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("int64", "int32", ("breaking", "narrower integer dtype")),
        ("int32", "int64", ("compatible", "wider integer dtype")),
    ],
)
def test_integer_dtype_narrowed_breaks_and_widened_does_not(
    customers: Manifest, old: str, new: str, expected: tuple[str, str]
) -> None:
    before = with_features(customers, lambda fs: feature(fs, "age").update(dtype=old))
    after = with_features(customers, lambda fs: feature(fs, "age").update(dtype=new))
    inputs = [c for c in compare_api(before, after).changes if c.where == "input"]
    assert [(c.severity, c.change) for c in inputs] == [expected]
    v2 = [c for c in compare_api(before, after).changes if c.where == "v2"]
    assert [c.severity for c in v2] == [expected[0]]  # INT64 <-> INT32 tensors


def test_retyped_field_and_integer_to_number(customers: Manifest) -> None:
    retyped = with_features(customers, lambda fs: feature(fs, "is_member").update(kind="string", dtype="object"))
    assert ("breaking", "input", "is_member", "retyped") in summary(compare_api(customers, retyped).changes)
    widened = with_features(customers, lambda fs: feature(fs, "age").update(kind="number", dtype="float64"))
    changes = compare_api(customers, widened).changes
    assert ("compatible", "input", "age", "widened") in summary(changes)
    assert ("compatible", "v2", "age", "input retyped") in summary(changes)  # INT64 -> FP64 still takes integers


def test_class_removed_and_task_change_are_breaking(customers: Manifest) -> None:
    fewer = customers.model_copy(update={"output": customers.output.model_copy(update={"classes": ["stay"]})})
    assert ("breaking", "output", "churn", "class removed") in summary(compare_api(customers, fewer).breaking)
    regression = customers.model_copy(
        update={
            "model": customers.model.model_copy(update={"task": "regression"}),
            "output": customers.output.model_copy(update={"classes": None}),
        }
    )
    breaking = summary(compare_api(customers, regression).breaking)
    assert ("breaking", "task", None, "task changed") in breaking
    assert ("breaking", "v2", "predict_proba", "output removed") in breaking


# --- training data ------------------------------------------------------------------------------


def profile(name: str, values: np.ndarray, nulls: int = 0) -> FeatureProfile:
    quantiles = [float(v) for v in np.quantile(values, np.linspace(0, 1, 101))]
    return FeatureProfile(name=name, kind="number", rows=len(values) + nulls, null_count=nulls, quantiles=quantiles)


def test_cdf_from_percentiles_is_the_empirical_share_within_a_percentile() -> None:
    values = np.random.default_rng(0).normal(size=5000)
    quantiles = [float(v) for v in np.quantile(values, np.linspace(0, 1, 101))]
    for x in (-2.0, -0.5, 0.0, 0.3, 1.7):
        assert abs(cdf(quantiles, x) - float(np.mean(values <= x))) < 0.01
    assert cdf(quantiles, -99) == 0.0 and cdf(quantiles, 99) == 1.0


def test_psi_of_a_sample_against_itself_is_zero_and_of_a_shift_is_large() -> None:
    rng = np.random.default_rng(1)
    old = profile("x", rng.normal(size=4000))
    same = feature_shift(old, old)
    assert same.psi == pytest.approx(0.0, abs=1e-12) and same.flagged == []
    moved = feature_shift(old, profile("x", rng.normal(1.0, 1.0, size=4000)))
    # Computed here from the two samples' deciles: ten bins cut at OLD's deciles.
    edges = decile_edges(old.quantiles or [])
    assert len(edges) == DECILES - 1
    assert moved.psi is not None and moved.psi > 0.25
    assert moved.flagged[0].startswith("PSI") and "threshold 0.25" in moved.flagged[0]


def test_psi_matches_a_computation_on_the_rows() -> None:
    rng = np.random.default_rng(2)
    old_rows, new_rows = rng.gamma(2.0, 30.0, size=3000), rng.gamma(2.4, 30.0, size=2500)
    shift = feature_shift(profile("spend", old_rows), profile("spend", new_rows))
    edges = np.quantile(old_rows, np.arange(1, 10) / 10)
    expected = np.histogram(old_rows, bins=[-np.inf, *edges, np.inf])[0] / len(old_rows)
    actual = np.histogram(new_rows, bins=[-np.inf, *edges, np.inf])[0] / len(new_rows)
    by_rows = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert shift.psi == pytest.approx(by_rows, abs=0.01)
    assert (shift.old_min, shift.new_max) == (pytest.approx(old_rows.min()), pytest.approx(new_rows.max()))


def test_null_share_and_listed_values_shift() -> None:
    values = np.arange(100.0)
    nulls = feature_shift(profile("income", values, nulls=0), profile("income", values, nulls=25))
    assert nulls.new_null_share == pytest.approx(0.2)
    assert any(flag.startswith("null share 0.000 -> 0.200") for flag in nulls.flagged)
    old = FeatureProfile(
        name="plan", kind="category", rows=100, null_count=0, frequencies=[("basic", 50), ("premium", 50)]
    )
    new = FeatureProfile(
        name="plan", kind="category", rows=100, null_count=0, frequencies=[("basic", 70), ("plus", 30)]
    )
    shift = feature_shift(old, new)
    assert (shift.new_values, shift.vanished_values) == (["plus"], ["premium"])
    assert shift.frequency_changes == pytest.approx({"basic": 0.2, "plus": 0.3, "premium": -0.5})
    assert shift.psi is not None and shift.psi > 0.25


def test_bin_shares_add_up_with_nulls() -> None:
    quantiles = [float(v) for v in np.linspace(0, 100, 101)]
    shares = bin_shares(quantiles, 0.1, decile_edges(quantiles))
    assert sum(shares) == pytest.approx(1.0) and shares[-1] == 0.1
    assert psi(shares, shares) == 0.0


def test_manifest_without_a_profile_says_so(customers: Manifest) -> None:
    older = customers.model_copy(update={"training_data": None})  # a manifest from before profiles
    section = compare_training_data(older, older)
    assert section.features == [] and "keeps no training profile" in (section.problem or "")


# --- metrics, lineage, the report and its schema -------------------------------------------------


def test_metrics_and_lineage(customers: Manifest) -> None:
    new = customers.model_copy(
        update={
            "metrics": {"accuracy": 0.8, "f1": 0.5},
            "parameters": {**customers.parameters, "n_rows": 900},
            "packages": {**customers.packages, "scikit-learn": "0.0.1"},
        }
    )
    report = diff_manifests(customers, new)
    accuracy = next(m for m in report.metrics if m.name == "accuracy")
    assert accuracy.change == pytest.approx(0.8 - customers.metrics["accuracy"])
    assert next(m for m in report.metrics if m.name == "f1").old is None
    assert report.lineage.parameters == {"n_rows": [600, 900]}
    assert [p.name for p in report.lineage.packages] == ["scikit-learn"]
    assert not report.lineage.notebook_changed and not report.breaking


def test_shipped_schema_is_the_reports_and_validates_a_report(customers: Manifest) -> None:
    shipped = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert shipped == json.loads(json.dumps(json_schema())), "regenerate nb2prod/diff/schema.json from json_schema()"
    broken = with_features(customers, lambda fs: [f for f in fs if f["name"] != "city"])
    document = json.loads(diff_manifests(customers, broken).to_json())
    jsonschema.Draft202012Validator.check_schema(shipped)
    jsonschema.validate(document, shipped, cls=jsonschema.Draft202012Validator)
    document["api"]["changes"][0]["severity"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, shipped, cls=jsonschema.Draft202012Validator)


# --- the cell that made a change ---------------------------------------------------------------


def test_blame_names_the_cell_that_drops_or_filters(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "nb.ipynb",
        [
            code("drop = False", "parameters"),
            code('df = make(["north", "south"], plans=["basic", "premium"])', "load"),
            code('if drop:\n    df.drop(columns=["region"], inplace=True)\ndf = df[df["plan"] != "premium"]'),
            code('COLUMNS = ["region", "plan"]\nmodel.fit(df[COLUMNS], y)', "train"),
        ],
    )
    spec = read_notebook(path)
    region = ApiChange(severity="breaking", where="input", field="region", change="removed", detail="")
    premium = ApiChange(
        severity="breaking", where="input", field="plan", change="category removed", detail="", value="premium"
    )
    assert blame(spec, region).index == 2  # type: ignore[union-attr]
    assert blame(spec, premium).index == 2  # type: ignore[union-attr]
    task = ApiChange(severity="breaking", where="task", field=None, change="task changed", detail="")
    assert blame(spec, task).index == 3  # type: ignore[union-attr]


# --- a version checked with --compatible-with: canary and README --------------------------------


def test_canary_inference_service_and_changes_in_the_readme(model_dir: Path) -> None:
    history = HistoryRecord(
        checked_against="0.1.0+0123456789ab", breaking=0, changes=["field `channel` was added"], canary_percent=10
    )
    files = render_branch("customers_mixed", model_dir, history=history)
    service = yaml.safe_load(files["deploy/kubernetes/kserve/inferenceservice.yaml"])
    deployment = yaml.safe_load(files["deploy/kubernetes/deployment.yaml"])
    plain = yaml.safe_load(
        render_branch("customers_mixed", model_dir)["deploy/kubernetes/kserve/inferenceservice.yaml"]
    )
    assert service["spec"]["predictor"].pop("canaryTrafficPercent") == 10
    assert service == plain  # the canary line is the only difference
    assert service["metadata"]["name"] == deployment["metadata"]["name"]
    readme = files["README.md"].decode()
    assert "## Changes since 0.1.0+0123456789ab" in readme and "- field `channel` was added" in readme
    assert "canaryTrafficPercent: 0" in readme and "**promote**" in readme
    manifest = json.loads(files["src/customers_mixed/artifacts/manifest.json"])
    assert manifest["history"]["checked_against"] == "0.1.0+0123456789ab"
    no_canary = render_branch("customers_mixed", model_dir, history=history.model_copy(update={"canary_percent": None}))
    assert b"canaryTrafficPercent" not in no_canary["deploy/kubernetes/kserve/inferenceservice.yaml"]


def test_diff_of_folders_that_are_not_conversions_names_them(tmp_path: Path) -> None:
    done = run_cli("diff", tmp_path, tmp_path / "missing")
    assert done.returncode == 1
    assert f"{tmp_path} has no src/<package>/artifacts/manifest.json" in done.stderr
    assert "Pass two folders written by `nb2prod convert`" in done.stderr
    canary_alone = run_cli("convert", tmp_path / "nb.ipynb", "--canary", "10")
    assert canary_alone.returncode == 2 and "--canary needs --compatible-with OLD" in canary_alone.stderr

"""`nb2prod predict`: files scored in chunks with a converted service's own code give the
notebook's answers, and bad rows are set aside with the service's reasons (or stop the run)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import EXAMPLES, ConvertExample, run_cli

pytestmark = pytest.mark.slow
TOLERANCE = 1e-9


def golden_examples(out: Path) -> list[dict]:
    return json.loads((out / "tests" / "golden.json").read_text())["examples"]


def csv_cell(value: object) -> str:
    return "" if value is None else str(value)


def test_a_frame_models_csv_scores_as_the_notebook_did_and_bad_rows_are_named(
    tmp_path: Path, convert_example: ConvertExample
) -> None:
    out, converted = convert_example(EXAMPLES / "customers_mixed.ipynb")
    assert converted.returncode == 0, converted.stderr
    golden = golden_examples(out)
    columns = list(golden[0]["input"])
    source = tmp_path / "customers.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", *columns, "churned"])  # an id, the features, and the label
        for i, example in enumerate(golden):
            writer.writerow([f"c{i}", *(csv_cell(example["input"][c]) for c in columns), "?"])
        bad = dict(golden[0]["input"])
        for key, column, value in (("bad-age", "age", "forty"), ("bad-plan", "plan", "gold")):
            writer.writerow([key, *(value if c == column else csv_cell(bad[c]) for c in columns), "?"])
        # (an empty `monthly spend` is scored: the pipeline imputes it; text there is refused)
        writer.writerow(["no-spend", *("lots" if c == "monthly spend" else csv_cell(bad[c]) for c in columns), "?"])

    answers, rejects = tmp_path / "answers.csv", tmp_path / "rejects.csv"
    scored = run_cli(
        "predict", out, source, "-o", answers, "--rejects", rejects, "--id", "customer", "--chunk-rows", "7"
    )
    assert scored.returncode == 0, scored.stderr
    assert f"scored {len(golden)} of {len(golden) + 3} rows" in scored.stdout
    assert "left out: `churned`" in scored.stderr

    table = pd.read_csv(answers, dtype={"customer": str})
    assert list(table["customer"]) == [f"c{i}" for i in range(len(golden))]
    for (_, row), example in zip(table.iterrows(), golden, strict=True):
        assert row["prediction"] == example["prediction"]
        for label, p in example["probabilities"].items():
            assert abs(row[f"probability_{label}"] - p) <= TOLERANCE
    refused = pd.read_csv(rejects)
    assert list(refused["customer"]) == ["bad-age", "bad-plan", "no-spend"]
    assert list(refused["row"]) == [len(golden) + 1, len(golden) + 2, len(golden) + 3]
    assert refused["error"][0].startswith("invalid field `age`")
    assert refused["error"][1].startswith("invalid field `plan`")
    assert refused["error"][2].startswith("invalid field `monthly spend`")


def test_an_array_models_parquet_scores_and_a_bad_row_stops_the_run_without_output(
    tmp_path: Path, convert_example: ConvertExample
) -> None:
    out, converted = convert_example(EXAMPLES / "iris_array.ipynb")
    assert converted.returncode == 0, converted.stderr
    golden = golden_examples(out)
    rows = [example["input"]["features"] for example in golden]
    frame = pd.DataFrame(rows, columns=[f"x{i}" for i in range(len(rows[0]))])
    good, spoiled = tmp_path / "flowers.parquet", tmp_path / "spoiled.parquet"
    frame.to_parquet(good, index=False)
    frame.assign(x2=frame["x2"].where(frame.index != 5, float("inf"))).to_parquet(spoiled, index=False)

    answers = tmp_path / "answers.parquet"
    stopped = run_cli("predict", out, spoiled, "-o", answers)
    assert stopped.returncode == 1
    assert "spoiled.parquet: row 6: invalid field `x2`: Input should be a finite number" in stopped.stderr
    assert "--rejects" in stopped.stderr
    assert not answers.exists() and not list(tmp_path.glob(".*partial*"))

    scored = run_cli("predict", out, good, "-o", answers, "--chunk-rows", "4")
    assert scored.returncode == 0, scored.stderr
    table = pd.read_parquet(answers)
    assert list(table["row"]) == list(range(1, len(golden) + 1))
    assert list(table["prediction"]) == [example["prediction"] for example in golden]

    again = run_cli("predict", out, good, "-o", answers)
    assert again.returncode == 1 and "exists" in again.stderr  # never overwritten without --force
    missing = run_cli("predict", out, good, "-o", tmp_path / "other.csv", "--id", "flower")
    assert missing.returncode == 1 and "has no column `flower` (--id)" in missing.stderr


def test_the_dask_engine_gives_the_local_engines_answers_and_rejects_across_partitions(
    tmp_path: Path, convert_example: ConvertExample
) -> None:
    out, converted = convert_example(EXAMPLES / "customers_mixed.ipynb")
    assert converted.returncode == 0, converted.stderr
    golden = golden_examples(out)
    columns = list(golden[0]["input"])
    rows = [[csv_cell(example["input"][c]) for c in columns] for example in golden * 3]
    for at, column, value in ((4, "age", "forty"), (31, "plan", "gold"), (52, "monthly spend", "lots")):
        rows[at][columns.index(column)] = value  # a bad row in each third
    whole, parts = tmp_path / "customers.csv", tmp_path / "parts"
    parts.mkdir()
    for path, chunk in ((whole, rows), *((parts / f"part{i}.csv", rows[i * 20 : i * 20 + 20]) for i in range(3))):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(chunk)

    local = run_cli("predict", out, whole, "-o", tmp_path / "local.csv", "--rejects", tmp_path / "local-rejects.csv")
    assert local.returncode == 0, local.stderr
    on_dask = run_cli(
        "predict", out, parts, "-o", tmp_path / "dask.parquet", "--rejects", tmp_path / "dask-rejects.csv",
        "--engine", "dask", "--workers", "2",
    )  # fmt: skip
    assert on_dask.returncode == 0, on_dask.stderr
    assert "scored 57 of 60 rows" in on_dask.stdout and "rows/s" in on_dask.stdout

    answers, rejects = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "local-rejects.csv")
    assert list(rejects["row"]) == [5, 32, 53]
    assert (tmp_path / "dask.parquet").is_dir()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask.parquet"), answers, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "dask-rejects.csv"), rejects)

    again = run_cli(
        "predict", out, parts, "-o", tmp_path / "dask.csv", "--engine", "dask", "--workers", "2", "--partitions", "3"
    )
    assert again.returncode == 1
    assert "row 5: invalid field `age`" in again.stderr and not (tmp_path / "dask.csv").exists()

"""Lines that change the frame in the cell that reads it are replayed per request.

tests/notebooks/raw_read_cell.ipynb reads houses.csv (generated beside it, see tests/raw_data.py)
and, in the same cell, drops the id in place, derives an age from the year built, lower-cases the
column names, prints the shape and shows `df.head()`; EDA and plots follow, then cleaning cells
(`map`, an in-place drop, a loop over a literal list of columns, dummies with `drop_first`), a
loop comparing three models, a linear model, and the boosting model the residuals plot predicts
with. Tagged with `nb2prod tag --write` alone and converted once: the service must take the CSV's
own columns (not the frame as the read cell leaves it) and answer its raw rows exactly as the
notebook's model answers them, the notebook run here cell by cell as its author ran it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import generated_app, run_notebook_here
from tests.raw_data import write_houses

pytestmark = pytest.mark.slow

NAME = "raw_read_cell"


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp(NAME)
    notebook = Path(shutil.copy(FIXTURES / f"{NAME}.ipynb", folder / f"{NAME}.ipynb"))
    csv, _ = write_houses(folder)
    tagged = run_cli("tag", notebook, "--write")
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    result = run_cli("convert", notebook, "-o", folder / "service", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads(next((folder / "service").glob("src/*/artifacts/manifest.json")).read_text())
    return {
        "notebook": notebook,
        "csv": csv,
        "out": folder / "service",
        "tag": tagged.stdout,
        "convert": result.stdout + result.stderr,
        "manifest": manifest,
    }


def test_tag_keeps_the_read_cell_load_and_says_its_lines_are_replayed(converted: dict[str, Any]) -> None:
    shown = converted["tag"]
    assert (
        'cell 4 (`df = pd.read_csv("houses.csv")`)  load: reads data with `pd.read_csv`; the lines after the read '
        "(line 2, `df.drop(columns=['Id'], inplace=True)`, on) change the frame: they run as written here, and are "
        "replayed per request with the preprocess cells, so the service takes the file's columns"
    ) in shown
    assert "the service will take raw columns of `df` from houses.csv" in shown
    assert "train, evaluate: fits `gbr` (the served model)" in shown
    assert "input: raw columns of `df` from houses.csv: 5 columns" in converted["convert"]


def test_the_service_takes_the_csv_columns_and_replays_the_read_cell(converted: dict[str, Any]) -> None:
    manifest = converted["manifest"]
    fields = [f["name"] for f in manifest["input_schema"]["features"]]
    raw = pd.read_csv(converted["csv"])
    assert fields == [c for c in raw.columns if c not in ("Id", "SalePrice")]  # the file's names, not lower-cased
    assert manifest["service_input"]["kind"] == "raw"
    assert manifest["preprocessing"]["method"] == "replayed"
    assert manifest["preprocessing"]["proof"]["rows"] == 240  # every training row (80% of 300) reproduced
    shipped = next(converted["out"].glob("src/*/preprocessing.py")).read_text()
    body = shipped.split("def preprocess(frame):", 1)[1]
    assert '    # cell 4\n    df.drop(columns=["Id"], inplace=True, errors="ignore")\n' in body
    assert '    df["age"] = 2024 - df["YearBuilt"]\n    df.columns = df.columns.str.lower()\n' in body
    assert "read_csv" not in shipped and "print(df.shape)" not in body and "df.head()" not in body


def test_raw_csv_rows_get_the_notebooks_answers(converted: dict[str, Any]) -> None:
    raw = pd.read_csv(converted["csv"])
    fields = [f["name"] for f in converted["manifest"]["input_schema"]["features"]]
    rows = list(range(0, len(raw), 7))
    records = json.loads(raw.iloc[rows][fields].to_json(orient="records"))
    namespace = run_notebook_here(converted["notebook"], every_cell=True)
    expected = namespace["gbr"].predict(namespace["X"].iloc[rows])
    with generated_app(converted["out"], f"{NAME}") as client:
        batch = client.post("/predict/batch", json={"records": records})
        one = client.post("/predict", json=records[-1])
        engineered = client.post("/predict", json={**records[-1], "age": 30})  # the frame as the cell left it
    assert batch.status_code == 200, batch.text
    np.testing.assert_allclose(batch.json()["predictions"], expected, rtol=1e-12)
    assert one.status_code == 200 and one.json()["prediction"] == pytest.approx(expected[-1], rel=1e-12)
    assert engineered.status_code == 422 and "age" in engineered.text

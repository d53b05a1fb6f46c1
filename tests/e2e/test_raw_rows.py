"""Raw rows in, the notebook's answers out: tutorial-style notebooks converted from `tag --write` alone.

Each notebook reads a CSV (generated beside it, see tests/raw_data.py), cleans it the way people
do (`inplace=True`, `df.columns = df.columns.str.lower()`, `df.columns = [...]`, a derived age, `map`/`replace` with
dicts, `apply` with a lambda and a notebook function, `pd.to_numeric`, `np.log1p`/`np.where`,
loops over column lists, dummies with `drop_first`, `concat` with its dummies, `final =
data.copy()`) and compares two models. The service (the generated app under FastAPI's TestClient)
must take the CSV's own columns (without the label and the dropped id) and answer the raw rows
exactly as the notebook's model answers its engineered rows. A label learned on another scale
(`y = np.log1p(price)`) is named, with its inverse, in the manifest and the README. Each notebook
is tagged and converted once per module.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import FIXTURES, run_cli
from tests.raw_data import write_cars, write_churn

pytestmark = pytest.mark.slow


NOTEBOOKS: dict[str, tuple[Callable[[Path], Path], str, tuple[str, ...]]] = {
    # name: (data writer, served model, columns a request does not send)
    "raw_cars": (write_cars, "rf", ("Car_ID", "Selling_Price")),
    "raw_churn": (write_churn, "gb", ("customerID", "Churn")),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each notebook copied beside its CSV, tagged with `tag --write`, converted once."""
    found = {}
    for name, (write_data, model, _) in NOTEBOOKS.items():
        folder = tmp_path_factory.mktemp(name)
        notebook = Path(shutil.copy(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb"))
        csv = write_data(folder)
        tagged = run_cli("tag", notebook, "--model", model, "--write")
        assert tagged.returncode == 0, tagged.stderr
        started = time.monotonic()
        result = run_cli("convert", notebook, "--model", model, "-o", folder / "service", timeout=900)
        assert result.returncode == 0, result.stderr
        found[name] = {
            "notebook": notebook,
            "csv": csv,
            "out": folder / "service",
            "tag": tagged.stdout,
            "convert": result.stdout,
            "seconds": time.monotonic() - started,
        }
    print({name: f"convert {found[name]['seconds']:.0f}s" for name in found})  # the figure for the record
    return found


def notebook_answers(notebook: Path, model: str, rows: pd.Index) -> np.ndarray:
    """The notebook's cells that run (not `skip`), executed here: its model on its engineered rows."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict[str, Any] = {}
    cells = nbformat.read(notebook, as_version=4).cells
    source = [c.source for c in cells if c.cell_type == "code" and "skip" not in c.metadata.get("tags", [])]
    cwd = Path.cwd()
    try:
        import os

        os.chdir(notebook.parent)
        for text in source:
            code = "\n".join("" if line.lstrip().startswith("%") else line for line in text.splitlines())
            exec(compile(code, str(notebook), "exec"), namespace)  # noqa: S102 - our fixture notebook
    finally:
        os.chdir(cwd)
    return namespace[model].predict(namespace["X"].loc[rows])


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_tag_alone_gives_a_service_that_takes_the_csv_rows(name: str, converted: dict[str, dict[str, Any]]) -> None:
    done = converted[name]
    _, model, left_out = NOTEBOOKS[name]
    raw = pd.read_csv(done["csv"])
    frame = {"raw_cars": "df", "raw_churn": "data"}[name]
    assert f"the service will take raw columns of `{frame}` from {done['csv'].name}" in done["tag"]
    assert f"input: raw columns of `{frame}` from {done['csv'].name}" in done["convert"]
    manifest = json.loads(next(done["out"].glob("src/*/artifacts/manifest.json")).read_text())
    fields = [f["name"] for f in manifest["input_schema"]["features"]]
    assert fields == [c for c in raw.columns if c not in left_out]

    rows = raw.index[:40]
    records = json.loads(raw.loc[rows, fields].to_json(orient="records"))
    expected = notebook_answers(done["notebook"], model, rows)
    sys.path.insert(0, str(done["out"] / "src"))
    with TestClient(importlib.import_module(f"{name}.app").app) as client:
        response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    answers = np.array(response.json()["predictions"])
    if answers.dtype.kind == "f":
        np.testing.assert_allclose(answers, expected, rtol=1e-12)
    else:
        assert answers.tolist() == expected.tolist()


def test_the_label_scale_is_named_in_the_manifest_and_the_readme(converted: dict[str, dict[str, Any]]) -> None:
    cars = converted["raw_cars"]["out"]
    manifest = json.loads(next(cars.glob("src/*/artifacts/manifest.json")).read_text())
    assert manifest["target_transform"] == {
        "expression": "np.log1p(df['selling_price'])",
        "cell": 19,
        "line": 2,
        "inverse": "np.expm1(prediction)",
    }
    readme = (cars / "README.md").read_text()
    assert (
        "Answers are on the scale the model learned: its label was `np.log1p(df['selling_price'])` (cell 19, "
        "line 2 of the notebook); `np.expm1(prediction)` gives an answer in the label's own units."
    ) in readme
    assert "The service takes the raw columns of `df` from cars.csv: 7 columns, `Year`, `Present_Price`," in readme
    churn = converted["raw_churn"]["out"]
    assert json.loads(next(churn.glob("src/*/artifacts/manifest.json")).read_text())["target_transform"] is None
    assert "Answers are on the scale" not in (churn / "README.md").read_text()  # `y = final["Churn"].map(...)`

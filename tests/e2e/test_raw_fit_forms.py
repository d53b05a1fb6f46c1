"""Raw rows in when the model is fitted on an array, on dicts, or on columns named by constants.

Tutorial-style notebooks that read a CSV (generated beside them, see tests/raw_data.py), each
converted once from `nb2prod tag --write` alone:

- raw_heart: `rf.fit(X_train.values, y_train)` after `inplace=True` drops, `map`/`apply` and
  dummies; the shipped `preprocess(frame)` rebuilds `X` from a request and returns `X.values`.
- raw_insurance: a SimpleImputer fitted on `X_train.values` (a loop over text columns, dummies
  with `drop_first`), composed with the model, from the raw rows.
- raw_laptops: `records = df[features].to_dict("records")` after cleaning "8GB" and "1.37kg",
  fitted by a `DictVectorizer` pipeline: the request's rows become those dicts.
- raw_titanic: `X = train[FEATURES]`, `y = train[LABEL]` with `LABEL = "Survived"`: the label
  is left out of the input, and so are the columns `FEATURES` does not select (the proof leaves
  out what the replay never reads).

The service (the generated app under FastAPI's TestClient) must take the CSV's own columns and
answer its raw rows exactly as the notebook's model answers them, the notebook run cell by cell
here as its author ran it (every cell, plots included).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import generated_app, run_notebook_here
from tests.raw_data import write_heart, write_insurance, write_laptops, write_passengers

pytestmark = pytest.mark.slow

Answers = Callable[[dict[str, Any], list[int]], np.ndarray]


@dataclass(frozen=True)
class Case:
    write: Callable[[Path], Any]  # writes the CSV(s) into a folder; the first is the one read
    frame: str  # the raw frame's name in the notebook
    csv: str
    left_out: tuple[str, ...]  # CSV columns a request does not send
    returns: str  # the shipped preprocess(frame) hands the model this
    answers: Answers  # the notebook's model on the fit input made from raw rows (positions)


CASES: dict[str, Case] = {
    "raw_heart": Case(
        write_heart,
        "df",
        "heart.csv",
        ("PatientID", "HeartDisease"),
        "return X.values",
        lambda ns, rows: ns["rf"].predict(ns["X"].iloc[rows].values),
    ),
    "raw_insurance": Case(
        write_insurance,
        "df",
        "insurance.csv",
        ("charges",),
        "return frame_with_dummies.values",
        lambda ns, rows: ns["gbr"].predict(ns["imputer"].transform(ns["frame_with_dummies"].iloc[rows].values)),
    ),
    "raw_laptops": Case(
        write_laptops,
        "df",
        "laptops.csv",
        ("laptop_ID", "Price_euros"),
        "return records",
        lambda ns, rows: ns["model"].predict([ns["records"][i] for i in rows]),
    ),
    "raw_titanic": Case(
        write_passengers,
        "train",
        "train.csv",
        ("PassengerId", "Survived", "Name"),
        "return X",
        lambda ns, rows: ns["forest"].predict(ns["X"].iloc[rows]),
    ),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each notebook copied beside its CSV, tagged with `tag --write` alone, converted once."""
    found = {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        notebook = Path(shutil.copy(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb"))
        case.write(folder)
        tagged = run_cli("tag", notebook, "--write")
        assert tagged.returncode == 0, tagged.stdout + tagged.stderr
        started = time.monotonic()
        result = run_cli("convert", notebook, "-o", folder / "service", timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        found[name] = {
            "notebook": notebook,
            "csv": folder / case.csv,
            "out": folder / "service",
            "tag": tagged.stdout,
            "convert": result.stdout,
            "seconds": time.monotonic() - started,
        }
    print({name: f"convert {found[name]['seconds']:.0f}s" for name in found})  # the figure for the record
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_tag_alone_gives_a_service_that_takes_the_csv_rows(name: str, converted: dict[str, dict[str, Any]]) -> None:
    done, case = converted[name], CASES[name]
    raw = pd.read_csv(done["csv"])
    assert f"the service will take raw columns of `{case.frame}` from {case.csv}" in done["tag"]
    assert f"input: raw columns of `{case.frame}` from {case.csv}" in done["convert"]
    manifest = json.loads(next(done["out"].glob("src/*/artifacts/manifest.json")).read_text())
    fields = [f["name"] for f in manifest["input_schema"]["features"]]
    assert fields == [c for c in raw.columns if c not in case.left_out]
    shipped = next(done["out"].glob("src/*/preprocessing.py")).read_text()
    assert f"    {case.returns}\n" in shipped

    rows = list(range(0, len(raw), 7))
    records = json.loads(raw.iloc[rows][fields].to_json(orient="records"))
    expected = case.answers(run_notebook_here(done["notebook"], every_cell=True), rows)
    with generated_app(done["out"], name) as client:
        response = client.post("/predict/batch", json={"records": records})
        one = client.post("/predict", json=records[-1])
    assert response.status_code == 200, response.text
    answers = np.array(response.json()["predictions"])
    if answers.dtype.kind == "f":
        np.testing.assert_allclose(answers, expected, rtol=1e-12)
    else:
        assert answers.tolist() == expected.tolist()
    assert one.status_code == 200, one.text
    assert one.json()["prediction"] == pytest.approx(expected[-1], rel=1e-12)

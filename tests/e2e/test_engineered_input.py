"""Engineered input, said so: notebooks whose cleaning cannot be replayed per request still convert.

Two tutorial-style notebooks, untagged, tagged with `tag --write` alone and converted once each:
a Titanic notebook that fills missing ages with random draws inside a loop over the train and test
frames, and a house-price notebook that merges a second data file into the sales. nb2prod infers
the raw frame itself, finds that the replay stops, and serves the model's engineered fit input
instead. `tag`, `convert` and the generated README name the input, the cell and line that stop
the replay, and why; the service (real uvicorn on 127.0.0.1) answers engineered rows exactly as
the notebook's model does.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import run_notebook_here, serving_here
from tests.raw_data import write_houses, write_passengers

pytestmark = pytest.mark.slow

NOTEBOOKS: dict[str, tuple[Callable[[Path], Any], tuple[str, ...]]] = {
    # name: (data writer, extra `tag` arguments)
    "engineered_random_fill": (write_passengers, ()),
    "engineered_merge": (write_houses, ("--model", "gbr")),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each notebook copied beside its CSV files, tagged with `tag --write`, converted once."""
    found = {}
    for name, (write_data, tag_args) in NOTEBOOKS.items():
        folder = tmp_path_factory.mktemp(name)
        notebook = Path(shutil.copy(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb"))
        write_data(folder)
        tagged = run_cli("tag", notebook, *tag_args, "--write")
        assert tagged.returncode == 0, tagged.stderr
        started = time.monotonic()
        result = run_cli("convert", notebook, "-o", folder / "service", timeout=900)
        assert result.returncode == 0, result.stderr
        out = folder / "service"
        found[name] = {
            "notebook": notebook,
            "out": out,
            "tag": tagged.stdout,
            "convert": result.stdout + result.stderr,
            "readme": (out / "README.md").read_text(),
            "manifest": json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text()),
            "seconds": time.monotonic() - started,
        }
    print({name: f"convert {found[name]['seconds']:.0f}s" for name in found})  # the figure for the record
    return found


def test_a_random_fill_in_a_loop_over_frames_is_named_as_the_reason(converted: dict[str, dict[str, Any]]) -> None:
    done = converted["engineered_random_fill"]
    where = "engineered_random_fill.ipynb, cell 8 (`rng = np.random.default_rng(42)`), line 5: "
    why = "`rng.integers(...)` draws random numbers; a random fill cannot be replayed per request"
    said = f"the service will take engineered columns of `X_train`, not the raw data: {where}{why}"
    assert said in done["tag"] and said in done["convert"]
    assert "combines the request frame" not in done["tag"] + done["convert"]
    assert "cell 9 (`for dataset in (train, test):`)  (untagged): prepares the fit input" in done["tag"]
    assert "input: engineered columns of `X_train`: 9 columns, `Pclass`, `Sex`, `Age`," in done["convert"]
    readme = done["readme"]
    assert "The service takes the engineered columns of `X_train`: 9 columns, `Pclass`, `Sex`, `Age`," in readme
    assert f"It does not take the data file's raw columns: {where}{why}" in readme
    assert "Fix: Fill with a training statistic instead" in readme
    service = done["manifest"]["service_input"]
    assert service["kind"] == "engineered" and service["reason"].startswith(where)
    assert done["manifest"]["target_transform"] is None  # `y = train['Survived']`: the label as it is


def test_a_merge_with_a_second_file_is_named_as_the_reason(converted: dict[str, dict[str, Any]]) -> None:
    done = converted["engineered_merge"]
    where = 'engineered_merge.ipynb, cell 9 (`df = df.merge(pd.read_csv("districts.csv"), on="district"...`), line 1: '
    why = "`pd.read_csv('districts.csv')` joins a second data file (districts.csv) to `df`"
    said = f"the service will take engineered columns of `X_train`, not the raw data: {where}{why}"
    assert said in done["tag"] and said in done["convert"]
    assert "cell 9 (`df = df.merge(" in done["tag"] and "load: reads data with `pd.read_csv`" in done["tag"]
    assert "preprocess" not in done["tag"]  # the cleaning before the merge runs untagged: no raw frame to replay
    readme = done["readme"]
    assert "The service takes the engineered columns of `X_train`: 10 columns, `lot_area`, `rooms`," in readme
    assert f"It does not take the data file's raw columns: {where}{why}" in readme
    assert "Fix: To serve raw rows, join the files in the cell that reads the data" in readme
    assert done["manifest"]["service_input"]["kind"] == "engineered"
    # the label is in thousands: the README and the manifest say so, and how to undo it
    assert done["manifest"]["target_transform"] == {
        "expression": "df['price'] / 1000",
        "cell": 12,
        "line": 2,
        "inverse": "prediction * 1000",
    }
    assert "its label was `df['price'] / 1000` (cell 12, line 2 of the notebook); `prediction * 1000`" in readme


@pytest.mark.parametrize(("name", "model"), [("engineered_random_fill", "forest"), ("engineered_merge", "gbr")])
def test_the_service_answers_engineered_rows_as_the_notebook_does(
    name: str, model: str, converted: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    done = converted[name]
    namespace = run_notebook_here(done["notebook"])
    rows = namespace["X_test"]
    fields = [f["name"] for f in done["manifest"]["input_schema"]["features"]]
    assert fields == list(rows.columns)
    expected = namespace[model].predict(rows)
    records = json.loads(rows.to_json(orient="records"))
    with serving_here(done["out"], tmp_path / "service.log") as (url, _):
        response = httpx.post(f"{url}/predict/batch", json={"records": records}, timeout=60)
    assert response.status_code == 200, response.text
    answers = np.array(response.json()["predictions"])
    if answers.dtype.kind == "f":
        np.testing.assert_allclose(answers, expected, rtol=1e-9)
    else:
        assert answers.tolist() == expected.tolist()

"""A preprocess(frame) that raises at proof time is reported with its notebook cell and line.

The kernel's proof runs the shipped module (here in this process, as the capture cell runs it) and
reports the module line that raised; the host maps it back to the notebook's cell and line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.notebook.spec import read_notebook
from nb2prod.run.captured import CaptureProblem
from nb2prod.run.kernel.common import _CaptureProblem
from nb2prod.run.kernel.frozen import _frozen_load_shipped
from nb2prod.run.kernel.proof import _proof_prove
from nb2prod.run.proof_problems import proof_error
from tests.conftest import code

PREPROCESS = """\
def preprocess(frame):
    out = frame.copy()
    out["fare"] = np.log1p(out["fare"])
    out["age"] = out["age"].astype(int)  # no missing ages in the cleaned training rows
    return out
"""


def kernel_problem(source: str, raw: pd.DataFrame, fit_input: pd.DataFrame) -> CaptureProblem:
    """What the capture step reports when the shipped module's preprocess raises in the proof."""
    function = _frozen_load_shipped(source, "titanic").preprocess
    with pytest.raises(_CaptureProblem) as raised:
        _proof_prove(function, raw, fit_input, limit=10)
    return CaptureProblem(kind=raised.value.kind, message=str(raised.value), details=raised.value.details)


def test_an_int_cast_of_a_missing_value_names_the_cell_and_line(make_notebook: Callable[..., Path]) -> None:
    path = make_notebook(
        [
            code("import numpy as np\nimport pandas as pd", "preprocess"),
            code(
                'train = pd.DataFrame({"age": [22.0, None, 38.0], "fare": [7.25, 8.05, 71.28], "survived": [0, 1, 1]})',
                "load",
            ),
            code(PREPROCESS, "preprocess"),
            code('X = preprocess(train.dropna().drop(columns=["survived"]))\ny = train.dropna()["survived"]', "train"),
        ]
    )
    spec = read_notebook(path)
    module = assemble_preprocess(spec)
    raw = pd.DataFrame({"age": [22.0, np.nan, 38.0], "fare": [7.25, 8.05, 71.28]})
    fit_input = pd.DataFrame({"age": [22, 0, 38], "fare": np.log1p(raw["fare"])})

    problem = kernel_problem(module.source, raw, fit_input)
    assert problem.kind == "proof_raised"
    assert (
        problem.details["module_text"]
        == 'out["age"] = out["age"].astype(int)  # no missing ages in the cleaned training rows'
    )

    error = proof_error(spec, module, problem)
    assert error is not None
    assert error.cell_index == 2 and error.line == 4
    assert "IntCastingNaNError" in str(error)
    assert "preprocess(frame) of cell 3 (`def preprocess(frame):`) raised IntCastingNaNError" in str(error)
    assert 'on all training rows, at line 4 (`out["age"] = out["age"].astype(int)' in str(error)


def test_a_raise_outside_the_shipped_module_keeps_the_function_location(make_notebook: Callable[..., Path]) -> None:
    """A failure inside pandas' own code called with a bad argument still names the notebook line that called it."""
    path = make_notebook(
        [
            code("import pandas as pd", "preprocess"),
            code('train = pd.DataFrame({"city": ["Oslo", "Rome"], "y": [0, 1]})', "load"),
            code('def preprocess(frame):\n    return frame[["city", "country"]]', "preprocess"),
            code('X = preprocess(train)\ny = train["y"]', "train"),
        ]
    )
    spec = read_notebook(path)
    module = assemble_preprocess(spec)
    raw = pd.DataFrame({"city": ["Oslo", "Rome"]})
    problem = kernel_problem(module.source, raw, raw)
    error = proof_error(spec, module, problem)
    assert error is not None
    assert "KeyError" in str(error)
    assert error.cell_index == 2 and error.line == 2
    assert 'line 2 (`return frame[["city", "country"]]`)' in str(error)


def test_a_replayed_statement_that_raises_names_its_cell_and_line(make_notebook: Callable[..., Path]) -> None:
    path = make_notebook(
        [
            code("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression"),
            code(
                'df = pd.DataFrame({"age": [22.5, 35.0, 38.0, 54.0], "fare": [7.2, 8.0, 71.3, 51.9], "survived": [0, 1, 1, 0]})',
                "load",
            ),
            code(
                'df["fare"] = df["fare"].round(0)\ndf["age"] = df["age"].astype(int)\nX = df.drop(columns=["survived"])',
                "preprocess",
            ),
            code('model = LogisticRegression().fit(X, df["survived"])', "train"),
        ]
    )
    spec = read_notebook(path)
    module = assemble_preprocess(spec, raw="df")
    assert module.generates_preprocess, module.source
    raw = pd.DataFrame({"age": [22.5, np.nan], "fare": [7.2, 8.0]})  # a request with a missing age
    problem = kernel_problem(module.source, raw, raw)
    error = proof_error(spec, module, problem)
    assert error is not None
    assert "the replayed preprocess(frame) raised IntCastingNaNError" in str(error)
    assert error.cell_index == 2 and error.line == 2
    assert 'at cell 3 (`df["fare"] = df["fare"].round(0)`), line 2 (`df["age"] = df["age"].astype(int)`)' in str(error)

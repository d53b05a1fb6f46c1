"""The kernel side of the preprocessing proof, run in this process: recorders, frozen literals,
the shipped module, and the proof's batch and one-row passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nb2prod.run.capture import kernel_source
from nb2prod.run.kernel import record
from nb2prod.run.kernel.common import _CaptureProblem
from nb2prod.run.kernel.frozen import _frozen_literal, _frozen_load_shipped, _frozen_shipped_source
from nb2prod.run.kernel.proof import _proof_prove
from nb2prod.run.recording import RECORDER_MODULES

RAW = pd.DataFrame({"fare": [7.25, 71.3, 8.05, 53.1, 8.46], "sex": ["m", "f", "f", "f", "m"]})


def standardise(frame: pd.DataFrame, mean: float, std: float) -> pd.DataFrame:
    out = frame.copy()
    out["fare"] = (out["fare"] - mean) / std
    out["sex"] = out["sex"].map({"f": 1, "m": 0})
    return out


FIT_INPUT = standardise(RAW, RAW["fare"].mean(), RAW["fare"].std())


def test_a_function_with_frozen_statistics_is_proven() -> None:
    mean, std = RAW["fare"].mean(), RAW["fare"].std()
    proof = _proof_prove(lambda frame: standardise(frame, mean, std), RAW, FIT_INPUT, limit=10)
    assert proof == {"rows": 5, "single_rows": 5, "max_difference": 0.0, "tolerance": 1e-12}


def test_a_mean_recomputed_per_request_fails_the_one_row_pass_naming_the_column() -> None:
    def per_request(frame: pd.DataFrame) -> pd.DataFrame:
        return standardise(frame, frame["fare"].mean(), frame["fare"].std())

    with pytest.raises(_CaptureProblem) as problem:
        _proof_prove(per_request, RAW, FIT_INPUT, limit=10)
    assert problem.value.kind == "proof_values"
    assert problem.value.details["column"] == "fare" and problem.value.details["mode"] == "single"


def test_columns_out_of_order_and_float_noise() -> None:
    mean, std = RAW["fare"].mean(), RAW["fare"].std()
    with pytest.raises(_CaptureProblem) as problem:
        _proof_prove(lambda f: standardise(f, mean, std)[["sex", "fare"]], RAW, FIT_INPUT, limit=10)
    assert problem.value.kind == "proof_columns" and "another order" in str(problem.value)
    noisy = _proof_prove(lambda f: standardise(f, mean * (1 + 1e-15), std), RAW, FIT_INPUT, limit=2)
    assert 0 < noisy["max_difference"] <= 1e-12
    with pytest.raises(_CaptureProblem):
        _proof_prove(lambda f: standardise(f, mean * (1 + 1e-9), std), RAW, FIT_INPUT, limit=2)


def test_rows_are_matched_by_index_when_training_dropped_some() -> None:
    mean, std = RAW["fare"].mean(), RAW["fare"].std()
    kept = FIT_INPUT.drop(index=[1, 3])
    proof = _proof_prove(lambda f: standardise(f, mean, std), RAW, kept, limit=10)
    assert proof["rows"] == 3


@pytest.mark.parametrize(
    "value",
    [
        28.0,
        float("nan"),
        np.float64(0.1) + np.float64(0.2),
        "S",
        [0.46, 13.815, 26.1],
        [("Sex", "int64"), ("Embarked_C", "bool")],
        pd.Series([0.5, 0.25], index=["f", "m"], name="Survived"),
        np.array([1.5, 2.5]),
    ],
)
def test_frozen_values_read_back_equal(value: object) -> None:
    text = _frozen_literal(value)
    back = eval(text, {"numpy": np, "pandas": pd, "float": float})  # noqa: S307 - our own literal
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value)
    elif isinstance(value, np.ndarray):
        assert np.array_equal(back, value) and back.dtype == value.dtype
    elif isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value


def test_fitted_estimators_are_frozen_as_class_parameters_and_learned_state() -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder

    from nb2prod.run.kernel.common import _same_value
    from nb2prod.run.kernel.frozen import _frozen_evaluate

    frame = pd.DataFrame({"port": ["S", "C", "S"], "fare": [7.0, None, 9.5]})
    for fitted in (
        LabelEncoder().fit(frame["port"]),
        OneHotEncoder(handle_unknown="ignore").fit(frame[["port"]]),
        SimpleImputer(strategy="median").fit(frame[["fare"]]),
    ):
        text = _frozen_literal(fitted)
        assert text.startswith(f'fitted("{type(fitted).__module__}.{type(fitted).__name__}", ')
        assert _same_value(_frozen_evaluate(text), fitted)


def test_objects_that_are_not_values_cannot_be_frozen() -> None:
    with pytest.raises(_CaptureProblem) as problem:
        _frozen_literal(lambda x: x)
    assert problem.value.kind == "frozen_type"


def test_the_shipped_module_gets_the_recorded_values_and_its_imports() -> None:
    template = '"""Doc."""\n\nFROZEN = {}\n\n\ndef preprocess(frame):\n    return frame.fillna(FROZEN["m"])\n'
    recorded = {"values": {"m": {(): 2.5}, "s": {(): pd.Series([1.0], index=["a"])}}, "conflicts": []}
    source = _frozen_shipped_source(template, recorded, [["m", "value"], ["s", "value"]], [])
    assert '    "m": 2.5,' in source and "\nimport pandas\n" in source
    module = _frozen_load_shipped(source, "pkg")
    assert module.preprocess(pd.DataFrame({"x": [None]}))["x"].tolist() == [2.5]


def test_recorders_keep_the_training_pass_of_a_frame_loop() -> None:
    recorded = record._nb2prod_recorded
    recorded["values"].clear()
    train, test = pd.DataFrame({"a": [1.0, 3.0]}), pd.DataFrame({"a": [10.0]})
    for dataset in record._nb2prod_frames("L0", [train, test], train):
        record._nb2prod_freeze("median", dataset["a"].median(), "L0", ())
    assert recorded["values"]["median"] == {(): 2.0}
    cut = record._nb2prod_bins("bins", None, (), pd.qcut)
    codes = cut(train["a"], 2, labels=False)
    assert codes.tolist() == [0, 1] and recorded["values"]["bins"] == {(): [1.0, 2.0, 3.0]}


def test_the_recorder_cell_needs_no_newer_python_than_the_kernel_floor(tmp_path: Path) -> None:
    source = tmp_path / "recorder_cell.py"
    source.write_text(kernel_source(RECORDER_MODULES))
    vermin = Path(sys.executable).with_name("vermin")
    found = subprocess.run(
        [str(vermin), "-t=3.9-", "--violations", "--no-tips", str(source)], capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, found.stdout + found.stderr
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(), "<recorder cell>", "exec"), namespace)  # noqa: S102 - our own code
    assert callable(namespace["_nb2prod_freeze"]) and "from nb2prod" not in source.read_text()


def test_categories_learned_from_the_request_fail_the_proof() -> None:
    raw = pd.DataFrame({"port": ["S", "C", "Q", "S"]})
    fit_input = raw.astype("category")
    with pytest.raises(_CaptureProblem) as problem:
        _proof_prove(lambda f: f.astype("category"), raw, fit_input, limit=4)
    assert problem.value.details["column"] == "port" and problem.value.details["mode"] == "single"
    categories = pd.CategoricalDtype(["C", "Q", "S"])
    assert _proof_prove(lambda f: f.astype(categories), raw, fit_input, limit=4)["single_rows"] == 4


def test_a_failed_proof_names_the_notebook_cell_line_column_and_row() -> None:
    from nb2prod.analysis.preprocess import assemble_preprocess
    from nb2prod.notebook.spec import read_notebook
    from nb2prod.run.captured import CaptureProblem
    from nb2prod.run.problems import problem_error
    from tests.conftest import FIXTURES

    spec = read_notebook(FIXTURES / "mean_per_request.ipynb")
    details = {"mode": "single", "column": "income", "row": "3", "method": "function", "transformers": []}
    problem = CaptureProblem(kind="proof_values", message="0.5 expected, nan computed", details=details)
    error = problem_error(spec, assemble_preprocess(spec), problem)
    assert error.message.startswith("mean_per_request.ipynb: preprocess(frame) of cell 4")
    assert "column `income` (made at line 6), training row 3, with training row 3 sent alone" in error.message
    assert (error.cell_index, error.line, error.rule, error.exit_code) == (3, 6, "proof_values", 4)
    assert "compute it from the training data" in error.hint


def test_a_fitted_imputer_on_an_array_is_proven_on_the_array() -> None:
    """`imputer.fit(frame.values)`: the chain starts from a NumPy array, which has no index."""
    from sklearn.impute import SimpleImputer

    raw = np.array([[1.0, np.nan], [2.0, 5.0], [np.nan, 7.0], [4.0, 9.0]])
    imputer = SimpleImputer(strategy="median").fit(raw)
    proof = _proof_prove(imputer.transform, raw, imputer.transform(raw), limit=10)
    assert proof == {"rows": 4, "single_rows": 4, "max_difference": 0.0, "tolerance": 1e-12}
    with pytest.raises(_CaptureProblem) as problem:  # a one-row mean is that row: the one-row pass says so
        _proof_prove(lambda rows: SimpleImputer().fit_transform(rows), raw, imputer.transform(raw), limit=10)
    assert problem.value.kind in ("proof_values", "proof_columns")

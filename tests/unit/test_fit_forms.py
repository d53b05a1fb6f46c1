"""The fit input's form (`X_train.values`, `.to_numpy()`, `to_dict("records")`): read without a kernel.

`tag` proposes raw rows when the model is fitted on the array or the dicts of a frame read from a
CSV; the shipped `preprocess(frame)` puts the same form back around the replayed frame, and the
run records the fit's label, whose index tells the proof which raw rows the training rows are.
With no index anywhere (the label an array too), raw rows are not proposed, and `tag` says why.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.analysis.replay.forms import peel, per_row
from nb2prod.analysis.roles import propose_roles
from nb2prod.analysis.service_input import with_roles
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code

IMPORTS = (
    "import pandas as pd\nfrom sklearn.model_selection import train_test_split\n"
    "from sklearn.ensemble import RandomForestClassifier\nfrom sklearn.impute import SimpleImputer"
)
CLEAN = "df.drop('PatientID', axis=1, inplace=True)\ndf['Sex'] = df['Sex'].map({'M': 1, 'F': 0})"


@pytest.mark.parametrize(
    ("text", "frame", "around"),
    [
        ("X_train.values", "X_train", "X.values"),
        ("X_train.to_numpy()", "X_train", "X.to_numpy()"),
        ("frame.drop(columns=['y']).values", "frame.drop(columns=['y'])", "X.values"),
    ],
)
def test_a_form_is_peeled_and_put_back(text: str, frame: str, around: str) -> None:
    form = peel(text)
    assert form is not None and form.frame == frame
    assert form.around("X") == around
    assert peel(text).around("a + b").startswith("(a + b).")  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["X_train", "X_train.to_numpy(dtype=float)", "X_train.values[:, 1]"])
def test_anything_else_is_no_form(text: str) -> None:
    assert peel(text) is None


@pytest.mark.parametrize(
    ("text", "rows"),
    [('df.to_dict("records")', True), ("df.to_dict(orient='records')", True), ("df['a'].to_dict()", False)],
)
def test_dicts_per_row_are_told_from_a_mapping(text: str, rows: bool) -> None:
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call) and per_row(call) is rows


def proposed(make_notebook: Any, fit: str, *, label: str = "df['HeartDisease']") -> tuple[Any, Any]:
    path: Path = make_notebook(
        [
            code(IMPORTS),
            code("df = pd.read_csv('heart.csv')\ndf.head()"),
            code(CLEAN),
            code(
                f"X = df.drop('HeartDisease', axis=1)\ny = {label}\n"
                "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
            ),
            code(fit),
        ]
    )
    spec = read_notebook(path)
    plan = propose_roles(spec)
    tagged = with_roles(spec, {p.cell_index: p.roles for p in plan.proposals if not p.fixed})
    return plan, assemble_preprocess(tagged)


def test_a_model_fitted_on_values_takes_raw_rows_and_the_label_keys_them(make_notebook: Any) -> None:
    plan, module = proposed(make_notebook, "rf = RandomForestClassifier()\nrf.fit(X_train.values, y_train)")
    assert plan.service_input.kind == "raw" and plan.service_input.describe() == "raw columns of `df` from heart.csv"
    assert module.source.rstrip().endswith("return X.values")
    fit_cell = max(module.run_edits)
    assert any(e.text == '_nb2prod_keep("rows:rf", ' for e in module.run_edits[fit_cell])


def test_an_imputer_fitted_on_values_is_composed_after_the_replayed_array(make_notebook: Any) -> None:
    fit = (
        "imputer = SimpleImputer(strategy='median')\nimputer.fit(X_train.values)\n"
        "X_train_imputed = imputer.transform(X_train.values)\n"
        "rf = RandomForestClassifier()\nrf.fit(X_train_imputed, y_train)"
    )
    plan, module = proposed(make_notebook, fit)
    assert plan.service_input.kind == "raw"
    assert module.replay is not None and module.replay.composed == ("imputer",)
    assert module.source.rstrip().endswith("return X.values")


def test_with_no_index_anywhere_raw_rows_are_not_proposed_and_tag_says_why(make_notebook: Any) -> None:
    plan, _ = proposed(
        make_notebook,
        "rf = RandomForestClassifier()\nrf.fit(X_train.values, y_train)",
        label="df['HeartDisease'].values",
    )
    found = plan.service_input
    assert found.kind == "engineered" and found.blocking is not None
    assert (found.blocking.cell_number, found.blocking.line) == (5, 2)  # the fit cell, its `rf.fit(...)` line
    assert "`rf` is fitted on `X_train.values` with the label `y_train`, both without an index" in found.blocking.reason
    assert "Keep the label a pandas Series" in found.blocking.fix

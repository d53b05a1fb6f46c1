"""Which columns without nulls in training take one: the kernel's reading of the fitted pipeline, then its check."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from nb2prod.run.kernel.nulls import _handled_nulls, _null_reasons
from nb2prod.run.kernel.sample import _describe_sample

rng = np.random.default_rng(0)
FRAME = pd.DataFrame(
    {
        "rooms": rng.integers(1, 6, 60),
        "area": rng.normal(80, 20, 60),
        "city": rng.choice(["Oslo", "Rome"], 60),
    }
)
TARGET = FRAME["area"] * 2 + FRAME["rooms"]


def handled(model: object, frame: pd.DataFrame = FRAME) -> dict[str, str]:
    schema = _describe_sample(frame, "X")
    _handled_nulls(schema, model, None, frame)
    return {c["name"]: c["nullable_because"] for c in schema["columns"] if c.get("nullable_because")}


def test_an_imputer_in_a_column_transformer_branch_covers_only_its_columns() -> None:
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["rooms", "area"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    model = Pipeline([("prep", prep), ("reg", LinearRegression())]).fit(FRAME, TARGET)
    reason = "imputed by SimpleImputer (`num` of the ColumnTransformer)"
    assert handled(model) == {"rooms": reason, "area": reason}  # a null city is still refused


def test_an_imputer_first_covers_every_column_and_a_model_that_takes_nan_too() -> None:
    numbers = FRAME[["rooms", "area"]]
    imputed = make_pipeline(KNNImputer(), LinearRegression()).fit(numbers, TARGET)
    assert handled(imputed, numbers) == {"rooms": "imputed by KNNImputer", "area": "imputed by KNNImputer"}
    native = HistGradientBoostingRegressor(max_iter=20).fit(numbers, TARGET)
    assert set(handled(native, numbers).values()) == {"HistGradientBoostingRegressor accepts NaN"}


def test_no_imputer_and_a_model_that_refuses_nan_takes_no_null() -> None:
    numbers = FRAME[["rooms", "area"]]
    assert handled(make_pipeline(StandardScaler(), LinearRegression()).fit(numbers, TARGET), numbers) == {}
    assert _null_reasons(LinearRegression().fit(numbers, TARGET)) == {}


def test_a_reason_the_served_path_does_not_bear_out_is_dropped() -> None:
    """A forest takes NaN by its tags; a preprocess that casts the column to int does not."""
    numbers = FRAME[["rooms", "area"]]
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(numbers, TARGET)
    schema = _describe_sample(numbers, "X")
    _handled_nulls(schema, forest, lambda frame: frame.astype({"rooms": "int64"}), numbers)
    assert [c["name"] for c in schema["columns"] if c.get("nullable_because")] == ["area"]


def test_a_null_the_preprocessing_turns_into_a_value_is_refused() -> None:
    """Dummies of a null are all zero, the base category's row: the imputer never sees the null, so
    the service would score a null `plan` as `basic`. Only `area`, whose NaN reaches the imputer, is taken."""
    raw = pd.DataFrame({"plan": ["basic", "pro", "team", "pro", "basic", "team"] * 5, "area": FRAME["area"][:30]})

    def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
        dummies = pd.get_dummies(frame["plan"], prefix="plan", drop_first=True, dtype=float)
        dummies = dummies.reindex(columns=["plan_pro", "plan_team"], fill_value=0.0)
        return pd.concat([frame[["area"]], dummies], axis=1)

    model = make_pipeline(SimpleImputer(), LinearRegression()).fit(preprocess(raw), TARGET[:30])
    schema = _describe_sample(raw, "df")
    _handled_nulls(schema, model, preprocess, raw)
    assert {c["name"]: c.get("nullable_because") for c in schema["columns"]} == {
        "plan": None,
        "area": "imputed by SimpleImputer",
    }

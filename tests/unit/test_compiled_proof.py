"""The compiled inference path, in this process: which models compile exactly, and which are refused, and why.

The kernel code runs here as a module (it is plain Python), on small models fitted inline.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from nb2prod.run.capture import PROOF_ROWS, TOLERANCE
from nb2prod.run.kernel.common import _plain
from nb2prod.run.kernel.compiled import _compile_model

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "out_dir": str(tmp_path),
        "onnx_file": "model.onnx",
        "tolerance": TOLERANCE,
        "proof_rows": PROOF_ROWS,
        **extra,
    }


def golden(model: Any, sample: Any, rows: list[int]) -> list[dict[str, Any]]:
    """Golden rows as the kernel records them: the model's answer for one row at a time."""
    examples = []
    for i in rows:
        row = sample.iloc[[i]] if isinstance(sample, pd.DataFrame) else sample[i : i + 1]
        probabilities = None
        if hasattr(model, "classes_"):
            values = model.predict_proba(row)[0]
            probabilities = {str(_plain(c)): float(p) for c, p in zip(model.classes_, values, strict=True)}
        prediction = _plain(np.asarray(model.predict(row))[0])
        examples.append({"row": i, "prediction": prediction, "probabilities": probabilities})
    return examples


def mixed_frame(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    city = rng.choice(np.array(["Berlin", "Lisbon", "Oslo"], dtype=object), size=rows)
    city[rng.random(rows) < 0.1] = np.nan
    income = rng.normal(50_000, 10_000, size=rows)
    income[rng.random(rows) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=rows),
            "income": income,
            "city": city,
            "plan": pd.Categorical(rng.choice(["basic", "plus"], size=rows), categories=["basic", "plus"]),
            "is_member": rng.random(rows) < 0.4,
            "monthly spend": rng.gamma(2.0, 30.0, size=rows),
        }
    )
    target = np.where(frame["monthly spend"] + rng.normal(0, 20, size=rows) > 60, "churn", "stay")
    return frame, target


def mixed_pipeline() -> Pipeline:
    columns = ColumnTransformer(
        [
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ["age", "income", "monthly spend"],
            ),
            (
                "labels",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                ["city", "plan", "is_member"],
            ),
        ]
    )
    return Pipeline([("columns", columns), ("model", GradientBoostingClassifier(n_estimators=20, random_state=0))])


def exact_cases() -> list[tuple[str, Any, Any, Any]]:
    cancer_x, cancer_y = load_breast_cancer(return_X_y=True)
    iris_x, iris_y = load_iris(return_X_y=True)
    diabetes_x, diabetes_y = load_diabetes(return_X_y=True)
    frame, churn = mixed_frame()
    return [
        (
            "scaled logistic regression",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            cancer_x,
            cancer_y,
        ),
        ("multinomial logistic regression", LogisticRegression(max_iter=1000), iris_x, iris_y),
        ("random forest", RandomForestClassifier(n_estimators=30, random_state=0), cancer_x, cancer_y),
        (
            "decision tree with text labels",
            DecisionTreeClassifier(random_state=0),
            cancer_x,
            np.where(cancer_y, "yes", "no"),
        ),
        ("boosting, three classes", GradientBoostingClassifier(n_estimators=10, random_state=0), iris_x, iris_y),
        ("boosted regression", GradientBoostingRegressor(n_estimators=30, random_state=0), diabetes_x, diabetes_y),
        ("extra trees regression", ExtraTreesRegressor(n_estimators=10, random_state=0), diabetes_x, diabetes_y),
        ("mixed frame with missing values", mixed_pipeline(), frame, churn),
    ]


@pytest.mark.parametrize("name, model, sample, target", exact_cases(), ids=[c[0] for c in exact_cases()])
def test_models_compile_and_reproduce_the_answers(
    tmp_path: Path, name: str, model: Any, sample: Any, target: Any
) -> None:
    model.fit(sample, target)
    report = _compile_model(model, sample, None, golden(model, sample, [0, 1, 2]), config(tmp_path))
    assert report["path"] == "compiled", report["reason"]
    assert report["max_difference"] <= TOLERANCE
    assert report["rows_checked"] == len(sample) + 3
    assert (tmp_path / "model.onnx").stat().st_size > 0


def test_a_conversion_that_changes_the_answers_is_rejected(tmp_path: Path) -> None:
    # float32 inputs move a logistic regression's probabilities by about 1e-7: far over the tolerance.
    sample, target = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(sample, target)
    report = _compile_model(model, sample, None, golden(model, sample, [0]), config(tmp_path, precision="float32"))
    assert report["path"] == "sklearn"
    assert "differ by" in report["reason"] and f"> tolerance {TOLERANCE:g}" in report["reason"]
    assert report["max_difference"] > TOLERANCE
    assert not (tmp_path / "model.onnx").exists()


class Doubler(BaseEstimator, TransformerMixin):
    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2


def test_a_custom_transformer_keeps_scikit_learn_and_is_named(tmp_path: Path) -> None:
    sample, target = load_iris(return_X_y=True)
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=1000)).fit(sample, target)
    report = _compile_model(model, sample, None, [], config(tmp_path))
    assert report["path"] == "sklearn"
    assert report["reason"] == "custom transformer Doubler cannot be converted to ONNX (no converter for it)"
    assert report["label_from_proba"] is True


def test_without_skl2onnx_in_the_kernel_the_reason_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_skl2onnx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "skl2onnx":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skl2onnx)
    sample, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(sample, target)
    report = _compile_model(model, sample, None, [], config(tmp_path))
    assert (report["path"], report["reason"]) == ("sklearn", "skl2onnx is not installed in the kernel")


class Contrary(LogisticRegression):
    """A classifier whose predict is not argmax(predict_proba)."""

    def predict(self, X: Any) -> Any:
        return self.classes_[np.argmin(self.predict_proba(X), axis=1)]


def test_one_scikit_learn_call_only_where_predict_is_argmax_of_predict_proba(tmp_path: Path) -> None:
    sample, target = load_iris(return_X_y=True)
    plain = _compile_model(LogisticRegression(max_iter=1000).fit(sample, target), sample, None, [], config(tmp_path))
    contrary = _compile_model(Contrary(max_iter=1000).fit(sample, target), sample, None, [], config(tmp_path))
    assert plain["label_from_proba"] is True
    assert contrary["label_from_proba"] is False


class BatchCentred(BaseEstimator, TransformerMixin):
    """Subtracts the mean of the rows it is given: each row's answer depends on the rows beside it."""

    def fit(self, X: Any, y: Any = None) -> BatchCentred:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) - np.asarray(X).mean(axis=0)


def test_no_compile_keeps_scikit_learn_and_still_proves_the_lean_path(tmp_path: Path) -> None:
    sample, target = load_iris(return_X_y=True)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(sample, target)
    report = _compile_model(model, sample, None, [], config(tmp_path, compile=False))
    assert (report["path"], report["requested"]) == ("sklearn", "sklearn")
    assert report["reason"] == "compiling was turned off (--no-compile)"
    assert report["label_from_proba"] is True
    assert report["rows_independent"] is True  # trees answer each row alone, bit for bit
    assert not (tmp_path / "model.onnx").exists()


def test_a_model_whose_answer_depends_on_the_other_rows_is_not_scored_in_groups(tmp_path: Path) -> None:
    sample, target = load_iris(return_X_y=True)
    model = make_pipeline(BatchCentred(), DecisionTreeClassifier(random_state=0)).fit(sample, target)
    report = _compile_model(model, sample, None, [], config(tmp_path))
    assert report["path"] == "sklearn"  # no converter for BatchCentred
    assert report["rows_independent"] is False
    plain = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(sample, target)
    assert _compile_model(plain, sample, None, [], config(tmp_path, compile=False))["rows_independent"] is True

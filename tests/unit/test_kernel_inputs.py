"""Capture-step functions that forgive what notebooks produce, run in-process (no kernel)."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nb2prod.run.kernel.common import _CaptureProblem
from nb2prod.run.kernel.model import _apply_labels, _metrics, _metrics_problems
from nb2prod.run.kernel.sample import _describe_sample, _find_features

CONFIG = {"features": None, "fit_features": [["clf", "X.values"]], "evaluate": True}


def test_an_object_array_of_numbers_is_served_as_float_with_the_frames_column_names() -> None:
    X = pd.get_dummies(pd.DataFrame({"age": [30, 41, 52], "plan": ["a", "b", "a"]}), columns=["plan"])
    namespace = {"X": X}
    assert X.values.dtype == object  # pandas 2: ints and bools mixed
    notes: list[str] = []
    name, sample = _find_features(namespace, CONFIG, "clf", notes)
    assert name == "X.values" and sample.dtype == np.float64
    assert notes == ["`X.values` is an object array of numbers and booleans; it is served as float64."]
    schema = _describe_sample(sample, name, namespace)
    assert schema["kind"] == "array" and schema["dtype"] == "float64"
    assert [c["name"] for c in schema["columns"]] == ["age", "plan_a", "plan_b"]


def test_arrays_that_do_not_come_from_a_frame_keep_positional_names() -> None:
    namespace = {"X": np.arange(6.0).reshape(3, 2)}
    schema = _describe_sample(namespace["X"], "X", namespace)
    assert [c["name"] for c in schema["columns"]] == ["x0", "x1"]
    strings = np.array([["a", 1]], dtype=object)
    assert _find_features({"X": pd.DataFrame(strings)}, CONFIG, "clf", [])[1].dtype == object  # left as it is


def test_metrics_that_are_a_module_or_not_numbers_are_left_out_and_explained() -> None:
    module = types.ModuleType("sklearn.metrics")
    assert _metrics({"metrics": module}, CONFIG) == {}
    assert _metrics_problems({"metrics": module}, CONFIG) == {
        "": "`metrics` is the module sklearn.metrics, not a dict of numbers"
    }
    namespace = {"results": {"accuracy": np.float64(0.9), "note": "good", "loss": float("nan")}}
    config = {**CONFIG, "metrics_variable": "results"}
    assert _metrics(namespace, config) == {"accuracy": 0.9}
    assert _metrics_problems(namespace, config) == {
        "note": "`results['note']` is 'good', not a finite number",
        "loss": "`results['loss']` is nan, not a finite number",
    }
    assert _metrics_problems(namespace, {**config, "evaluate": False}) == {}


def test_labels_name_the_classes_of_a_0_1_classifier() -> None:
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    notes: list[str] = []
    _apply_labels(model, {"labels": {"0": "stay", "1": "churn"}}, notes)
    assert list(model.classes_) == ["stay", "churn"]
    assert list(model.predict(X)) == ["stay", "stay", "churn", "churn"]
    assert notes == ["classes 0 -> 'stay', 1 -> 'churn' (notebook metadata nb2prod.labels)"]


def test_labels_must_match_0_1_or_boolean_classes() -> None:
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0]]), np.array([0, 1, 2]))
    with pytest.raises(_CaptureProblem, match="the model's classes are 0, 1, 2; labels apply to 0/1 or False/True"):
        _apply_labels(model, {"labels": {"0": "a", "1": "b", "2": "c"}}, [])
    _apply_labels(model, {"labels": None}, [])  # no metadata: nothing changes
    assert list(model.classes_) == [0, 1, 2]

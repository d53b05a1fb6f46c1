"""A list of dicts as the fit input: its frame, the shipped preprocess(frame) and the proof, without a kernel."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from nb2prod.run.kernel.common import _CaptureProblem
from nb2prod.run.kernel.frozen import _frozen_load_shipped
from nb2prod.run.kernel.records import _records_frame, _records_prove, _records_source

DICTS = [
    {"city": "Oslo", "rooms": 3, "area": 71.5},
    {"city": "Rome", "rooms": 2},  # no area: the key is left out, as in a sparse record
    {"city": "Oslo", "rooms": 5, "area": 120.0},
    {"city": "Rome", "rooms": 1, "area": 30.5},
]
LABELS = [1, 0, 1, 0]


def shipped(sample: list[dict[str, object]]) -> tuple[pd.DataFrame, object]:
    frame = _records_frame(sample)
    assert frame is not None
    return frame, _frozen_load_shipped(_records_source(sample, "train_records", frame), "homes").preprocess


def test_a_feature_hasher_pipeline_answers_the_rebuilt_dicts_as_the_training_dicts() -> None:
    model = make_pipeline(FeatureHasher(n_features=16), LogisticRegression()).fit(DICTS, LABELS)
    frame, preprocess = shipped(DICTS)
    assert list(frame.columns) == ["city", "rooms", "area"]
    assert str(frame["rooms"].dtype) == "int64" and frame["area"].isna().sum() == 1
    assert preprocess(frame) == DICTS  # the missing area is left out again, not sent as NaN
    _records_prove(model, DICTS, frame, preprocess, "train_records")


def test_dicts_the_frame_cannot_give_back_are_refused_naming_the_variable() -> None:
    model = make_pipeline(FeatureHasher(n_features=16), LogisticRegression()).fit(DICTS, LABELS)
    frame, _ = shipped(DICTS)
    with pytest.raises(_CaptureProblem) as problem:
        _records_prove(model, DICTS, frame, lambda rows: [{"city": "Oslo"}] * len(rows), "train_records")
    assert problem.value.kind == "records" and problem.value.details["name"] == "train_records"


def test_only_a_list_of_dicts_with_text_keys_is_taken_as_records() -> None:
    assert _records_frame([[1, 2], [3, 4]]) is None
    assert _records_frame([{1: "a"}]) is None
    assert _records_frame([]) is None

"""Notebook metadata `nb2prod`: the metrics variable and class labels, validated when read."""

from __future__ import annotations

import pytest

from nb2prod.errors import NotebookReadError
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code


def test_metrics_variable_and_labels(make_notebook) -> None:
    path = make_notebook([code("x = 1")], nb2prod={"metrics": "results", "labels": {"0": "stay", "1": "churn"}})
    config = read_notebook(path).config
    assert config.metrics == "results"
    assert config.labels == {"0": "stay", "1": "churn"}


@pytest.mark.parametrize(
    "labels",
    [["stay", "churn"], {}, {"0": 1}, {"0": ""}],
    ids=["list", "empty", "not text", "blank"],
)
def test_labels_must_map_classes_to_text(make_notebook, labels: object) -> None:
    path = make_notebook([code("x = 1")], nb2prod={"labels": labels})
    with pytest.raises(NotebookReadError, match="`nb2prod.labels` must map each class, as text, to a label") as info:
        read_notebook(path)
    assert '{"labels": {"0": "stay", "1": "churn"}}' in info.value.hint


def test_labels_must_differ(make_notebook) -> None:
    path = make_notebook([code("x = 1")], nb2prod={"labels": {"0": "no", "1": "no"}})
    with pytest.raises(NotebookReadError, match="gives two classes the same label"):
        read_notebook(path)

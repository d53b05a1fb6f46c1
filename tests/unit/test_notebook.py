"""Reading notebooks: roles from tags and comment lines, config, parameters, bad files."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from nb2prod.errors import NotebookReadError, RoleError
from nb2prod.notebook.spec import Role, read_notebook
from tests.conftest import code, markdown


def test_roles_from_tags_and_comment_lines(make_notebook) -> None:
    path = make_notebook(
        [
            markdown("# title"),
            code("a = 1", "parameters"),
            code("#| nb2prod: load\nimport pandas as pd"),
            code("x = 2"),
            code("import matplotlib", "skip"),
        ]
    )
    spec = read_notebook(path)
    assert [c.role for c in spec.cells] == [None, Role.PARAMETERS, Role.LOAD, None, Role.SKIP]
    assert spec.cells[2].first_line == "import pandas as pd"
    assert spec.cells[2].label == "cell 3 (`import pandas as pd`)"
    assert spec.parameters[0].name == "a" and spec.parameters[0].value == 1


def test_foreign_tags_are_noted_not_fatal(make_notebook) -> None:
    path = make_notebook([code("import os", "imports"), code("x = 1", "step:train", "train")])
    spec = read_notebook(path)
    assert spec.cells[0].role is None
    assert spec.cells[1].role is Role.TRAIN
    assert len(spec.notes) == 1  # one line, however many cells carry such tags
    assert "Kale's `imports` (cell" in spec.notes[0] and "Kale's `step:train` (cell" in spec.notes[0]


def test_run_only_roles_combine(make_notebook) -> None:
    path = make_notebook(
        [code("m.fit(X, y)\nscore = m.score(X, y)", "evaluate", "train"), code("x = 1", "load", "train")]
    )
    spec = read_notebook(path)
    assert spec.cells[0].roles == (Role.TRAIN, Role.EVALUATE)
    assert spec.cells[0].role is Role.TRAIN and spec.cells[0].has(Role.EVALUATE)
    assert [c.index for c in spec.code_cells(Role.EVALUATE)] == [0]
    assert [c.index for c in spec.code_cells(Role.TRAIN)] == [0, 1]


@pytest.mark.parametrize("alone", ["preprocess", "parameters", "skip"])
def test_skip_parameters_and_preprocess_stand_alone(make_notebook, alone: str) -> None:
    path = make_notebook([code("x = 1"), code("y = 2", alone, "train")])
    with pytest.raises(RoleError, match=rf"cell 2 .* the roles .* but `{alone}` stands alone") as info:
        read_notebook(path)
    assert info.value.cell_index == 1
    assert "Only `load`, `train` and `evaluate` combine" in info.value.hint


def test_unknown_role_line_names_the_cell(make_notebook) -> None:
    path = make_notebook([code("x = 1"), code("#| nb2prod: prepare\ny = 2")])
    with pytest.raises(RoleError, match=r"cell 2: `#\| nb2prod: prepare` is not a role") as info:
        read_notebook(path)
    assert "preprocess" in info.value.hint


def test_two_parameters_cells_are_refused(make_notebook) -> None:
    path = make_notebook([code("a = 1", "parameters"), code("b = 2", "parameters")])
    with pytest.raises(RoleError, match="more than one cell has the role `parameters`"):
        read_notebook(path)


def test_content_hash_ignores_outputs_but_not_source(make_notebook, tmp_path: Path) -> None:
    first = read_notebook(make_notebook([code("x = 1", "train")], name="a.ipynb"))
    with_output = code("x = 1", "train")
    with_output.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    with_output.execution_count = 7
    second = read_notebook(make_notebook([with_output], name="b.ipynb"))
    changed = read_notebook(make_notebook([code("x = 2", "train")], name="c.ipynb"))
    assert first.content_hash == second.content_hash
    assert first.content_hash != changed.content_hash


def test_config_from_metadata(make_notebook) -> None:
    path = make_notebook([code("x = 1")], nb2prod={"model": "search.best_estimator_", "features": "X"})
    spec = read_notebook(path)
    assert spec.config.model == "search.best_estimator_"
    assert spec.config.features == "X"


def test_unknown_metadata_field_is_refused(make_notebook) -> None:
    path = make_notebook([code("x = 1")], nb2prod={"modle": "clf"})
    with pytest.raises(NotebookReadError, match="unknown field.*modle"):
        read_notebook(path)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text("this is not json")
    with pytest.raises(NotebookReadError, match=r"broken\.ipynb is not a notebook: it is not valid JSON"):
        read_notebook(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookReadError, match="no such notebook"):
        read_notebook(tmp_path / "nope.ipynb")


def test_json_that_is_not_a_notebook(tmp_path: Path) -> None:
    path = tmp_path / "data.ipynb"
    path.write_text('{"cells": "nope"}')
    with pytest.raises(NotebookReadError, match=r"data\.ipynb"):
        read_notebook(path)


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("[1, 2]", "it holds a JSON array"),
        ('{"name": "x", "rows": []}', "it holds a JSON object with name, rows"),
        ('"text"', "it holds a JSON string"),
    ],
)
def test_valid_json_that_is_not_a_notebook_says_what_it_found(tmp_path: Path, content: str, found: str) -> None:
    path = tmp_path / "data.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookReadError) as info:
        read_notebook(path)
    assert "data.ipynb is not a Jupyter notebook (nbformat 4)" in info.value.message
    assert found in info.value.message

"""Static checks: free names and magics in preprocess cells, missing train cells, hidden state."""

from __future__ import annotations

from nb2prod.analysis.lint import Severity, lint_notebook
from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.analysis.targets import find_targets
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code


def errors_of(path, **kwargs):
    """Errors other than undefined names: these notebooks are fragments (`m.fit(X)`) that check one
    thing each; names no cell defines have their own tests in test_lint_static.py."""
    findings = lint_notebook(read_notebook(path), **kwargs)
    return [f for f in findings if f.severity is Severity.ERROR and f.code != "undefined-name"]


def test_clean_notebook_has_no_errors(make_notebook) -> None:
    path = make_notebook(
        [
            code(
                "import numpy as np\n\nSCALE = 2.0\n\ndef preprocess(frame):\n    return frame * SCALE + np.pi",
                "preprocess",
            ),
            code("model.fit(preprocess(X), y)", "train"),
        ]
    )
    assert errors_of(path) == []


def test_free_name_names_the_name_the_cell_and_the_defining_cell(make_notebook) -> None:
    path = make_notebook(
        [
            code("scale = 2.0", "load"),
            code("def preprocess(frame):\n    return frame * scale", "preprocess"),
            code("model.fit(X, y)", "train"),
        ]
    )
    [finding] = errors_of(path)
    assert finding.code == "free-name"
    assert "cell 2 (`def preprocess(frame):`), line 2" in finding.message
    assert "uses `scale`" in finding.message
    assert "defined in cell 1 (`scale = 2.0`)" in finding.message
    assert finding.cell_index == 1
    assert "Tag cell 1 `preprocess`" in finding.hint


def test_free_name_defined_nowhere(make_notebook) -> None:
    path = make_notebook(
        [code("def preprocess(frame):\n    return helper(frame)", "preprocess"), code("m.fit(X)", "train")]
    )
    [finding] = errors_of(path)
    assert "`helper`" in finding.message and "no cell of the notebook defines it" in finding.message


def test_names_bound_in_functions_classes_and_comprehensions_are_not_free(make_notebook) -> None:
    source = (
        "from sklearn.base import BaseEstimator\n"
        "class T(BaseEstimator):\n    k = 3\n    def transform(self, X):\n        return [v * self.k for v in X]\n"
        "def preprocess(frame, factor=2):\n    total = sum(x for x in frame)\n    return total * factor + len(T.__name__)\n"
    )
    path = make_notebook([code(source, "preprocess"), code("m.fit(X)", "train")])
    assert errors_of(path) == []


def test_magics_and_shell_escapes_in_preprocess_are_refused_with_line(make_notebook) -> None:
    path = make_notebook(
        [
            code("import numpy as np\n%matplotlib inline\nfiles = !ls\n!pip install foo\n%time x = 1", "preprocess"),
            code("m.fit(X, y)", "train"),
        ]
    )
    findings = errors_of(path)
    assert [(f.code, f.cell_index, f.line) for f in findings] == [("magic", 0, 3), ("magic", 0, 4), ("magic", 0, 5)]
    assert "cell 1 (`import numpy as np`), line 3: `files = !ls` is IPython syntax" in findings[0].message
    assert "line 4: `!pip install foo`" in findings[1].message


def test_display_only_magics_in_preprocess_are_dropped_with_a_note(make_notebook) -> None:
    source = "import numpy as np\n%matplotlib inline\n%config InlineBackend.figure_format = 'svg'\n"
    source += "%load_ext autoreload\n%autoreload 2\nSCALE = np.pi"
    path = make_notebook([code(source, "preprocess"), code("m.fit(X, y)", "train")])
    spec = read_notebook(path)
    findings = lint_notebook(spec)
    assert [f for f in findings if f.severity is Severity.ERROR and f.code != "undefined-name"] == []
    notes = [f for f in findings if f.code == "display-magic"]
    assert [(f.cell_index, f.line) for f in notes] == [(0, 2), (0, 3), (0, 4), (0, 5)]
    assert "`%matplotlib inline` only changes how the notebook shows output" in notes[0].message
    module = assemble_preprocess(spec)
    assert "%" not in module.source.replace("# %", "")
    assert "# %matplotlib inline  (display-only magic: dropped by nb2prod)" in module.source
    assert module.locate(module.source.splitlines().index("SCALE = np.pi") + 1) == (spec.cells[0], 6)


def test_other_load_ext_is_still_refused(make_notebook) -> None:
    path = make_notebook([code("%load_ext sql\nx = 1", "preprocess"), code("m.fit(X, y)", "train")])
    [finding] = errors_of(path)
    assert (finding.code, finding.line) == ("magic", 1)


def test_magics_outside_preprocess_are_fine(make_notebook) -> None:
    path = make_notebook([code("%matplotlib inline\n!ls", "load"), code("m.fit(X)", "train")])
    assert errors_of(path) == []


def test_syntax_error_in_preprocess_names_cell_and_line(make_notebook) -> None:
    path = make_notebook(
        [code("x = 1", "preprocess"), code("def f(:\n    pass", "preprocess"), code("m.fit(X)", "train")]
    )
    [finding] = errors_of(path)
    assert finding.code == "syntax" and "cell 2" in finding.message and "line 1" in finding.message


def test_no_train_cell_and_no_model_flag_is_an_error(make_notebook) -> None:
    path = make_notebook([code("x = 1", "load")])
    [finding] = errors_of(path)
    assert finding.code == "no-train"
    assert errors_of(path, model_var="x", features_var="x") == []


def test_a_notebook_without_roles_suggests_nb2prod_tag(make_notebook) -> None:
    path = make_notebook([code("x = 1"), code("m.fit(X, y)")], name="fresh.ipynb")
    [finding] = errors_of(path)
    assert finding.code == "no-roles"
    assert "fresh.ipynb: no cell has an nb2prod role" in finding.message
    assert f"nb2prod tag {path}" in finding.hint and "--write" in finding.hint
    assert [f.code for f in errors_of(path, model_var="m")] == ["no-roles"]


def test_out_of_order_execution_is_a_warning(make_notebook) -> None:
    first = code("a = 1")
    first.execution_count = 5
    second = code("m.fit(X)", "train")
    second.execution_count = 2
    findings = lint_notebook(read_notebook(make_notebook([first, second])))
    assert [f.code for f in findings if f.severity is Severity.WARNING] == ["hidden-state"]


def test_targets_from_fit_calls(make_notebook) -> None:
    path = make_notebook(
        [
            code(
                "from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier()\nclf.fit(preprocess(X_train), y)",
                "train",
            ),
        ]
    )
    targets = find_targets(read_notebook(path), model=None, features=None)
    assert targets.model_candidates == ("clf",)
    assert targets.fit_features == (("clf", "X_train"),)


def test_targets_prefer_flags_over_metadata(make_notebook) -> None:
    path = make_notebook([code("clf.fit(X, y)", "train")], nb2prod={"model": "other", "features": "Z"})
    spec = read_notebook(path)
    assert find_targets(spec, model=None, features=None).model == "other"
    assert find_targets(spec, model="clf", features="X").features == "X"


def test_targets_from_chained_fit_and_expressions(make_notebook) -> None:
    path = make_notebook(
        [
            code(
                "from sklearn.svm import SVC\nclf = SVC().fit(X_train.to_numpy(), y)\nXt = SVC().fit_transform(X)",
                "train",
            ),
        ]
    )
    targets = find_targets(read_notebook(path), model=None, features=None)
    assert targets.model_candidates == ("clf",)
    assert targets.fit_features == (("clf", "X_train.to_numpy()"),)

"""Lint finds before any run what capture would only find after it: the model and its input,
names only skipped cells define, train cells without a fit, double fits, and who defines what."""

from __future__ import annotations

from nb2prod.analysis.lint import Severity, lint_notebook
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code

LOAD = code(
    "from sklearn.datasets import load_iris\nfrom sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.feature_selection import SelectKBest\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.preprocessing import StandardScaler\nfrom sklearn.svm import SVC\n"
    "from sklearn.tree import DecisionTreeClassifier\nX, y = load_iris(return_X_y=True)",
    "load",
)


def findings_of(path, **kwargs):
    return lint_notebook(read_notebook(path), **kwargs)


def errors_of(path, **kwargs):
    return [f for f in findings_of(path, **kwargs) if f.severity is Severity.ERROR]


def test_a_model_only_cross_validated_is_found_before_the_run(make_notebook) -> None:
    train = "from sklearn.linear_model import LogisticRegression\nfrom sklearn.model_selection import cross_validate\n"
    train += "model = LogisticRegression()\nscores = cross_validate(model, X, y, cv=3)"
    path = make_notebook([LOAD, code(train, "train")])
    [finding] = errors_of(path)
    assert finding.code == "no-fit" and finding.cell_index == 1
    assert "the train cells (cell 2 (`from sklearn.linear_model import LogisticRegression`)) call no `fit`" in (
        finding.message
    )
    assert "`model` is only passed to cross_validate, which fits copies" in finding.message
    assert "Call `model.fit(X, y)` in a train cell" in finding.hint


def test_train_cells_that_fit_nothing(make_notebook) -> None:
    path = make_notebook([LOAD, code("X_mean = X.mean(axis=0)", "train")])
    [finding] = errors_of(path)
    assert finding.code == "no-fit"
    assert "Fit the model in a cell tagged `train`" in finding.hint


def test_two_fitted_estimators_are_ambiguous_and_the_flag_resolves_it(make_notebook) -> None:
    train = (
        "tree = DecisionTreeClassifier(max_depth=3)\nforest = RandomForestClassifier(n_estimators=10)\n"
        "tree.fit(X, y)\nforest.fit(X, y)"
    )
    path = make_notebook([LOAD, code(train, "train")])
    [finding] = errors_of(path)
    assert finding.code == "ambiguous-model"
    assert "`tree` (DecisionTreeClassifier, cell 2), `forest` (RandomForestClassifier, cell 2)" in finding.message
    assert "--model VAR" in finding.hint
    assert errors_of(path, model_var="forest") == []


def test_transformers_and_loop_variables_are_not_candidates(make_notebook) -> None:
    train = (
        "scaler = StandardScaler()\nscaler.fit(X, y)\nselector = SelectKBest(k=2).fit(X, y)\n"
        "for candidate in [SVC(), LogisticRegression()]:\n    candidate.fit(X, y)\n"
        "model = SVC()\nmodel.fit(scaler.transform(X), y)"
    )
    path = make_notebook([LOAD, code(train, "train")])
    assert errors_of(path) == []


def test_a_named_model_that_train_cells_do_not_fit_needs_features(make_notebook) -> None:
    path = make_notebook([LOAD, code("clf = SVC()\nclf.fit(X, y)", "train")], nb2prod={"model": "X"})
    [finding] = errors_of(path)
    assert finding.code == "no-features"
    assert "no `X.fit(X, ...)` was found in the train cells (they fit `clf`)" in finding.message
    assert "--model clf" in finding.hint
    assert errors_of(path, features_var="X") == []


def test_a_model_assigned_only_in_a_skipped_cell(make_notebook) -> None:
    path = make_notebook([LOAD, code("clf = SVC().fit(X, y)", "skip"), code("score = 1", "train")])
    findings = errors_of(path, model_var="clf", features_var="X")
    assert [f.code for f in findings] == ["unknown-target"]
    assert "the model is `clf`, but only cell 2 (`clf = SVC().fit(X, y)`), which is tagged `skip`" in (
        findings[0].message
    )
    assert findings[0].cell_index == 1


def test_a_fit_inside_a_timing_magic_is_seen(make_notebook) -> None:
    path = make_notebook([LOAD, code("%%time\nmodel = SVC()\nmodel.fit(X, y)", "train")])
    assert errors_of(path) == []


def test_a_name_only_a_skipped_cell_defines_names_both_cells(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code("import matplotlib.pyplot as plt\nplt.plot(X[:, 0])", "skip"),
            code("model = SVC()\nmodel.fit(X, y)\nplt.title('done')", "train"),
        ]
    )
    [finding] = errors_of(path)
    assert finding.code == "skipped-definition"
    assert (finding.cell_index, finding.line) == (2, 3)
    assert "cell 3 (`model = SVC()`), line 3: uses `plt`, which only cell 2 (`import matplotlib.pyplot as plt`)" in (
        finding.message
    )
    assert "would fail with NameError" in finding.message
    assert "Remove the `skip` tag from cell 2" in finding.hint


def test_names_defined_by_running_cells_or_used_in_function_bodies_are_fine(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code("import numpy as np\nextra = np.ones(3)", "skip"),
            code("import numpy as np\ndef show():\n    return extra\nmodel = SVC().fit(np.asarray(X), y)", "train"),
        ]
    )
    assert errors_of(path) == []


def test_a_star_import_stops_the_skipped_name_check(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code("helper = 1", "skip"),
            code("from os.path import *"),
            code("model = SVC().fit(X, y + helper)", "train"),
        ]
    )
    assert errors_of(path) == []


def test_a_train_cell_without_fit_and_a_double_fit_are_warnings(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code("model = SVC()", "train"),
            code("model.fit(X[:10], y[:10])\nscore = model.score(X, y)\nmodel.fit(X, y)", "train", "evaluate"),
        ]
    )
    warnings = [f for f in findings_of(path) if f.severity is Severity.WARNING]
    assert [(f.code, f.cell_index, f.line) for f in warnings] == [
        ("train-without-fit", 1, None),
        ("fitted-twice", 2, 3),
    ]
    assert "cell 2 (`model = SVC()`): the cell is tagged `train` but calls no `fit`" in warnings[0].message
    assert "`model` is fitted 2 times in this cell (lines 1, 3); the last fit (line 3) is the one served" in (
        warnings[1].message
    )
    assert errors_of(path) == []


def test_free_names_are_attributed_to_the_definition_in_effect(make_notebook) -> None:
    path = make_notebook(
        [
            code("class Scaler:\n    pass", "skip"),
            code("class Scaler:\n    factor = 2"),
            code("def preprocess(frame):\n    return Scaler.factor * frame", "preprocess"),
            code("class Scaler:\n    factor = 3"),
            code("model = SVC().fit(preprocess(X), y)", "train"),
        ]
    )
    [finding] = [f for f in errors_of(path) if f.code == "free-name"]
    assert "it is defined in cell 2 (`class Scaler:`), which is not a preprocess cell" in finding.message
    assert "Tag cell 2 `preprocess`" in finding.hint


def test_a_name_no_running_cell_defines_is_an_error_before_the_run(make_notebook) -> None:
    path = make_notebook(
        [
            code("%matplotlib inline\nimport pandas as pd\nfrom sklearn.linear_model import LinearRegression"),
            code("df = pd.read_csv('houses.csv')", "load"),
            code("df['log_area'] = np.log1p(df['area'])\nX = df[['log_area', 'rooms']]\ny = df['price']"),
            code("model = LinearRegression()\nmodel.fit(X, y)", "train"),
            code("print(score)"),
            code("score = model.score(X, y)"),
        ]
    )
    errors = errors_of(path)
    assert [(f.code, f.cell_index, f.line) for f in errors] == [("undefined-name", 2, 1), ("undefined-name", 4, 1)]
    assert "cell 3 (`df['log_area'] = np.log1p(df['area'])`), line 1: uses `np`, but no cell that runs defines it" in (
        errors[0].message
    )
    assert errors[0].hint == "Add `import numpy as np` to a cell above."
    assert "uses `score`, but it is first defined in cell 6" in errors[1].message


def test_names_bound_every_way_python_binds_them_are_defined(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code("import numpy as np, os.path\nfrom sklearn.svm import SVC"),
            code("n_rows = 10", "parameters"),
            code(
                "try:\n    import lightgbm\nexcept ImportError as missing:\n    print(missing)\n"
                "squares = [v * v for v in range(n_rows)]\nif (total := sum(squares)) > 0:\n    print(total)\n"
                "with open(os.path.join('.', 'notes.txt'), 'w') as handle:\n    handle.write(str(total))\n"
                "for i, row in enumerate(X[:3]):\n    last = row\nprint(i, last, In, Out, _, __name__, display)\n"
                "match squares:\n    case [first, *rest]:\n        print(first, rest)\n"
                "def helper():\n    global counter\n    counter = later_name\n"
                "temp = 1\ndel temp"
            ),
            code("model = SVC().fit(X, y)", "train"),
        ]
    )
    assert errors_of(path) == []


def test_after_a_star_import_or_run_magic_free_names_cannot_be_told(make_notebook) -> None:
    for first in ("from helpers import *", "%run helpers.py"):
        path = make_notebook([LOAD, code(first), code("X2 = add_features(X)\nmodel = SVC().fit(X2, y)", "train")])
        assert [f for f in errors_of(path) if f.code == "undefined-name"] == []


def test_a_preprocess_cell_that_reads_a_file_is_refused_and_sent_to_load(make_notebook) -> None:
    imports = code("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression", "preprocess")
    cleaning = "df = df.dropna()\nlookup = pd.read_parquet('regions.parquet')\ndf['region'] = df['zip'].map(lookup)"
    train = code("X = df[['age', 'region']]\ny = df['churn']\nmodel = LogisticRegression().fit(X, y)", "train")
    path = make_notebook(
        [imports, code("df = pd.read_csv('customers.csv')", "load"), code(cleaning, "preprocess"), train]
    )
    [finding] = [f for f in errors_of(path) if f.code == "reads-files"]
    assert (finding.cell_index, finding.line) == (2, 2)
    assert "nb.ipynb, cell 3 (`df = df.dropna()`), line 2: a preprocess cell reads a file (`pd.read_parquet(...)`)" in (
        finding.message
    )
    assert finding.hint.startswith("Tag cell 3 `load`")


def test_opening_a_file_in_a_preprocess_cell_is_refused_too(make_notebook) -> None:
    cells = [
        code("import json\nimport pandas as pd", "preprocess"),
        code("with open('columns.json') as f:\n    columns = json.load(f)\nfeatures = columns[:3]", "preprocess"),
        code("from sklearn.svm import SVC\nmodel = SVC().fit(X[features], y)", "train"),
    ]
    [finding] = [f for f in errors_of(make_notebook(cells)) if f.code == "reads-files"]
    assert (finding.cell_index, finding.line) == (1, 1) and "(`open(...)`)" in finding.message
    assert "Tag cell 2 `load`" in finding.hint


def test_a_load_cell_reading_files_is_fine(make_notebook) -> None:
    cells = [
        code("import pandas as pd\nfrom sklearn.svm import SVC"),
        code("df = pd.read_csv('a.csv')\ndf = df.merge(pd.read_csv('b.csv'), on='k')", "load"),
        code("model = SVC().fit(df[['x']], df['y'])", "train"),
    ]
    assert [f for f in findings_of(make_notebook(cells)) if f.code == "reads-files"] == []

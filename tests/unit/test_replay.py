"""Replaying preprocess cells as preprocess(frame), without a kernel: what is shipped, frozen,
left out or refused, and the edits that make the run record the frozen values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nb2prod.analysis.findings import Severity
from nb2prod.analysis.lint import lint_notebook
from nb2prod.analysis.preprocess import PreprocessModule, assemble_preprocess
from nb2prod.analysis.splice import apply_edits
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code

LOAD = code(
    "import pandas as pd\n"
    'train = pd.DataFrame({"Age": [22.0, None, 40.0], "Sex": ["m", "f", "f"], "Survived": [0, 1, 1]})\n'
    'test = pd.DataFrame({"Age": [30.0, None], "Sex": ["f", "m"]})',
    "load",
)
TRAIN = code("from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression().fit(X, y)", "train")


def module_of(path: Path, **options: str) -> PreprocessModule:
    return assemble_preprocess(read_notebook(path), **options)


def function_of(module: PreprocessModule) -> str:
    assert module.replay is not None and module.replay.generates_function
    return module.source[module.source.index("def preprocess(frame):") :]


def errors_of(module: PreprocessModule) -> list[str]:
    assert module.replay is not None
    return [issue.message for issue in module.replay.errors]


def test_definitions_only_are_shipped_verbatim(make_notebook) -> None:
    path = make_notebook([LOAD, code("COLUMNS = ['Age']\n\ndef double(x):\n    return 2 * x", "preprocess"), TRAIN])
    module = module_of(path)
    assert module.replay is None
    assert "COLUMNS = ['Age']" in module.source and not module.defines_preprocess


def test_loop_over_frames_is_replayed_on_the_request_with_statistics_frozen(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                "import pandas as pd\n\n"
                "for dataset in [train, test]:\n"
                "    # the training median, not the request's\n"
                '    dataset["Age"] = dataset["Age"].fillna(train["Age"].median())\n'
                '    dataset["Sex"] = dataset["Sex"].map({"f": 1, "m": 0})\n'
                'X = train.drop("Survived", axis=1)\n'
                'y = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    module = module_of(path)
    function = function_of(module)
    assert "    train = frame.copy()\n" in function
    assert "    dataset = train\n" in function  # the loop runs once, on the request
    assert "    # the training median, not the request's\n" in function  # comments kept
    assert """dataset["Age"].fillna(FROZEN["train['Age'].median()"])""" in function
    assert "    X = train\n    return X\n" in function  # the label is not in a request
    assert 'y = train["Survived"]' not in module.source
    assert module.replay is not None and module.replay.raw == "train"
    assert [f.key for f in module.replay.frozen] == ["train['Age'].median()"]
    notes = [i.message for i in module.replay.issues if i.severity is Severity.NOTE]
    assert any("the loop over [train, test] runs on the request frame only; `test` is not replayed" in n for n in notes)
    ast.parse(module.source)


def test_the_run_records_the_same_expressions_on_the_same_lines(make_notebook) -> None:
    source = 'for dataset in [train, test]:\n    dataset["Age"] = dataset["Age"].fillna(dataset["Age"].median())\nX = train[["Age"]]\ny = train["Survived"]'
    path = make_notebook([LOAD, code(source, "preprocess"), TRAIN])
    spec = read_notebook(path)
    module = assemble_preprocess(spec)
    edited = apply_edits(spec.cells[1].source, module.run_edits[1])
    assert edited.count("\n") == source.count("\n")
    assert 'for dataset in _nb2prod_frames("L0", [train, test], train):' in edited
    assert """_nb2prod_freeze("dataset['Age'].median()", dataset["Age"].median(), "L0", ())""" in edited
    fitted = apply_edits(spec.cells[2].source, module.run_edits[2])
    assert 'fit(_nb2prod_keep("fit:model", X), y)' in fitted


def test_get_dummies_is_aligned_and_qcut_uses_training_edges(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                "import pandas as pd\n"
                'train["AgeBand"] = pd.qcut(train["Age"], 2, labels=False)\n'
                'train = pd.get_dummies(train, columns=["Sex"])\n'
                'X = train.drop(columns=["Survived"])\n'
                'y = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    function = function_of(module_of(path))
    assert 'pd.cut(train["Age"], FROZEN["pd.qcut(train' in function and "include_lowest=True)" in function
    assert 'train = align_columns(pd.get_dummies(train, columns=["Sex"]), FROZEN[' in function
    assert "def align_columns(frame, columns):" in module_of(path).source


def test_hand_standardised_columns_freeze_mean_and_std_per_column(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                'for column in ["Age"]:\n'
                "    train[column] = (train[column] - train[column].mean()) / train[column].std()\n"
                'X = train[["Age"]]\ny = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    function = function_of(module_of(path))
    assert 'FROZEN["train[column].mean()"][column]' in function
    assert 'FROZEN["train[column].std()"][column]' in function


def test_a_random_fill_is_refused_with_cell_and_line(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                "import numpy as np\n"
                "for dataset in [train, test]:\n"
                '    missing = dataset["Age"].isna()\n'
                '    dataset.loc[missing, "Age"] = np.random.randint(20, 40, size=missing.sum())\n'
                'X = train[["Age"]]\ny = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    spec = read_notebook(path)
    findings = [f for f in lint_notebook(spec) if f.code == "random-fill"]
    assert [(f.severity, f.cell_index, f.line) for f in findings] == [(Severity.ERROR, 1, 4)]
    assert "cell 2" in findings[0].message and "line 4" in findings[0].message
    assert "`np.random.randint(...)` draws random numbers" in findings[0].message


def test_statements_on_training_data_without_a_raw_frame_are_refused_with_ways_out(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code('train["Age"] = train["Age"].fillna(0)', "preprocess"),
            code("X = [[1.0], [2.0], [3.0]]\ny = [0, 1, 1]", "load"),
            TRAIN,
        ]
    )
    errors = errors_of(module_of(path))
    assert len(errors) == 1 and "cell 2" in errors[0] and "line 1" in errors[0]
    assert module_of(path).replay.errors[0].hint.startswith("Ways out: name the raw input frame with --raw")  # type: ignore[union-attr]


def test_raw_frame_can_be_named(make_notebook) -> None:
    cells = [
        LOAD,
        code('train["Age"] = train["Age"].fillna(train["Age"].median())', "preprocess"),
        code('X = train[["Age"]]\ny = train["Survived"]'),
        TRAIN,
    ]
    assert module_of(make_notebook(cells), raw="train").replay.raw == "train"  # type: ignore[union-attr]
    named = make_notebook(cells, name="named.ipynb", nb2prod={"raw": "train"})
    function = function_of(module_of(named))
    assert 'return train[["Age"]]' in function  # the fit input is built after the preprocess cells


def test_a_hand_written_preprocess_with_a_frozen_constant(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                'MEAN = train["Age"].mean()\n\n\ndef preprocess(frame):\n    return frame[["Age"]].fillna(MEAN)',
                "preprocess",
            ),
            code('X = train.drop(columns=["Survived", "Sex"])\ny = train["Survived"]'),
            code(
                "from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression().fit(preprocess(X), y)",
                "train",
            ),
        ]
    )
    module = module_of(path)
    assert module.replay is not None and not module.replay.generates_function and not module.replay.errors
    assert """MEAN = FROZEN["train['Age'].mean()"]""" in module.source
    assert module.source.index("FROZEN = {}") < module.source.index("MEAN = FROZEN")
    assert module.defines_preprocess


def test_statements_next_to_a_hand_written_preprocess_are_refused(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code('train["Age"] = train["Age"].fillna(0)\n\ndef preprocess(frame):\n    return frame', "preprocess"),
            code('X = train[["Age"]]\ny = train["Survived"]'),
            code(
                "from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression().fit(preprocess(X), y)",
                "train",
            ),
        ]
    )
    errors = errors_of(module_of(path))
    assert errors and "also define `preprocess(frame)`" in errors[0]


def test_fitted_transformers_before_fit_are_composed_not_shipped(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                "from sklearn.impute import SimpleImputer\nfrom sklearn.preprocessing import StandardScaler\n"
                'X = train[["Age"]]\ny = train["Survived"]\n'
                "imputer = SimpleImputer()\nscaler = StandardScaler()\n"
                "X = imputer.fit_transform(X)\nX = scaler.fit_transform(X)\n"
                'X_test = scaler.transform(imputer.transform(test[["Age"]]))',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    module = module_of(path)
    assert module.fits is not None
    chain = module.fits.chain("model")
    assert chain is not None and chain.transformers == ("imputer", "scaler") and chain.start == "X"
    assert "SimpleImputer()" not in module.source and "fit_transform" not in module.source
    assert module.replay is not None and not module.replay.errors


@pytest.mark.parametrize(
    ("statement", "kept"),
    [
        ('train = train[train["Age"] < 60]', False),  # a row filter: training only
        ("train.dropna(inplace=True)", False),
        ('del train["Survived"]', False),  # the label
        ("train.head()", False),  # shows a value
        ('train["Old"] = train["Age"] > 50', True),
    ],
)
def test_what_is_left_out_of_the_function(make_notebook, statement: str, kept: bool) -> None:
    path = make_notebook([LOAD, code(f'{statement}\nX = train[["Age"]]\ny = train["Survived"]', "preprocess"), TRAIN])
    assert (statement in function_of(module_of(path))) is kept


def test_category_lists_are_frozen(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                'import pandas as pd\ntrain["Sex"] = train["Sex"].astype("category")\nX = train[["Sex"]]\ny = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    module = module_of(path)
    function = function_of(module)
    assert (
        'train["Sex"] = with_categories(train["Sex"], FROZEN["train[\'Sex\'].astype(\'category\') categories"])'
        in function
    )
    assert "def with_categories(values, categories):" in module.source


def test_a_timed_train_cell_is_still_recorded(make_notebook) -> None:
    timed = code(
        "%%time\nfrom sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression().fit(X, y)", "train"
    )
    path = make_notebook(
        [
            LOAD,
            code('train["Age"] = train["Age"].fillna(0)\nX = train[["Age"]]\ny = train["Survived"]', "preprocess"),
            timed,
        ]
    )
    spec = read_notebook(path)
    module = assemble_preprocess(spec)
    assert module.replay is not None and module.replay.raw == "train" and not module.replay.errors
    edited = apply_edits(spec.cells[2].source, module.run_edits[2])
    assert edited.startswith("%%time\n") and 'fit(_nb2prod_keep("fit:model", X), y)' in edited


def test_encoders_fitted_in_the_cells_are_frozen_as_training_fitted_them(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                "from sklearn.preprocessing import LabelEncoder\n"
                "encoder = LabelEncoder()\n"
                "for dataset in [train, test]:\n"
                '    dataset["Sex"] = encoder.fit_transform(dataset["Sex"])\n'
                "checker = LabelEncoder()\n"
                'checker.fit(train["Sex"])\n'
                'train["Check"] = checker.transform(train["Sex"])\n'
                'X = train[["Sex", "Check"]]\ny = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    module = module_of(path)
    function = function_of(module)
    assert 'dataset["Sex"] = FROZEN["encoder fitted"].transform(dataset["Sex"])' in function
    assert 'train["Check"] = FROZEN["checker"].transform(train["Sex"])' in function
    assert "checker.fit(" not in function
    spec = read_notebook(path)
    edited = apply_edits(spec.cells[1].source, module.run_edits[1])
    assert '_nb2prod_fitted("encoder fitted", encoder, encoder.fit_transform(dataset["Sex"]), "L0", ())' in edited


def test_random_draws_kept_in_a_variable_inside_a_loop_over_frames_are_a_random_fill(make_notebook) -> None:
    path = make_notebook(
        [
            LOAD,
            code(
                "import numpy as np\n"
                "full_data = [train, test]\n"
                "for dataset in full_data:\n"
                "    age_avg = dataset['Age'].mean()\n"
                "    age_std = dataset['Age'].std()\n"
                "    age_null_count = dataset['Age'].isnull().sum()\n"
                "    age_null_random_list = np.random.randint(age_avg - age_std, age_avg + age_std, size=age_null_count)\n"
                "    dataset.loc[np.isnan(dataset['Age']), 'Age'] = age_null_random_list\n"
                "X = train.drop('Survived', axis=1)\ny = train['Survived']",
                "preprocess",
            ),
            TRAIN,
        ]
    )
    errors = errors_of(module_of(path, raw="train"))
    assert len(errors) == 1
    assert "line 7: `np.random.randint(...)` draws random numbers" in errors[0] and "combines" not in errors[0]


def test_the_recorders_run_before_the_raw_frame_snapshot(make_notebook) -> None:
    from nb2prod.run.recording import recording_edits

    path = make_notebook(
        [
            code(
                "import pandas as pd\ndf = pd.DataFrame({'a': [1.0, None, 3.0], 'junk': [0, 1, 2], 'y': [0, 1, 1]})",
                "load",
            ),
            code("df.drop(columns=['junk'], inplace=True)\ndf['year_now'] = 2024", "preprocess"),
            code("df['a'] = df['a'].fillna(df['a'].median())\nX = df.drop(columns=['y'])\ny = df['y']", "preprocess"),
            TRAIN,
        ]
    )
    spec = read_notebook(path)
    module = assemble_preprocess(spec)
    assert module.replay is not None and module.replay.snapshot_before == 1  # needs no recording itself
    edits = recording_edits(spec, module)
    first = min(edits.before)
    assert first == 1 and "def _nb2prod_snapshot" in edits.before[first]
    assert edits.before[first].index("def _nb2prod_snapshot") < edits.before[first].index("_nb2prod_snapshot('df'")


def test_columns_renamed_by_a_literal_list_leave_out_the_label_a_request_lacks(make_notebook) -> None:
    cells = [
        LOAD,
        code(
            "train.columns = ['age', 'sex', 'survived']\n"
            "for col in ['age']:\n"
            "    train[col] = train[col].fillna(30.0)\n"
            "train['sex'] = train['sex'].map({'m': 0, 'f': 1})",
            "preprocess",
        ),
        code("X = train.drop('survived', axis=1)\ny = train['survived'].astype(int)", "preprocess"),
        TRAIN,
    ]
    module = module_of(make_notebook(cells), raw="train")
    body = function_of(module)
    assert "train.columns = ['age', 'sex']\n" in body  # `.astype(int)` on the label still names it
    assert "for col in ['age']:" in body
    assert errors_of(module) == []


def test_a_comprehension_over_the_columns_is_replayed_with_its_own_variable(make_notebook) -> None:
    """`c` is the comprehension's, not a notebook value to freeze; the largest training value inside one still is."""
    path = make_notebook(
        [
            LOAD,
            code(
                "cutoff = 30\n"
                'features = [c for c in train.columns if c != "Survived"]\n'
                'flags = {c: train[c].isna().sum() for c in features if c != "Sex"}\n'
                'train["Old"] = [age > cutoff for age in train["Age"]]\n'
                "X = train[features]\n"
                'y = train["Survived"]',
                "preprocess",
            ),
            TRAIN,
        ]
    )
    module = module_of(path)
    function = function_of(module)
    assert """    features = [c for c in train.columns if c != "Survived"]\n""" in function
    assert """    train["Old"] = [age > cutoff for age in train["Age"]]\n""" in function  # per row, a constant
    # the NaN count of each column varies with `c`: the whole dict is training's
    key = """{c: train[c].isna().sum() for c in features if c != 'Sex'}"""
    assert f"    flags = FROZEN[{key!r}]\n" in function
    assert [f.key for f in module.replay.frozen] == [key]
    ast.parse(module.source)

"""`nb2prod tag`: roles proposed from a def-use analysis of the cells, without a kernel."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from nb2prod.analysis.roles import fit_input_roles, propose_roles
from nb2prod.errors import ModelChoiceError, OptionsError, OutputExistsError
from nb2prod.notebook.spec import read_notebook
from nb2prod.pipeline import propose_roles as pipeline_propose_roles
from nb2prod.pipeline import tag
from tests.conftest import code, markdown, run_cli

IMPORTS = "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n%matplotlib inline"


def plan_of(path: Path, model: str | None = None):
    return propose_roles(read_notebook(path), model)


def roles_of(path: Path, model: str | None = None) -> list[tuple[str, ...]]:
    return [p.roles for p in plan_of(path, model).proposals]


def reasons_of(path: Path, model: str | None = None) -> list[str]:
    return [p.reason for p in plan_of(path, model).proposals]


TUTORIAL = [
    markdown("# A tutorial"),
    code(IMPORTS + "\nfrom sklearn.linear_model import LogisticRegression\nfrom sklearn.metrics import accuracy_score"),
    code("df = pd.read_csv('customers.csv')"),
    code("df.head()"),
    code("df.describe()"),
    code("df['age'].hist()\nplt.show()"),
    code("df['ratio'] = df['spend'] / df['income']\nX = df[['age', 'ratio']]\ny = df['churn']"),
    code("corr = df.corr()"),
    code("model = LogisticRegression()\nmodel.fit(X, y)"),
    code("pred = model.predict(X)"),
    code("accuracy_score(y, pred)"),
    code("plt.scatter(X['age'], pred)"),
    code("df.tail()"),
]


def test_a_tutorial_notebook_gets_one_role_per_code_cell(make_notebook) -> None:
    path = make_notebook(TUTORIAL)
    plan = plan_of(path)
    assert plan.model == "model" and not plan.convert_needs_model and plan.warnings == ()
    assert [p.cell_index for p in plan.proposals] == list(range(1, 13))
    assert [p.roles for p in plan.proposals] == [
        (),
        ("load",),
        ("skip",),
        ("skip",),
        ("skip",),
        ("preprocess",),
        ("skip",),
        ("train",),
        (),
        ("evaluate",),
        ("skip",),
        ("skip",),
    ]
    reasons = [p.reason for p in plan.proposals]
    assert reasons[0] == "imports `pd`, used by cell 3"
    assert reasons[1] == "reads data with `pd.read_csv`"
    assert reasons[2] == "only displays `df.head()`"
    assert reasons[4] == "plots (`.hist`)"
    assert reasons[5] == "prepares the fit input: defines `X`, used by cell 9"
    assert plan.service_input is not None and plan.service_input.describe() == "raw columns of `df` from customers.csv"
    assert reasons[6] == "explores: the model and its metrics do not use its `corr`"
    assert reasons[7] == "fits `model` (the served model)"
    assert reasons[9] == "computes `accuracy_score` for the served model"
    assert reasons[10].startswith("after the last cell the model and its metrics need; plots")
    assert reasons[11] == "after the last cell the model and its metrics need; only displays `df.tail()`"


def test_the_pipeline_api_returns_typed_proposals(make_notebook) -> None:
    path = make_notebook(TUTORIAL)
    proposals = pipeline_propose_roles(path)
    assert proposals == pipeline_propose_roles(read_notebook(path))
    first = proposals[1]
    assert (first.cell_index, first.role, first.roles) == (2, "load", ("load",))
    assert proposals[0].role is None and proposals[0].reason


def test_several_fitted_models_are_listed_and_never_guessed(make_notebook) -> None:
    path = make_notebook(
        [
            code("X, y = load_iris(return_X_y=True)"),
            code("lr = LogisticRegression().fit(X, y)"),
            code("tree = DecisionTreeClassifier()\ntree.fit(X, y)"),
            code("print(lr.score(X, y), tree.score(X, y))"),
        ],
        name="compare.ipynb",
    )
    with pytest.raises(ModelChoiceError) as info:
        plan_of(path)
    assert info.value.candidates == ("lr", "tree")
    assert (
        "compare.ipynb: 2 models are fitted: `lr` (LogisticRegression, cell 2: scores in cell 4), "
        "`tree` (DecisionTreeClassifier, cell 3: scores in cell 4)" in (info.value.message)
    )
    assert "nb2prod tag compare.ipynb --model tree" in info.value.hint
    plan = plan_of(path, "tree")
    # cell 4 reports both models: not the served model's metrics, so it need not run
    assert [p.roles for p in plan.proposals] == [("load",), ("skip",), ("train",), ("skip",)]
    assert plan.proposals[1].reason == "fits `lr`, not the served model `tree`"
    assert not plan.convert_needs_model


def test_models_fitted_in_a_loop_are_not_candidates(make_notebook) -> None:
    path = make_notebook(
        [
            code("X, y = make_classification(random_state=0)"),
            code("for m in [SVC(), LogisticRegression()]:\n    m.fit(X, y)\n    print(m.score(X, y))"),
            code("best = SVC(C=2.0)\nbest.fit(X, y)\nprint(accuracy_score(y, best.predict(X)))"),
        ]
    )
    plan = plan_of(path)
    assert [p.roles for p in plan.proposals] == [("load",), ("skip",), ("train", "evaluate")]
    assert plan.proposals[0].reason == "builds the data with `make_classification`"
    assert plan.proposals[1].reason == "fits `m`, not the served model `best`"


def test_a_fit_and_score_cell_that_also_fits_others_needs_the_model_flag_for_convert(make_notebook) -> None:
    path = make_notebook([code("X, y = load_iris(return_X_y=True)"), code("a = SVC().fit(X, y)\nb = SVC().fit(X, y)")])
    plan = plan_of(path, "b")
    assert [p.roles for p in plan.proposals] == [("load",), ("train",)]
    assert plan.convert_needs_model


def test_no_fitted_model_is_an_error(make_notebook) -> None:
    path = make_notebook([code("x = 1")])
    with pytest.raises(ModelChoiceError, match="no cell fits a model") as info:
        plan_of(path)
    assert "--model VAR" in info.value.hint
    with pytest.raises(ModelChoiceError, match="the model is `clf`, but no cell that runs assigns `clf`"):
        plan_of(path, "clf")


def test_metadata_names_the_model_and_the_metrics_variable(make_notebook) -> None:
    path = make_notebook(
        [
            code("X, y = load_iris(return_X_y=True)"),
            code("search = GridSearchCV(SVC(), {'C': [1, 2]})\nsearch.fit(X, y)\nother = SVC().fit(X, y)"),
            code("results = {'cv': float(search.best_score_)}"),
        ],
        nb2prod={"model": "search.best_estimator_", "metrics": "results"},
    )
    plan = plan_of(path)
    assert plan.model == "search.best_estimator_"
    assert [p.roles for p in plan.proposals] == [("load",), ("train",), ("evaluate",)]
    assert plan.proposals[2].reason == "sets the `results` dict"
    assert not plan.convert_needs_model  # metadata names it for convert too


def test_a_custom_transformer_is_preprocess_with_the_imports_it_needs(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS + "\nfrom sklearn.base import BaseEstimator, TransformerMixin"),
            code("df = pd.DataFrame({'a': np.arange(10.0), 'y': [0, 1] * 5})\nX, y = df[['a']], df['y']"),
            code(
                "COLUMNS = ['a']\n\ndef shift(values):\n    return values + 1\n\n"
                "class Shift(BaseEstimator, TransformerMixin):\n    def fit(self, X, y=None):\n        return self\n"
                "    def transform(self, X):\n        return shift(np.asarray(X[COLUMNS]))"
            ),
            code("Shift().fit_transform(X)[:3]"),
            code("model = make_pipeline(Shift(), LogisticRegression())\nmodel.fit(X, y)"),
        ]
    )
    plan = plan_of(path)
    assert [p.roles for p in plan.proposals] == [("preprocess",), ("load",), ("preprocess",), ("skip",), ("train",)]
    assert plan.proposals[1].reason.startswith("makes the raw frame `df` (line 1 builds it with `pd.DataFrame`)")
    assert plan.proposals[0].reason == (
        "imports `BaseEstimator`, `TransformerMixin`, `np` for the preprocess code in cell 3"
    )
    assert plan.proposals[2].reason == "defines `Shift`, used by `model`"
    assert plan.warnings == ()


def test_functions_held_by_the_model_ship_and_builder_functions_are_followed(make_notebook) -> None:
    path = make_notebook(
        [
            code("X, y = load_iris(return_X_y=True)"),
            code("import numpy as np\n\ndef log1(values):\n    return np.log1p(values)"),
            code("class Clip:\n    def fit(self, X, y=None):\n        return self"),
            code("def build(c):\n    return make_pipeline(Clip(), FunctionTransformer(log1), SVC(C=c))"),
            code("model = build(1.0)\nmodel.fit(X, y)"),
        ]
    )
    plan = plan_of(path)
    assert [p.roles for p in plan.proposals] == [("load",), ("preprocess",), ("preprocess",), (), ("train",)]
    assert plan.proposals[1].reason == "defines `log1`, used by `model`"
    assert plan.proposals[3].reason == "defines `build`, used by cell 5"


def test_shipped_code_mixed_with_other_code_is_a_warning_not_a_tag(make_notebook) -> None:
    path = make_notebook(
        [
            code("import numpy as np\nfrom sklearn.base import BaseEstimator\ndata = np.ones((4, 2))"),
            code("class Double(BaseEstimator):\n    def fit(self, X, y=None):\n        return self\nprint('ok')"),
            code("model = make_pipeline(Double(), SVC())\nmodel.fit(data, [0, 1, 0, 1])"),
        ]
    )
    plan = plan_of(path)
    assert [p.roles for p in plan.proposals] == [(), (), ("train",)]
    assert len(plan.warnings) == 2
    assert (
        "cell 1 (`import numpy as np`): the model needs `BaseEstimator` from this cell, but line 3"
        in (plan.warnings[0])
    )
    assert (
        "cell 2 (`class Double(BaseEstimator):`): the model needs `Double` from this cell, but line 4 (`print('ok')`)"
        in (plan.warnings[1])
    )


def test_state_the_run_depends_on_is_kept(make_notebook) -> None:
    path = make_notebook(
        [
            code("import numpy as np\nimport sklearn"),
            code("np.random.seed(42)"),
            code("sklearn.set_config(transform_output='pandas')"),
            code("import warnings\nwarnings.filterwarnings('ignore')"),
            code("import matplotlib.pyplot as plt\nimport pandas as pd\nplt.rcParams['figure.figsize'] = (8, 4)"),
            code("pd.options.display.max_columns = 50"),
            code("X = np.random.rand(20, 2)\ny = X[:, 0] > 0.5\nmodel = SVC().fit(X, y)"),
        ]
    )
    plan = plan_of(path)
    assert [p.roles for p in plan.proposals] == [(), (), (), ("skip",), ("skip",), ("skip",), ("train",)]
    assert plan.proposals[1].reason == "changes state the run depends on (`np.random.seed`)"


def test_a_literal_settings_cell_becomes_the_parameters_cell(make_notebook) -> None:
    path = make_notebook(
        [
            code('"""Settings."""\nSEED = 3\nTEST_SIZE = 0.2\nUNUSED = "x"'),
            code("LIMIT = 5"),
            code("X, y = make_regression(random_state=SEED)\nmodel = Ridge(alpha=LIMIT).fit(X[:-10], y[:-10])"),
        ]
    )
    plan = plan_of(path)
    assert [p.roles for p in plan.proposals] == [("parameters",), (), ("load", "train")]
    assert plan.proposals[0].reason.startswith("only literal settings (`SEED`, `TEST_SIZE`, `UNUSED`)")


def test_the_users_skip_parameters_and_role_lines_are_kept(make_notebook) -> None:
    path = make_notebook(
        [
            code("depth = 3", "parameters"),
            code("#| nb2prod: load\nX, y = load_iris(return_X_y=True)"),
            code("print(X.shape)", "imports"),
            code("import matplotlib.pyplot as plt\nlimit = 10", "skip"),
            code("model = DecisionTreeClassifier(max_depth=depth)\nmodel.fit(X[:limit], y[:limit])", "preprocess"),
        ]
    )
    plan = plan_of(path)
    assert [(p.roles, p.fixed) for p in plan.proposals] == [
        (("parameters",), True),
        (("load",), True),
        (("skip",), False),
        (("skip",), True),
        (("train",), False),
    ]
    assert plan.proposals[1].reason == "its role is set by its `#| nb2prod:` line; kept"
    assert plan.proposals[3].reason == "tagged `skip` already; kept"
    assert plan.warnings == (
        "nb.ipynb, cell 5 (`model = DecisionTreeClassifier(max_depth=depth)`) needs `limit`, which only cell 4 "
        "(`import matplotlib.pyplot as plt`) defines, and that cell is tagged `skip`: remove its `skip` tag or "
        "define the name in a cell that runs.",
    )


def test_fit_input_cells_are_replayed_and_a_file_reading_cell_never_is(make_notebook) -> None:
    path = make_notebook(TUTORIAL)
    facts = plan_of(path)
    assert facts.proposals[5].roles == ("preprocess",) and facts.proposals[5].reason.startswith(
        "prepares the fit input"
    )
    from nb2prod.analysis.flow import cell_facts

    spec = read_notebook(path)
    assert fit_input_roles(cell_facts(spec.cells[6])) == ("preprocess",)
    assert fit_input_roles(cell_facts(spec.cells[2])) == ()  # `pd.read_csv`: load, never preprocess


def test_cells_that_cannot_be_replayed_run_untagged_and_the_input_says_why(make_notebook) -> None:
    cells = [c for c in TUTORIAL]
    cells[6] = code("df['noise'] = np.random.randint(0, 5, len(df))\nX = df[['age', 'noise']]\ny = df['churn']")
    plan = plan_of(make_notebook(cells))
    assert plan.proposals[5].roles == ()
    assert "runs untagged: its statements cannot be replayed per request (cell 7, line 1)" in plan.proposals[5].reason
    service = plan.service_input
    assert service is not None and service.kind == "engineered" and service.frame == "X"
    assert service.blocking is not None and (service.blocking.cell_number, service.blocking.line) == (7, 1)
    assert "draws random numbers" in service.blocking.reason
    assert service.explain().startswith("the service will take engineered columns of `X`, not the raw data: ")


def test_an_imports_cell_the_replayed_code_needs_is_preprocess_too(make_notebook) -> None:
    cells = [c for c in TUTORIAL]
    cells[6] = code("df['log_spend'] = np.log1p(df['spend'])\nX = df[['age', 'log_spend']]\ny = df['churn']")
    plan = plan_of(make_notebook(cells))
    assert plan.proposals[0].roles == ("preprocess",)
    assert plan.proposals[0].reason == "imports `np` for the preprocess code in cell 7"
    assert plan.proposals[5].roles == ("preprocess",)
    assert plan.service_input is not None and plan.service_input.kind == "raw"


def test_write_changes_only_cell_tags(make_notebook, tmp_path: Path) -> None:
    cells = [code(c.source) for c in TUTORIAL[1:]]
    cells[1].metadata["tags"] = ["step:load", "train"]  # Kale's tag stays; the old role goes
    cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="   age  income\n0   31  1000\n")]
    cells[2].execution_count = 3
    cells[5].metadata["collapsed"] = True
    path = make_notebook([markdown("# Title"), *cells], nb2prod={"name": "churn"})
    before = json.loads(path.read_text())
    result = tag(path, write=True)
    assert result.written == path and result.changed == 10
    after = json.loads(path.read_text())
    tags = {i: c["metadata"].pop("tags", None) for i, c in enumerate(after["cells"])}
    for cell in before["cells"]:
        cell["metadata"].pop("tags", None)
    assert after == before  # sources, outputs, counts, ids, other metadata: unchanged
    assert tags[2] == ["step:load", "load"] and tags[3] == ["skip"] and tags[1] is None
    assert tags[6] == ["preprocess"]
    assert tag(path, write=True).changed == 0  # idempotent


def test_a_tagged_copy_never_replaces_a_file(make_notebook, tmp_path: Path) -> None:
    path = make_notebook(TUTORIAL)
    original = path.read_bytes()
    copy = tmp_path / "tagged.ipynb"
    result = tag(path, copy=copy)
    assert result.written == copy and path.read_bytes() == original
    assert read_notebook(copy).cells[8].roles[0].value == "train"
    with pytest.raises(OutputExistsError, match="tagged.ipynb exists"):
        tag(path, copy=copy)
    with pytest.raises(OptionsError, match="--write and -o both given"):
        tag(path, write=True, copy=tmp_path / "other.ipynb")


def test_the_tag_command(make_notebook, tmp_path: Path) -> None:
    path = make_notebook(TUTORIAL, name="tutorial.ipynb")
    shown = run_cli("tag", path)
    assert shown.returncode == 0, shown.stderr
    assert "cell 4 (`df.head()`)  skip: only displays `df.head()`" in shown.stdout
    assert "cell 9 (`model = LogisticRegression()`)  train: fits `model` (the served model)" in shown.stdout
    assert "--write" in shown.stdout
    written = run_cli("tag", path, "--write")
    assert written.returncode == 0, written.stderr
    assert "cell(s) changed, cell metadata only" in written.stdout and "next: nb2prod convert" in written.stdout


def test_the_tag_command_asks_for_the_model(make_notebook) -> None:
    path = make_notebook([code("X, y = f()"), code("a = SVC().fit(X, y)\nb = SVR().fit(X, y)")])
    result = run_cli("tag", path)
    assert result.returncode == 1
    assert "2 models are fitted: `a` (SVC, cell 2), `b` (SVR, cell 2)" in result.stderr
    assert "--model b" in result.stderr
    chosen = run_cli("tag", path, "--model", "a", "--write")
    assert chosen.returncode == 0, chosen.stderr
    assert "notebook metadata nb2prod.model = a" in chosen.stdout
    assert "next: nb2prod convert" in chosen.stdout and "--model" not in chosen.stdout.split("next:")[1]
    assert json.loads(path.read_text())["metadata"]["nb2prod"] == {"model": "a"}


def test_a_random_fill_in_a_loop_over_frames_is_named_as_the_reason_for_engineered_input(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS + "\nfrom sklearn.linear_model import LogisticRegression"),
            code("train = pd.read_csv('train.csv')\ntest = pd.read_csv('test.csv')"),
            code("train.head()"),
            code(
                "for dataset in [train, test]:\n"
                "    age_avg = dataset['Age'].mean()\n"
                "    draws = np.random.randint(age_avg - 10, age_avg + 10, size=dataset['Age'].isnull().sum())\n"
                "    dataset.loc[dataset['Age'].isnull(), 'Age'] = draws\n"
                "    dataset['Sex'] = dataset['Sex'].map({'female': 1, 'male': 0})\n"
                "train['Age'] = train['Age'].astype(float)"
            ),
            code("X = train[['Age', 'Sex']]\ny = train['Survived']\nmodel = LogisticRegression().fit(X, y)"),
        ]
    )
    plan = plan_of(path)
    assert plan.proposals[3].roles == ()
    service = plan.service_input
    assert service is not None and service.kind == "engineered"
    assert service.blocking is not None and (service.blocking.cell_number, service.blocking.line) == (4, 3)
    assert "`np.random.randint(...)` draws random numbers" in service.blocking.reason
    assert "Fill with a training statistic" in service.blocking.fix


def test_a_merge_with_a_second_data_file_is_named_as_the_reason_for_engineered_input(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS + "\nfrom sklearn.linear_model import Ridge"),
            code("df = pd.read_csv('houses.csv')\ndf.head()"),
            code("df.drop(columns=['Id'], inplace=True)\ndf['age'] = 2024 - df['year_built']"),
            code("df = df.merge(pd.read_csv('districts.csv'), on='district', how='left')"),
            code("df = pd.get_dummies(df, columns=['district'], drop_first=True)"),
            code("X = df.drop(columns=['price'])\ny = df['price']\nmodel = Ridge().fit(X, y)"),
        ],
        name="houses.ipynb",
    )
    plan = plan_of(path)
    roles = [p.roles for p in plan.proposals]
    assert roles[1] == ("load",) and roles[3] == ("load",)  # a cell that reads files is never preprocess
    assert roles[2] == () and roles[4] == ()  # the cleaning runs untagged: it cannot be replayed
    assert "runs untagged: its statements cannot be replayed per request (cell 4, line 1)" in plan.proposals[2].reason
    service = plan.service_input
    assert service is not None and service.kind == "engineered" and service.frame == "X"
    assert service.blocking is not None and (service.blocking.cell_number, service.blocking.line) == (4, 1)
    assert "`pd.read_csv('districts.csv')` joins a second data file (districts.csv) to `df`" in service.blocking.reason
    assert service.blocking.fix.startswith("To serve raw rows, join the files in the cell that reads the data")


def test_files_joined_in_the_cell_that_reads_the_data_are_the_raw_rows(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS + "\nfrom sklearn.linear_model import Ridge"),
            code("df = pd.read_csv('houses.csv').merge(pd.read_csv('districts.csv'), on='district')"),
            code("df['age'] = 2024 - df['year_built']"),
            code("X = df.drop(columns=['price'])\ny = df['price']\nmodel = Ridge().fit(X, y)"),
        ]
    )
    plan = plan_of(path)
    assert plan.proposals[2].roles == ("preprocess",)
    assert plan.service_input is not None and plan.service_input.kind == "raw" and plan.service_input.frame == "df"


def test_making_a_random_generator_is_not_the_random_fill_its_draws_are(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS + "\nfrom sklearn.linear_model import LogisticRegression"),
            code("train = pd.read_csv('train.csv')\ntest = pd.read_csv('test.csv')"),
            code(
                "rng = np.random.default_rng(42)\n"
                "for d in (train, test):\n"
                "    mean, std = d['Age'].mean(), d['Age'].std()\n"
                "    d['Age'] = d['Age'].fillna(pd.Series(rng.normal(mean, std, len(d)), index=d.index))"
            ),
            code("X = train[['Age']]\ny = train['Survived']\nmodel = LogisticRegression().fit(X, y)"),
        ]
    )
    service = plan_of(path).service_input
    assert service is not None and service.blocking is not None
    assert (service.blocking.cell_number, service.blocking.line) == (3, 4)
    assert "`rng.normal(...)` draws random numbers" in service.blocking.reason
    assert "combines the request frame" not in service.blocking.reason

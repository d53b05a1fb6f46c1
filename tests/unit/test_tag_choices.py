"""`nb2prod tag` never skips a cell the model depends on, and chooses the served model well.

Each notebook here is written the way tutorials are: EDA cells, plots, loops over frames, several
models compared. Everything is static (no kernel): the proposal, the label and the metric calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nb2prod.analysis.fitchain import analyse_fits, fit_receivers
from nb2prod.analysis.lint import Severity, lint_notebook
from nb2prod.analysis.metrics import metric_calls
from nb2prod.analysis.roles import propose_roles
from nb2prod.errors import ModelChoiceError
from nb2prod.notebook.spec import read_notebook
from nb2prod.pipeline import tag
from tests.conftest import code, markdown, run_cli

IMPORTS = code(
    "%matplotlib inline\nimport numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "from sklearn.linear_model import LogisticRegression\nfrom sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.model_selection import train_test_split\nfrom sklearn.metrics import accuracy_score"
)


def proposal(path: Path, model: str | None = None) -> list[tuple[str, ...]]:
    return [p.roles for p in propose_roles(read_notebook(path), model).proposals]


def reasons(path: Path, model: str | None = None) -> list[str]:
    return [p.reason for p in propose_roles(read_notebook(path), model).proposals]


# --- never skip a cell the model depends on -------------------------------------------------


def test_a_loop_converting_records_in_place_runs(make_notebook) -> None:
    path = make_notebook(
        [
            markdown("# Loan defaults\nThe CSV holds numbers as text; we convert them ourselves."),
            IMPORTS,
            code(
                "import csv\n\nwith open('loans.csv') as handle:\n    records = list(csv.DictReader(handle))\nlen(records)"
            ),
            code("records[:3]"),
            code(
                "# numbers arrive as text: convert them in place\nfor record in records:\n"
                "    for key in ['income', 'amount', 'years']:\n        record[key] = float(record[key])"
            ),
            code("df = pd.DataFrame(records)\ndf.head()"),
            code(
                "df['ratio'] = df['amount'] / df['income']\nX = pd.get_dummies(df.drop(columns='default'))\ny = df['default']"
            ),
            code("model = LogisticRegression(max_iter=500)\nmodel.fit(X, y)"),
        ]
    )
    roles = proposal(path)
    assert roles[3] != ("skip",), reasons(path)[3]
    assert roles[2] == ("skip",)  # `records[:3]` only displays
    assert reasons(path)[3] == "prepares the fit input: changes `records`, used by cell 6"


def test_a_loop_over_frames_changes_the_frames(make_notebook) -> None:
    path = make_notebook(
        [
            IMPORTS,
            code("train = pd.read_csv('train.csv')\ntest = pd.read_csv('test.csv')\ncombine = [train, test]"),
            code("train.describe()"),
            code(
                "for dataset in combine:\n    dataset['FamilySize'] = dataset['SibSp'] + dataset['Parch'] + 1\n"
                "    dataset['IsAlone'] = (dataset['FamilySize'] == 1).astype(int)"
            ),
            code("for df in [train, test]:\n    df['Fare'] = df['Fare'].fillna(0)"),
            code("train[['IsAlone', 'Survived']].groupby('IsAlone').mean()"),
            code("X = train[['Pclass', 'Fare', 'FamilySize', 'IsAlone']]\ny = train['Survived']"),
            code("model = LogisticRegression()\nmodel.fit(X, y)"),
        ]
    )
    roles = proposal(path)
    assert roles[3] != ("skip",) and roles[4] != ("skip",)
    assert roles[2] == ("skip",) and roles[5] == ("skip",)


def test_an_in_place_drop_in_a_loop_over_a_tuple_runs(make_notebook) -> None:
    path = make_notebook(
        [
            IMPORTS,
            code("train = pd.read_csv('train.csv')\ntest = pd.read_csv('test.csv')"),
            code(
                "train['AgeBand'] = pd.cut(train['Age'], 5)\ntrain[['AgeBand', 'Survived']].groupby('AgeBand').mean()"
            ),
            code("for set_ in (train, test):\n    set_.drop('AgeBand', axis=1, inplace=True, errors='ignore')"),
            code("X = train.drop('Survived', axis=1)\ny = train['Survived']"),
            code("model = RandomForestClassifier(random_state=0)\nmodel.fit(X, y)"),
        ]
    )
    roles = proposal(path)
    assert roles[2] != ("skip",) and roles[3] != ("skip",)


def test_a_star_import_beside_a_magic_runs(make_notebook) -> None:
    path = make_notebook(
        [
            code("%matplotlib inline\nfrom helpers import *"),
            code("import pandas as pd\nfrom sklearn.svm import SVC"),
            code("df = pd.read_csv('data.csv')"),
            code("X = add_features(df)\ny = df['label']"),
            code("model = SVC()\nmodel.fit(X, y)"),
        ]
    )
    roles = proposal(path)
    assert roles[0] == ()
    assert reasons(path)[0] == "`from helpers import *` may define any name later cells use"


def test_a_cell_drawing_random_numbers_before_the_fit_runs(make_notebook) -> None:
    path = make_notebook(
        [
            IMPORTS,
            code("df = pd.read_csv('data.csv')"),
            code("df.sample(5)"),
            code("df.sample(5, random_state=1)"),
            code("X_train, X_test, y_train, y_test = train_test_split(df[['a', 'b']], df['y'])"),
            code("model = RandomForestClassifier()\nmodel.fit(X_train, y_train)"),
        ]
    )
    roles = proposal(path)
    assert roles[2] == ()
    assert reasons(path)[2].startswith("draws from the global random generator (`df.sample`)")
    assert roles[3] == ("skip",)


# --- the label ------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["LABEL", "target"])
def test_a_label_named_through_a_constant_is_the_label(make_notebook, label: str) -> None:
    path = make_notebook(
        [
            IMPORTS,
            code('LABEL = "Survived"\ntarget = LABEL'),
            code("train = pd.read_csv('train.csv')"),
            code(f"y = train[{label}]\nX = train.drop(columns=[{label}])", "preprocess"),
            code("model = LogisticRegression()\nmodel.fit(X, y)", "train"),
        ]
    )
    spec = read_notebook(path)
    fits = analyse_fits(spec, fit_receivers(spec, None))
    assert fits.label_columns == {"Survived"}


# --- the served model -----------------------------------------------------------------------

COMPARED = [
    IMPORTS,
    code("df = pd.read_csv('churn.csv')\ndf.head()"),
    code(
        "X = df[['tenure', 'charges']]\ny = df['churn']\nX_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
    ),
]


def test_a_fit_inside_a_plot_helper_or_on_a_parameter_is_not_a_candidate(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code(
                "from sklearn.linear_model import LinearRegression\n\n"
                "def plot_trend(x, y):\n    line = LinearRegression()\n    line.fit(x, y)\n"
                "    plt.plot(x, line.predict(x))\n\nplot_trend(df[['tenure']], df['charges'])"
            ),
            code(
                "def evaluate(estimator):\n    estimator.fit(X_train, y_train)\n    return estimator.score(X_test, y_test)"
            ),
            code("evaluate(LogisticRegression())"),
            code("forest = RandomForestClassifier(random_state=0)\nforest.fit(X_train, y_train)"),
            code("pred = forest.predict(X_test)\naccuracy_score(y_test, pred)"),
        ]
    )
    plan = propose_roles(read_notebook(path))
    assert plan.model == "forest"
    roles = [p.roles for p in plan.proposals]
    assert roles[3] == ("skip",) and roles[5] == ("skip",)
    assert roles[6] == ("train",) and roles[7] == ("evaluate",)


def test_a_name_reused_for_a_later_exercise_does_not_replace_the_saved_model(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code("model = RandomForestClassifier(n_estimators=50, random_state=0)\nmodel.fit(X_train, y_train)"),
            code("pred = model.predict(X_test)\nprint(accuracy_score(y_test, pred))"),
            code("import joblib\njoblib.dump(model, 'churn_model.joblib')"),
            markdown("## Exercise: predict the charges instead"),
            code(
                "from sklearn.linear_model import LinearRegression\nmodel = LinearRegression()\n"
                "model.fit(X_train[['tenure']], X_train['charges'])"
            ),
            code("model.predict(X_test[['tenure']])[:5]"),
        ]
    )
    plan = propose_roles(read_notebook(path))
    roles = [p.roles for p in plan.proposals]
    assert plan.model == "model"
    assert roles[3] == ("train",) and roles[4] == ("evaluate",)
    assert plan.proposals[5].reason.endswith("saves with `joblib.dump`; the service has its own copy of the model")
    assert roles[6] == ("skip",) and roles[7] == ("skip",)
    # `--model model` means the same fit, not the name's last one
    assert [p.roles for p in propose_roles(read_notebook(path), "model").proposals] == roles


def test_the_saved_model_is_preferred_and_the_rest_are_listed_with_what_cells_do(make_notebook) -> None:
    cells = [
        *COMPARED,
        code("lr = LogisticRegression().fit(X_train, y_train)\nprint(lr.score(X_test, y_test))"),
        code("rf = RandomForestClassifier(random_state=0)\nrf.fit(X_train, y_train)\nprint(rf.score(X_test, y_test))"),
    ]
    ambiguous = make_notebook(cells, name="compare.ipynb")
    with pytest.raises(ModelChoiceError) as info:
        propose_roles(read_notebook(ambiguous))
    assert (
        "2 models are fitted: `lr` (LogisticRegression, cell 4: scores in cell 4), "
        "`rf` (RandomForestClassifier, cell 5: scores in cell 5)"
    ) in info.value.message
    assert "nb2prod tag compare.ipynb --model rf --write" in info.value.hint
    saved = make_notebook([*cells, code("import pickle\nwith open('m.pkl', 'wb') as f:\n    pickle.dump(lr, f)")])
    assert propose_roles(read_notebook(saved)).model == "lr"
    predicted = make_notebook([*cells, code("final = lr.predict(X_test)")], name="predicted.ipynb")
    assert propose_roles(read_notebook(predicted)).model == "lr"


def test_evaluate_is_proposed_only_for_cells_that_score_the_served_model(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code("lr = LogisticRegression().fit(X_train, y_train)"),
            code("rf = RandomForestClassifier(random_state=0).fit(X_train, y_train)"),
            code("for name, m in [('lr', lr), ('rf', rf)]:\n    print(name, m.score(X_test, y_test))"),
            code("pred = rf.predict(X_test)\nprint(accuracy_score(y_test, pred))"),
        ]
    )
    plan = propose_roles(read_notebook(path))
    assert plan.model == "rf"
    roles = [p.roles for p in plan.proposals]
    assert roles[5] == ("skip",) and roles[6] == ("evaluate",)


def test_write_stores_the_chosen_model_and_lint_then_needs_no_flag(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code("lr = LogisticRegression().fit(X_train, y_train)\nprint(lr.score(X_test, y_test))"),
            code(
                "rf = RandomForestClassifier(random_state=0)\nrf.fit(X_train, y_train)\nprint(rf.score(X_test, y_test))"
            ),
        ],
        name="compare.ipynb",
    )
    result = tag(path, model="rf", write=True)
    assert result.stored_model == "rf"
    assert json.loads(path.read_text())["metadata"]["nb2prod"] == {"model": "rf"}
    errors = [f for f in lint_notebook(read_notebook(path)) if f.severity is Severity.ERROR]
    assert errors == []
    assert tag(path, write=True).changed == 0  # remembered: no flag needed any more


def test_the_tag_command_prints_a_next_command_that_runs(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code("lr = LogisticRegression().fit(X_train, y_train)\nprint(lr.score(X_test, y_test))"),
            code(
                "rf = RandomForestClassifier(random_state=0)\nrf.fit(X_train, y_train)\nprint(rf.score(X_test, y_test))"
            ),
        ],
        name="compare.ipynb",
    )
    written = run_cli("tag", path, "--model", "lr", "--write")
    assert written.returncode == 0, written.stderr
    assert "notebook metadata nb2prod.model = lr" in written.stdout
    assert f"next: nb2prod convert {path}" in written.stdout and "--model" not in written.stdout.split("next:")[1]
    linted = run_cli("lint", path)
    assert linted.returncode == 0, linted.stdout + linted.stderr


# --- metrics without a dict -----------------------------------------------------------------


def test_metric_calls_on_the_served_models_predictions_are_the_metrics(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code("lr = LogisticRegression().fit(X_train, y_train)"),
            code("model = RandomForestClassifier(random_state=0)\nmodel.fit(X_train, y_train)", "train"),
            code(
                "pred = model.predict(X_test)\nprint('train', accuracy_score(y_train, model.predict(X_train)))\n"
                "print(f'test accuracy {accuracy_score(y_test, pred):.3f}')\nf1 = f1_score(y_test, pred)\n"
                "print(lr.score(X_test, y_test), model.score(X_test, y_test))\n"
                "cross_val_score(model, X, y, cv=3)",
                "evaluate",
            ),
        ]
    )
    found = {m.name: m.expression for m in metric_calls(read_notebook(path), None)}
    assert found == {
        "accuracy_score": "accuracy_score(y_test, pred)",
        "f1_score": "f1_score(y_test, pred)",
        "score": "model.score(X_test, y_test)",
    }


# --- the proposal passes lint ---------------------------------------------------------------


def test_a_custom_scorer_ships_with_its_imports_cell_even_beside_plot_settings(make_notebook) -> None:
    path = make_notebook(
        [
            code(
                "%matplotlib inline\nimport numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
                "import warnings\nwarnings.filterwarnings('ignore')\nplt.style.use('ggplot')\n"
                "from sklearn.metrics import make_scorer\nfrom sklearn.model_selection import GridSearchCV\n"
                "from sklearn.linear_model import Ridge"
            ),
            code("houses = pd.read_csv('houses.csv')\nhouses.head()"),
            code("def rmse(y_true, y_pred):\n    return np.sqrt(np.mean((y_true - y_pred) ** 2))"),
            code("X = houses[['area', 'rooms']]\ny = houses['price']"),
            code(
                "search = GridSearchCV(Ridge(), {'alpha': [0.1, 1, 10]}, "
                "scoring=make_scorer(rmse, greater_is_better=False), cv=3)\nsearch.fit(X, y)"
            ),
            code("search.best_params_"),
        ]
    )
    plan = propose_roles(read_notebook(path))
    roles = [p.roles for p in plan.proposals]
    assert roles[0] == ("preprocess",) and roles[2] == ("preprocess",)
    assert plan.warnings == ()
    tag(path, write=True)
    assert [f for f in lint_notebook(read_notebook(path)) if f.severity is Severity.ERROR] == []


def test_a_metric_on_the_data_the_model_was_fitted_on_is_not_a_metric(make_notebook) -> None:
    path = make_notebook(
        [
            code(
                "from sklearn import metrics\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"
            ),
            code(
                "from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier(max_depth=2).fit(X, y)",
                "train",
            ),
            code("accuracy = metrics.accuracy_score(y, clf.predict(X))", "evaluate"),
        ]
    )
    assert metric_calls(read_notebook(path), None) == []


def test_a_search_is_preferred_over_a_model_only_scored(make_notebook) -> None:
    path = make_notebook(
        [
            *COMPARED,
            code("lr = LogisticRegression(max_iter=500).fit(X_train, y_train)\nprint(lr.score(X_test, y_test))"),
            code(
                "from sklearn.model_selection import GridSearchCV\n"
                "grid = GridSearchCV(RandomForestClassifier(random_state=0), {'n_estimators': [10, 20]}, cv=3)\n"
                "grid.fit(X_train, y_train)\nbest = grid.best_estimator_\n"
                "print(accuracy_score(y_test, best.predict(X_test)))"
            ),
        ]
    )
    plan = propose_roles(read_notebook(path))
    assert plan.model == "grid"
    assert plan.proposals[3].roles == ("skip",) and plan.proposals[4].roles == ("train", "evaluate")


def test_a_reused_name_is_listed_once_per_fit_with_the_class_of_that_fit(make_notebook) -> None:
    cells = [
        *COMPARED,
        code("lr = LogisticRegression().fit(X_train, y_train)\nprint(lr.score(X_test, y_test))"),
        code(
            "model = RandomForestClassifier(random_state=0)\nmodel.fit(X_train, y_train)\nmodel.score(X_test, y_test)"
        ),
        markdown("## Exercise: a simpler model"),
        code(
            "from sklearn.tree import DecisionTreeClassifier\nmodel = DecisionTreeClassifier(max_depth=2)\n"
            "model.fit(X_train, y_train)\nmodel.score(X_test, y_test)"
        ),
    ]
    with pytest.raises(ModelChoiceError) as info:
        propose_roles(read_notebook(make_notebook(cells, name="compare.ipynb")))
    assert "`model` (RandomForestClassifier, cell 5: scores in cell 5)" in info.value.message
    assert "`model` (DecisionTreeClassifier, cell 7: scores in cell 7)" in info.value.message
    # saving the forest makes `--model model` (and no flag at all) mean that fit, not the name's last one
    saved = make_notebook([*cells, code("import joblib\njoblib.dump(model, 'tree.joblib')")], name="saved.ipynb")
    assert propose_roles(read_notebook(saved)).model == "model"
    roles = proposal(saved, "model")  # one per code cell
    assert roles[5] == ("train", "evaluate") and roles[4] == ("skip",)  # the tree the notebook saves
    cells[4:5] = [code(cells[4].source + "\nimport joblib\njoblib.dump(model, 'forest.joblib')")]
    forest = make_notebook(cells, name="forest.ipynb")
    roles = proposal(forest, "model")
    assert roles[4][0] == "train" and roles[5] == ("skip",)  # the saved forest, not the later tree

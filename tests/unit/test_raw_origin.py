"""Where the raw frame begins (`nb2prod.analysis.raw_origin`), and the tag proposals it gives (no kernel)."""

from __future__ import annotations

from pathlib import Path

from nb2prod.analysis.flow import cell_facts
from nb2prod.analysis.raw_origin import find_raw_origin
from nb2prod.analysis.roles import propose_roles
from nb2prod.notebook.spec import read_notebook
from tests.conftest import code, markdown

IMPORTS = (
    "%matplotlib inline\nimport csv\nimport numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "from sklearn.datasets import load_wine\nfrom sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.linear_model import LogisticRegression\nfrom sklearn.model_selection import train_test_split"
)
DRAWS = (
    "rng = np.random.default_rng(7)\nn = 300\n"
    "df = pd.DataFrame({\n    'tenure': rng.integers(1, 72, n),\n    'charges': rng.normal(65, 20, n).round(2),\n"
    "    'contract': rng.choice(['monthly', 'yearly'], n),\n    'customer_id': np.arange(n),\n})\n"
    "df['churn'] = (df['charges'] / df['tenure'] > 2).astype(int)"
)
FEATURES = (
    "df['per_month'] = df['charges'] / df['tenure']\n"
    "X = pd.get_dummies(df.drop(columns=['churn', 'customer_id']), drop_first=True)\ny = df['churn']\nX.head()"
)
SPLIT = "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)"
MODELS = (
    "for candidate in [LogisticRegression(max_iter=500), RandomForestClassifier(random_state=0)]:\n"
    "    candidate.fit(X_train, y_train)\n    print(candidate.score(X_test, y_test))"
)
FINAL = "model = RandomForestClassifier(n_estimators=40, random_state=0)\nmodel.fit(X_train, y_train)"


def plan(path: Path, model: str | None = None):
    return propose_roles(read_notebook(path), model)


def origin_of(path: Path):
    spec = read_notebook(path)
    running = [cell_facts(c) for c in spec.code_cells()]
    fit = running[-1]
    return find_raw_origin(running, fit.cell.index, fit.fits[-1].features)


def test_a_frame_of_random_draws_is_the_raw_frame_and_the_pandas_cells_below_it_are_replayed(make_notebook) -> None:
    path = make_notebook(
        [
            markdown("# Churn"),
            code(IMPORTS),
            code(DRAWS),
            code("df.head()"),
            code("df.hist()\nplt.show()"),
            code(FEATURES),
            code(SPLIT),
            code(MODELS),
            code(FINAL),
        ]
    )
    found = plan(path)
    roles = {p.cell_index: p.roles for p in found.proposals}
    assert roles[2] == ("load",) and roles[5] == ("preprocess",) and roles[6] == ("preprocess",)
    assert roles[3] == roles[4] == roles[7] == ("skip",) and roles[8] == ("train",)
    reason = next(p.reason for p in found.proposals if p.cell_index == 2)
    assert reason == "makes the raw frame `df` (line 3 builds it with `pd.DataFrame`); the service takes its columns"
    assert found.service_input is not None and found.service_input.kind == "raw"
    assert found.service_input.explain() == "the service will take raw columns of `df`"
    origin = origin_of(path)
    assert origin is not None and (origin.frame, origin.cell_index, origin.line) == ("df", 2, 3)


def test_records_read_with_the_csv_module_begin_the_raw_frame_where_they_become_a_frame(make_notebook) -> None:
    """The records are read and converted in place (a loop over the records) above the frame: those
    cells run untagged; the label encoded in place where the frame is made does not block the replay."""
    path = make_notebook(
        [
            code(IMPORTS),
            code("with open('loans.csv') as handle:\n    records = list(csv.DictReader(handle))\nlen(records)"),
            code("records[:2]"),
            code(
                "NUMBERS = ['income', 'amount', 'default']\nfor record in records:\n"
                "    for key in NUMBERS:\n        record[key] = float(record[key])"
            ),
            code("df = pd.DataFrame(records)\ndf['default'] = df['default'].astype(int)\ndf.head()"),
            code(
                "df['ratio'] = df['amount'] / df['income']\n"
                "X = pd.get_dummies(df.drop(columns=['default']), drop_first=True)\ny = df['default']"
            ),
            code(SPLIT),
            code(FINAL),
        ]
    )
    found = plan(path)
    roles = {p.cell_index: p.roles for p in found.proposals}
    assert roles[1] == ("load",) and roles[3] == () and roles[4] == ("load",)
    assert roles[5] == roles[6] == ("preprocess",) and roles[7] == ("train",)
    assert found.service_input is not None and found.service_input.kind == "raw"
    assert found.service_input.frame == "df"
    origin = origin_of(path)
    assert origin is not None and origin.how == "builds it with `pd.DataFrame`" and origin.cell_index == 4


def test_a_data_sets_frame_begins_the_raw_frame_and_a_bunch_does_not(make_notebook) -> None:
    shared = [code(IMPORTS)]
    framed = make_notebook(
        [
            *shared,
            code("df = load_wine(as_frame=True).frame\ndf.head()"),
            code(
                "df['ratio'] = df['alcohol'] / df['color_intensity']\nX = df.drop(columns='target')\ny = df['target']"
            ),
            code(FINAL.replace("X_train, y_train", "X, y")),
        ],
        name="framed.ipynb",
    )
    origin = origin_of(framed)
    assert origin is not None and (origin.cell_index, origin.how) == (1, "takes a data set's frame (`.frame`)")
    found = plan(framed)
    assert [p.roles for p in found.proposals] == [(), ("load",), ("preprocess",), ("train",)]
    assert found.service_input is not None and found.service_input.kind == "raw"

    bunch = make_notebook(
        [
            *shared,
            code("wine = load_wine()"),
            code("df = pd.DataFrame(wine.data, columns=wine.feature_names)\ndf['target'] = wine.target"),
            code("X = df.drop(columns='target')\ny = df['target']"),
            code(FINAL.replace("X_train, y_train", "X, y")),
        ],
        name="bunch.ipynb",
    )
    origin = origin_of(bunch)  # `wine` is a bunch of arrays: the frame begins at `pd.DataFrame(...)`
    assert origin is not None and (origin.frame, origin.cell_index) == ("df", 2)
    assert [p.roles for p in plan(bunch).proposals] == [(), ("load",), ("load",), ("preprocess",), ("train",)]


def test_a_frame_copied_into_a_new_dataframe_is_followed_back_to_the_file(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS),
            code("raw = pd.read_csv('loans.csv')"),
            code("df = pd.DataFrame(raw)\ndf['ratio'] = df['amount'] / df['income']"),
            code("X = df.drop(columns='default')\ny = df['default']"),
            code(FINAL.replace("X_train, y_train", "X, y")),
        ]
    )
    origin = origin_of(path)
    assert origin is not None and (origin.frame, origin.cell_index) == ("raw", 1)
    assert origin.how == "reads it with `pd.read_csv`"
    roles = [p.roles for p in plan(path).proposals]
    assert roles == [("preprocess",), ("load",), ("preprocess",), ("preprocess",), ("train",)]


def test_without_a_frame_in_the_lineage_there_is_no_origin(make_notebook) -> None:
    path = make_notebook(
        [
            code("import numpy as np\nfrom sklearn.linear_model import LogisticRegression"),
            code("rng = np.random.default_rng(0)\nX = rng.normal(size=(100, 3))\ny = (X[:, 0] > 0).astype(int)"),
            code("model = LogisticRegression()\nmodel.fit(X, y)"),
        ]
    )
    assert origin_of(path) is None
    assert [p.roles for p in plan(path).proposals] == [(), (), ("train",)]


def test_a_label_encoded_in_a_replayed_cell_is_left_out_not_refused(make_notebook) -> None:
    """`df["default"] = df["default"].map(...)` in a cell that is replayed: the label is rewritten,
    not used to build a feature, so the replay goes on without it."""
    path = make_notebook(
        [
            code(IMPORTS),
            code("df = pd.read_csv('loans.csv')"),
            code(
                "df['default'] = df['default'].map({'yes': 1, 'no': 0})\n"
                "df['default'].fillna(0, inplace=True)\n"
                "df['ratio'] = df['amount'] / df['income']\nX = pd.get_dummies(df.drop(columns=['default']))\n"
                "y = df['default']"
            ),
            code(FINAL.replace("X_train, y_train", "X, y")),
        ]
    )
    found = plan(path)
    assert [p.roles for p in found.proposals] == [("preprocess",), ("load",), ("preprocess",), ("train",)]
    assert found.service_input is not None and found.service_input.kind == "raw"
    assert found.service_input.describe() == "raw columns of `df` from loans.csv"


def test_a_label_used_to_build_a_feature_still_stops_the_replay(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS),
            code("df = pd.read_csv('loans.csv')"),
            code("df['ratio'] = df['amount'] / df['default']\nX = df.drop(columns=['default'])\ny = df['default']"),
            code(FINAL.replace("X_train, y_train", "X, y")),
        ]
    )
    found = plan(path)
    assert found.service_input is not None and found.service_input.kind == "engineered"
    assert found.service_input.blocking is not None
    assert "uses the label column `default` to build a feature" in found.service_input.blocking.reason


def test_a_random_fill_already_tagged_preprocess_is_proposed_untagged_with_the_reason(make_notebook) -> None:
    """`tag` on a notebook whose fill cell the user tagged `preprocess`: the proposal is judged
    against the cell untagged, so the random fill is the reason raw rows cannot be served."""
    path = make_notebook(
        [
            code(IMPORTS),
            code(DRAWS, "load"),
            code(
                "missing = df['charges'].isna()\n"
                "df.loc[missing, 'charges'] = np.random.randint(20, 90, size=missing.sum())\n"
                "X = df[['tenure', 'charges']]\ny = df['churn']",
                "preprocess",
            ),
            code(FINAL.replace("X_train, y_train", "X, y"), "train"),
        ]
    )
    found = plan(path)
    assert [p.roles for p in found.proposals] == [(), ("load",), (), ("train",)]
    assert found.proposals[2].reason.endswith(
        "runs untagged: its statements cannot be replayed per request (cell 3, line 2)"
    )
    assert found.service_input is not None and found.service_input.kind == "engineered"
    assert (
        found.service_input.blocking is not None
        and "a random fill cannot be replayed" in found.service_input.blocking.reason
    )


def test_a_frame_changed_in_the_cell_that_reads_it_is_replayed_from_that_line(make_notebook) -> None:
    """`df["age"] = 2024 - df["year"]` below the `pd.read_csv` in one cell: the lines after the read
    are replayed with the preprocess cells below (see `read_tail`), so the service takes the file's
    columns, and `tag` names the first such line. The label encoded in the same cell is not such a
    change. Written in a cell of its own, the line is replayed as before."""
    read = "df = pd.read_csv('cars.csv')\ndf['sold'] = df['sold'].map({'yes': 1, 'no': 0})\ndf.head()"
    cells = [
        code(IMPORTS),
        code(read + "\ndf['age'] = 2024 - df['year']"),
        code("X = pd.get_dummies(df.drop(columns=['sold']), drop_first=True)\ny = df['sold']"),
        code(FINAL.replace("X_train, y_train", "X, y")),
    ]
    found = plan(make_notebook(cells, name="changed.ipynb"))
    assert [p.roles for p in found.proposals] == [("preprocess",), ("load",), ("preprocess",), ("train",)]
    assert found.proposals[1].reason == (
        "reads data with `pd.read_csv`; the lines after the read (line 4, `df['age'] = 2024 - df['year']`, on) "
        "change the frame: they run as written here, and are replayed per request with the preprocess cells, so "
        "the service takes the file's columns"
    )
    assert found.service_input is not None and found.service_input.describe() == "raw columns of `df` from cars.csv"
    cells[1] = code(read)
    cells[2] = code("df['age'] = 2024 - df['year']\n" + cells[2].source)
    found = plan(make_notebook(cells, name="apart.ipynb"))
    assert found.proposals[1].reason == "reads data with `pd.read_csv`"
    assert found.service_input is not None and found.service_input.describe() == "raw columns of `df` from cars.csv"


def test_the_lineage_goes_through_a_fitted_transformer_to_its_input(make_notebook) -> None:
    path = make_notebook(
        [
            code(IMPORTS + "\nfrom sklearn.impute import SimpleImputer"),
            code("df = load_wine(as_frame=True).frame"),
            code("X = pd.get_dummies(df.drop(columns=['target']))\ny = df['target']"),
            code("imputer = SimpleImputer(strategy='median')\nX_imputed = imputer.fit_transform(X.values)"),
            code("model = RandomForestClassifier(random_state=0)\nmodel.fit(X_imputed, y)"),
        ]
    )
    origin = origin_of(path)
    assert origin is not None and (origin.frame, origin.cell_index) == ("df", 1)

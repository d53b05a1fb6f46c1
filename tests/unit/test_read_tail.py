"""The lines after the read in the raw frame's own cell, replayed per request (`nb2prod.analysis.read_tail`).

No kernel: the assembled module, the recording edits of the run and lint's verdict on a notebook
that reads `cars.csv` and drops an id, derives an age and lower-cases the columns in the same cell.
"""

from __future__ import annotations

from pathlib import Path

from nb2prod.analysis.lint import lint_notebook
from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.notebook.spec import read_notebook
from nb2prod.run.recording import recording_edits
from tests.conftest import code, markdown

IMPORTS = (
    "%matplotlib inline\nimport numpy as np\nimport pandas as pd\nfrom sklearn.ensemble import RandomForestRegressor"
)
READ = (
    "# the listings\n"
    "SOURCE = 'cars.csv'\n"
    "df = pd.read_csv(SOURCE)\n"
    "df.drop(columns=['Car_ID'], inplace=True)\n"
    "df['age'] = 2024 - df['Year']\n"
    "df.columns = df.columns.str.lower()\n"
    "df.head()"
)
FEATURES = (
    "df['km'] = np.log1p(df['kms_driven'])\nX = pd.get_dummies(df.drop(columns=['price', 'year']))\ny = df['price']"
)
FIT = "rf = RandomForestRegressor(random_state=0)\nrf.fit(X, y)"


def notebook(make_notebook, read: str = READ, features_role: str = "preprocess", **metadata) -> Path:
    cells = [markdown("# Cars"), code(IMPORTS, "preprocess"), code(read, "load")]
    cells += [
        code("df.describe()", "skip"),
        code(FEATURES, *([features_role] if features_role else [])),
        code(FIT, "train"),
    ]
    return make_notebook(cells, name="cars.ipynb", **metadata)


def test_the_lines_after_the_read_join_the_replay_with_the_users_cell_and_lines(make_notebook) -> None:
    spec = read_notebook(notebook(make_notebook))
    module = assemble_preprocess(spec)
    assert module.replay is not None and module.replay.raw == "df"
    body = module.source.split("def preprocess(frame):", 1)[1]
    assert body.index("# cell 3\n") < body.index("df.drop(columns=['Car_ID'], inplace=True, errors=\"ignore\")")
    assert "df['age'] = 2024 - df['Year']\n    df.columns = df.columns.str.lower()\n    # cell 5\n" in body
    assert "read_csv" not in module.source and "df.head()" not in body  # the read stays in the run only
    assert "SOURCE = 'cars.csv'" in module.source  # a constant above the read ships, the tail may use it
    line = next(n for n, text in enumerate(module.source.splitlines(), 1) if "2024 - df['Year']" in text)
    cell, cell_line = module.locate(line)
    assert (cell.number, cell_line) == (3, 5)  # messages name the user's cell and line
    assert not [f for f in lint_notebook(spec) if f.severity.name == "ERROR"]


def test_the_raw_frame_is_copied_right_after_the_read_inside_its_cell(make_notebook) -> None:
    spec = read_notebook(notebook(make_notebook))
    module = assemble_preprocess(spec)
    edits = recording_edits(spec, module)
    index = spec.cells[2].index
    assert module.replay is not None and module.replay.snapshot_before == index
    lines = edits.sources[index].splitlines()
    assert lines[2] == "df = pd.read_csv(SOURCE); _nb2prod_snapshot('df', globals())"
    assert lines[3:] == READ.splitlines()[3:]  # the rest of the cell runs as written
    assert index in edits.before and "def _nb2prod_snapshot" in edits.before[index]  # the recorders first
    assert "_nb2prod_snapshot('df'" not in edits.before[index]


def test_without_preprocess_cells_below_the_service_takes_the_frame_as_the_cell_leaves_it(make_notebook) -> None:
    spec = read_notebook(notebook(make_notebook, features_role=""))
    module = assemble_preprocess(spec)
    assert module.replay is None or not module.replay.generates_function
    assert all(c.index != 2 for c in module.cells)


def test_another_raw_frame_named_by_the_user_keeps_the_cell_as_it_is(make_notebook) -> None:
    read = READ + "\nraw = df.copy()"
    spec = read_notebook(notebook(make_notebook, read=read, nb2prod={"raw": "raw"}))
    assert all(c.index != 2 for c in assemble_preprocess(spec).cells)


def test_a_second_read_below_the_first_keeps_the_cell_as_it_is(make_notebook) -> None:
    read = READ + "\ndf = df.merge(pd.read_csv('dealers.csv'), on='dealer')"
    spec = read_notebook(notebook(make_notebook, read=read))
    assert all(c.index != 2 for c in assemble_preprocess(spec).cells)

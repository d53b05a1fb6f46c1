"""Options validation, parameter typing, metric gates, and the write stage's guards."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb2prod.errors import OptionsError, OutputExistsError, RequirementNotMet
from nb2prod.generate.write import MARKER, check_output, keep_failed_run, write_project
from nb2prod.notebook.spec import read_notebook
from nb2prod.options import MetricRequirement, build_options, slug_name
from nb2prod.pipeline import check_requirements, coerce_parameters
from tests.conftest import code


def test_requirement_parsing_and_checks() -> None:
    requirement = MetricRequirement.parse("accuracy >= 0.9")
    assert (requirement.metric, requirement.op, requirement.value) == ("accuracy", ">=", 0.9)
    assert requirement.holds(0.95) and not requirement.holds(0.5)
    with pytest.raises(OptionsError, match="not a metric requirement"):
        MetricRequirement.parse("accuracy is high")


def test_requirement_gate_messages(make_notebook) -> None:
    spec = read_notebook(make_notebook([code("x = 1")]))
    with pytest.raises(RequirementNotMet, match=r"accuracy is 0\.8, but --require asks accuracy>=0\.9"):
        check_requirements(spec, (MetricRequirement.parse("accuracy>=0.9"),), {"accuracy": 0.8})
    with pytest.raises(RequirementNotMet, match=r"no metric `auc` \(metrics: accuracy\)"):
        check_requirements(spec, (MetricRequirement.parse("auc>0.5"),), {"accuracy": 0.8})


def test_invalid_name_and_unknown_option_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="name"):
        build_options(notebook=tmp_path / "x.ipynb", name="Bad Name")
    with pytest.raises(OptionsError, match="colour"):
        build_options(notebook=tmp_path / "x.ipynb", colour="blue")


def test_slug_name() -> None:
    assert slug_name("Iris Model (v2)") == "iris-model-v2"
    assert slug_name("2024_sales") == "model-2024-sales"


def test_parameters_take_the_cells_types(make_notebook) -> None:
    spec = read_notebook(make_notebook([code("n = 10\nrate = 0.5\nflag = False\npath = 'a.csv'", "parameters")]))
    assert coerce_parameters(spec, {"n": "20", "rate": "1e-3", "flag": "true", "path": "b.csv"}) == {
        "n": 20,
        "rate": 0.001,
        "flag": True,
        "path": "b.csv",
    }
    with pytest.raises(OptionsError, match=r"-p n abc: the parameters cell sets n = 10, a int"):
        coerce_parameters(spec, {"n": "abc"})
    with pytest.raises(OptionsError, match=r"does not set `m` \(it sets: n, rate, flag, path\)"):
        coerce_parameters(spec, {"m": "1"})


def test_parameters_without_parameters_cell(make_notebook) -> None:
    spec = read_notebook(make_notebook([code("n = 10")]))
    with pytest.raises(OptionsError, match="no cell has the role `parameters`"):
        coerce_parameters(spec, {"n": "1"})


def test_existing_non_empty_output_needs_force(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(OutputExistsError, match="exists and is not empty") as info:
        check_output(out, notebook, force=False)
    assert "--force" in info.value.hint
    with pytest.raises(OutputExistsError, match="was not written by nb2prod"):
        write_project(out, {"a.txt": b"x"}, notebook, force=True)
    assert (out / "mine.txt").read_text() == "user data"


def test_force_replaces_earlier_output(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    out = tmp_path / "out"
    write_project(out, {"old.txt": b"old"}, notebook, force=False)
    assert (out / MARKER).is_file()
    write_project(out, {"new.txt": b"new"}, notebook, force=True)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]
    assert not list(tmp_path.glob(".out.*"))


def test_output_containing_the_notebook_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputExistsError, match="contains the notebook"):
        check_output(tmp_path, tmp_path / "nb.ipynb", force=True)


def test_failed_runs_never_overwrite_each_other(tmp_path: Path) -> None:
    first, second = tmp_path / "run1.ipynb", tmp_path / "run2.ipynb"
    first.write_text("1")
    second.write_text("2")
    kept = [keep_failed_run(first, tmp_path / "out"), keep_failed_run(second, tmp_path / "out")]
    assert [p.name for p in kept] == ["out.failed.ipynb", "out.failed-2.ipynb"]
    assert [p.read_text() for p in kept] == ["1", "2"]


def test_force_refuses_to_delete_files_the_user_added_or_edited(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    out = tmp_path / "out"
    write_project(out, {"README.md": b"generated", "src/app.py": b"app"}, notebook, force=False)
    (out / "notes.txt").write_text("my notes")
    (out / "src" / "app.py").write_text("edited by me")
    with pytest.raises(OutputExistsError) as info:
        write_project(out, {"README.md": b"new"}, notebook, force=True)
    assert "notes.txt" in info.value.message and "src/app.py" in info.value.message
    assert "--discard-changes" in info.value.hint
    assert (out / "notes.txt").read_text() == "my notes"  # kept, untouched
    write_project(out, {"README.md": b"new"}, notebook, force=True, discard_changes=True)
    assert not (out / "notes.txt").exists() and (out / "README.md").read_bytes() == b"new"


def test_force_replaces_untouched_output_without_asking(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    out = tmp_path / "out"
    write_project(out, {"a/b.txt": b"1"}, notebook, force=False)
    write_project(out, {"a/b.txt": b"2"}, notebook, force=True)
    assert (out / "a/b.txt").read_bytes() == b"2"

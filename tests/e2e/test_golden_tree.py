"""The generated project's code, compared with a reviewed golden copy after masking versions.

A template change shows up here as a diff to review. Regenerate on purpose with
`NB2PROD_REGENERATE_GOLDEN=1 python -m pytest tests/e2e/test_golden_tree.py` and commit the result.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, run_cli

pytestmark = pytest.mark.slow
GOLDEN = ROOT / "tests" / "golden" / "customers_mixed"
# Files that are code or configuration; model bytes, golden answers and the executed notebook are not.
COMPARED = (
    "pyproject.toml",
    "README.md",
    "Dockerfile",
    ".dockerignore",
    "deploy/kubernetes/*.yaml",
    "src/*/*.py",
    "tests/test_service.py",
)
MASKS = [
    # Which distributions are pinned depends on the environment's dependency tree, not on templates.
    (re.compile(r"^(dependencies|test) = \[\n.*?^\]", re.M | re.S), r"\1 = [<exact pins>]"),
    (re.compile(r"\d+\.\d+\.\d+\+[0-9a-f]{12}"), "<version>"),
    (re.compile(r"\d+\.\d+\.\d+-[0-9a-f]{12}"), "<image-tag>"),
    (re.compile(r"nb2prod \d+\.\d+\.\d+"), "nb2prod <version>"),
    (re.compile(r"hatchling>=[\d.]+"), "hatchling>=<version>"),
    (re.compile(r"python:\d+\.\d+-slim|==\d+\.\d+\.\*"), "<python>"),
]


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def generated_files(out: Path) -> dict[str, str]:
    files = {}
    for pattern in COMPARED:
        for path in sorted(out.glob(pattern)):
            files[path.relative_to(out).as_posix()] = masked(path.read_text())
    return files


def test_generated_tree_matches_the_golden_copy(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("convert", EXAMPLES / "customers_mixed.ipynb", "-o", out)
    assert result.returncode == 0, result.stderr
    files = generated_files(out)
    if os.environ.get("NB2PROD_REGENERATE_GOLDEN"):
        for relative, text in files.items():
            target = GOLDEN / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    golden = {p.relative_to(GOLDEN).as_posix(): p.read_text() for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(golden)
    for relative, text in files.items():
        assert text == golden[relative], f"{relative} differs from tests/golden; regenerate on purpose if intended"

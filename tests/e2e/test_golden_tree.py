"""A real conversion's code equals the reviewed golden copy, after masking versions.

The golden copies in `tests/golden/<branch>/` are rendered from stored captures without a kernel
(tests/unit/test_golden_branches.py); this test proves that a real run of the kernel gives the
same tree. Regenerate on purpose with `NB2PROD_REGENERATE_GOLDEN=1 python -m pytest
tests/e2e/test_golden_tree.py`: it runs every branch's notebook, stores its capture, writes the
golden trees, and the diff is then reviewed and committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from nb2prod import pipeline
from nb2prod.options import ConvertOptions
from nb2prod.run.captured import Capture
from tests.conftest import run_cli
from tests.golden_render import (
    BRANCH_OPTIONS,
    BRANCHES,
    compared_files,
    golden_files,
    render_branch,
    store_capture,
    tree_of,
    write_golden,
)

pytestmark = pytest.mark.slow
REGENERATE = bool(os.environ.get("NB2PROD_REGENERATE_GOLDEN"))


@pytest.fixture(scope="module")
def recaptured(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With NB2PROD_REGENERATE_GOLDEN: run each branch's notebook, store its capture and golden tree."""
    if not REGENERATE:
        return
    work = tmp_path_factory.mktemp("recapture")
    kept: list[Capture] = []
    read_capture = pipeline.read_capture

    def keep(*args: Any) -> Capture:
        kept.append(read_capture(*args))
        return kept[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "read_capture", keep)
        for branch, notebook in BRANCHES.items():
            options = BRANCH_OPTIONS.get(branch, {})
            pipeline.convert(ConvertOptions(notebook=notebook, output=work / branch, **options))  # type: ignore[arg-type]
            store_capture(branch, kept[-1])
            (work / "model").mkdir(exist_ok=True)
            for name in (kept[-1].report.model_file, kept[-1].report.inference.file):
                if name:
                    (work / "model" / name).write_bytes(b"stand-in")
            write_golden(branch, compared_files(render_branch(branch, work / "model")))


def test_a_real_conversion_matches_the_golden_copy(tmp_path: Path, recaptured: None) -> None:
    out = tmp_path / "out"
    result = run_cli("convert", BRANCHES["customers_mixed"], "-o", out)
    assert result.returncode == 0, result.stderr
    files = compared_files(tree_of(out))
    golden = golden_files("customers_mixed")
    assert sorted(files) == sorted(golden)
    for relative, text in files.items():
        assert text == golden[relative], f"{relative} differs from tests/golden; regenerate on purpose if intended"

"""Our own code stays lint-clean, formatted and type-checked (ruff, mypy)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_check_and_format() -> None:
    check = run("ruff", "check", "nb2prod", "tests", "benchmarks")
    assert check.returncode == 0, check.stdout
    formatted = run("ruff", "format", "--check", "nb2prod", "tests", "benchmarks")
    assert formatted.returncode == 0, formatted.stdout


def test_mypy() -> None:
    typed = run("mypy", "nb2prod")
    assert typed.returncode == 0, typed.stdout

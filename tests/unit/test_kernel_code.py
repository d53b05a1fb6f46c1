"""The code shipped into the user's kernel: its Python floor, and that it runs as one cell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nb2prod.run import captured
from nb2prod.run.capture import kernel_source
from nb2prod.run.kernel import common

KERNEL_FLOOR = "3.9"


def _vermin(source: Path) -> subprocess.CompletedProcess[str]:
    """vermin's verdict on `source` against the kernel's Python floor."""
    command = [str(Path(sys.executable).with_name("vermin")), f"-t={KERNEL_FLOOR}-", "--violations", "--no-tips"]
    return subprocess.run([*command, str(source)], capture_output=True, text=True, check=False)


def test_kernel_code_needs_no_newer_python_than_its_floor(tmp_path: Path) -> None:
    # vermin finds the minimum Python for syntax and standard-library use (zip(strict=),
    # packages_distributions, match, `X | Y` at run time, ...) in the source the kernel receives.
    source = tmp_path / "kernel_cell.py"
    source.write_text(kernel_source())
    found = _vermin(source)
    assert found.returncode == 0, found.stdout + found.stderr


def test_vermin_would_catch_a_newer_construct(tmp_path: Path) -> None:
    source = tmp_path / "newer.py"
    source.write_text("pairs = list(zip([1], [2], strict=True))\n")
    found = _vermin(source)
    assert found.returncode != 0 and "3.10" in found.stdout


def test_kernel_source_is_one_self_contained_module() -> None:
    source = kernel_source()
    assert "from nb2prod" not in source and "import nb2prod" not in source
    namespace: dict[str, object] = {}
    exec(compile(source, "<kernel cell>", "exec"), namespace)  # noqa: S102 - our own code, as the kernel runs it
    assert callable(namespace["_nb2prod_capture"])


def test_capture_version_is_the_same_on_both_sides() -> None:
    assert common.CAPTURE_VERSION == captured.CAPTURE_VERSION


def test_module_providers_find_what_packages_distributions_finds(monkeypatch) -> None:
    # The kernel reads top_level.txt and RECORD as text, on every Python (3.9 has no
    # packages_distributions): for the modules asked, it must find the same distributions.
    import importlib.metadata

    from nb2prod.run.kernel import environment

    modules = {"numpy", "sklearn", "pandas", "joblib", "onnxruntime", "yaml", "google", "_pytest", "no_such_module"}
    reference = importlib.metadata.packages_distributions()
    expected = {m: sorted(reference[m]) for m in modules if m in reference}
    monkeypatch.delattr(importlib.metadata, "packages_distributions")
    found = {m: sorted(names) for m, names in environment._module_providers(modules).items()}
    assert found == expected
    assert "scikit-learn" in {name.lower() for name in found["sklearn"]}

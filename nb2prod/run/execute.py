"""Execute stage: run the notebook deterministically with papermill, then the capture step.

The only module that imports papermill. The run notebook is the source notebook with `skip`
cells removed, a seed cell first and the capture cell last; papermill injects `-p` overrides
after the parameters cell. Each run cell remembers its source index in `metadata.nb2prod`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from nb2prod.errors import CellExecutionError, KernelError, OptionsError
from nb2prod.notebook.spec import NotebookSpec, Role

SEED_TAG = "nb2prod-seed"
CAPTURE_TAG = "nb2prod-capture"
FALLBACK_KERNEL = "python3"


@dataclass(frozen=True)
class CellProgress:
    """Reported before each cell runs: cell i of n, elapsed seconds, first line."""

    position: int
    total: int
    elapsed: float
    first_line: str
    source_index: int | None


ProgressCallback = Callable[[CellProgress], None]


@dataclass(frozen=True)
class RunRequest:
    """What the execute stage needs; built by the pipeline from the options."""

    spec: NotebookSpec
    parameters: dict[str, Any]
    kernel: str | None
    seed: int
    timeout: int
    capture_source: str
    executed_path: Path


@dataclass(frozen=True)
class ExecutedRun:
    executed_path: Path
    kernel_name: str
    elapsed: float
    warnings: tuple[str, ...]


def choose_kernel(spec: NotebookSpec, requested: str | None) -> tuple[str, list[str]]:
    """The kernel to run: --kernel, else the notebook's if installed, else this Python."""
    from jupyter_client.kernelspec import KernelSpecManager

    installed = set(KernelSpecManager().find_kernel_specs()) | {FALLBACK_KERNEL}
    if requested:
        if requested not in installed:
            raise OptionsError(
                f"--kernel {requested}: no such kernel is installed (installed: {', '.join(sorted(installed))}).",
                hint="Pick an installed kernel, or install one with `python -m ipykernel install --user --name NAME`.",
            )
        return requested, []
    if spec.kernel_name and spec.kernel_name in installed:
        return spec.kernel_name, []
    named = f"kernel `{spec.kernel_name}` is not installed" if spec.kernel_name else "the notebook names no kernel"
    return FALLBACK_KERNEL, [f"{spec.path.name}: {named}; running with the Python nb2prod runs in ({FALLBACK_KERNEL})."]


def build_run_notebook(spec: NotebookSpec, seed: int, capture_source: str) -> nbformat.NotebookNode:
    """The notebook papermill runs: skip cells out, seed cell in front, capture cell at the end."""
    original = nbformat.read(str(spec.path), as_version=4)
    run = copy.deepcopy(original)
    run.cells = []
    for cell, raw in zip(spec.cells, original.cells, strict=True):
        if cell.role is Role.SKIP:
            continue
        raw.metadata["nb2prod"] = {"source_index": cell.index}
        run.cells.append(raw)
    run.cells.insert(0, _injected_cell(_seed_source(seed), SEED_TAG))
    run.cells.append(_injected_cell(capture_source, CAPTURE_TAG))
    return run


def _injected_cell(source: str, tag: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.id = tag
    cell.metadata["tags"] = [tag]
    cell.metadata["nb2prod"] = {"source_index": None}
    return cell


def _seed_source(seed: int) -> str:
    return (
        "# nb2prod: seeds Python's and NumPy's global generators so the run is repeatable.\n"
        f"import random as _nb2prod_random\n_nb2prod_random.seed({seed})\n"
        "try:\n    import numpy as _nb2prod_numpy\n"
        f"    _nb2prod_numpy.random.seed({seed})\n    del _nb2prod_numpy\n"
        "except ImportError:\n    pass\ndel _nb2prod_random\n"
    )


def run_notebook(request: RunRequest, progress: ProgressCallback | None = None) -> ExecutedRun:
    """Run the notebook to `request.executed_path`; raise CellExecutionError at a failing cell."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    kernel, warnings = choose_kernel(request.spec, request.kernel)
    run_nb = build_run_notebook(request.spec, request.seed, request.capture_source)
    _register_engine()
    tracker = _ProgressTracker(progress)
    started = time.monotonic()
    try:
        with _hash_seed():
            papermill.execute_notebook(
                run_nb,
                str(request.executed_path),
                parameters=request.parameters or None,
                engine_name="nb2prod",
                kernel_name=kernel,
                progress_bar=False,
                cwd=str(request.spec.path.parent.resolve()),
                execution_timeout=request.timeout,
                nb2prod_progress=tracker,
                # ipykernel's start-up chatter (TCP transport warning) is noise on our terminal.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
    except PapermillExecutionError as err:
        # The failing cell is the last one started (papermill's own index counts its banner cells).
        raise _cell_error(request, tracker.current_cell, err.ename, err.evalue, _traceback(err)) from err
    except CellTimeoutError as err:
        raise _cell_error(
            request,
            tracker.current_cell,
            "TimeoutError",
            f"the cell ran longer than {request.timeout} s (--timeout)",
            "",
        ) from err
    except DeadKernelError as err:
        raise KernelError(
            f"{request.spec.path.name}: the kernel died while running {tracker.current_label(request.spec)}.",
            hint="The cell may use too much memory or crash the interpreter; run it in JupyterLab to see.",
            notebook=request.spec.path,
        ) from err
    except RuntimeError as err:
        raise KernelError(
            f"{request.spec.path.name}: the kernel `{kernel}` could not start: {err}",
            hint="Check the kernel with `jupyter kernelspec list`, or pass --kernel.",
            notebook=request.spec.path,
        ) from err
    return ExecutedRun(request.executed_path, kernel, time.monotonic() - started, tuple(warnings))


ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _traceback(err: Any) -> str:
    return ANSI_CODES.sub("", "\n".join(err.traceback or []))


def _cell_error(request: RunRequest, run_cell: Any, ename: str, evalue: str, traceback: str) -> CellExecutionError:
    spec = request.spec
    source_index = run_cell.metadata.get("nb2prod", {}).get("source_index") if run_cell is not None else None
    if source_index is None:
        where, index, first = "an nb2prod step (seed or capture)", -1, ""
        hint = "This is likely a bug in nb2prod or a kernel without scikit-learn; run with --debug and report it."
    else:
        cell = spec.cells[source_index]
        where, index, first = cell.label, cell.index, cell.first_line
        hint = "Fix the cell (the kept executed notebook shows the full traceback there) and convert again."
    return CellExecutionError(
        f"{spec.path.name}, {where} raised {ename}: {evalue}",
        hint=hint,
        notebook=spec.path,
        cell_index=index,
        first_line=first,
        ename=ename,
        evalue=evalue,
        executed_notebook=request.executed_path,
        traceback=traceback,
    )


@contextlib.contextmanager
def _hash_seed() -> Iterator[None]:
    """The kernel inherits our environment: fix its string hashing (set/dict order of str)."""
    before = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = before


class _ProgressTracker:
    """Turns papermill's cell_start calls into CellProgress: code cell i of n, as run."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.started = time.monotonic()
        self.current_cell: Any = None

    def cell_started(self, cell: Any, run_cells: list[Any]) -> None:
        self.current_cell = cell
        if self.callback is None or cell.cell_type != "code":
            return
        code_cells = [c for c in run_cells if c.cell_type == "code"]
        position = next((i for i, c in enumerate(code_cells) if c is cell), 0)
        tags = cell.metadata.get("tags", [])
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        if SEED_TAG in tags:
            first = "(nb2prod: seeding random and NumPy)"
        elif CAPTURE_TAG in tags:
            first = "(nb2prod: capturing the model and golden examples)"
        elif "injected-parameters" in tags:
            first = "(papermill: injected parameters)"
        self.callback(
            CellProgress(
                position + 1,
                len(code_cells),
                time.monotonic() - self.started,
                first,
                cell.metadata.get("nb2prod", {}).get("source_index"),
            )
        )

    def current_label(self, spec: NotebookSpec) -> str:
        cell = self.current_cell
        index = cell.metadata.get("nb2prod", {}).get("source_index") if cell is not None else None
        return spec.cells[index].label if index is not None else "an nb2prod step"


_ENGINE_REGISTERED = False


def _register_engine() -> None:
    """Register papermill's nbclient engine under our name, with a progress hook."""
    global _ENGINE_REGISTERED
    if _ENGINE_REGISTERED:
        return
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            tracker: _ProgressTracker = kwargs.pop("nb2prod_progress")
            original = nb_man.cell_start

            def cell_start(cell: Any, cell_index: int | None = None, **more: Any) -> Any:
                tracker.cell_started(cell, nb_man.nb.cells)
                return original(cell, cell_index, **more)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("nb2prod", ProgressEngine)
    _ENGINE_REGISTERED = True

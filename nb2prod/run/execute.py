"""Execute stage: run the notebook deterministically with papermill, then the capture step.

The only module that imports papermill. The run notebook is the source notebook with `skip`
cells removed, a seed cell first (it also installs the hook that notes the files the run reads)
and the capture cell last; papermill injects `-p` overrides after the parameters cell. Each run
cell remembers its source index in `metadata.nb2prod`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import nbformat

from nb2prod.errors import CellExecutionError, KernelError, OptionsError
from nb2prod.notebook.spec import NotebookSpec, Role

SEED_TAG = "nb2prod-seed"
CAPTURE_TAG = "nb2prod-capture"
RECORD_TAG = "nb2prod-record"
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
class CellEdits:
    """Changes the analysis asks of the run notebook: cell sources replaced (same line numbers,
    so a traceback still points at the user's line) and code run just before a cell."""

    sources: Mapping[int, str] = field(default_factory=dict)  # source index -> source to run
    before: Mapping[int, str] = field(default_factory=dict)  # source index -> cell run before it


@dataclass(frozen=True)
class RunRequest:
    """What the execute stage needs; built by the pipeline from the options."""

    spec: NotebookSpec
    parameters: dict[str, Any]
    kernel: str  # chosen by `choose_kernel`
    seed: int
    timeout: int
    capture_source: str
    executed_path: Path
    edits: CellEdits = field(default_factory=CellEdits)
    setup_source: str = ""  # run in the seed cell, before the notebook's first cell


@dataclass(frozen=True)
class ExecutedRun:
    executed_path: Path
    kernel_name: str
    elapsed: float


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


def build_run_notebook(
    spec: NotebookSpec, seed: int, capture_source: str, edits: CellEdits | None = None, setup_source: str = ""
) -> nbformat.NotebookNode:
    """The notebook papermill runs: skip cells out, seed cell (and `setup_source`) in front,
    capture cell at the end, and the recording `edits` of the preprocessing proof."""
    edits = edits or CellEdits()
    original = nbformat.read(str(spec.path), as_version=4)
    run = copy.deepcopy(original)
    run.cells = []
    for cell, raw in zip(spec.cells, original.cells, strict=True):
        if cell.role is Role.SKIP:
            continue
        if cell.index in edits.before:
            run.cells.append(_injected_cell(edits.before[cell.index], f"{RECORD_TAG}-{cell.index}"))
        if cell.index in edits.sources:
            raw.source = edits.sources[cell.index]
        raw.metadata["nb2prod"] = {"source_index": cell.index}
        if raw.cell_type == "code":
            # The audit copy is the run's, not the editor's: no stale outputs from the saved notebook.
            raw.outputs = []
            raw.execution_count = None
        run.cells.append(raw)
    run.cells.insert(0, _injected_cell(_seed_source(seed) + setup_source, SEED_TAG))
    run.cells.append(_injected_cell(capture_source, CAPTURE_TAG))
    return run


def _injected_cell(source: str, tag: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.id = tag
    cell.metadata["tags"] = [RECORD_TAG if tag.startswith(RECORD_TAG) else tag]
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
    """Run the notebook to `request.executed_path`; raise CellExecutionError at a failing cell.

    The kernel's own stderr and papermill's and nbclient's log lines go to `kernel.log` beside the
    executed notebook, never to the user's terminal. The kernel is always shut down and its
    connection file removed, also when the run is interrupted (SIGINT, SIGTERM).
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    kernel = request.kernel
    run_nb = build_run_notebook(request.spec, request.seed, request.capture_source, request.edits, request.setup_source)
    # papermill adds one code cell when it injects parameters.
    total = sum(c.cell_type == "code" for c in run_nb.cells) + (1 if request.parameters else 0)
    tracker = _ProgressTracker(progress, total)
    log_path = request.executed_path.with_name("kernel.log")
    started = time.monotonic()
    with log_path.open("ab") as log, _quiet_loggers(log_path), _hash_seed(), _kernels_reaped() as managers:
        try:
            papermill.execute_notebook(
                run_nb,
                str(request.executed_path),
                parameters=request.parameters or None,
                kernel_name=kernel,
                progress_bar=False,
                cwd=str(request.spec.path.parent.resolve()),
                execution_timeout=request.timeout,
                on_cell_start=tracker.cell_started,
                kernel_manager_class=_kernel_manager_class(log, managers),
                # ipykernel's start-up chatter (TCP transport warning) is noise on our terminal.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except PapermillExecutionError as err:
            # The failing cell is the last one started (papermill's own index counts its banner cells).
            raise _cell_error(request, tracker.current_cell, err.ename, err.evalue, _traceback(err)) from err
        except CellTimeoutError as err:
            evalue = f"the cell ran longer than {request.timeout} s (--timeout)"
            raise _cell_error(request, tracker.current_cell, "TimeoutError", evalue, "") from err
        except DeadKernelError as err:
            evalue = "the kernel died (the cell may exit the interpreter, crash it, or use too much memory)"
            raise _cell_error(request, tracker.current_cell, "DeadKernelError", evalue, "") from err
        except RuntimeError as err:
            raise KernelError(
                f"{request.spec.path.name}: the kernel `{kernel}` could not start: {err}",
                hint="Check the kernel with `jupyter kernelspec list`, or pass --kernel.",
                notebook=request.spec.path,
            ) from err
    return ExecutedRun(request.executed_path, kernel, time.monotonic() - started)


def _kernel_manager_class(log: IO[bytes], managers: list[Any]) -> type:
    """A kernel manager that sends the kernel's stderr to our log and remembers itself for reaping."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):  # type: ignore[misc]
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            managers.append(self)
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


@contextlib.contextmanager
def _kernels_reaped() -> Iterator[list[Any]]:
    """Whatever ends the run (an error, SIGINT, SIGTERM), no kernel process or connection file stays."""
    managers: list[Any] = []
    try:
        yield managers
    finally:
        for manager in managers:
            process = getattr(getattr(manager, "provisioner", None), "process", None)
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            connection_file = getattr(manager, "connection_file", "")
            if connection_file and os.path.exists(connection_file):
                os.remove(connection_file)


@contextlib.contextmanager
def _quiet_loggers(log_path: Path) -> Iterator[None]:
    """papermill's and nbclient's log lines (timeouts, kernel restarts) go to the run's log file."""
    names = ("papermill", "traitlets", "nbclient", "NotebookApp")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()


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
    """Turns nbclient's `on_cell_start` hook into CellProgress: code cell i of n, as run."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.started = time.monotonic()
        self.current_cell: Any = None
        self.position = 0

    def cell_started(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.current_cell = cell
        if cell.cell_type != "code":
            return
        self.position += 1
        if self.callback is None:
            return
        tags = cell.metadata.get("tags", [])
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        if SEED_TAG in tags:
            first = "(nb2prod: seeding random and NumPy)"
        elif CAPTURE_TAG in tags:
            first = "(nb2prod: capturing the model and golden examples)"
        elif RECORD_TAG in tags:
            first = "(nb2prod: recording training values for the preprocessing proof)"
        elif "injected-parameters" in tags:
            first = "(papermill: injected parameters)"
        self.callback(
            CellProgress(
                self.position,
                max(self.total, self.position),
                time.monotonic() - self.started,
                first,
                cell.metadata.get("nb2prod", {}).get("source_index"),
            )
        )

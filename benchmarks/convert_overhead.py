"""Conversion overhead: `nb2prod convert` beside a plain papermill run of the same notebook.

Both run as fresh processes, alternating, several times, with the same kernel and working folder;
the plain run executes the same cells (skip cells removed, since they are not meant to run).
Prints each run's wall time and CPU time (user + system of the process and everything it waited
for, the kernel included: on a shared, loaded machine the CPU time is the steadier figure), the
medians, the overhead and the load average. Target: at most 2 s of overhead. A benchmark that
prints figures, not a test.

With `--baseline DIR` (another nb2prod checkout, e.g. `git archive <commit> | tar -x -C DIR`), that
checkout's `nb2prod convert` runs too, in the same rounds, so before and after come from one run.

    python benchmarks/convert_overhead.py [NOTEBOOK] [--runs N] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = ROOT / "notebooks" / "customers_mixed.ipynb"


def without_skip_cells(notebook: Path, target: Path) -> Path:
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells = [c for c in nb.cells if "skip" not in c.metadata.get("tags", [])]
    nbformat.write(nb, str(target))
    return target


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and of every process it waited for), with `cwd`
    first on the command's import path."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="Another nb2prod checkout, timed in the same rounds.")
    args = parser.parse_args()
    notebook = args.notebook.resolve()
    plain: list[tuple[float, float]] = []
    converted: list[tuple[float, float]] = []
    baseline: list[tuple[float, float]] = []
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain_input = without_skip_cells(notebook, notebook.parent / f".bench-{notebook.name}")
        plain_command = [sys.executable, "-m", "papermill", str(plain_input), str(work / "plain.ipynb")]
        plain_command += ["-k", "python3", "--cwd", str(notebook.parent), "--no-progress-bar"]
        try:
            for run in range(args.runs):
                plain.append(timed(plain_command, ROOT))
                convert = [sys.executable, "-m", "nb2prod", "convert", str(notebook), "--kernel", "python3", "-o"]
                converted.append(timed([*convert, str(work / f"out{run}")], ROOT))
                if args.baseline is not None:
                    baseline.append(timed([*convert, str(work / f"base{run}")], args.baseline.resolve()))
        finally:
            plain_input.unlink(missing_ok=True)
    name = notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook
    print(f"notebook: {name}  runs: {args.runs}  after: {load()}")
    rows = [("plain papermill run", plain), ("nb2prod convert", converted)]
    if baseline:
        rows.append(("baseline convert", baseline))
    for label, times in rows:
        walls = ", ".join(f"{wall:.2f}" for wall, _ in times)
        cpus = ", ".join(f"{cpu:.2f}" for _, cpu in times)
        print(
            f"{label:20}: wall {walls} s (median {statistics.median(w for w, _ in times):.2f});"
            f" CPU {cpus} s (median {statistics.median(c for _, c in times):.2f})"
        )
    wall_gap = [c[0] - p[0] for p, c in zip(plain, converted, strict=True)]
    cpu_gap = [c[1] - p[1] for p, c in zip(plain, converted, strict=True)]
    print(
        f"overhead (pairwise medians): wall {statistics.median(wall_gap):+.2f} s, "
        f"CPU {statistics.median(cpu_gap):+.2f} s (target: <= 2.00 s)"
    )
    if baseline:
        wall_gap = [c[0] - p[0] for p, c in zip(plain, baseline, strict=True)]
        cpu_gap = [c[1] - p[1] for p, c in zip(plain, baseline, strict=True)]
        print(
            f"baseline overhead ({args.baseline}): wall {statistics.median(wall_gap):+.2f} s, "
            f"CPU {statistics.median(cpu_gap):+.2f} s"
        )


if __name__ == "__main__":
    main()

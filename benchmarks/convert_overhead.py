"""Conversion overhead: `nb2prod convert` beside a plain papermill run of the same notebook.

Both run as fresh processes, alternating, several times; the plain run executes the same cells
(skip cells removed, since they are not meant to run). Prints each time, the medians and the
overhead. Target: at most 3 s of overhead. A benchmark that prints figures, not a test.

    python benchmarks/convert_overhead.py [NOTEBOOK] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def largest_example() -> Path:
    """The example with the most training work: the biggest notebook file is a fair proxy here."""
    return max((ROOT / "notebooks").glob("*.ipynb"), key=lambda p: p.stat().st_size)


def without_skip_cells(notebook: Path, target: Path) -> Path:
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells = [c for c in nb.cells if "skip" not in c.metadata.get("tags", [])]
    nbformat.write(nb, str(target))
    return target


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    notebook = (args.notebook or largest_example()).resolve()
    plain_times, convert_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain_input = without_skip_cells(notebook, notebook.parent / f".bench-{notebook.name}")
        try:
            for run in range(args.runs):
                plain_times.append(
                    timed(
                        [
                            sys.executable,
                            "-m",
                            "papermill",
                            str(plain_input),
                            str(work / "plain.ipynb"),
                            "-k",
                            "python3",
                            "--cwd",
                            str(notebook.parent),
                            "--no-progress-bar",
                        ],
                        ROOT,
                    )
                )
                convert_times.append(
                    timed(
                        [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(work / f"out{run}")],
                        ROOT,
                    )
                )
        finally:
            plain_input.unlink(missing_ok=True)
    plain, converted = statistics.median(plain_times), statistics.median(convert_times)
    print(f"notebook: {notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook}  runs: {args.runs}")
    print(f"plain papermill run : {', '.join(f'{t:.2f}' for t in plain_times)} s  (median {plain:.2f} s)")
    print(f"nb2prod convert     : {', '.join(f'{t:.2f}' for t in convert_times)} s  (median {converted:.2f} s)")
    print(f"overhead            : {converted - plain:+.2f} s (target: <= 3.00 s)  ratio {converted / plain:.2f}x")


if __name__ == "__main__":
    main()

"""The generated image: its size, and the time from `podman run` to /ready answering 200.

For each converted folder given (or, with no folder, each example notebook converted here), builds
its image with podman from its own Dockerfile (on the stand-in python:3.11-slim that
tests/containers/stand_in_base.sh makes, when no registry can be reached), then starts it `--runs`
times, read-only with a tmpfs /tmp, and prints the size and each start's seconds to /ready with
their median. A benchmark that prints figures, not a test.

    python benchmarks/container_image.py [FOLDER ...] [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.containers.podman import (  # noqa: E402
    build,
    build_stand_in_base,
    container,
    image_size,
    podman,
    podman_problem,
    seconds_to_ready,
)
from tests.e2e.service import free_port  # noqa: E402


def converted_examples(work: Path) -> list[Path]:
    folders = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        out = work / notebook.stem
        command = [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(out)]
        subprocess.run(command, check=True, capture_output=True, timeout=900, cwd=ROOT)
        folders.append(out)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the images")
    args = parser.parse_args()
    problem = podman_problem()
    if problem:
        sys.exit(f"podman cannot run here: {problem}")
    build_stand_in_base()
    with tempfile.TemporaryDirectory() as work:
        folders = args.folders or converted_examples(Path(work))
        print(f"{'project':<28} {'image MB':>9} {'build s':>8}  start to /ready, s (median)")
        for folder in folders:
            tag = f"localhost/nb2prod-bench-{folder.name.lower()}:latest"
            began = time.monotonic()
            build(folder, tag)
            built = time.monotonic() - began
            starts = []
            for _ in range(args.runs):
                port = free_port()
                started = time.monotonic()  # before `podman run`
                with container(tag, port):
                    starts.append(seconds_to_ready(f"http://127.0.0.1:{port}", started))
            size = image_size(tag) / 1e6
            shown = ", ".join(f"{s:.1f}" for s in starts)
            print(f"{folder.name:<28} {size:>9.0f} {built:>8.0f}  {shown} ({statistics.median(starts):.1f})")
            if not args.keep:
                podman("rmi", "-f", tag, check=False)


if __name__ == "__main__":
    main()

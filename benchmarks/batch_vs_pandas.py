"""Batch scoring: `nb2prod predict` beside doing it by hand with pandas, and the Dask engine beside both.

Converts `notebooks/customers_mixed.ipynb` (as converted: the compiled path; `--no-compile`: the
scikit-learn path), writes a CSV of `--rows` customers drawn from the training sample's columns
(about 5% missing in every nullable column), and times, in this Python, with the model loaded
beforehand in both:

- by hand: `pd.read_csv`, the notebook's own model (`model.joblib`) `predict` and `predict_proba`,
  `to_csv`;
- the local engine: `nb2prod.batch.score.predict` (the service's `predict_frame`, chunk by chunk).

Then, each in a fresh process: `nb2prod predict` (local) and `nb2prod predict --engine dask` (a
LocalCluster, one worker process per core) in rows per second, start-up included; and the peak
RSS of the local engine on `--rows` and on ten times as many rows. A benchmark that prints
figures, not a test.

    python benchmarks/batch_vs_pandas.py [--rows 300000] [--no-compile] [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nb2prod.batch.score import predict as local_engine  # noqa: E402
from nb2prod.batch.service import load_service  # noqa: E402


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def nb2prod(*args: str | Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nb2prod", *map(str, args)], capture_output=True, text=True, env=env(), check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"nb2prod {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr[-3000:]}")


def customers(out: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` customers like the training sample: its ranges and categories, 5% missing where nullable."""
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for feature in manifest["input_schema"]["features"]:
        kind, name = feature["kind"], feature["name"]
        if kind == "integer":
            values = pd.Series(rng.integers(feature["min"], feature["max"] + 1, rows), dtype="Int64")
        elif kind == "number":
            values = pd.Series(rng.uniform(feature["min"], feature["max"], rows).round(2))
        elif kind == "boolean":
            values = pd.Series(rng.random(rows) < 0.5, dtype="boolean")
        else:
            values = pd.Series(rng.choice(np.array(feature["categories"], dtype=object), rows), dtype=object)
        if feature["nullable"]:
            values = values.mask(rng.random(rows) < 0.05)
        columns[name] = values
    return pd.DataFrame(columns)


def by_hand(model_file: Path, source: Path, target: Path) -> float:
    model = joblib.load(model_file)
    started = time.perf_counter()
    frame = pd.read_csv(source)
    answers = pd.DataFrame({"prediction": model.predict(frame)})
    probabilities = model.predict_proba(frame)
    for i, label in enumerate(model.classes_):
        answers[f"probability_{label}"] = probabilities[:, i]
    answers.to_csv(target, index=False)
    return time.perf_counter() - started


def engine(out: Path, source: Path, target: Path) -> float:
    load_service(out)  # loaded beforehand, as the by-hand model is
    started = time.perf_counter()
    local_engine(out, source, target, force=True)
    return time.perf_counter() - started


def cli_seconds(*args: str | Path) -> float:
    started = time.perf_counter()
    nb2prod(*args)
    return time.perf_counter() - started


def peak_rss_mb(*args: str | Path) -> float:
    """Peak RSS of `nb2prod ARGS`, run as the only child of a fresh process."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [sys.executable, "-c", probe, sys.executable, "-m", "nb2prod", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=env(), check=True)
    return int(result.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--no-compile", action="store_true", help="Convert with --no-compile (the scikit-learn path).")
    parser.add_argument("--skip-large", action="store_true", help="Skip the peak RSS run on ten times the rows.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out = work / "service"
        nb2prod(
            "convert", ROOT / "notebooks" / "customers_mixed.ipynb", "-o", out, *(["--no-compile"] * args.no_compile)
        )
        model_file = next(out.glob("src/*/artifacts/model.joblib"))
        source = work / "customers.csv"
        customers(out, args.rows).to_csv(source, index=False)

        hand = [by_hand(model_file, source, work / "hand.csv") for _ in range(2)]
        local = [engine(out, source, work / "local.csv") for _ in range(2)]
        check = pd.read_csv(work / "local.csv")
        assert len(check) == args.rows, len(check)

        cli_local = cli_seconds("predict", out, source, "-o", work / "cli.csv", "--force")
        cli_dask = cli_seconds("predict", out, source, "-o", work / "dask.csv", "--engine", "dask", "--force")
        same = pd.read_csv(work / "cli.csv").equals(pd.read_csv(work / "dask.csv"))

        rss_small = peak_rss_mb("predict", out, source, "-o", work / "rss.csv", "--force")
        rss_large = None
        if not args.skip_large:
            large = work / "large.csv"
            for i in range(10):
                customers(out, args.rows, seed=i).to_csv(large, index=False, mode="a", header=i == 0)
            rss_large = peak_rss_mb("predict", out, large, "-o", work / "rss.csv", "--force")

    path = "scikit-learn (--no-compile)" if args.no_compile else "as converted"
    best_hand, best_local = min(hand), min(local)
    print(f"customers_mixed, {path}, {args.rows:,} rows, {os.cpu_count()} cores")
    print("| what | seconds | rows/s |")
    print("| --- | --- | --- |")
    print(f"| by hand: read_csv, predict, predict_proba, to_csv | {best_hand:.2f} | {args.rows / best_hand:,.0f} |")
    print(f"| local engine, in this Python | {best_local:.2f} | {args.rows / best_local:,.0f} |")
    print(f"| `nb2prod predict` (a fresh process) | {cli_local:.2f} | {args.rows / cli_local:,.0f} |")
    print(f"| `nb2prod predict --engine dask` (a fresh process) | {cli_dask:.2f} | {args.rows / cli_dask:,.0f} |")
    print(f"local engine / by hand: {best_hand / best_local:.2f}x the speed (target >= 0.8x, at least 0.5x)")
    print(f"dask answers equal local answers: {same}")
    print(f"peak RSS, local engine: {rss_small:.0f} MB on {args.rows:,} rows", end="")
    if rss_large is not None:
        print(f", {rss_large:.0f} MB on {10 * args.rows:,} rows ({rss_large / rss_small:.2f}x)")
    else:
        print()


if __name__ == "__main__":
    main()

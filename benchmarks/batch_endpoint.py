"""`POST /predict/batch` of 1,000 records: the service this checkout generates beside one an earlier checkout generates.

Converts `notebooks/customers_mixed.ipynb` with this checkout and with `--baseline DIR` (another
nb2prod checkout, e.g. `git archive <commit> | tar -x -C DIR`), with `--no-compile` (the
scikit-learn path: a service whose model runs on pandas checks a batch by columns; the compiled
path without pandas keeps the per-record schema; `--compiled` converts as is), starts both services under uvicorn
on 127.0.0.1 (one worker, access log off, the same flags), and posts the same body of `--records`
customers drawn from the training schema (about 5% missing where nullable) to each in turn,
`--requests` times. Prints the median and best latency of each, and checks that both answer the
same. A benchmark that prints figures, not a test.

    python benchmarks/batch_endpoint.py --baseline DIR [--records 1000] [--requests 200] [--compiled]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from batch_vs_pandas import customers  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "customers_mixed.ipynb"
UVICORN_FLAGS = ["--workers", "1", "--log-level", "warning", "--no-access-log"]


def convert(checkout: Path, out: Path, compiled: bool) -> Path:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-m", "nb2prod", "convert", str(NOTEBOOK), "-o", str(out), "--kernel", "python3"]
    command += [] if compiled else ["--no-compile"]
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"conversion with {checkout} failed:\n{result.stderr[-3000:]}")
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(out: Path) -> Iterator[str]:
    package = next(out.glob("src/*/app.py")).parent.name
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(out / "src"), "GRPC_PORT": str(free_port())}
    command = [sys.executable, "-m", "uvicorn", f"{package}.app:app", "--port", str(port), *UVICORN_FLAGS]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/ready", timeout=1).status == 200:  # noqa: S310 - 127.0.0.1
                    break
            time.sleep(0.1)
        else:
            raise SystemExit(f"{out} did not become ready")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def post(url: str, body: bytes) -> tuple[float, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}/predict/batch", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - 127.0.0.1
        answer = json.loads(response.read())
    return time.perf_counter() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="An earlier nb2prod checkout.")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--compiled", action="store_true", help="Convert as is (the compiled path).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        services = {
            "before": convert(args.baseline.resolve(), work / "before", args.compiled),
            "after": convert(ROOT, work / "after", args.compiled),
        }
        frame = customers(services["after"], args.records)
        records = json.loads(frame.to_json(orient="records"))
        body = json.dumps({"records": records}).encode()
        times: dict[str, list[float]] = {name: [] for name in services}
        with serving(services["before"]) as before, serving(services["after"]) as after:
            urls = {"before": before, "after": after}
            answers = {name: post(url, body)[1] for name, url in urls.items()}
            for _ in range(args.requests):
                for name, url in urls.items():
                    times[name].append(post(url, body)[0])
    same = answers["before"]["predictions"] == answers["after"]["predictions"]
    same = same and answers["before"].get("probabilities") == answers["after"].get("probabilities")
    path = "compiled path" if args.compiled else "scikit-learn path (--no-compile)"
    print(f"POST /predict/batch, {args.records:,} customers_mixed records ({path}), {args.requests} requests each")
    print(f"uvicorn {' '.join(UVICORN_FLAGS)}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print("| service | median ms | best ms | records/s (median) |")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.1f} | {min(values) * 1000:.1f} | {args.records / median:,.0f} |")
    print(f"after / before (median): {statistics.median(times['after']) / statistics.median(times['before']):.2f}")
    print(f"same answers: {same}")


if __name__ == "__main__":
    main()

"""nb2prod's generated service beside the apps it replaces and beside the floor, under a real load generator.

Three models: a 30-feature breast-cancer model (scikit-learn's bundled data, no download) as
StandardScaler + LogisticRegression and as RandomForestClassifier(100 trees, n_jobs=-1), and the
mixed-type frame example `notebooks/customers_mixed.ipynb`, served twice: on the compiled path the
conversion chooses, and (`mixed-sklearn`, converted with `--no-compile`) on the lean scikit-learn
frame path that a pipeline which does not compile gets. Each is converted with `nb2prod convert`,
then served by four systems at once, each measured in turn in every round:

- `generated`: the converted service;
- `hand-written`: `benchmarks/handwritten_app.py` (a pydantic body, an `async def` endpoint);
- `seed`: `benchmarks/seed_snippet.py`, the minimal app of the original brief
  (`model.predict(pd.DataFrame([record]))` in a plain `def` endpoint);
- `floor`: `benchmarks/floor_app.py`, a bare ASGI callable that reads the body and answers the
  generated service's own answer as a constant: what the server alone costs.

Every system runs under the same uvicorn command line (printed in the header: one worker, the
same event loop and HTTP parser, access log off), pinned to CPU 0, with wrk pinned to CPU 1.
Prints, per model and connection count: req/s, p50/p99 latency and each system's ratio to the
floor (floor req/s over the system's: 1.0 is the floor), each server's CPU time per request (all its
threads, read from /proc around each run; on a shared box, where other work takes the CPU away,
the figure that moves least) and its ratio to the floor's, plus the generated service's ratios to
the hand-written app and to the seed snippet, all from the same run; then RSS after warm-up and
the generated service's cost per row on /predict/batch. A benchmark that prints figures, never a
test. Needs wrk (Debian: `apt-get install wrk`) and taskset (util-linux).

    python benchmarks/serve_vs_handwritten.py [--seconds 10] [--rounds 3] [--work DIR] [--only lr,rf] [--loop asyncio]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU, LOAD_CPU = "0", "1"
BATCH_ROWS = 100
# The same for every system; the event loop is added from --loop.
UVICORN_FLAGS = ["--workers", "1", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
SYSTEMS = ("generated", "handwritten", "seed", "floor")
SHOWN = {"generated": "generated", "handwritten": "hand-written", "seed": "seed snippet", "floor": "floor (bare ASGI)"}

BREAST_CANCER_LOAD = """\
from sklearn.datasets import load_breast_cancer

X_train, y_train = load_breast_cancer(return_X_y=True)
"""
MODELS = {
    "lr": """\
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
model.fit(X_train, y_train)
""",
    "rf": """\
from sklearn.ensemble import RandomForestClassifier

model = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=0)
model.fit(X_train, y_train)
""",
}
TITLES = {
    "lr": "breast cancer, StandardScaler + LogisticRegression",
    "rf": "breast cancer, RandomForestClassifier(100, n_jobs=-1)",
    "mixed": "customers_mixed (ColumnTransformer + GradientBoosting, frame)",
    "mixed-sklearn": "customers_mixed with --no-compile (lean scikit-learn frame path)",
}


@dataclass(frozen=True)
class Case:
    key: str
    out: Path
    package: str
    kind: str  # "array" or "frame"
    path: str  # the inference path the conversion chose
    payload: bytes
    batch: bytes


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = float("nan")  # the server's CPU time (all its threads) per request answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per figure (the median is shown)")
    parser.add_argument("--work", type=Path, help="folder for the converted services (reused when present)")
    parser.add_argument(
        "--only", default="lr,rf,mixed,mixed-sklearn", help="comma-separated subset of lr, rf, mixed, mixed-sklearn"
    )
    parser.add_argument(
        "--loop",
        default="asyncio",
        help="uvicorn --loop for every system [default: asyncio, as the generated Dockerfile runs it]",
    )
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{' and '.join(missing)} not found: install wrk with `apt-get install wrk` (taskset is util-linux).")
    work = args.work or Path(tempfile.mkdtemp(prefix="nb2prod-bench-"))
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    flags = [*UVICORN_FLAGS, "--loop", args.loop]
    print(
        f"machine: {machine()}; servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}; "
        f"median of {args.rounds} alternating {args.seconds} s runs; load average {load()}"
    )
    print(f"every system: uvicorn APP {' '.join(flags)}")
    rows = []
    for key in keys:
        case = prepare(key, work)
        rows.append(measure(case, args.seconds, args.rounds, flags))
    print_table(rows)
    print(f"\nload average after the run: {load()}")


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "unknown CPU",
    )
    return f"{model}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"


def prepare(key: str, work: Path) -> Case:
    """Convert the model's notebook (once; reused from `work`) and build its request bodies."""
    out = work / f"{key}-service"
    if not (out / "pyproject.toml").is_file():
        mixed = key.startswith("mixed")
        notebook = ROOT / "notebooks" / "customers_mixed.ipynb" if mixed else write_notebook(key, work)
        lean = ["--no-compile"] if key == "mixed-sklearn" else []
        command = [sys.executable, "-m", "nb2prod", "convert", str(notebook), "-o", str(out), "--name", f"bench-{key}"]
        result = subprocess.run(
            [*command, *lean],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.exit(f"nb2prod convert failed for {key}:\n{result.stderr}")
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    golden = json.loads((out / "tests" / "golden.json").read_text())["examples"]
    # A record without missing values, so the hand-written app (which has no null handling) can answer it.
    record = next((g["input"] for g in golden if None not in g["input"].values()), golden[0]["input"])
    return Case(
        key=key,
        out=out,
        package=manifest["package"],
        kind=manifest["input_schema"]["kind"],
        path=manifest["inference"]["path"],
        payload=json.dumps(record).encode(),
        batch=json.dumps({"records": [record] * BATCH_ROWS}).encode(),
    )


def write_notebook(key: str, work: Path) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [(BREAST_CANCER_LOAD, "load"), (MODELS[key], "train")]
    notebook.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": [tag]}) for source, tag in cells]
    path = work / f"breast_cancer_{key}.ipynb"
    work.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def measure(case: Case, seconds: int, rounds: int, flags: list[str]) -> dict[str, Any]:
    """All systems up at once (idle between runs), measured in alternation, so that load from other
    work on the machine falls on all alike; each figure is the median of `rounds` runs."""
    model_file = next(case.out.glob("src/*/artifacts/model.joblib"))
    bench = ["--app-dir", str(ROOT / "benchmarks")]
    targets = {
        "generated": [f"{case.package}.app:app", "--app-dir", str(case.out / "src")],
        "handwritten": ["handwritten_app:app", *bench],
        "seed": ["seed_snippet:app", *bench],
        "floor": ["floor_app:app", *bench],
    }
    env = {"MODEL_PATH": str(model_file), "INPUT_KIND": case.kind}
    row: dict[str, Any] = {"case": case}
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        pids: list[int] = []
        for side in SYSTEMS:
            if side == "floor":  # the generated service's own answer, as a constant
                env = {**env, "FLOOR_BODY": post(f"{urls['generated']}/predict", case.payload)[1].decode()}
            urls[side], pid = stack.enter_context(serve([*targets[side], *flags], env, case.payload))
            row[f"{side}_rss"] = rss_mb(pid)
            pids.append(pid)
        for connections in (8, 64):
            runs: dict[str, list[Load]] = {side: [] for side in SYSTEMS}
            for _ in range(rounds):
                for (side, url), pid in zip(urls.items(), pids, strict=True):
                    settle(pids)
                    runs[side].append(wrk(f"{url}/predict", case.payload, connections, seconds, pid))
            for side in SYSTEMS:
                row[f"{side}_c{connections}"] = median_load(runs[side])
                row[f"{side}_c{connections}_worst_p99"] = max(run.p99_ms for run in runs[side])
        settle(pids)
        batch = median_load([wrk(f"{urls['generated']}/predict/batch", case.batch, 8, seconds) for _ in range(rounds)])
        row["batch_row_us"] = 1e6 / (batch.rps * BATCH_ROWS) if batch.rps else float("nan")
    print(f"  {case.key}: done", file=sys.stderr)
    return row


def settle(pids: list[int], timeout: float = 15.0) -> None:
    """Wait until neither server uses the CPU: a server that fell behind (the hand-written app at 64
    connections) goes on answering requests that wrk has given up on, and would slow the next run."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks(pids)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_ticks(pids)
        if now - last <= 1:
            return
        last = now


def cpu_ticks(pids: list[int]) -> int:
    """User plus system CPU time of the processes, in clock ticks (all their threads)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def median_load(runs: list[Load]) -> Load:
    """The run with the median throughput (its latencies with it), with the median CPU time per request."""
    cpu = sorted(run.cpu_us for run in runs)[len(runs) // 2]
    return dataclasses.replace(sorted(runs, key=lambda run: run.rps)[len(runs) // 2], cpu_us=cpu)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(target: list[str], env: dict[str, str], payload: bytes) -> Iterator[tuple[str, int]]:
    """uvicorn on CPU 0; yields (base URL, pid) once it answers and has been warmed up."""
    port = free_port()
    command = ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "uvicorn", *target, "--port", str(port)]
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, f"{url}/predict", payload, log)
        for _ in range(300):  # warm-up
            post(f"{url}/predict", payload)
        yield url, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status), response.read()


def wait_until_answering(server: subprocess.Popen[bytes], url: str, payload: bytes, log: Any) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            sys.exit(f"the server exited:\n{log.read().decode()[-3000:]}")
        with contextlib.suppress(OSError):
            if post(url, payload)[0] == 200:
                return
        time.sleep(0.3)
    sys.exit(f"{url} did not answer within 120 s")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def wrk(url: str, body: bytes, connections: int, seconds: int, pid: int | None = None) -> Load:
    """One wrk run on CPU 1: requests per second, p50 and p99 latency, non-2xx answers, and (given the
    server's `pid`) its CPU time per request: on a shared box, the figure other work disturbs least."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [==[{body.decode()}]==]\n"
        )
    try:
        command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        before = cpu_ticks([pid]) if pid else 0
        result = subprocess.run([*command, "-s", script.name, url], capture_output=True, text=True, check=False)
        ticks = cpu_ticks([pid]) - before if pid else 0
    finally:
        os.unlink(script.name)
    load_ = parse_wrk(result.stdout)
    answered = re.search(r"(\d+) requests in", result.stdout)
    if pid and answered and int(answered.group(1)):
        load_ = dataclasses.replace(load_, cpu_us=ticks / os.sysconf("SC_CLK_TCK") * 1e6 / int(answered.group(1)))
    return load_


def parse_wrk(text: str) -> Load:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return Load(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=latency(text, "50%"),
        p99_ms=latency(text, "99%"),
        errors=int(errors.group(1)) if errors else 0,
    )


def latency(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return float(match.group(1)) * scale


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")  # printed as nan: the other side answered nothing


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        "| model | path | c | system | req/s | p50 ms | p99 ms | worst p99 ms | x floor "
        "| CPU µs per request | CPU x floor | generated / hand-written | generated / seed snippet |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        case = row["case"]
        for c in (8, 64):
            floor, gen = row[f"floor_c{c}"], row[f"generated_c{c}"]
            for side in SYSTEMS:
                load_ = row[f"{side}_c{c}"]
                to_floor = ratio(floor.rps, load_.rps)
                errors = f" ({load_.errors} non-2xx)" if load_.errors else ""
                gains = ""
                if side == "generated":
                    hand, seed = row[f"handwritten_c{c}"].rps, row[f"seed_c{c}"].rps
                    gains = f"{ratio(gen.rps, hand):.1f}x | {ratio(gen.rps, seed):.1f}x"
                else:
                    gains = " | "
                print(
                    f"| {TITLES[case.key]} | {case.path} | {c} | {SHOWN[side]} | {load_.rps:,.0f}{errors} "
                    f"| {load_.p50_ms:.2f} | {load_.p99_ms:.2f} | {row[f'{side}_c{c}_worst_p99']:.2f} "
                    f"| {to_floor:.2f} | {load_.cpu_us:.0f} | {ratio(load_.cpu_us, floor.cpu_us):.2f} | {gains} |"
                )
    print()
    print(
        "| model | RSS after warm-up, MB: generated / hand-written / seed / floor "
        "| generated /predict/batch cost per row |"
    )
    print("| --- | --- | --- |")
    for row in rows:
        case, single = row["case"], 1e6 / row["generated_c8"].rps if row["generated_c8"].rps else float("nan")
        rss = " / ".join(f"{row[f'{side}_rss']:.0f}" for side in SYSTEMS)
        print(
            f"| {TITLES[case.key]} | {rss} "
            f"| {row['batch_row_us']:.1f} µs per row ({BATCH_ROWS}-row batches) vs {single:.0f} µs per single request |"
        )


if __name__ == "__main__":
    main()

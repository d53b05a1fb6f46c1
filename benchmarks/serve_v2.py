"""The Open Inference Protocol's transports beside `/predict`, on one generated service under load.

One row per transport, for the same single record: `POST /predict` (JSON), `POST /v2/models/{name}/infer`
with JSON data, the same with the binary tensor data extension (the JSON header, then the row's raw
little-endian bytes), and gRPC `ModelInfer` with `raw_input_contents`. The models and their
conversion are serve_vs_handwritten.py's (`--only lr` by default: the 30-feature breast-cancer
StandardScaler + LogisticRegression); the server is pinned to CPU 0 and the load to CPU 1, as there.

Every load generator is native, so that the figures are the server's: wrk for REST, and h2load
(nghttp2's HTTP/2 load generator) for gRPC. A unary gRPC call is an HTTP/2 POST to
`/inference.GRPCInferenceService/ModelInfer` (`content-type: application/grpc`, `te: trailers`)
whose body is the length-prefixed message (a 0 byte, 4 bytes of big-endian length, the serialized
`ModelInferRequest`): h2load sends those bytes as a file. Both keep `c` requests in flight on `c`
connections. h2load counts HTTP statuses only, and a gRPC error is an HTTP 200 with a non-zero
`grpc-status` trailer: so the same bytes are first sent once through grpcio, whose answer must be
`/predict`'s, and after every run the service's /metrics says how many ModelInfer calls it answered
with an error (shown as errors). A last row, `gRPC floor`, is grpcio's threaded server (as the service runs
it) answering a constant message with no work, on CPU 0 under the same load: what the gRPC library
alone costs.
Each figure is the median of `--rounds` runs, the transports measured in turn. Beside req/s, the
server's CPU time per answered request (user and system, all its threads, from /proc): on a box
where other work competes for the server's core, req/s moves with that work and this does not, so
its ratio (/predict's CPU per request over the transport's) is the rate the transport would reach,
against /predict, on a core of its own.

Needs wrk and h2load (Debian: `apt-get install wrk nghttp2-client`) and taskset (util-linux).

    python benchmarks/serve_v2.py [--seconds 10] [--rounds 3] [--work DIR] [--only lr,mixed]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_vs_handwritten as base  # noqa: E402 - the sibling benchmark's conversion, servers and wrk

TRANSPORTS = ("/predict", "v2 REST JSON", "v2 REST binary", "gRPC raw", "gRPC floor")
# serve_vs_handwritten.py's uvicorn command line (access log off), on asyncio's loop as the generated image runs it.
FLAGS = [*base.UVICORN_FLAGS, "--loop", "asyncio"]
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
GRPC_THREADS = 4  # the generated service's gRPC threads (v2_grpc.THREADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per figure (the median is shown)")
    parser.add_argument("--work", type=Path, help="folder for the converted services (reused when present)")
    parser.add_argument("--only", default="lr", help="comma-separated subset of lr, rf, mixed, mixed-sklearn")
    parser.add_argument("--grpc-floor", nargs=2, metavar=("ADDRESS", "ANSWER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grpc_floor:
        grpc_floor(args.grpc_floor[0], Path(args.grpc_floor[1]).read_bytes())
        return
    missing = [tool for tool in ("wrk", "h2load", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{', '.join(missing)} not found: `apt-get install wrk nghttp2-client` (taskset is util-linux).")
    work = args.work or Path(tempfile.mkdtemp(prefix="nb2prod-bench-v2-"))
    print(
        f"machine: {base.machine()}; server on CPU {base.SERVER_CPU}, load on CPU {base.LOAD_CPU}; "
        f"median of {args.rounds} alternating {args.seconds} s runs; load average {base.load()}"
    )
    print(f"uvicorn {' '.join(FLAGS)}; REST load: wrk -t1 -cC; gRPC load: h2load -t1 -cC -m1")
    print("| model | transport | connections | req/s | × /predict | p50 | p99 | server CPU / request | × /predict |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key in [k.strip() for k in args.only.split(",") if k.strip()]:
        case = base.prepare(key, work)
        results, cpu = measure(case, work, args.seconds, args.rounds)
        for connections, loads in results.items():
            reference, reference_cpu = loads["/predict"].rps, cpu[connections]["/predict"]
            for transport, load in loads.items():
                ratio = load.rps / reference if reference else float("nan")
                used = cpu[connections][transport]
                print(
                    f"| {key} | {transport} | {connections} | {load.rps:,.0f} | {ratio:.2f} | "
                    f"{load.p50_ms:.1f} ms | {load.p99_ms:.1f} ms | {used * 1e6:.0f} µs | {reference_cpu / used:.2f} |"
                    + (f" ({load.errors} errors)" if load.errors else "")
                )
    print(f"load average after: {base.load()}")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system, all threads) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    case: base.Case, work: Path, seconds: int, rounds: int
) -> tuple[dict[int, dict[str, base.Load]], dict[int, dict[str, float]]]:
    grpc_port = base.free_port()
    env = {"GRPC_PORT": str(grpc_port), "GRPC_HOST": "127.0.0.1"}
    target = [f"{case.package}.app:app", "--app-dir", str(case.out / "src"), *FLAGS]
    results: dict[int, dict[str, base.Load]] = {}
    # The server's CPU time per answered request: unlike req/s, other work on the box barely moves it.
    cpu_per_request: dict[int, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        url, pid = stack.enter_context(base.serve(target, env, case.payload))
        name = json.loads(urllib.request.urlopen(f"{url}/metadata", timeout=10).read())["name"]
        bodies = request_bodies(case, work, name)
        answer = check_grpc(f"127.0.0.1:{grpc_port}", bodies["grpc_message"], url, case.payload)
        floor_port = base.free_port()
        floor_pid = stack.enter_context(serve_grpc_floor(f"127.0.0.1:{floor_port}", answer, work))
        pids = [pid, floor_pid]
        runs = {
            "/predict": lambda c: base.wrk(f"{url}/predict", case.payload, c, seconds),
            "v2 REST JSON": lambda c: wrk_file(f"{url}/v2/models/{name}/infer", bodies["json"], {}, c, seconds),
            "v2 REST binary": lambda c: wrk_file(
                f"{url}/v2/models/{name}/infer", bodies["binary"], bodies["binary_headers"], c, seconds
            ),
            "gRPC raw": lambda c: grpc_errors_counted(
                url, lambda: h2load(f"http://127.0.0.1:{grpc_port}{MODEL_INFER}", bodies["grpc"], c, seconds)
            ),
            "gRPC floor": lambda c: h2load(f"http://127.0.0.1:{floor_port}{MODEL_INFER}", bodies["grpc"], c, seconds),
        }
        for connections in (8, 64):
            collected: dict[str, list[base.Load]] = {transport: [] for transport in runs}
            cpu: dict[str, list[float]] = {transport: [] for transport in runs}
            for _ in range(rounds):
                for transport, run in runs.items():
                    base.settle(pids)
                    server = floor_pid if transport == "gRPC floor" else pid
                    began = cpu_seconds(server)
                    load = run(connections)
                    collected[transport].append(load)
                    cpu[transport].append((cpu_seconds(server) - began) / max(load.rps * seconds, 1))
            results[connections] = {transport: base.median_load(loads) for transport, loads in collected.items()}
            cpu_per_request[connections] = {transport: statistics.median(taken) for transport, taken in cpu.items()}
    print(f"  {case.key}: done", file=sys.stderr)
    return results, cpu_per_request


def request_bodies(case: base.Case, work: Path, name: str) -> dict[str, Any]:
    """The record as a v2 JSON body, a binary body (and its header), and a gRPC ModelInferRequest
    (the message, and h2load's body: the message length-prefixed)."""
    from tritonclient.grpc import service_pb2

    record = json.loads(case.payload)
    manifest = json.loads(next(case.out.glob("src/*/artifacts/manifest.json")).read_text())
    features = [f["name"] for f in manifest["input_schema"]["features"]]
    if case.kind == "array":
        columns = [("input-0", [1, len(features)], "FP64", record["features"])]
    else:
        columns = []
        for feature in manifest["input_schema"]["features"]:
            value = record.get(feature["name"])
            datatype = "BOOL" if isinstance(value, bool) else "INT64" if isinstance(value, int) else "FP64"
            datatype = "BYTES" if isinstance(value, str) else datatype
            columns.append((feature["name"], [1], datatype, [value]))
    json_body = {"inputs": [{"name": n, "shape": s, "datatype": d, "data": v} for n, s, d, v in columns]}
    raw = [encode(values, datatype) for _, _, datatype, values in columns]
    header = {
        "inputs": [
            {"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": len(r)}}
            for (n, s, d, _), r in zip(columns, raw, strict=True)
        ],
        "parameters": {"binary_data_output": True},
    }
    header_bytes = json.dumps(header).encode()
    request = service_pb2.ModelInferRequest(model_name=name)
    for column_name, shape, datatype, _ in columns:
        request.inputs.add(name=column_name, shape=shape, datatype=datatype)
    request.raw_input_contents.extend(raw)
    message = request.SerializeToString()
    folder = work / f"{case.key}-v2-bodies"
    folder.mkdir(exist_ok=True)
    paths = {"json": folder / "infer.json", "binary": folder / "infer.bin", "grpc": folder / "grpc-infer.bin"}
    paths["json"].write_bytes(json.dumps(json_body).encode())
    paths["binary"].write_bytes(header_bytes + b"".join(raw))
    paths["grpc"].write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
    return {
        **paths,
        "binary_headers": {"Inference-Header-Content-Length": str(len(header_bytes))},
        "grpc_message": message,
    }


def encode(values: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return struct.pack("<" + {"FP64": "d", "INT64": "q", "BOOL": "?"}[datatype] * len(values), *values)


def check_grpc(address: str, message: bytes, url: str, payload: bytes) -> bytes:
    """Send h2load's message once through grpcio: the call must succeed (grpc-status 0) with
    /predict's answer for the record. Returns the serialized answer (the floor server's)."""
    import grpc
    import numpy as np
    from tritonclient.grpc import service_pb2

    with grpc.insecure_channel(address) as channel:
        answer = channel.unary_unary(MODEL_INFER)(message, timeout=10)  # raises unless grpc-status is 0
    response = service_pb2.ModelInferResponse.FromString(answer)
    outputs = {o.name: (o, raw) for o, raw in zip(response.outputs, response.raw_output_contents, strict=True)}
    expected = json.loads(base.post(f"{url}/predict", payload)[1])
    label, raw_label = outputs["predict"]
    got = np.frombuffer(raw_label, dtype={"INT64": "<i8", "FP64": "<f8"}.get(label.datatype, "<i8"))[0].item()
    if got != expected["prediction"]:
        sys.exit(f"gRPC ModelInfer answered {got!r}, /predict {expected['prediction']!r}")
    if "predict_proba" in outputs and expected.get("probabilities"):
        probabilities = np.frombuffer(outputs["predict_proba"][1], dtype="<f8").tolist()
        if probabilities != list(expected["probabilities"].values()):
            sys.exit(f"gRPC predict_proba {probabilities}, /predict {expected['probabilities']}")
    return answer


def h2load(url: str, body: Path, connections: int, seconds: int) -> base.Load:
    """One h2load run on CPU 1 (gRPC unary calls of `body`): req/s, p50/p99 from its per-request
    log, and every answer that is not an HTTP 200 or not a finished request as an error."""
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        command = ["taskset", "-c", base.LOAD_CPU, "h2load", "-t1", f"-c{connections}", "-m1", f"-D{seconds}"]
        command += [*GRPC_HEADERS, "-d", str(body), f"--log-file={log.name}", url]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        durations = [int(line.split()[2]) / 1e3 for line in Path(log.name).read_text().splitlines() if line.strip()]
    rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", result.stdout)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", result.stdout)
    statuses = re.search(r"status codes: (\d+) 2xx", result.stdout)
    if not (rps and done and statuses and len(durations) >= 2):
        sys.exit(f"h2load gave no figures:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    cuts = statistics.quantiles(durations, n=100)
    errors = int(done.group(1)) - int(statuses.group(1))
    return base.Load(rps=float(rps.group(1)), p50_ms=cuts[49], p99_ms=cuts[98], errors=errors)


def grpc_errors_counted(url: str, run: Any) -> base.Load:
    """`run()`, with the ModelInfer calls the service answered with a gRPC error meanwhile (its
    /metrics: any status but 200) added to the load's errors."""
    before = grpc_answers(url)
    load = run()
    time.sleep(0.5)  # calls h2load gave up on at the end still finish
    after = grpc_answers(url)
    failed = sum(count - before.get(status, 0) for status, count in after.items() if status != "200")
    return base.Load(rps=load.rps, p50_ms=load.p50_ms, p99_ms=load.p99_ms, errors=load.errors + int(failed))


def grpc_answers(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    pattern = rf'^nb2prod_requests_total\{{endpoint="{re.escape(MODEL_INFER)}",status="(\d+)"\}} ([\d.e+]+)$'
    return {status: float(count) for status, count in re.findall(pattern, text, re.M)}


@contextlib.contextmanager
def serve_grpc_floor(address: str, answer: bytes, work: Path) -> Iterator[int]:
    """This script's `grpc_floor` on CPU 0; yields its pid once it answers."""
    import grpc

    answer_file = work / "grpc-floor-answer.bin"
    answer_file.write_bytes(answer)
    command = ["taskset", "-c", base.SERVER_CPU, sys.executable, __file__, "--grpc-floor", address, str(answer_file)]
    server = subprocess.Popen(command)
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        yield server.pid
    finally:
        server.terminate()
        server.wait(timeout=20)


def grpc_floor(address: str, answer: bytes) -> None:
    """grpcio's threaded server, with the service's number of threads, answering every ModelInfer
    with `answer` and doing nothing else."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    def infer(request: bytes, context: Any) -> bytes:
        return answer

    server = grpc.server(ThreadPoolExecutor(max_workers=GRPC_THREADS), options=[("grpc.so_reuseport", 0)])
    handler = grpc.unary_unary_rpc_method_handler(infer)
    service = grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"ModelInfer": handler})
    server.add_generic_rpc_handlers((service,))
    server.add_insecure_port(address)
    server.start()
    server.wait_for_termination()


def wrk_file(url: str, body: Path, headers: dict[str, str], connections: int, seconds: int) -> base.Load:
    """wrk on CPU 1 posting the bytes of `body` (read by the script: they need not be text)."""
    lines = ['wrk.method = "POST"']
    lines += [f'wrk.headers["{key}"] = "{value}"' for key, value in headers.items()]
    lines += [f'local f = io.open("{body}", "rb")', 'wrk.body = f:read("*a")', "f:close()"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        command = ["taskset", "-c", base.LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        result = subprocess.run([*command, "-s", script.name, url], capture_output=True, text=True, check=False)
    finally:
        os.unlink(script.name)
    return base.parse_wrk(result.stdout)


if __name__ == "__main__":
    main()

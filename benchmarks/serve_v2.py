"""The Open Inference Protocol's transports beside `/predict`, on one generated service under load.

One row per transport, for the same single record: `POST /predict` (JSON), `POST /v2/models/{name}/infer`
with JSON data, the same with the binary tensor data extension (the JSON header, then the row's raw
little-endian bytes), and gRPC `ModelInfer` with `raw_input_contents`. The models and their
conversion are serve_vs_handwritten.py's (`--only lr` by default: the 30-feature breast-cancer
StandardScaler + LogisticRegression); the server is pinned to CPU 0 and the load to CPU 1, as there.
REST load comes from wrk. gRPC load comes from a Python grpc.aio client (`--connections` calls kept
in flight on one channel, Triton's generated stubs); no gRPC load generator such as ghz is
installed here. Each figure is the median of `--rounds` runs, the transports measured in turn.

    python benchmarks/serve_v2.py [--seconds 10] [--rounds 3] [--work DIR] [--only lr,mixed]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_vs_handwritten as base  # noqa: E402 - the sibling benchmark's conversion, servers and wrk

TRANSPORTS = ("/predict", "v2 REST JSON", "v2 REST binary", "gRPC raw")
# serve_vs_handwritten.py's uvicorn command line (access log off), on asyncio's loop as the generated image runs it.
FLAGS = [*base.UVICORN_FLAGS, "--loop", "asyncio"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per figure (the median is shown)")
    parser.add_argument("--work", type=Path, help="folder for the converted services (reused when present)")
    parser.add_argument("--only", default="lr", help="comma-separated subset of lr, rf, mixed, mixed-sklearn")
    parser.add_argument(
        "--grpc-load", nargs=4, metavar=("ADDRESS", "CONNECTIONS", "SECONDS", "REQUEST"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.grpc_load:
        address, connections, seconds, request = args.grpc_load
        print(json.dumps(asyncio.run(grpc_load(address, int(connections), float(seconds), Path(request)))))
        return
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("wrk or taskset not found: install wrk with `apt-get install wrk` (taskset is util-linux).")
    work = args.work or Path(tempfile.mkdtemp(prefix="nb2prod-bench-v2-"))
    print(
        f"machine: {base.machine()}; server on CPU {base.SERVER_CPU}, load on CPU {base.LOAD_CPU}; "
        f"median of {args.rounds} alternating {args.seconds} s runs; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"uvicorn {' '.join(FLAGS)}")
    print("| model | transport | connections | req/s | × /predict | p50 | p99 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key in [k.strip() for k in args.only.split(",") if k.strip()]:
        case = base.prepare(key, work)
        for connections, loads in measure(case, work, args.seconds, args.rounds).items():
            reference = loads["/predict"].rps
            for transport, load in loads.items():
                ratio = load.rps / reference if reference else float("nan")
                print(
                    f"| {key} | {transport} | {connections} | {load.rps:,.0f} | {ratio:.2f} | "
                    f"{load.p50_ms:.1f} ms | {load.p99_ms:.1f} ms |"
                    + (f" ({load.errors} errors)" if load.errors else "")
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def measure(case: base.Case, work: Path, seconds: int, rounds: int) -> dict[int, dict[str, base.Load]]:
    grpc_port = base.free_port()
    env = {"GRPC_PORT": str(grpc_port), "GRPC_HOST": "127.0.0.1"}
    target = [f"{case.package}.app:app", "--app-dir", str(case.out / "src"), *FLAGS]
    bodies = request_bodies(case, work)
    results: dict[int, dict[str, base.Load]] = {}
    with base.serve(target, env, case.payload) as (url, pid):
        name = json.loads(urllib.request.urlopen(f"{url}/metadata", timeout=10).read())["name"]
        runs = {
            "/predict": lambda c: base.wrk(f"{url}/predict", case.payload, c, seconds),
            "v2 REST JSON": lambda c: wrk_file(f"{url}/v2/models/{name}/infer", bodies["json"], {}, c, seconds),
            "v2 REST binary": lambda c: wrk_file(
                f"{url}/v2/models/{name}/infer", bodies["binary"], bodies["binary_headers"], c, seconds
            ),
            "gRPC raw": lambda c: grpc_run(f"127.0.0.1:{grpc_port}", c, seconds, bodies["grpc"], name),
        }
        for connections in (8, 64):
            collected: dict[str, list[base.Load]] = {transport: [] for transport in runs}
            for _ in range(rounds):
                for transport, run in runs.items():
                    base.settle([pid])
                    collected[transport].append(run(connections))
            results[connections] = {transport: base.median_load(loads) for transport, loads in collected.items()}
    print(f"  {case.key}: done", file=sys.stderr)
    return results


def request_bodies(case: base.Case, work: Path) -> dict[str, Any]:
    """The record as a v2 JSON body, a binary body (and its header), and a gRPC request's fields."""
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
    folder = work / f"{case.key}-v2-bodies"
    folder.mkdir(exist_ok=True)
    paths = {"json": folder / "infer.json", "binary": folder / "infer.bin", "grpc": folder / "grpc.json"}
    paths["json"].write_bytes(json.dumps(json_body).encode())
    paths["binary"].write_bytes(header_bytes + b"".join(raw))
    grpc_request = {"inputs": [[n, s, d] for n, s, d, _ in columns], "raw": [r.hex() for r in raw]}
    paths["grpc"].write_text(json.dumps(grpc_request))
    return {**paths, "binary_headers": {"Inference-Header-Content-Length": str(len(header_bytes))}}


def encode(values: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return struct.pack("<" + {"FP64": "d", "INT64": "q", "BOOL": "?"}[datatype] * len(values), *values)


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


def grpc_run(address: str, connections: int, seconds: int, request: Path, name: str) -> base.Load:
    """This script's gRPC load (`grpc_load`) in a process of its own on CPU 1."""
    command = ["taskset", "-c", base.LOAD_CPU, sys.executable, __file__, "--grpc-load", address]
    command += [str(connections), str(seconds), str(request)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "MODEL": name})
    if result.returncode != 0:
        sys.exit(f"the gRPC load failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout)
    return base.Load(rps=figures["rps"], p50_ms=figures["p50_ms"], p99_ms=figures["p99_ms"], errors=figures["errors"])


async def grpc_load(address: str, connections: int, seconds: float, request_file: Path) -> dict[str, float]:
    """`connections` ModelInfer calls kept in flight for `seconds`: req/s, p50 and p99 latency, errors."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    spec = json.loads(request_file.read_text())
    request = service_pb2.ModelInferRequest(model_name=os.environ["MODEL"])
    for name, shape, datatype in spec["inputs"]:
        request.inputs.add(name=name, shape=shape, datatype=datatype)
    request.raw_input_contents.extend(bytes.fromhex(raw) for raw in spec["raw"])
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        for _ in range(200):  # warm-up
            await stub.ModelInfer(request)
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal errors
            while (began := time.perf_counter()) < deadline:
                try:
                    await stub.ModelInfer(request)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50_ms": cuts[49] * 1e3, "p99_ms": cuts[98] * 1e3, "errors": errors}


if __name__ == "__main__":
    main()

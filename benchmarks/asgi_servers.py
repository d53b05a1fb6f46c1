"""The ASGI servers that exist, serving the floor and the generated LR service on the serving benchmark's harness.

Converts the breast-cancer LogisticRegression example once (`serve_vs_handwritten.prepare("lr", ...)`;
`--work DIR` reuses it), then starts, under every server, two apps: the floor
(`benchmarks/floor_app.py`, answering the generated service's own answer as a constant) and the
generated service (`<package>.app:app`, each process with its own free `GRPC_PORT`). Every server
runs one worker with its access log off, pinned to CPU 0, wrk on CPU 1; all are up at once and
measured in alternation (`--rounds` runs of `--seconds` each, medians), as in
`serve_vs_handwritten.py`, whose functions this benchmark imports. For each (server, app), at 8 and
64 connections: req/s, p50, p99, the CPU time per request of the server's whole process tree
(granian and hypercorn run their worker as a child process) and the service's ratio to the floor
under the same server, plus each figure against today's setting (uvicorn, httptools, asyncio).

Then the graceful drain, for the generated service under each server: wrk at 64 connections, each
request tagged with its own `X-Request-ID` (the service echoes it), SIGTERM to the server's process
after 2 s; reported: whether every request sent before the signal was answered 2xx, what happened to
those sent after it (2xx, other answers, never answered) and wrk's socket errors, whether `GET /ready`
answered 503 during the drain (polled every 20 ms), and how long the server took to exit.

A benchmark that prints figures, never a test. Needs wrk (`apt-get install wrk`, built with LuaJIT),
taskset, and the servers: `pip install -e '.[bench]'` (uvloop, hypercorn, granian).

    python benchmarks/asgi_servers.py [--seconds 5] [--rounds 3] [--work DIR] [--servers NAME,NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_vs_handwritten as base  # noqa: E402 - the serving benchmark's conversion, wrk and /proc readings

BENCHMARKS = Path(__file__).resolve().parent
APPS = ("floor", "generated")
TODAY = "uvicorn-asyncio"  # the generated Dockerfile's server: the reference every other one is compared with
SIGNAL_AFTER = 2.0  # seconds of load before SIGTERM
DRAIN_RUN = 12  # seconds wrk runs in the drain test (the service drains for 5 s, then settles, then stops)


@dataclass(frozen=True)
class Server:
    name: str
    module: str  # what `python -m` runs; also the package that must be installed
    needs: tuple[str, ...]  # other packages it needs (the event loop)
    flags: tuple[str, ...]  # everything but the app and the port
    build: Callable[[Server, str, int], list[str]]

    def command(self, app: str, port: int) -> list[str]:
        """The server's command line, pinned to the server CPU."""
        return ["taskset", "-c", base.SERVER_CPU, sys.executable, "-m", self.module, *self.build(self, app, port)]

    def shown(self) -> str:
        return " ".join([self.module, "APP", *self.flags])


def uvicorn_args(server: Server, app: str, port: int) -> list[str]:
    return [app, "--host", "127.0.0.1", "--port", str(port), *server.flags]


def hypercorn_args(server: Server, app: str, port: int) -> list[str]:
    return [app, "--bind", f"127.0.0.1:{port}", *server.flags]


def granian_args(server: Server, app: str, port: int) -> list[str]:
    return [app, "--host", "127.0.0.1", "--port", str(port), *server.flags]


UVICORN = ("--workers", "1", "--http", "httptools", "--log-level", "warning", "--no-access-log")
# hypercorn writes no access log unless given --access-logfile; --workers 1 runs one worker process.
HYPERCORN = ("--workers", "1", "--log-level", "warning")
GRANIAN = ("--interface", "asgi", "--workers", "1", "--runtime-threads", "1", "--log-level", "warning")
GRANIAN_QUIET = ("--no-access-log",)
SERVERS = {
    server.name: server
    for server in (
        Server("uvicorn-asyncio", "uvicorn", ("httptools",), (*UVICORN, "--loop", "asyncio"), uvicorn_args),
        Server("uvicorn-uvloop", "uvicorn", ("httptools", "uvloop"), (*UVICORN, "--loop", "uvloop"), uvicorn_args),
        Server("hypercorn-asyncio", "hypercorn", (), (*HYPERCORN, "--worker-class", "asyncio"), hypercorn_args),
        Server("hypercorn-uvloop", "hypercorn", ("uvloop",), (*HYPERCORN, "--worker-class", "uvloop"), hypercorn_args),
        Server("granian-asyncio", "granian", (), (*GRANIAN, "--loop", "asyncio", *GRANIAN_QUIET), granian_args),
        Server("granian-uvloop", "granian", ("uvloop",), (*GRANIAN, "--loop", "uvloop", *GRANIAN_QUIET), granian_args),
        Server(
            "granian-uvloop-rust",  # asyncio tasks replaced by granian's own, written in Rust
            "granian",
            ("uvloop",),
            (*GRANIAN, "--loop", "uvloop", "--task-impl", "rust", *GRANIAN_QUIET),
            granian_args,
        ),
    )
}


@dataclass(frozen=True)
class Running:
    server: Server
    app: str  # "floor" or "generated"
    url: str
    process: subprocess.Popen[bytes]


@dataclass(frozen=True)
class Drain:
    sent_before: int  # requests written before SIGTERM
    before_2xx: int  # of those, answered 2xx
    before_other: int  # answered with another status
    before_lost: int  # never answered
    drain_2xx: int  # written after SIGTERM up to the last 2xx answer (while the server answered): 2xx
    drain_other: int
    drain_lost: int
    later: int  # written after the last 2xx answer (to a server that had stopped answering)
    last_2xx_s: float  # the last 2xx answer, seconds after SIGTERM
    socket_errors: str  # wrk's line: connect, read, write, timeout
    ready_503_s: float  # first 503 from GET /ready, seconds after SIGTERM (nan: never)
    ready_last_200_s: float  # last 200 from GET /ready after SIGTERM (nan: none)
    exit_s: float  # SIGTERM to the server's exit (nan: it did not exit within the bound)
    exit_code: int | None


def main() -> None:
    args = parse_args(sys.argv[1:])
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{' and '.join(missing)} not found: install wrk with `apt-get install wrk` (taskset is util-linux).")
    servers = chosen(args.servers)
    work = args.work or Path(tempfile.mkdtemp(prefix="nb2prod-asgi-"))
    print(
        f"machine: {base.machine()}; servers on CPU {base.SERVER_CPU}, wrk on CPU {base.LOAD_CPU}; "
        f"median of {args.rounds} alternating {args.seconds} s runs; load average {base.load()}"
    )
    for server in servers:
        print(f"  {server.name}: {server.shown()}  ({versions(server)})")
    case = base.prepare("lr", work)
    print(f"model: {base.TITLES['lr']}, {case.path} path; POST /predict, {len(case.payload)}-byte body")
    figures, drains = run(case, servers, args.seconds, args.rounds, drain=not args.no_drain)
    print_loads(servers, figures)
    print_drains(drains)
    print(f"\nload average after the run: {base.load()}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per figure (the median is shown)")
    parser.add_argument("--work", type=Path, help="folder for the converted service (reused when present)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated subset of {', '.join(SERVERS)}")
    parser.add_argument("--no-drain", action="store_true", help="skip the graceful-drain test")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.rounds < 1:
        parser.error("--seconds and --rounds must be at least 1")
    return args


def chosen(names: str) -> list[Server]:
    """The servers named (comma-separated), each checked to be installed, with its event loop."""
    servers = []
    for name in (part.strip() for part in names.split(",") if part.strip()):
        if name not in SERVERS:
            sys.exit(f"--servers: unknown server {name!r}; choose from {', '.join(SERVERS)}")
        server = SERVERS[name]
        absent = [pkg for pkg in (server.module, *server.needs) if importlib.util.find_spec(pkg) is None]
        if absent:
            sys.exit(f"--servers {name}: {', '.join(absent)} not installed (pip install -e '.[bench]')")
        servers.append(server)
    return servers


def versions(server: Server) -> str:
    from importlib.metadata import PackageNotFoundError, version

    shown = []
    for pkg in (server.module, *server.needs):
        with contextlib.suppress(PackageNotFoundError):
            shown.append(f"{pkg} {version(pkg)}")
    return ", ".join(shown)


def run(
    case: base.Case, servers: list[Server], seconds: int, rounds: int, drain: bool = True
) -> tuple[dict[tuple[str, str, int], base.Load], dict[str, Drain]]:
    model_file = next(case.out.glob("src/*/artifacts/model.joblib"))
    env = {"MODEL_PATH": str(model_file), "INPUT_KIND": case.kind}
    figures: dict[tuple[str, str, int], base.Load] = {}
    drains: dict[str, Drain] = {}
    with contextlib.ExitStack() as stack:
        running: list[Running] = []
        floor_body = ""
        for server in servers:
            generated = stack.enter_context(
                serve(server, "generated", f"{case.package}.app:app", case.out / "src", env, case.payload)
            )
            floor_body = floor_body or base.post(f"{generated.url}/predict", case.payload)[1].decode()
            floor = stack.enter_context(
                serve(server, "floor", "floor_app:app", BENCHMARKS, {**env, "FLOOR_BODY": floor_body}, case.payload)
            )
            running += [floor, generated]
        pids = [pid for each in running for pid in tree(each.process.pid)]
        for connections in (8, 64):
            runs: dict[tuple[str, str], list[base.Load]] = {(r.server.name, r.app): [] for r in running}
            for _ in range(rounds):
                for each in running:
                    base.settle(pids)
                    runs[each.server.name, each.app].append(
                        measured(f"{each.url}/predict", case.payload, connections, seconds, each.process.pid)
                    )
            for (name, app), loads in runs.items():
                figures[name, app, connections] = base.median_load(loads)
            print(f"  c={connections}: done", file=sys.stderr)
        if drain:
            for each in running:
                if each.app == "generated":
                    base.settle([pid for r in running if r.process.poll() is None for pid in tree(r.process.pid)])
                    drains[each.server.name] = drain_test(each, case.payload)
                    print(f"  drain under {each.server.name}: done", file=sys.stderr)
    return figures, drains


@contextlib.contextmanager
def serve(
    server: Server, app: str, target: str, app_dir: Path, env: dict[str, str], payload: bytes
) -> Iterator[Running]:
    """The app under the server on CPU 0; yields once it answers and has been warmed up."""
    port = base.free_port()
    # The app's folder on the path for every server alike (hypercorn and granian have no --app-dir).
    path = os.pathsep.join(filter(None, [str(app_dir), os.environ.get("PYTHONPATH", "")]))
    environment = {**os.environ, **env, "PYTHONPATH": path, "GRPC_PORT": str(base.free_port())}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(server.command(target, port), env=environment, stdout=log, stderr=log, cwd=app_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        base.wait_until_answering(process, f"{url}/predict", payload, log)
        for _ in range(300):  # warm-up
            base.post(f"{url}/predict", payload)
        yield Running(server, app, url, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


orphans: list[int] = []  # workers left behind by a server that exited without them (killed at the end)


def tree(pid: int) -> list[int]:
    """The process and all its descendants (granian's and hypercorn's workers are child processes)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
    return pids


def tree_ticks(pid: int) -> int:
    total = 0
    for each in tree(pid):
        with contextlib.suppress(OSError):
            total += base.cpu_ticks([each])
    return total


def measured(url: str, payload: bytes, connections: int, seconds: int, pid: int) -> base.Load:
    """One wrk run (serve_vs_handwritten's) with the CPU time per request of the server's whole process tree."""
    before, start = tree_ticks(pid), time.monotonic()
    load = base.wrk(url, payload, connections, seconds)
    ticks, elapsed = tree_ticks(pid) - before, time.monotonic() - start
    # wrk's req/s is its requests over its own run time, which is the `seconds` asked for.
    answered = load.rps * seconds
    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / answered if answered and elapsed else float("nan")
    return dataclasses.replace(load, cpu_us=cpu_us)


# Each request carries its own X-Request-ID (the service echoes it); when it was written and when,
# and how, it was answered are kept per id, and written to OUT when wrk is done. LuaJIT's FFI gives
# the wall clock that Python's time.time() reads.
DRAIN_LUA = """\
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } nb2prod_timespec;
int clock_gettime(int clk_id, nb2prod_timespec *tp);
]]
local clock = ffi.new("nb2prod_timespec")
local function now()
  ffi.C.clock_gettime(0, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end
local body = [==[BODY]==]
sent = {}
answers = {}
local n = 0
request = function()
  n = n + 1
  sent[n] = now()
  local headers = {["Content-Type"] = "application/json", ["X-Request-ID"] = "drain" .. n}
  return wrk.format("POST", "/predict", headers, body)
end
response = function(status, headers, _)
  local id = headers["x-request-id"] or headers["X-Request-ID"] or "none"
  answers[#answers + 1] = string.format("%s %d %.6f", id, status, now())
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local out = io.open("OUT", "w")
  for _, thread in ipairs(threads) do
    for i, t in ipairs(thread:get("sent")) do out:write(string.format("S drain%d %.6f\\n", i, t)) end
    for _, line in ipairs(thread:get("answers")) do out:write("R " .. line .. "\\n") end
  end
  out:close()
end
"""


def drain_test(running: Running, payload: bytes) -> Drain:
    """wrk at 64 connections on the generated service, SIGTERM to the server after SIGNAL_AFTER s."""
    process = running.process
    workers = [pid for pid in tree(process.pid) if pid != process.pid]
    with tempfile.TemporaryDirectory(prefix="nb2prod-drain-") as folder:
        script, out = Path(folder) / "drain.lua", Path(folder) / "events.txt"
        script.write_text(DRAIN_LUA.replace("BODY", payload.decode()).replace('"OUT"', f'"{out}"'))
        command = ["taskset", "-c", base.LOAD_CPU, "wrk", "-t1", "-c64", f"-d{DRAIN_RUN}s", "--latency"]
        load = subprocess.Popen(
            [*command, "-s", str(script), f"{running.url}/predict"], stdout=subprocess.PIPE, text=True
        )
        probe = ReadyProbe(f"{running.url}/ready")
        probe.start()
        time.sleep(SIGNAL_AFTER)
        signalled = time.time()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=DRAIN_RUN + 20)
            exit_s = time.time() - signalled
        except subprocess.TimeoutExpired:
            exit_s = float("nan")
        stdout, _ = load.communicate(timeout=DRAIN_RUN + 30)
        probe.stop()
        orphans.extend(pid for pid in workers if Path(f"/proc/{pid}").exists())
        events = out.read_text() if out.is_file() else ""
    sent, answers = parse_events(events)
    return summarize(sent, answers, signalled, stdout, probe.seen, exit_s, process.returncode)


class ReadyProbe(threading.Thread):
    """GET /ready every 20 ms until stopped: (wall time, status; 0 when nothing answered)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + DRAIN_RUN + 30
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=0.5) as answer:
                    status = int(answer.status)
            except urllib.error.HTTPError as error:
                status = error.code
            except (OSError, ValueError):
                status = 0
            self.seen.append((time.time(), status))
            self.stopping.wait(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def parse_events(text: str) -> tuple[dict[str, float], dict[str, tuple[int, float]]]:
    """The Lua script's lines: `S id time` (written) and `R id status time` (answered)."""
    sent: dict[str, float] = {}
    answers: dict[str, tuple[int, float]] = {}
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["S", "drain1"]:
            continue  # wrk calls `request` once before the run, to check what it returns: never sent
        if len(parts) == 3 and parts[0] == "S":
            sent[parts[1]] = float(parts[2])
        elif len(parts) == 4 and parts[0] == "R":
            answers[parts[1]] = (int(parts[2]), float(parts[3]))
    return sent, answers


def summarize(
    sent: dict[str, float],
    answers: dict[str, tuple[int, float]],
    signalled: float,
    wrk_out: str,
    ready: list[tuple[float, int]],
    exit_s: float,
    exit_code: int | None,
) -> Drain:
    ok_times = [at for status, at in answers.values() if 200 <= status < 300]
    last_ok = max(ok_times, default=signalled)
    # before SIGTERM; after it while the server still answered (up to its last 2xx: the drain);
    # after that, written to a server that had stopped (wrk's socket errors)
    counts = {"before": [0, 0, 0], "drain": [0, 0, 0], "later": [0, 0, 0]}  # 2xx, other status, unanswered
    for request_id, at in sent.items():
        side = "before" if at < signalled else "drain" if at <= last_ok else "later"
        status = answers.get(request_id, (0, 0.0))[0]
        counts[side][0 if 200 <= status < 300 else 1 if status else 2] += 1
    errors = re.search(r"Socket errors: (.+)", wrk_out)
    after = [(at - signalled, status) for at, status in ready if at >= signalled]
    first_503 = next((t for t, status in after if status == 503), float("nan"))
    last_200 = max((t for t, status in after if status == 200), default=float("nan"))
    return Drain(
        sent_before=sum(counts["before"]),
        before_2xx=counts["before"][0],
        before_other=counts["before"][1],
        before_lost=counts["before"][2],
        drain_2xx=counts["drain"][0],
        drain_other=counts["drain"][1],
        drain_lost=counts["drain"][2],
        later=sum(counts["later"]),
        last_2xx_s=last_ok - signalled if ok_times else float("nan"),
        socket_errors=errors.group(1).strip() if errors else "none",
        ready_503_s=first_503,
        ready_last_200_s=last_200,
        exit_s=exit_s,
        exit_code=exit_code,
    )


def print_loads(servers: list[Server], figures: dict[tuple[str, str, int], base.Load]) -> None:
    print()
    print(
        "| server | c | app | req/s | p50 ms | p99 ms | CPU µs per request | service / floor (req/s) "
        "| service / floor (CPU) | req/s / today's | CPU / today's |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for connections in (8, 64):
        for server in servers:
            floor = figures[server.name, "floor", connections]
            for app in APPS:
                load = figures[server.name, app, connections]
                today = figures.get((TODAY, app, connections))
                errors = f" ({load.errors} non-2xx)" if load.errors else ""
                to_floor = " | "
                if app == "generated":
                    to_floor = f"{base.ratio(floor.rps, load.rps):.2f} | {base.ratio(load.cpu_us, floor.cpu_us):.2f}"
                against = " | "
                if today:
                    against = f"{base.ratio(load.rps, today.rps):.2f} | {base.ratio(load.cpu_us, today.cpu_us):.2f}"
                print(
                    f"| {server.name} | {connections} | {app} | {load.rps:,.0f}{errors} | {load.p50_ms:.2f} "
                    f"| {load.p99_ms:.2f} | {load.cpu_us:.0f} | {to_floor} | {against} |"
                )


def print_drains(drains: dict[str, Drain]) -> None:
    if not drains:
        return
    print()
    print(
        f"Graceful drain of the generated service: wrk -c64 on /predict, SIGTERM to the server after {SIGNAL_AFTER:g} s"
    )
    print(
        "| server | sent before SIGTERM | of those 2xx / other / unanswered | sent after, to the last 2xx: "
        "2xx / other / unanswered | last 2xx at s | sent later | wrk socket errors "
        "| /ready 503 at s | last /ready 200 s | exit s (code) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, d in drains.items():
        print(
            f"| {name} | {d.sent_before:,} | {d.before_2xx:,} / {d.before_other} / {d.before_lost} "
            f"| {d.drain_2xx:,} / {d.drain_other} / {d.drain_lost} | {d.last_2xx_s:.2f} | {d.later:,} "
            f"| {d.socket_errors} "
            f"| {seconds(d.ready_503_s)} | {seconds(d.ready_last_200_s)} | {seconds(d.exit_s)} ({d.exit_code}) |"
        )


def seconds(value: float) -> str:
    return "never" if value != value else f"{value:.2f}"


if __name__ == "__main__":
    main()

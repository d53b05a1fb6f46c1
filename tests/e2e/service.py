"""Helpers for end-to-end tests: a fresh virtualenv, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def fresh_venv_with(project: Path, venv: Path) -> Path:
    """Create a new virtualenv and install `project[test]` into it; return its python."""
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", str(venv), "--python", sys.executable, "-q"], check=True, timeout=120)
    python = venv / "bin" / "python"
    result = subprocess.run(
        [*uv, "pip", "install", "--python", str(python), f"{project}[test]"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def grpc_on_loopback() -> dict[str, str]:
    """The environment that puts a service's gRPC server on a free loopback port, not on 8081 of every interface."""
    return {"GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(free_port())}


@contextlib.contextmanager
def running_service(python: Path, package: str, log: Path, ready_within: float = 90.0) -> Iterator[str]:
    """Start `uvicorn <package>.app:app` on a free loopback port; yield its base URL; stop it."""
    port = free_port()
    with log.open("w") as log_file:
        server = subprocess.Popen(
            # the loop the generated Dockerfile names
            [
                str(python),
                "-m",
                "uvicorn",
                f"{package}.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "asyncio",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=str(log.parent),
            env={**os.environ, "DRAIN_SECONDS": "0", **grpc_on_loopback()},  # stop at once when the test is done
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(server, url, log, ready_within)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


@contextlib.contextmanager
def serving_here(
    project: Path, log: Path, *, env: dict[str, str] | None = None, switch_interval: float | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve a generated project with this environment's uvicorn on a free loopback port.

    Yields the base URL and the server process, which the test may signal; it is stopped after.
    `switch_interval` makes the server switch threads more often (sys.setswitchinterval), so that
    races between threads show up within a short, bounded test.
    """
    port = free_port()
    package = next((project / "src").glob("*/app.py")).parent.name
    setup = f"import sys; sys.setswitchinterval({switch_interval!r}); " if switch_interval else ""
    command = [sys.executable, "-c", f"{setup}import uvicorn.main; uvicorn.main.main()"]
    command += [f"{package}.app:app", "--app-dir", str(project / "src"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--loop", "asyncio"]  # as the generated Dockerfile runs it
    with log.open("w") as log_file:
        server = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **grpc_on_loopback(), **(env or {})},
            cwd=log.parent,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(server, url, log, 60)
            yield url, server
        finally:
            if server.poll() is None:
                server.kill()
            server.wait(timeout=30)


def _wait_ready(server: subprocess.Popen[bytes], url: str, log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the service exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"the service was not ready within {limit} s:\n{log.read_text()[-3000:]}")


def fuzz(url: str, max_examples: int = 40) -> subprocess.CompletedProcess[str]:
    """schemathesis on the service's own OpenAPI: generated requests, huge integers included, and
    no answer may be a 5xx. Bounded by `max_examples` per operation and a timeout."""
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json"]
    command += ["--checks", "not_a_server_error", "--max-examples", str(max_examples), "--seed", "1"]
    command += ["--workers", "1", "--request-timeout", "30", "--suppress-health-check", "all"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def golden_of(out: Path) -> dict:
    return json.loads((out / "tests" / "golden.json").read_text())


def run_notebook_here(notebook: Path, *, every_cell: bool = False) -> dict[str, Any]:
    """The notebook's cells that run (not `skip`; all of them with `every_cell`, as its author ran
    it), executed in this process beside its data files: their namespace, for comparing a service's
    answers with the notebook's own model."""
    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    namespace: dict[str, Any] = {}
    cwd = Path.cwd()
    os.chdir(notebook.parent)
    try:
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type != "code" or ("skip" in cell.metadata.get("tags", []) and not every_cell):
                continue
            source = "\n".join("" if line.lstrip().startswith("%") else line for line in cell.source.splitlines())
            exec(compile(source, str(notebook), "exec"), namespace)  # noqa: S102 - our fixture notebooks
    finally:
        os.chdir(cwd)
    return namespace


@contextlib.contextmanager
def generated_app(out: Path, package: str) -> Iterator[Any]:
    """A FastAPI TestClient on the generated project in `out`, imported from its `src` in this
    process (startup and shutdown run, as under uvicorn)."""
    import importlib

    from fastapi.testclient import TestClient

    src = str(out / "src")
    sys.path.insert(0, src)
    try:
        with TestClient(importlib.import_module(f"{package}.app").app) as client:
            yield client
    finally:
        sys.path.remove(src)

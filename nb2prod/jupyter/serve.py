"""Serve locally: a converted service as a managed subprocess of the Jupyter server.

One uvicorn process per output folder, on 127.0.0.1 and a free port, in the Python the server
runs (so the service's dependencies must be installed there; if some are not, nothing starts and
the answer says what to install). Each runs in its own session with `NB2PROD_SERVICE` in its
environment; "Stop" and the server's shutdown end it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from tornado.httpclient import AsyncHTTPClient

from nb2prod.errors import Nb2ProdError
from nb2prod.jupyter.paths import relative_to_root
from nb2prod.jupyter.procs import kill_tagged

SERVICE_ENV = "NB2PROD_SERVICE"
READY_TIMEOUT = 120.0


class ServeError(Nb2ProdError):
    """A service that cannot start here: not a converted folder, missing dependencies, or it exited."""

    exit_code = 2


@dataclass
class Service:
    output: Path
    folder: str  # relative to the server root
    package: str
    port: int
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.time)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.folder,
            "package": self.package,
            "port": self.port,
            "url": self.url,
            "docs": f"{self.url}/docs",
            "pid": self.process.pid,
            "running": self.process.returncode is None,
        }


def missing_requirements(output: Path) -> tuple[list[str], list[str]]:
    """The service's requirements not installed here, and those installed at another version."""
    try:
        project = tomllib.loads((output / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return [], []
    missing: list[str] = []
    other: list[str] = []
    for text in project.get("project", {}).get("dependencies", []):
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            other.append(f"{text} (installed: {version})")
    return missing, other


class ServiceManager:
    """The services started from this Jupyter server, by output folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._services: dict[Path, Service] = {}
        self._lock = asyncio.Lock()

    def running(self) -> list[dict[str, Any]]:
        return [service.to_json() for service in self._services.values() if service.process.returncode is None]

    async def start(self, output: Path) -> tuple[Service, bool, list[str]]:
        """The folder's running service, else a new one once it answers /ready; True when new."""
        async with self._lock:
            current = self._services.get(output)
            if current is not None and current.process.returncode is None:
                return current, False, []
            folder = relative_to_root(self.root, output)
            apps = sorted((output / "src").glob("*/app.py"))
            if not apps:
                raise ServeError(
                    f"{folder} has no src/<package>/app.py.", hint="Serve a folder written by a conversion."
                )
            missing, other = missing_requirements(output)
            if missing:
                quoted = " ".join(f"'{text}'" for text in missing)
                raise ServeError(
                    f"the service in {folder} needs packages the Jupyter server's Python does not have: "
                    + ", ".join(missing),
                    hint=f"Install them into {sys.executable} (pip install {quoted}), or serve it in its own "
                    f"environment: pip install ./{folder} && nb2prod serve {folder}.",
                )
            service = await self._launch(output, folder, apps[0].parent.name)
            self._services[output] = service
        return service, True, [f"installed at another version: {text}" for text in other]

    async def _launch(self, output: Path, folder: str, package: str) -> Service:
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            f"{package}.app:app",
            "--app-dir",
            str(output / "src"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "asyncio",
            cwd=output,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, SERVICE_ENV: str(output), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        service = Service(output, folder, package, port, process)
        service.reader = asyncio.create_task(_collect(service))
        try:
            await _wait_ready(service)
        except BaseException:
            await self._end(service)
            raise
        return service

    async def stop(self, output: Path) -> bool:
        """End the folder's service; False when none ran."""
        service = self._services.pop(output, None)
        if service is None or service.process.returncode is not None:
            return False
        await self._end(service)
        return True

    async def shutdown(self) -> None:
        for output in list(self._services):
            await self.stop(output)

    async def _end(self, service: Service) -> None:
        if service.process.returncode is None:
            try:
                os.killpg(service.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(service.process.wait(), timeout=10)
            except TimeoutError:
                kill_tagged(SERVICE_ENV, str(service.output), signal.SIGKILL)
                await service.process.wait()


async def _collect(service: Service) -> None:
    stream = service.process.stdout
    assert stream is not None
    async for raw in stream:
        service.log.append(raw.decode("utf-8", "replace").rstrip())


async def _wait_ready(service: Service) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    client = AsyncHTTPClient()
    while time.monotonic() < deadline:
        if service.process.returncode is not None:
            break
        try:
            answer = await client.fetch(f"{service.url}/ready", raise_error=False, request_timeout=5)
            if answer.code == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    await asyncio.sleep(0.2)  # let the log reader catch the last lines
    tail = "\n".join(list(service.log)[-15:])
    what = "exited" if service.process.returncode is not None else f"did not answer /ready in {READY_TIMEOUT:.0f}s"
    raise ServeError(
        f"the service in {service.folder} {what}.{f' Its log ends with:{chr(10)}{tail}' if tail else ''}",
        hint=f"Run `nb2prod serve {service.folder}` in a terminal to see everything it says.",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

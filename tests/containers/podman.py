"""Podman on a machine that reaches no image registry: a stand-in base image, the generated image, a container.

The commands are the ones the README gives (`--runtime runc`, `--network host` for the build,
`--pull=never`): `podman_problem` says why they cannot run here, when they cannot.
`stand_in_base.sh` beside this file builds the stand-in for python:3.11-slim from Debian's
packages, once: an image that already has the tag is kept.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

PODMAN = ("podman", "--runtime", "runc")
BASE = "docker.io/library/python:3.11-slim"
STAND_IN_BASE = Path(__file__).with_name("stand_in_base.sh")


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def podman_problem() -> str | None:
    """Why podman cannot build and run images here, or None when it can."""
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if shutil.which("mmdebstrap") is None and not image_exists(BASE):
        missing.append("mmdebstrap")
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install podman runc mmdebstrap)"
    info = subprocess.run([*PODMAN, "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        return f"`podman --runtime runc info` failed: {info.stderr.strip()[-500:]}"
    return None


def image_exists(tag: str) -> bool:
    if shutil.which("podman") is None:
        return False
    return (
        subprocess.run([*PODMAN, "image", "exists", tag], capture_output=True, timeout=60, check=False).returncode == 0
    )


def build_stand_in_base() -> None:
    """The stand-in for python:3.11-slim, unless an image has its tag already (about 2.5 minutes)."""
    result = subprocess.run(
        ["bash", str(STAND_IN_BASE), BASE], capture_output=True, text=True, timeout=1200, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def build(project: Path, tag: str) -> None:
    """The project's image from its own Dockerfile, as it is."""
    podman("build", "--network", "host", "--pull=never", "-t", tag, str(project), timeout=1800)


def image_size(tag: str) -> int:
    return int(podman("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip())


@contextlib.contextmanager
def container(tag: str, port: int, *options: str) -> Iterator[str]:
    """A container of `tag` run read-only, port 8000 published on 127.0.0.1:`port`; removed after."""
    name = podman("run", "-d", "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8000", *options, tag)
    container_id = name.stdout.strip()
    try:
        yield container_id
    finally:
        podman("rm", "-f", "-t", "0", container_id, check=False)


def seconds_to_ready(url: str, started: float, limit: float = 180) -> float:
    """Seconds from `started` (time.monotonic()) until GET /ready answers 200."""
    deadline = started + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{url}/ready did not answer 200 within {limit} s")

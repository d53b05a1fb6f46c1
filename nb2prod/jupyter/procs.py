"""Processes of jobs and services, found by a variable in their environment (children inherit it).

A runner starts its kernel in a session of its own, so its process group does not reach the
kernel; the environment does. Read from /proc (Linux); elsewhere only process groups are used.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tagged(name: str, value: str) -> list[int]:
    """The processes whose environment has `name=value`."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return [pid for pid in found if pid != os.getpid()]


def kill_tagged(name: str, value: str, sig: signal.Signals = signal.SIGTERM) -> int:
    """Send `sig` to every process tagged `name=value`; how many there were."""
    pids = tagged(name, value)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return len(pids)

"""Debian's Chromium for the browser tests: found at its path, installed with apt when we are root.

Never a browser download: Playwright drives /usr/bin/chromium by its executable path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "sudo apt-get update && sudo apt-get install -y chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def find_or_install_chromium() -> tuple[Path | None, str]:
    """Chromium's path, or None and why not (the skip message names the browser and its install command)."""
    if CHROMIUM.exists():
        return CHROMIUM, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, f"Debian's chromium is not installed at {CHROMIUM}; install it with: {INSTALL}"
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-1500:]
            return None, f"`{' '.join(command)}` failed, so {CHROMIUM} is missing (install: {INSTALL}):\n{tail}"
    if not CHROMIUM.exists():
        return None, f"apt installed chromium but {CHROMIUM} is missing; install it with: {INSTALL}"
    return CHROMIUM, ""

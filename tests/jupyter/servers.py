"""A real Jupyter server (JupyterLab, Notebook 7 or the bare server) on 127.0.0.1, for the tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TOKEN = "nb2prod-test-token"
START_TIMEOUT = 90.0
APPS = {"lab": "jupyterlab", "notebook": "notebook", "server": "jupyter_server"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class JupyterServer:
    """A started server: its URL, root folder, token, and the process to stop."""

    app: str
    root: Path
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the server; token-authenticated unless `headers` says otherwise."""
        headers = kwargs.pop("headers", {"Authorization": f"token {TOKEN}"})
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(app: str, root: Path, home: Path, extra_args: tuple[str, ...] = ()) -> JupyterServer:
    """Start `app` on a free port with token auth and every Jupyter folder under `home`."""
    root.mkdir(parents=True, exist_ok=True)
    env = _environment(home)
    port = free_port()
    args = [
        sys.executable,
        "-m",
        APPS[app],
        "--no-browser",
        f"--IdentityProvider.token={TOKEN}",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        *extra_args,
    ]
    if app == "lab":
        args += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log_path = home / f"{app}-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = JupyterServer(app, root, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_up(server)
    except BaseException:
        server.stop()
        raise
    return server


def _environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name, folder in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",  # nb2prod keeps its job history here
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
    }.items():
        (home / folder).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / folder)
    # No "fetch news?" toast: notifications in the browser tests are only ours.
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    return env


def _wait_until_up(server: JupyterServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.app} server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with server.api() as client:
                if client.get("/api/status").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{server.app} server did not answer within {START_TIMEOUT:.0f}s:\n{server.log_tail()}")

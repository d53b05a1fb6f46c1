"""`nb2prod serve OUT` serves a converted folder from this environment, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import free_port, golden_of

pytestmark = pytest.mark.slow


def test_serve_answers_the_golden_examples(tmp_path: Path) -> None:
    notebook = tmp_path / "ok_minimal.ipynb"
    shutil.copy(FIXTURES / "ok_minimal.ipynb", notebook)
    out = tmp_path / "out"
    assert run_cli("convert", notebook, "-o", out).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nb2prod", "serve", str(out), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DRAIN_SECONDS": "0"},  # stop at once when the test is done
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        assert server.poll() is None, "nb2prod serve exited"
        for example in golden_of(out)["examples"]:
            body = httpx.post(f"{url}/predict", json=example["input"], timeout=10).json()
            assert body["prediction"] == example["prediction"]
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_serve_refuses_a_folder_that_is_not_a_conversion(tmp_path: Path) -> None:
    result = run_cli("serve", tmp_path)
    assert result.returncode == 1
    assert "has no src/<package>/app.py" in result.stderr

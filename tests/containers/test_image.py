"""The generated image, built from its own Dockerfile and run as a deployment runs it.

One example (customers_mixed, on the compiled path) is converted, its image built with podman on a
stand-in python:3.11-slim (stand_in_base.sh: these machines reach no image registry), and run
read-only with a tmpfs /tmp, as the image's non-root user. Its golden answers come back over HTTP,
each request writes one JSON log line and nothing else, and `podman stop` ends it with exit code 0
within the drain and grace periods. Where podman cannot run, the test is skipped with the reason,
except in CI (CI=true), which installs podman (.ci/run) and so fails instead.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, ConvertExample
from tests.containers.podman import build, build_stand_in_base, container, podman, podman_problem, seconds_to_ready
from tests.e2e.service import free_port, golden_of
from tests.e2e.test_examples import assert_answer, assert_probabilities

pytestmark = pytest.mark.slow
RFC3339_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
USER_ID = "10001"


@pytest.fixture(scope="module")
def image(convert_example: ConvertExample) -> Any:
    problem = podman_problem()
    if problem is not None:
        message = f"CONTAINER TEST NOT RUN: podman cannot run here: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    out, converted = convert_example(EXAMPLES / "customers_mixed.ipynb")
    assert converted.returncode == 0, converted.stderr
    build_stand_in_base()
    tag = "localhost/nb2prod-test-customers-mixed:latest"
    build(out, tag)
    try:
        yield out, tag
    finally:
        podman("rmi", "-f", tag, check=False)


def test_the_image_serves_read_only_as_its_user_logs_one_line_a_request_and_stops_cleanly(
    image: tuple[Path, str],
) -> None:
    out, tag = image
    dockerfile = (out / "Dockerfile").read_text()
    in_flight = int(re.search(r'"--timeout-graceful-shutdown", "(\d+)"', dockerfile).group(1))  # type: ignore[union-attr]
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    drain = 2  # DRAIN_SECONDS; the image's default is longer
    golden = golden_of(out)["examples"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with container(tag, port, "-e", f"DRAIN_SECONDS={drain}") as name:
        seconds_to_ready(url, time.monotonic())
        assert podman("exec", name, "id", "-u").stdout.strip() == USER_ID
        sent: list[str] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for i, example in enumerate(golden):
                sent.append(f"golden-{i}")
                answer = http.post("/predict", json=example["input"], headers={"X-Request-ID": sent[-1]})
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert_answer(body["prediction"], example["prediction"])
                assert_probabilities(body.get("probabilities") or {}, example["probabilities"])
                assert body["model_version"] == manifest["version"]
            sent.append("golden-batch")
            batch = http.post(
                "/predict/batch", json={"records": [e["input"] for e in golden]}, headers={"X-Request-ID": sent[-1]}
            )
            assert batch.status_code == 200, batch.text
            for answer, example in zip(batch.json()["predictions"], golden, strict=True):
                assert_answer(answer, example["prediction"])

        stopped = podman("stop", "-t", str(drain + in_flight + 5), name, timeout=drain + in_flight + 60)
        assert stopped.returncode == 0
        state = podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert state == "0", f"the service exited with {state}, not by itself after SIGTERM"
        logs = podman("logs", name)

    lines = (logs.stdout + logs.stderr).splitlines()
    records = []
    for line in lines:
        assert line.startswith("{"), f"a log line that is not JSON: {line!r}"
        record = json.loads(line)
        assert RFC3339_MILLIS.fullmatch(record["time"]), record
        assert record["level"] in ("debug", "info", "warning", "error", "critical"), record
        records.append(record)
    requests = [r for r in records if "request_id" in r]
    for request_id in sent:
        assert [r["request_id"] for r in requests].count(request_id) == 1, request_id
    assert {(r["path"], r["status"]) for r in requests if r["request_id"] in sent} == {
        ("/predict", 200),
        ("/predict/batch", 200),
    }
    others = [r for r in records if "request_id" not in r]
    assert all("logger" in r and "message" in r for r in others), others
    assert not [r for r in others if "/predict" in r["message"] or "HTTP/1.1" in r["message"]], others
    messages = " | ".join(r["message"] for r in others)
    assert "Application startup complete" in messages and "Finished server process" in messages, messages

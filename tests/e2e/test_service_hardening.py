"""The generated service under load and faults, served by a real uvicorn on 127.0.0.1.

The services are rendered from stored captures with stand-in models (tests/stand_in.py), except
where the notebook's own model matters. Every load here is bounded in requests and time, talks
only to 127.0.0.1, and stops by itself; nothing asserts on timings.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from nb2prod.generate.render import MAX_BODY_BYTES
from tests.conftest import FIXTURES, run_cli
from tests.e2e.service import serving_here
from tests.stand_in import project_with_stand_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """customers_mixed's service with a stand-in ColumnTransformer pipeline, scored by scikit-learn."""
    return project_with_stand_in("customers_mixed", tmp_path_factory.mktemp("customers"))


@pytest.fixture(scope="module")
def customers_together(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, proved row-independent: concurrent single-record requests are scored together."""
    return project_with_stand_in("customers_mixed", tmp_path_factory.mktemp("together"), rows_independent=True)


def example_body(project: Path) -> bytes:
    manifest = json.loads(next(project.glob("src/*/artifacts/manifest.json")).read_text())
    return json.dumps(manifest["example"]).encode()


# --- HTTP/1.1 on a raw socket: what was sent, what came back ---------------------------------


def request_bytes(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes] | None:
    """One full HTTP answer from `sock`, or None when the connection ended before it was complete."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return int(lines[0].split()[1]), headers, body


@dataclass
class Outcome:
    at: float  # time.monotonic() when the request was written
    answered: bool
    status: int | None = None
    closing: bool = False  # the server asked to close the connection after this answer
    problem: str = ""
    written: bool = True  # the whole request went out (False: the connection failed while sending it)


@dataclass
class KeepAliveClient:
    """Requests one after another on a keep-alive connection (a new one when the server asks to
    close), recording for each request sent whether a full answer came back."""

    port: int
    request: bytes
    stop: threading.Event
    outcomes: list[Outcome] = field(default_factory=list)
    refused: int = 0
    think: float = 0.0  # seconds between an answer and the next request

    def run(self) -> None:
        sock: socket.socket | None = None
        deadline = time.monotonic() + 60  # bounded even if `stop` is never set
        while not self.stop.is_set() and time.monotonic() < deadline:
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                except OSError:
                    self.refused += 1  # nothing was sent: after the drain a server refuses, as it should
                    return
            outcome = self.one_request(sock)
            self.outcomes.append(outcome)
            if not outcome.answered or outcome.closing:
                sock.close()
                sock = None
            if self.think:
                time.sleep(self.think)
        if sock is not None:
            sock.close()

    def one_request(self, sock: socket.socket) -> Outcome:
        at = time.monotonic()
        try:
            sock.sendall(self.request)
        except OSError as err:
            return Outcome(at, answered=False, problem=f"sending: {type(err).__name__}: {err}", written=False)
        try:
            answer = read_answer(sock)
        except OSError as err:
            return Outcome(at, answered=False, problem=f"{type(err).__name__}: {err}")
        if answer is None:
            return Outcome(at, answered=False, problem="connection closed without an answer")
        status, headers, _ = answer
        return Outcome(at, answered=True, status=status, closing=headers.get("connection", "").lower() == "close")


def test_sigterm_under_keep_alive_load_loses_no_request(customers: Path, tmp_path: Path) -> None:
    drain = 3.0
    with serving_here(customers, tmp_path / "server.log", env={"DRAIN_SECONDS": str(drain)}) as (url, server):
        port = int(url.rsplit(":", 1)[1])
        stop = threading.Event()
        clients = [KeepAliveClient(port, request_bytes("/predict", example_body(customers)), stop) for _ in range(16)]
        threads = [threading.Thread(target=client.run) for client in clients]
        for thread in threads:
            thread.start()
        _wait_for(lambda: all(len(c.outcomes) >= 2 for c in clients), limit=30, what="the load starts")

        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        _wait_for(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 503, limit=1, what="/ready turns 503")
        time.sleep(1.0)  # the load goes on for a while after the signal, as behind a load balancer
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.wait(timeout=drain + 30)  # it stops by itself after the drain

    outcomes = [o for client in clients for o in client.outcomes]
    lost = [o for o in outcomes if not o.answered]
    assert not lost, f"{len(lost)} of {len(outcomes)} requests lost, e.g. {lost[0].problem}"
    assert {o.status for o in outcomes} == {200}
    after = [o for o in outcomes if o.at > signalled]
    assert len(after) >= len(clients), "the load did not go on after SIGTERM"
    assert not any(client.refused for client in clients)
    assert server.returncode in (0, -signal.SIGTERM)


SHUTDOWNS = 20


def test_no_written_request_is_lost_over_twenty_shutdowns_with_clients_that_keep_sending(
    customers: Path, tmp_path: Path
) -> None:
    """16 keep-alive clients, 3 ms between an answer and the next request, as behind a load balancer
    slow to see /ready turn 503: they keep sending through the drain and after it, on new
    connections too, until the server refuses to connect. Over 20 shutdowns, every request written
    out gets its answer (a connection refused, or one that fails before the request is out, is not
    a lost request: the client knows it was never sent)."""
    body = example_body(customers)
    lost: list[int] = []
    unsent: list[int] = []
    examples: list[str] = []
    for round_ in range(SHUTDOWNS):
        log = tmp_path / f"server-{round_}.log"
        with serving_here(customers, log, env={"DRAIN_SECONDS": "0.2"}) as (url, server):
            port = int(url.rsplit(":", 1)[1])
            stop = threading.Event()
            clients = [KeepAliveClient(port, request_bytes("/predict", body), stop, think=0.003) for _ in range(16)]
            threads = [threading.Thread(target=client.run) for client in clients]
            for thread in threads:
                thread.start()
            _wait_for(lambda c=clients: all(len(x.outcomes) >= 2 for x in c), limit=30, what="the load starts")
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)  # the clients go on until it has stopped and refuses them
            for thread in threads:
                thread.join(timeout=30)
            stop.set()
        outcomes = [o for client in clients for o in client.outcomes]
        missing = [o for o in outcomes if o.written and not o.answered]
        lost.append(len(missing))
        unsent.append(sum(not o.written for o in outcomes))
        examples += [o.problem for o in missing[:1]]
        assert server.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]
        assert all(c.refused for c in clients), "a client stopped before the server refused it"
    assert sum(lost) == 0, f"written requests lost per shutdown: {lost}, e.g. {examples}; failed sends {unsent}"


def _wait_for(condition: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), f"not within {limit} s: {what}"


def test_chunked_body_over_the_limit_is_413_and_reading_stops(customers: Path, tmp_path: Path) -> None:
    chunk = b"x" * 65536
    planned = 100 * MAX_BODY_BYTES  # 100 MiB if the server read it all
    with (
        serving_here(customers, tmp_path / "server.log") as (url, _),
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30) as sock,
    ):
        sock.sendall(b"POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n")
        sock.sendall(b"transfer-encoding: chunked\r\n\r\n")
        sent = 0
        try:
            while sent < planned:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection: it stopped reading
        sock.settimeout(30)
        answer = read_answer(sock)
    assert answer is not None and answer[0] == 413
    assert b"bytes" in answer[2]
    assert sent < planned, "the server read the whole 100 MiB body"


@pytest.mark.parametrize("service", ["customers", "customers_together"])
def test_concurrent_load_logs_no_warnings_and_answers_as_one_request_at_a_time(
    service: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    customers: Path = request.getfixturevalue(service)
    scoring = next(customers.glob("src/*/scoring.py")).read_text()
    assert ("def _coalesced" in scoring) == (service == "customers_together")
    log = tmp_path / "server.log"
    records = [{**json.loads(example_body(customers)), "age": age} for age in range(18, 82)]
    with serving_here(customers, log, switch_interval=1e-4) as (url, _), httpx.Client(base_url=url, timeout=60) as http:
        alone = [http.post("/predict", json=record).json()["prediction"] for record in records]
        answers: dict[int, object] = {}

        def post(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as own:
                for round_ in range(8):
                    index = (worker * 8 + round_) % len(records)
                    answers[worker * 8 + round_] = (
                        index,
                        own.post("/predict", json=records[index]).json()["prediction"],
                    )

        workers = [threading.Thread(target=post, args=(n,)) for n in range(32)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
    text = log.read_text()
    assert "Warning:" not in text and "WARNING" not in text, text[-3000:]
    assert len(answers) == 32 * 8
    assert all(prediction == alone[index] for index, prediction in answers.values())


def test_generated_tests_pass_for_a_classifier_without_predict_proba(tmp_path: Path) -> None:
    out = tmp_path / "svc"
    converted = run_cli("convert", FIXTURES / "svc_free_text.ipynb", "-o", out)
    assert converted.returncode == 0, converted.stderr
    manifest = json.loads(next(out.glob("src/*/artifacts/manifest.json")).read_text())
    assert "predict_proba" not in manifest["model"]["predict_methods"]
    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tests")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(out / "src")},
        check=False,
    )
    assert own_tests.returncode == 0, own_tests.stdout[-4000:]

"""benchmarks/asgi_servers.py builds its servers' command lines and reads its drain events as it says (never runs it)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("asgi_servers", BENCHMARKS / "asgi_servers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["asgi_servers"] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("asgi_servers", None)
        sys.path.remove(str(BENCHMARKS))


def test_arguments_default_to_every_server_and_refuse_nonsense(bench) -> None:
    args = bench.parse_args([])
    assert (args.seconds, args.rounds, args.no_drain) == (5, 3, False)
    assert args.servers.split(",") == list(bench.SERVERS)
    assert bench.parse_args(["--servers", "granian-uvloop", "--no-drain"]).no_drain
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])
    with pytest.raises(SystemExit, match="unknown server 'gunicorn'"):
        bench.chosen("uvicorn-asyncio,gunicorn")


@pytest.mark.parametrize(
    "name",
    [
        "uvicorn-asyncio",
        "uvicorn-uvloop",
        "hypercorn-asyncio",
        "hypercorn-uvloop",
        "granian-asyncio",
        "granian-uvloop",
        "granian-uvloop-rust",
    ],
)
def test_every_server_runs_one_worker_pinned_quiet_on_the_port_asked(bench, name) -> None:
    server = bench.SERVERS[name]
    command = server.command("pkg.app:app", 18123)
    assert command[:3] == ["taskset", "-c", "0"]
    assert command[3:6] == [sys.executable, "-m", server.module]
    assert "pkg.app:app" in command
    assert command[command.index("--workers") + 1] == "1"
    # the port, and only on the loopback interface
    joined = " ".join(command)
    assert "127.0.0.1" in joined and "18123" in joined
    # access log off: uvicorn and granian by a flag, hypercorn by not naming a log file
    if server.module == "hypercorn":
        assert not any(flag.startswith("--access-log") for flag in command)
    else:
        assert "--no-access-log" in command
    loop = name.split("-")[1]
    assert loop in command  # the event loop named is the one asked for
    assert server.shown().startswith(f"{server.module} APP ")


def test_drain_events_split_at_the_signal_and_the_last_answer(bench) -> None:
    # wrk's check call (drain1, never sent); two requests before SIGTERM at t=10, one of them unanswered;
    # two during the drain (a 2xx, a 503); one after the server stopped answering
    events = "\n".join(
        [
            "S drain1 9.0",
            "S drain2 9.5",
            "S drain3 9.9",
            "S drain4 10.5",
            "S drain5 11.0",
            "S drain6 12.0",
            "R drain2 200 9.6",
            "R drain4 503 10.6",
            "R drain5 200 11.1",
        ]
    )
    sent, answers = bench.parse_events(events)
    assert "drain1" not in sent
    wrk_out = "Socket errors: connect 0, read 1, write 1, timeout 0\n"
    ready = [(9.9, 200), (10.2, 503), (10.4, 0)]
    drain = bench.summarize(sent, answers, 10.0, wrk_out, ready, 1.5, 0)
    assert (drain.sent_before, drain.before_2xx, drain.before_other, drain.before_lost) == (2, 1, 0, 1)
    assert (drain.drain_2xx, drain.drain_other, drain.drain_lost, drain.later) == (1, 1, 0, 1)
    assert drain.last_2xx_s == pytest.approx(1.1)
    assert drain.socket_errors == "connect 0, read 1, write 1, timeout 0"
    assert drain.ready_503_s == pytest.approx(0.2)
    assert bench.seconds(drain.ready_last_200_s) == "never"

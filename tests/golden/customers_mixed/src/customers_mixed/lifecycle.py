"""The customers-mixed service's lifecycle: ready once the model is loaded, verified and warmed up; on
SIGTERM, not ready at once, serving on for `DRAIN_SECONDS`, then stopping cleanly.

The drain covers the moment a load balancer (or Kubernetes) still routes requests to an
instance it is stopping: they are answered, not dropped. After it, no new connection is let in
(on Linux) while those the kernel already queued are taken in and answered; then uvicorn stops
accepting, closes idle connections and finishes the requests in flight. A second SIGTERM, or
Ctrl-C, stops at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import math
import os
import signal
import socket
import struct
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI, Request

from customers_mixed.errors import NotReadyError
from customers_mixed.model import Predictor
from customers_mixed.scoring import Scorer

DRAIN_SECONDS = "DRAIN_SECONDS"  # the environment variable
DEFAULT_DRAIN_SECONDS = 5
# uvicorn's own log: the drain is reported beside its "Shutting down".
log = logging.getLogger("uvicorn.error")
SignalHandler = Callable[[int, FrameType | None], Any]
# After the drain, the listening sockets let no new connection in for this long, while the server
# takes in the connections the kernel had already queued, and their requests, before it stops.
SETTLE_SECONDS = 0.5
SO_ATTACH_FILTER = 26  # Linux: a classic BPF program that filters what reaches a socket
# On a listening TCP socket: drop a packet with SYN set (a new connection), let any other through
# (the rest of a handshake under way). The packet starts at the TCP header; its byte 13 holds the flags.
REFUSE_NEW_CONNECTIONS = (
    (0x30, 0, 0, 13),  # load byte 13: the flags
    (0x45, 0, 1, 0x02),  # SYN set? next instruction, else skip it
    (0x06, 0, 0, 0),  # drop
    (0x06, 0, 0, 0xFFFFFFFF),  # let through
)


def drain_seconds() -> float:
    text = os.environ.get(DRAIN_SECONDS, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_DRAIN_SECONDS
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise RuntimeError(f"{DRAIN_SECONDS}={text!r}: give the drain period in seconds, e.g. {DRAIN_SECONDS}=5")
    return seconds


class Shutdown:
    """Whether the service is draining: then /ready answers 503 and every answer closes its connection."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False

    def begin(self) -> None:
        self.draining = True

    def drain_on_sigterm(self) -> None:
        """Put the drain between SIGTERM and the server's own handler (uvicorn's).

        Only in the main thread, where the server installed its handlers; elsewhere (a test
        client) nothing changes.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        stop = signal.getsignal(signal.SIGTERM)
        if not callable(stop):
            return
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:
                stop(signum, frame)
            else:
                loop.call_soon_threadsafe(self._drain_then, stop, signum)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _drain_then(self, stop: SignalHandler, signum: int) -> None:
        self.begin()
        log.info("SIGTERM: not ready from now on; serving %g s more before shutting down", self.seconds)
        asyncio.get_running_loop().call_later(self.seconds, self._settle_then, stop, signum)

    def _settle_then(self, stop: SignalHandler, signum: int) -> None:
        """The drain is over. Closing the listening sockets now would reset the connections the kernel
        has queued but the server has not accepted yet, with the requests written on them. So first
        no new connection is let in (its client, retrying, finds the socket closed: refused, nothing
        sent), the queued ones are accepted and answered, and then the server (uvicorn: `stop`) stops."""
        server = getattr(stop, "__self__", None)  # uvicorn's Server, whose handle_exit `stop` is
        listeners = [sock for listener in getattr(server, "servers", []) for sock in listener.sockets]
        closed = [sock for sock in listeners if refuse_new_connections(sock)]
        asyncio.get_running_loop().call_later(SETTLE_SECONDS if closed else 0, stop, signum, None)


def refuse_new_connections(sock: Any) -> bool:
    """Let no new connection into the listening TCP socket `sock`; False where that cannot be done."""
    if sys.platform != "linux" or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in REFUSE_NEW_CONNECTIONS)
    program = ctypes.create_string_buffer(code, len(code))
    try:
        sock.setsockopt(
            socket.SOL_SOCKET,
            SO_ATTACH_FILTER,
            struct.pack("HP", len(REFUSE_NEW_CONNECTIONS), ctypes.addressof(program)),
        )
    except OSError:
        return False
    return True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.shutdown = Shutdown(drain_seconds())
    predictor = Predictor.load(app.state.metrics.drift)
    scorer = Scorer(predictor)
    try:
        await scorer.warm_up()
        # The libraries and the model live as long as the process: move them out of the garbage
        # collector's reach, so that its full passes scan only what requests create. Otherwise
        # each full pass stalls every request in flight for tens of milliseconds.
        gc.collect()
        gc.freeze()
        app.state.predictor, app.state.scorer = predictor, scorer
        app.state.shutdown.drain_on_sigterm()
        yield
    finally:
        app.state.predictor = app.state.scorer = None
        scorer.close()
        app.state.metrics.flush()


def is_ready(request: Request) -> bool:
    state = request.app.state
    return state.scorer is not None and not state.shutdown.draining


def scorer_of(request: Request) -> Scorer:
    """The loaded model's scorer, or NotReadyError (a 503) while it is still loading."""
    scorer: Scorer | None = request.app.state.scorer
    if scorer is None:
        raise NotReadyError("the model is not loaded yet")
    return scorer

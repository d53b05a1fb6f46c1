"""ASGI middleware of the diabetes-custom service: `Envelope` (request ids, metrics and the request log,
the last resort of the error rule, closing connections while the service drains) and `BodyLimit`."""

from __future__ import annotations

import random
import re
from time import perf_counter

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diabetes_custom.errors import error_response, internal_error, log

MAX_BODY_BYTES = 1048576
# A client's X-Request-ID is echoed (and logged) only when it is a plain token.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Envelope:
    """What every request gets, in one layer:

    - an id (the client's `X-Request-ID` when it is a plain token), sent back on every answer;
    - the rule's JSON 500 for an exception that nothing else mapped (its traceback goes to the log
      with the id);
    - while the service drains before it stops, `Connection: close` on each answer, so keep-alive
      connections end after an answer, never under a request in flight;
    - counting and the request log line, answered or not (`metrics.Metrics.observe`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = perf_counter()
        given = header(scope, b"x-request-id")
        request_id = given if given is not None and REQUEST_ID.fullmatch(given) else new_request_id()
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        scope.setdefault("state", {})["request_id"] = request_id
        state = scope["app"].state
        status = 0  # until the answer starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
                if state.shutdown.draining:
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("request %s: %s %s failed", request_id, scope["method"], scope["path"], exc_info=exc)
            if status:  # too late for an error answer: the server closes the connection
                raise
            await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            state.metrics.observe(scope, request_id, status, began)


def new_request_id() -> str:
    """32 random hex digits. An id names a request in the log, it guards nothing: Python's own
    generator gives one in a fraction of the time the system's (`secrets`) takes."""
    return f"{random.getrandbits(128):032x}"


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the request header `name` (lower case, as the server gives the names), as
    Starlette's `Headers.get` reads it, without building its object for one look-up."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


class BodyTooLarge(Exception):
    """Raised into the application when a request body passes the limit."""


class BodyLimit:
    """Refuse a request body over `max_bytes` with a 413, whether its size is declared or it comes in
    chunks: a declared size is checked at once (the server then delivers no more than it declares),
    a chunked body's bytes are counted as they arrive, and reading stops at the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length") or ""
        if declared.isdigit() and header(scope, b"transfer-encoding") is None:
            if int(declared) > self.max_bytes:
                await self.refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        received = 0
        over = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def unless_over(message: Message) -> None:
            if not over:  # the application's answer to a body it could not finish reading is dropped
                await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except BodyTooLarge:
            pass
        if over:
            await self.refuse(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, f"request body over {self.max_bytes} bytes")
        response.headers["connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)

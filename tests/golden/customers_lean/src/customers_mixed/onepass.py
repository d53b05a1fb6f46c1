"""What `rawpredict` and `rawinfer` share: when a request may take one pass, and how it ends.

A request takes one pass when it declares a body within the limit, sends it whole (not chunked),
and the model is loaded while the service is not draining; anything else goes to the lane (the
middleware and the routes) untouched, or with the body already read replayed to it. Both one-pass
endpoints answer with the same request id rule, headers and 500 as the lane.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from customers_mixed.errors import internal_error, log
from customers_mixed.middleware import MAX_BODY_BYTES, REQUEST_ID, new_request_id

JSON = b"application/json"
STRICT = ("true", "1", "yes")  # routes.strict: `X-Strict` values that refuse warnings


def first_headers(scope: Scope, wanted: Collection[bytes]) -> tuple[dict[bytes, bytes], bool]:
    """The first value of each header in `wanted` (as Starlette's `Headers.get` reads it), and
    whether the body is chunked."""
    found: dict[bytes, bytes] = {}
    chunked = False
    for key, value in scope["headers"]:
        if key in wanted:
            found.setdefault(key, value)
        elif key == b"transfer-encoding":
            chunked = True
    return found, chunked


def fits_one_pass(state: Any, length: bytes | None, chunked: bool) -> bool:
    """A declared body within the limit, sent whole, while the model is loaded and not draining."""
    return (
        not chunked
        and length is not None
        and length.isdigit()
        and int(length) <= MAX_BODY_BYTES
        and state.scorer is not None
        and not state.shutdown.draining
    )


async def whole_body(receive: Receive) -> tuple[Message, bytes | None]:
    """The first message, and the body if that message holds all of it (else None)."""
    message = await receive()
    body = message.get("body", b"")
    if message["type"] != "http.request" or message.get("more_body", False) or not body:
        return message, None
    return message, body


def is_strict(value: bytes | None) -> bool:
    """Whether an `X-Strict` header value asks for warnings to be refused."""
    return value is not None and value.decode("latin-1").strip().lower() in STRICT


def request_id_for(scope: Scope, given: bytes | None) -> str:
    """The client's request id when it is a plain token, else a new one; kept in the scope's state."""
    text = given.decode("latin-1") if given is not None else None
    request_id = text if text is not None and REQUEST_ID.fullmatch(text) else new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


async def send_answer(send: Send, status: int, data: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """`data` with its length, the given headers, in two messages."""
    headers.insert(0, (b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def failed(scope: Scope, receive: Receive, send: Send, request_id: str, exc: Exception, status: int) -> int:
    """Log the failure and answer the rule's 500, or, when an answer had begun (`status`), raise
    again: too late for an error answer, the server closes the connection."""
    log.error("request %s: %s %s failed", request_id, scope["method"], scope["path"], exc_info=exc)
    if status:
        raise exc
    response = internal_error(request_id)
    response.raw_headers.append((b"x-request-id", request_id.encode("latin-1")))
    await response(scope, receive, send)
    return 500


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive`, giving `messages` (already taken from it) first."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed

"""ASGI middleware of the diabetes-custom service: the request body limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from diabetes_custom.errors import error_response

MAX_BODY_BYTES = 1048576


class BodyLimit:
    """Refuse a request whose declared body is over MAX_BODY_BYTES with a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = error_response(413, f"request body over {self.max_bytes} bytes")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

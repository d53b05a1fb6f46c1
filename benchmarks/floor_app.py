"""The floor: the least any ASGI app can do for `POST /predict` on the benchmark's harness.

A bare ASGI callable that reads the request body and answers the constant JSON in `FLOOR_BODY`
(the benchmark gives it the generated service's own answer, so both send the same bytes). No
framework, no parsing, no model: what the server, the HTTP parser and the event loop cost alone.

    FLOOR_BODY='{"prediction": 1}' uvicorn floor_app:app --app-dir benchmarks
"""

from __future__ import annotations

import os
from typing import Any

BODY = os.environ.get("FLOOR_BODY", '{"prediction":0}').encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

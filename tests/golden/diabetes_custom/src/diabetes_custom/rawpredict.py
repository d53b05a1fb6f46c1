"""`POST /predict` as one plain ASGI function, for the requests that are not unusual.

Under load, the objects a framework builds for each request (Starlette's Request and Response, the
middleware's closures, FastAPI's handlers) cost more than scoring a compiled model. `predict` does
what `Envelope`, `BodyLimit` and `routes.predict` do together, in one pass, for a request with a
declared body within the limit, sent whole, `Content-Type: application/json`, that the schema
accepts, while the model is loaded and the service is not draining: the same request id, answer
bytes and headers, drift and warnings, counters and log line.

Anything else goes to `lane` (the middleware and `routes.predict`) before anything was answered or
counted, with the body it sent replayed: a body over the limit or chunked, another content type,
malformed JSON, a record the schema refuses (the 422 naming the field), `X-Strict` refusing a
warning, the model not loaded, the drain. So every error answer is the one the lane gives, and
only the plain case is written twice. A model error while scoring is answered as the app's
handlers answer it (`errors`), and any other failure with the rule's 500.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diabetes_custom.bodies import parse_json
from diabetes_custom.errors import internal_error, log
from diabetes_custom.fastpath import handled
from diabetes_custom.middleware import MAX_BODY_BYTES, REQUEST_ID, new_request_id
from diabetes_custom.schemas import Record

JSON = b"application/json"
STRICT = ("true", "1", "yes")  # routes.strict: `X-Strict` values that refuse warnings


class RawPredict:
    """`POST /predict` in one pass; the unusual requests go to `lane`."""

    def __init__(self, lane: ASGIApp) -> None:
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = perf_counter()
        given = length = content_type = strict = None
        chunked = False
        for key, value in scope["headers"]:  # the first of each, as Starlette's `Headers.get` reads it
            if key == b"content-length":
                length = value if length is None else length
            elif key == b"content-type":
                content_type = value if content_type is None else content_type
            elif key == b"x-request-id":
                given = value if given is None else given
            elif key == b"x-strict":
                strict = value if strict is None else strict
            elif key == b"transfer-encoding":
                chunked = True
        state = scope["app"].state
        scorer = state.scorer
        if (
            chunked
            or content_type != JSON
            or length is None
            or not length.isdigit()
            or int(length) > MAX_BODY_BYTES
            or scorer is None
            or state.shutdown.draining
        ):
            await self.lane(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message["type"] != "http.request" or message.get("more_body", False) or not body:
            await self.lane(scope, replay([message], receive), send)
            return
        try:
            record = Record.model_validate(parse_json(body), from_attributes=True).model_dump(by_alias=True)
        except Exception:  # noqa: BLE001 - the lane answers it: 400, or the 422 naming the field
            await self.lane(scope, replay([message], receive), send)
            return
        records = [record]
        drift = state.metrics.drift
        warnings = drift.warnings(records)
        if warnings and strict is not None and strict.decode("latin-1").strip().lower() in STRICT:
            await self.lane(scope, replay([message], receive), send)
            return
        text = given.decode("latin-1") if given is not None else None
        request_id = text if text is not None and REQUEST_ID.fullmatch(text) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0
        try:
            try:
                predictions, _ = await scorer.predict(records)
            except Exception as exc:  # noqa: BLE001 - the app's handlers decide, as on the lane
                response = await handled(Request(scope, receive, send), exc)
                status = response.status_code
                response.raw_headers.append((b"x-request-id", request_id.encode("latin-1")))
                await response(scope, receive, send)
                return
            scope["state"]["rows"] = 1
            content: dict[str, Any] = {
                "prediction": predictions[0],
                "model_version": scorer.predictor.version,
            }
            if warnings:
                content["warnings"] = warnings
            data = orjson.dumps(content)
            headers = [
                (b"content-length", str(len(data)).encode()),
                (b"content-type", JSON),
                (b"x-request-id", request_id.encode("latin-1")),
            ]
            status = 200
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": data})
        except Exception as exc:
            log.error("request %s: %s %s failed", request_id, scope["method"], scope["path"], exc_info=exc)
            if status:  # too late for an error answer: the server closes the connection
                raise
            status = 500
            response = internal_error(request_id)
            response.raw_headers.append((b"x-request-id", request_id.encode("latin-1")))
            await response(scope, receive, send)
        finally:
            state.metrics.observe(scope, request_id, status, began)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive`, giving `messages` (already taken from it) first."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed

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
from starlette.types import ASGIApp, Receive, Scope, Send

from diabetes_custom.bodies import parse_json, record_of
from diabetes_custom.fastpath import handled
from diabetes_custom.onepass import (
    JSON,
    failed,
    first_headers,
    fits_one_pass,
    is_strict,
    replay,
    request_id_for,
    send_answer,
    whole_body,
)

HEADERS = frozenset({b"content-length", b"content-type", b"x-request-id", b"x-strict"})


class RawPredict:
    """`POST /predict` in one pass; the unusual requests go to `lane`."""

    def __init__(self, lane: ASGIApp) -> None:
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = perf_counter()
        headers, chunked = first_headers(scope, HEADERS)
        state = scope["app"].state
        if headers.get(b"content-type") != JSON or not fits_one_pass(state, headers.get(b"content-length"), chunked):
            await self.lane(scope, receive, send)
            return
        message, body = await whole_body(receive)
        if body is None:
            await self.lane(scope, replay([message], receive), send)
            return
        try:
            record = record_of(parse_json(body))
        except Exception:  # noqa: BLE001 - the lane answers it: 400, or the 422 naming the field
            await self.lane(scope, replay([message], receive), send)
            return
        records = [record]
        warnings = state.metrics.drift.warnings(records)
        if warnings and is_strict(headers.get(b"x-strict")):
            await self.lane(scope, replay([message], receive), send)
            return
        request_id = request_id_for(scope, headers.get(b"x-request-id"))
        scorer = state.scorer
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
            status = 200
            answer_headers = [(b"content-type", JSON), (b"x-request-id", request_id.encode("latin-1"))]
            await send_answer(send, 200, orjson.dumps(content), answer_headers)
        except Exception as exc:  # noqa: BLE001 - `failed` logs it, then answers the 500 or raises it again
            status = await failed(scope, receive, send, request_id, exc, status)
        finally:
            state.metrics.observe(scope, request_id, status, began)

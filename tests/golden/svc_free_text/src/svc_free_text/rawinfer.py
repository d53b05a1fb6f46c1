"""`POST /v2/models/{name}/infer` of the served model in one pass, for the requests that are not unusual.

As `rawpredict` does for `/predict`: the objects of the lane (Starlette's Request and Response,
the middleware's closures) cost more than the rest of a one-row inference. `RawInfer` does what
`Envelope`, `BodyLimit` and `v2.infer` do together, for a request with a declared body within the
limit, sent whole, that the model takes (JSON data, or the binary extension's), while the model is
loaded and the service is not draining: the same request id, answer bytes and headers, drift and
warnings, counters and log line.

Anything else goes to `lane` (the middleware and `v2.infer`) before anything was answered or
counted, with the body it sent replayed: a body over the limit or chunked, a request the model
cannot take (the 400 naming the input), `X-Strict` refusing a warning, the model not loaded, the
drain. A model error while scoring is answered as `v2.infer` answers it, and any other failure with
the rule's 500.
"""

from __future__ import annotations

from time import perf_counter

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from svc_free_text import v2
from svc_free_text.model import PredictionError
from svc_free_text.onepass import (
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

BINARY = b"application/octet-stream"
HEADER_LENGTH = b"inference-header-content-length"
HEADERS = frozenset({b"content-length", HEADER_LENGTH, b"x-request-id", b"x-strict"})


class RawInfer:
    """`POST /v2/models/<served model>/infer` in one pass; the unusual requests go to `lane`."""

    def __init__(self, lane: ASGIApp) -> None:
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = perf_counter()
        headers, chunked = first_headers(scope, HEADERS)
        state = scope["app"].state
        if not fits_one_pass(state, headers.get(b"content-length"), chunked):
            await self.lane(scope, receive, send)
            return
        message, body = await whole_body(receive)
        if body is None:
            await self.lane(scope, replay([message], receive), send)
            return
        header_length = headers.get(HEADER_LENGTH)
        try:
            request = v2.parse_request(body, header_length.decode("latin-1") if header_length is not None else None)
            ready = v2.prepared(state, request, False)
        except Exception:  # noqa: BLE001 - the lane answers it: the 400 naming the input
            await self.lane(scope, replay([message], receive), send)
            return
        if ready.warnings and is_strict(headers.get(b"x-strict")):
            await self.lane(scope, replay([message], receive), send)  # its refusal counts the drift
            return
        request_id = request_id_for(scope, headers.get(b"x-request-id"))
        status = 0
        try:
            try:
                inference = ready.answered(await ready.scorer.predict_batch(ready.records))
            except PredictionError as err:  # as v2.infer answers it
                data, binary_length = orjson.dumps({"error": str(err)}), None
                status = 400
            else:
                scope["state"]["rows"] = inference.rows
                data, binary_length = v2.answer_of(state.manifest, request, inference, request_id)
                status = 200
            answer_headers = [(b"content-type", JSON if binary_length is None else BINARY)]
            if binary_length is not None:
                answer_headers.append((HEADER_LENGTH, str(binary_length).encode()))
            answer_headers.append((b"x-request-id", request_id.encode("latin-1")))
            await send_answer(send, status, data, answer_headers)
        except Exception as exc:  # noqa: BLE001 - `failed` logs it, then answers the 500 or raises it again
            status = await failed(scope, receive, send, request_id, exc, status)
        finally:
            state.metrics.observe(scope, request_id, status, began)


class WithRawInfer:
    """The prediction lane, with the served model's `POST /v2/models/{name}/infer` in one pass."""

    def __init__(self, lane: ASGIApp, path: str) -> None:
        self.lane = lane
        self.path = path
        self.one_pass = RawInfer(lane)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == self.path:
            scope["route"] = v2.INFER_ROUTE  # counted under the route's path, as on the lane
            await self.one_pass(scope, receive, send)
        else:
            await self.lane(scope, receive, send)

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

from customers_mixed import v2
from customers_mixed.errors import internal_error, log
from customers_mixed.middleware import MAX_BODY_BYTES, REQUEST_ID, new_request_id
from customers_mixed.model import PredictionError
from customers_mixed.rawpredict import STRICT, replay

JSON = b"application/json"
BINARY = b"application/octet-stream"


class RawInfer:
    """`POST /v2/models/<served model>/infer` in one pass; the unusual requests go to `lane`."""

    def __init__(self, lane: ASGIApp) -> None:
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = perf_counter()
        given = length = header_length = strict = None
        chunked = False
        for key, value in scope["headers"]:  # the first of each, as Starlette's `Headers.get` reads it
            if key == b"content-length":
                length = value if length is None else length
            elif key == b"inference-header-content-length":
                header_length = value if header_length is None else header_length
            elif key == b"x-request-id":
                given = value if given is None else given
            elif key == b"x-strict":
                strict = value if strict is None else strict
            elif key == b"transfer-encoding":
                chunked = True
        state = scope["app"].state
        if (
            chunked
            or length is None
            or not length.isdigit()
            or int(length) > MAX_BODY_BYTES
            or state.scorer is None
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
            request = v2.parse_request(body, header_length.decode("latin-1") if header_length is not None else None)
            ready = v2.prepared(state, request, False)
        except Exception:  # noqa: BLE001 - the lane answers it: the 400 naming the input
            await self.lane(scope, replay([message], receive), send)
            return
        if ready.warnings and strict is not None and strict.decode("latin-1").strip().lower() in STRICT:
            await self.lane(scope, replay([message], receive), send)  # its refusal counts the drift
            return
        text = given.decode("latin-1") if given is not None else None
        request_id = text if text is not None and REQUEST_ID.fullmatch(text) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0
        try:
            try:
                inference = ready.answered(await ready.scorer.predict_batch(ready.records))
            except PredictionError as err:  # as v2.infer answers it
                data, header_length_out = orjson.dumps({"error": str(err)}), None
                status = 400
            else:
                scope["state"]["rows"] = inference.rows
                data, header_length_out = v2.answer_of(state.manifest, request, inference, request_id)
                status = 200
            headers = [
                (b"content-length", str(len(data)).encode()),
                (b"content-type", JSON if header_length_out is None else BINARY),
            ]
            if header_length_out is not None:
                headers.append((b"inference-header-content-length", str(header_length_out).encode()))
            headers.append((b"x-request-id", request_id.encode("latin-1")))
            await send({"type": "http.response.start", "status": status, "headers": headers})
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

"""The customers-mixed service's one rule for errors: which failures are the client's, which are ours.

Every error answer is JSON, `{"error": "<what is wrong and where>"}`:

- malformed JSON: 400;
- a request body over the size limit, sized or chunked: 413;
- a field that breaks the input schema (wrong type, outside its dtype's range, unknown, missing,
  NaN or Infinity): 422 naming the field, and in a batch the record's index too;
- a `ValueError` raised by the notebook's code (its preprocessing or the model) on schema-valid
  input, such as a category the model cannot encode: 422, since the input is the client's to change;
- the model not loaded yet: 503;
- an unknown path 404, a wrong method 405 (with `Allow`);
- anything else is a fault of the service, never the client's: 500 with a `request_id`; the
  traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from customers_mixed.model import PredictionError
from customers_mixed.schemas import ErrorBody

log = logging.getLogger("customers_mixed")

# Documented in the OpenAPI schema of every endpoint.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON"},
    413: {"model": ErrorBody, "description": "Request body too large"},
    422: {"model": ErrorBody, "description": "Input the model cannot take; the message names the field"},
    500: {"model": ErrorBody, "description": "A fault in the service; quote the request id"},
}


class NotReadyError(RuntimeError):
    """A prediction was asked for before the model was loaded."""


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def internal_error(request_id: str) -> JSONResponse:
    """The answer to any failure the rule does not map: no detail, only the id to find it in the log."""
    message = "internal error: the service could not answer this request; it is logged under its request_id"
    return error_response(500, message, request_id=request_id)


def where(loc: Sequence[Any]) -> str:
    """`invalid field `age`` or, in a batch, `record 3: invalid field `age``."""
    parts = [str(part) for part in loc if part != "body"]
    if len(parts) >= 2 and parts[0] == "records" and parts[1].isdigit():
        field = ".".join(parts[2:])
        return f"record {parts[1]}: " + (f"invalid field `{field}`" if field else "invalid record")
    return f"invalid field `{'.'.join(parts) or 'body'}`"


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:  # a null, an unknown category, a number past its dtype: drift, refused
        metrics.drift.refused(request.scope["path"], errors)
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed JSON in the request body")
    first = errors[0] if errors else {}
    message = f"{where(first.get('loc', ()))}: {first.get('msg', 'invalid value')}"
    # The offending input is left out: it may be NaN or Infinity, which JSON cannot carry.
    detail = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return error_response(422, message, detail=jsonable_encoder(detail))


async def unscorable(request: Request, exc: PredictionError) -> JSONResponse:
    return error_response(422, str(exc))


async def not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
    return error_response(503, str(exc))


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """FastAPI's own errors (an unknown path, a wrong method, a body it cannot decode) in the rule's shape."""
    response = error_response(exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


def install(app: FastAPI) -> None:
    """Register the rule's exception handlers on `app` (the 500 is middleware.Envelope's)."""
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(PredictionError)(unscorable)
    app.exception_handler(NotReadyError)(not_ready)
    app.exception_handler(HTTPException)(http_error)

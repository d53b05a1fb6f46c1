"""The customers-mixed service's rule for errors: which status and JSON body each kind of failure gets.

Every error answer is `{"error": "<what is wrong and where>"}`:

- malformed JSON: 400;
- a request body over the size limit: 413;
- a field that breaks the input schema (wrong type, unknown, missing, NaN or Infinity): 422 naming it;
- the model (or the notebook's preprocessing) cannot score a record: 422;
- the model is not loaded yet: 503.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from customers_mixed.model import PredictionError
from customers_mixed.schemas import ErrorBody

# Documented in the OpenAPI schema of every endpoint.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


class NotReadyError(RuntimeError):
    """A prediction was asked for before the model was loaded."""


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed JSON in the request body")
    first = errors[0] if errors else {}
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    message = f"invalid field `{field}`: {first.get('msg', 'invalid value')}"
    # The offending input is left out: it may be NaN or Infinity, which JSON cannot carry.
    detail = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return error_response(422, message, detail=jsonable_encoder(detail))


async def unscorable(request: Request, exc: PredictionError) -> JSONResponse:
    return error_response(422, str(exc))


async def not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
    return error_response(503, str(exc))


def install(app: FastAPI) -> None:
    """Register the rule's exception handlers on `app`."""
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(PredictionError)(unscorable)
    app.exception_handler(NotReadyError)(not_ready)

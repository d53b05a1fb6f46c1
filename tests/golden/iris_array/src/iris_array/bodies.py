"""Request and answer bodies of the iris-array prediction endpoints, read and written without detours.

FastAPI's own body handling costs more than scoring a compiled model. `read_body` does what it
does, with the same outcome for every input: `json.loads`' values for a JSON content type (a
missing or other content type leaves the bytes, which the schema refuses), the schema's
validation in Python mode, and the same RequestValidationError (so the same 400 and 422 bodies
from `errors`).
`read_records` takes a batch's records as they are, for `frame.score_records`. `record_of` is one
record as the schema gives it (for `rawpredict`). `answer` writes JSON with orjson. `document` keeps
the request schemas in the OpenAPI document.
"""

from __future__ import annotations

import email.message
import json
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import OpenAPI
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from pydantic_core import from_json

from iris_array.schemas import MAX_BATCH, BatchRequest, Record

Body = TypeVar("Body", bound=BaseModel)
REF = "#/components/schemas/{model}"
FEATURES = 4  # the record's `features`, each a finite number (schemas.Record)
EXACT = 2**53  # an integer up to this size is a float exactly
FLOAT = frozenset({float})
NUMBERS = frozenset({float, int})


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The `openapi_extra` of an endpoint that reads `model` with `read_body`."""
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


async def read_body(request: Request, model: type[Body]) -> Body:
    """The request body as `model`, or RequestValidationError / HTTPException as FastAPI raises them."""
    data = await request.body()
    if not data:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        body: Any = parse_json(data) if _is_json(request.headers.get("content-type")) else data
    except json.JSONDecodeError as err:
        error = {"type": "json_invalid", "loc": ("body", err.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": err.msg}}]) from err
    except Exception as err:  # not UTF-8, nested too deep, ...: FastAPI's answer to the same
        raise HTTPException(status_code=400, detail="malformed JSON in the request body: it cannot be decoded") from err
    try:
        return model.model_validate(body, from_attributes=True)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


async def read_records(request: Request) -> list[dict[str, Any]]:
    """The records of a batch body, `{"records": [{...}, ...]}`, as the JSON objects they are: their
    fields are checked where they are scored (`frame.score_records`). A body of any other shape is
    refused as `read_body(request, BatchRequest)` refuses it."""
    data = await request.body()
    if data and _is_json(request.headers.get("content-type")):
        try:
            body: Any = parse_json(data)
        except Exception:  # noqa: BLE001 - read_body below answers it as FastAPI would
            body = None
        records = body.get("records") if isinstance(body, dict) and len(body) == 1 else None
        if type(records) is list and 1 <= len(records) <= MAX_BATCH and all(type(r) is dict for r in records):
            return records
    batch = await read_body(request, BatchRequest)
    return [record.model_dump(by_alias=True) for record in batch.records]


def record_of(data: Any) -> dict[str, Any]:
    """`Record.model_validate(data, from_attributes=True).model_dump(by_alias=True)`: the record as the
    schema gives it, or its ValidationError. A plain record, `{"features": [...]}` of finite JSON
    numbers (integers up to 2**53, never booleans), is taken as the schema takes it, its numbers as
    floats, without building the model."""
    record = plain_record(data)
    if record is not None:
        return record
    return Record.model_validate(data, from_attributes=True).model_dump(by_alias=True)


def plain_records(records: list[Any]) -> list[dict[str, Any]] | None:
    """`BatchRequest`'s records as `record_of` gives them, when every one is plain; else None."""
    if not 1 <= len(records) <= MAX_BATCH:
        return None
    taken = [plain_record(data) for data in records]
    return None if None in taken else taken  # type: ignore[return-value]


def plain_record(data: Any) -> dict[str, Any] | None:
    """A plain record as the schema gives it, `{"features": [...]}` of finite JSON numbers (integers up
    to 2**53, never booleans) as floats; None for any other."""
    if type(data) is dict and len(data) == 1:
        values = data.get("features")
        if type(values) is list and len(values) == FEATURES:
            numbers = finite_floats(values)
            if numbers is not None:
                return {"features": numbers}
    return None


def finite_floats(values: list[Any]) -> list[float] | None:
    """`values` as floats, when each is a finite float or an integer up to 2**53; else None."""
    kinds = set(map(type, values))
    if kinds != FLOAT:
        if not kinds <= NUMBERS or not all(-EXACT <= v <= EXACT for v in values if type(v) is int):
            return None
        values = [float(v) for v in values]
    total = sum(values)
    return values if total - total == 0 else None  # else a NaN or an infinity (or a sum too large)


def parse_json(data: bytes) -> Any:
    """What `json.loads(data)` gives, faster.

    pydantic's JSON parser gives the same values as `json.loads` for every document it accepts
    (integers of any size, NaN and Infinity included); what it refuses (lone surrogates, a
    byte-order mark, UTF-16, malformed JSON) goes to `json.loads`, which answers or raises
    exactly as FastAPI's does.
    """
    try:
        return from_json(data)
    except ValueError:
        return json.loads(data)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    if content_type.startswith("application/json"):
        return content_type == "application/json" or content_type[16] in " ;"
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def answer(content: dict[str, Any]) -> Response:
    """A JSON answer; NaN, which JSON cannot carry, is written as null."""
    return Response(orjson.dumps(content), media_type="application/json")


def document(app: FastAPI) -> None:
    """Add the request schemas that `request_body` refers to to the app's OpenAPI document.

    They go through FastAPI's OpenAPI model, as the rest of the document does.
    """
    build = app.openapi
    _, definitions = models_json_schema([(Record, "validation"), (BatchRequest, "validation")], ref_template=REF)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None or "Record" not in app.openapi_schema["components"]["schemas"]:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
            app.openapi_schema = jsonable_encoder(OpenAPI(**schema), by_alias=True, exclude_none=True)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

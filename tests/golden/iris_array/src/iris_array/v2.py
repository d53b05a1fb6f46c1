"""The Open Inference Protocol (v2, KServe's "V2 inference protocol") endpoints of the iris-array service.

Standard inference clients call the model by the service's name (`name` in /metadata) and,
optionally, its version. The rows are one `[N, F]` input named `input-0`.
The outputs are `predict` and `predict_proba` (`[N, classes]`, in the order of the classes in /metadata).

An inference request becomes the records `POST /predict/batch` takes: the same schema validates
them and the same scorer scores them, so the answers are the same. The protocol's own error rule
holds here, not the one in `errors`: every error is `{"error": "..."}` with a 400 naming the
input (and the row), or a 404 for a model or version this service does not serve. Only a fault of
the service itself is a 500 (middleware.Envelope).

The body is JSON whatever its Content-Type says, as clients of the protocol send it; with the
binary tensor data extension (`Inference-Header-Content-Length`) the JSON header is followed by
the inputs' bytes, and outputs are answered in binary when the request asks (`v2_binary`). The
gRPC transport (`v2_grpc`), on threads of its own, goes through `run_inference_waiting`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema

from iris_array import fastpath, v2_binary
from iris_array.bodies import FEATURES, REF, answer, finite_floats, parse_json, plain_records, request_body
from iris_array.errors import NotReadyError
from iris_array.lifecycle import is_ready
from iris_array.model import PredictionError
from iris_array.routes import strict
from iris_array.schemas import MAX_BATCH, BatchRequest

ARRAY_INPUT = "input-0"
SCALARS = frozenset({int, float, str, bool, type(None)})  # the element types JSON gives, none of them a list
FLOATS = ("FP16", "FP32", "FP64")
INTEGERS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
DATATYPES = ("BOOL", *INTEGERS, *FLOATS, "BYTES")

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (v2)"])


class InferenceInput(BaseModel):
    """One input tensor; `data` is row-major, flat or nested as `shape` (absent when its bytes follow
    the JSON header: `parameters.binary_data_size`)."""

    name: str
    shape: list[Annotated[int, Field(strict=True, ge=0)]]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """An inference request: the input tensors, and optionally which outputs to answer."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: Annotated[list[InferenceInput], Field(min_length=1)]
    outputs: list[RequestedOutput] | None = None


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class OutputTensor(TensorMetadata):
    """One output tensor; `data` is flat, in row-major order."""

    data: list[Any]


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str
    outputs: list[OutputTensor]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelReady(BaseModel):
    name: str
    ready: bool


class V2Error(BaseModel):
    error: str


class Refused(Exception):
    """A request this module answers with `{"error": message}` and `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": V2Error, "description": "A request the model cannot take; the message names the input"},
    404: {"model": V2Error, "description": "This service serves no model of that name or version"},
}


def refusal(message: str, status: int = 400, **extra: Any) -> Response:
    response = answer({"error": message, **extra})
    response.status_code = status
    return response


# --- what the model takes and answers ------------------------------------------------------


def datatype_of_values(values: Sequence[Any]) -> str:
    """The datatype of a column of labels: BOOL, INT64, FP64 or, for text (and any mix with text), BYTES."""
    types = {type(value) for value in values}
    if types <= {bool}:
        return "BOOL"
    if types <= {int}:
        return "INT64"
    return "FP64" if types <= {int, float} else "BYTES"


def datatype_of(feature: dict[str, Any]) -> str:
    """The tensor datatype of one input column, from its entry in the manifest's input schema."""
    kind = feature["kind"]
    if kind == "category":
        return datatype_of_values(feature.get("categories") or ["text"])
    if kind in ("boolean", "string"):
        return "BOOL" if kind == "boolean" else "BYTES"
    integer = kind == "integer"
    name = str(feature["dtype"]).upper().replace("FLOAT", "FP")  # int32 -> INT32, float32 -> FP32
    return name if name in (INTEGERS if integer else FLOATS) else ("INT64" if integer else "FP64")


def accepted(datatype: str) -> tuple[str, ...]:
    """The datatypes a client may send for an input of `datatype`: numbers for numbers, else the same."""
    if datatype in FLOATS:
        return (*FLOATS, *INTEGERS)
    return INTEGERS if datatype in INTEGERS else (datatype,)


# The Python types of the elements each datatype takes (JSON, binary and gRPC decoding give exactly
# these), for the check of a whole tensor at once; `fits` says which element is wrong.
ELEMENT_TYPES: dict[str, frozenset[type]] = {
    **{datatype: frozenset({float, int, type(None)}) for datatype in FLOATS},
    **{datatype: frozenset({int, type(None)}) for datatype in INTEGERS},
    "BOOL": frozenset({bool, type(None)}),
    "BYTES": frozenset({str, type(None)}),
}


def fits(value: Any, datatype: str) -> bool:
    """Whether a JSON value is an element of `datatype` (a null is left to the schema: nullable fields take it)."""
    if value is None:
        return True
    if datatype == "BOOL" or datatype == "BYTES":
        return isinstance(value, bool if datatype == "BOOL" else str)
    if isinstance(value, bool):
        return False
    return isinstance(value, int if datatype in INTEGERS else (int, float))


def inputs_of(manifest: dict[str, Any]) -> list[TensorMetadata]:
    features = manifest["input_schema"]["features"]
    if manifest["input_schema"]["kind"] == "array":
        return [TensorMetadata(name=ARRAY_INPUT, datatype=datatype_of(features[0]), shape=[-1, len(features)])]
    return [TensorMetadata(name=f["name"], datatype=datatype_of(f), shape=[-1]) for f in features]


def outputs_of(manifest: dict[str, Any]) -> list[TensorMetadata]:
    classes = manifest["output"]["classes"]
    label = "FP64" if classes is None else datatype_of_values(classes)  # a regression answers numbers
    outputs = [TensorMetadata(name="predict", datatype=label, shape=[-1])]
    if classes is not None and "predict_proba" in manifest["model"]["predict_methods"]:
        outputs.append(TensorMetadata(name="predict_proba", datatype="FP64", shape=[-1, len(classes)]))
    return outputs


@dataclass(frozen=True)
class Described:
    """What the manifest says of the model's tensors, worked out once per manifest, not per request."""

    inputs: dict[str, TensorMetadata]
    outputs: dict[str, TensorMetadata]
    metadata: ModelMetadata
    metadata_json: bytes  # the model metadata endpoint's answer
    width: int | None  # the number of features of an array model's `[N, F]` input; None for a frame model


_DESCRIBED: dict[int, tuple[dict[str, Any], Described]] = {}


def described(manifest: dict[str, Any]) -> Described:
    """`Described` of `manifest` (kept while the manifest lives: the service has one)."""
    known = _DESCRIBED.get(id(manifest))
    if known is not None and known[0] is manifest:
        return known[1]
    metadata = model_metadata_of(manifest)
    array = manifest["input_schema"]["kind"] == "array"
    found = Described(
        inputs={tensor.name: tensor for tensor in metadata.inputs},
        outputs={tensor.name: tensor for tensor in metadata.outputs},
        metadata=metadata,
        metadata_json=orjson.dumps(metadata.model_dump()),
        width=len(manifest["input_schema"]["features"]) if array else None,
    )
    _DESCRIBED[id(manifest)] = (manifest, found)
    return found


def model_metadata_of(manifest: dict[str, Any]) -> ModelMetadata:
    platform = "onnx_onnxv1" if manifest["inference"]["path"] == "compiled" else "sklearn_joblib"
    return ModelMetadata(
        name=manifest["name"],
        versions=[manifest["version"]],
        platform=platform,
        inputs=inputs_of(manifest),
        outputs=outputs_of(manifest),
    )


def served(request: Request, name: str, version: str | None) -> dict[str, Any]:
    """The manifest, when `name` (and `version`, if given) is the model this service serves; else a 404."""
    return served_by(request.app.state.manifest, name, version)


def served_by(manifest: dict[str, Any], name: str, version: str | None) -> dict[str, Any]:
    if name != manifest["name"]:
        raise Refused(f"unknown model `{name}`: this service serves `{manifest['name']}`", 404)
    if version is not None and version != manifest["version"]:
        raise Refused(f"model `{name}` has no version `{version}`: it serves version `{manifest['version']}`", 404)
    return manifest


# --- requests to records -------------------------------------------------------------------


def flat_values(tensor: InferenceInput, shape: Sequence[int]) -> list[Any]:
    """The tensor's elements in row-major order, given flat or nested exactly as `shape`."""
    data = tensor.data
    if data is None:
        raise Refused(f"input `{tensor.name}` has no data: give `data`, or its bytes and `parameters.binary_data_size`")
    kinds = set(map(type, data))
    if list in kinds or (not kinds <= SCALARS and any(isinstance(value, list) for value in data)):
        data = nested(data, shape, tensor.name)
    count = math.prod(shape)
    if len(data) != count:
        raise Refused(f"input `{tensor.name}`: shape {list(shape)} holds {count} values, data has {len(data)}")
    return data


def nested(data: list[Any], shape: Sequence[int], name: str) -> list[Any]:
    if len(data) != shape[0] or (len(shape) == 1) == any(isinstance(value, list) for value in data):
        raise Refused(f"input `{name}`: data is neither flat nor nested as shape {list(shape)}")
    if len(shape) == 1:
        return data
    return [value for row in data for value in nested(row, shape[1:], name)]


def rows_of(tensor: InferenceInput, width: int | None) -> int:
    """The number of rows of an input: shape `[N, width]`, or `[N]` (also `[N, 1]`) for one column."""
    shape = tensor.shape
    if width is None and shape[1:] not in ([], [1]):
        raise Refused(f"input `{tensor.name}`: shape {shape} is not [N] (or [N, 1])")
    if width is not None and (len(shape) != 2 or shape[1] != width):
        raise Refused(f"input `{tensor.name}`: shape {shape} is not [N, {width}]")
    if not 1 <= shape[0] <= MAX_BATCH:
        raise Refused(f"input `{tensor.name}`: shape {shape} has {shape[0]} rows; send 1 to {MAX_BATCH}")
    return shape[0]


def checked_values(tensor: InferenceInput, expected: TensorMetadata, width: int | None) -> tuple[int, list[Any]]:
    """(rows, elements) of an input, once its shape, datatype and elements fit what the model takes."""
    rows = rows_of(tensor, width)
    if tensor.datatype not in accepted(expected.datatype):
        allowed = ", ".join(accepted(expected.datatype))
        raise Refused(f"input `{tensor.name}`: datatype {tensor.datatype!r} is not one of {allowed}")
    values = flat_values(tensor, tensor.shape)
    types = {type(value) for value in values}
    if not types <= ELEMENT_TYPES.get(tensor.datatype, frozenset()):
        for index, value in enumerate(values):
            if not fits(value, tensor.datatype):
                place = f"row {index // width}, column {index % width}" if width else f"row {index}"
                raise Refused(f"input `{tensor.name}`, {place}: {value!r} is not a {tensor.datatype} value")
    if float in types and not all(map(operator.eq, values, values)):  # only NaN is not equal to itself
        # A float tensor writes a missing value as NaN: a null, which only a nullable column takes.
        values = [None if isinstance(value, float) and math.isnan(value) else value for value in values]
    return rows, values


def records_of(body: InferenceRequest, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The records /predict/batch would take for the same rows."""
    expected = described(manifest).inputs
    names = [tensor.name for tensor in body.inputs]
    for name in names:
        if name not in expected:
            raise Refused(f"unknown input `{name}`: the model takes {', '.join(f'`{n}`' for n in expected)}")
        if names.count(name) > 1:
            raise Refused(f"input `{name}` is given more than once")
    width = described(manifest).width
    if width is not None:
        rows, values = checked_values(body.inputs[0], expected[ARRAY_INPUT], width)
        return [{"features": values[row * width : (row + 1) * width]} for row in range(rows)]
    columns: dict[str, list[Any]] = {}
    for tensor in body.inputs:
        rows, columns[tensor.name] = checked_values(tensor, expected[tensor.name], None)
        first = body.inputs[0]
        if rows != first.shape[0]:
            raise Refused(f"input `{tensor.name}` has {rows} rows, input `{first.name}` has {first.shape[0]}")
    # A column left out is a field left out: the schema takes it only where it is nullable.
    return [{name: values[row] for name, values in columns.items()} for row in range(rows)]


def plain_rows(body: InferenceRequest) -> list[dict[str, Any]] | None:
    """`validated(records_of(body, ...))` of the usual request, in one look: one input `input-0` of a
    float datatype, shape [N, FEATURES] within the batch limit, its data flat and every element a plain
    number (`bodies.finite_floats`). None for any other request, which the general checks answer."""
    if len(body.inputs) != 1:
        return None
    tensor = body.inputs[0]
    shape, data = tensor.shape, tensor.data
    if (
        tensor.name != ARRAY_INPUT
        or tensor.datatype not in FLOATS
        or len(shape) != 2
        or shape[1] != FEATURES
        or not 1 <= shape[0] <= MAX_BATCH
        or type(data) is not list
        or len(data) != shape[0] * FEATURES
    ):
        return None
    values = finite_floats(data)
    if values is None:
        return None
    return [{"features": values[row * FEATURES : (row + 1) * FEATURES]} for row in range(shape[0])]


def validated(records: list[dict[str, Any]], array: bool) -> list[dict[str, Any]]:
    """The records as the schema of /predict/batch gives them (plain ones without building its
    models: `bodies.plain_records`); a refusal names the input and the row."""
    plain = plain_records(records)
    if plain is not None:
        return plain
    try:
        batch = BatchRequest.model_validate({"records": records})
    except ValidationError as err:
        error = err.errors(include_url=False)[0]
        loc = [str(part) for part in error["loc"]]
        row, field = (loc[1], loc[2]) if len(loc) >= 3 and loc[0] == "records" else ("", "")
        if array:
            column = f", column {loc[3]}" if len(loc) >= 4 else ""
            raise Refused(f"input `{ARRAY_INPUT}`, row {row}{column}: {error['msg']}") from None
        if error["type"] == "missing":
            raise Refused(f"input `{field}` is missing: the model needs it") from None
        raise Refused(f"input `{field}`, row {row}: {error['msg']}") from None
    return [record.model_dump(by_alias=True) for record in batch.records]


def parse_request(data: bytes, header_length: str | None) -> InferenceRequest:
    """The inference request in a REST body: JSON whatever its Content-Type, and with the binary
    extension's header (`header_length`: Inference-Header-Content-Length), its binary inputs' data."""
    try:
        header, tail = v2_binary.split_body(data, header_length) if header_length is not None else (data, None)
    except v2_binary.BinaryError as err:
        raise Refused(str(err)) from None
    if not header:
        raise Refused("invalid inference request: the body is empty")
    try:
        value = parse_json(header)
    except Exception:  # noqa: BLE001 - malformed, not UTF-8, nested too deep: all the client's
        raise Refused("malformed JSON in the request body") from None
    try:
        body = InferenceRequest.model_validate(value)
    except ValidationError as err:
        raise Refused(envelope_error(value, err)) from None
    read_binary_inputs(body, tail)
    return body


def read_binary_inputs(body: InferenceRequest, tail: memoryview | None) -> None:
    """Fill in the data of the inputs whose bytes follow the JSON header, in the order of the inputs."""
    offset = 0
    for tensor in body.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if tail is None:
            raise Refused(
                f"input `{tensor.name}` has binary_data_size, but the request has no Inference-Header-Content-Length"
            )
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise Refused(f"input `{tensor.name}`: binary_data_size {size!r} is not a number of bytes")
        if offset + size > len(tail):
            raise Refused(
                f"input `{tensor.name}`: binary_data_size is {size}, past the end of the body"
                f" ({len(tail) - offset} bytes left)"
            )
        try:
            tensor.data = v2_binary.decode(
                tail[offset : offset + size], tensor.datatype, math.prod(tensor.shape), tensor.name
            )
        except v2_binary.BinaryError as err:
            raise Refused(str(err)) from None
        offset += size
    if tail is not None and offset != len(tail):
        raise Refused(f"the body has {len(tail) - offset} bytes after the binary data of its inputs")


def envelope_error(value: Any, err: ValidationError) -> str:
    """What is wrong with a JSON document that is not an inference request, naming the input where there is one."""
    first = err.errors(include_url=False)[0]
    loc = list(first.get("loc", ()))
    where = ".".join(str(part) for part in loc) or "body"
    if len(loc) >= 2 and loc[0] == "inputs" and isinstance(loc[1], int):
        try:
            name = value["inputs"][loc[1]]["name"]
        except Exception:  # noqa: BLE001 - only the message's wording depends on it
            name = None
        label = f"input `{name}`" if isinstance(name, str) else f"input {loc[1]}"
        where = label + (f", field `{'.'.join(str(part) for part in loc[2:])}`" if loc[2:] else "")
    return f"invalid inference request: {where}: {first.get('msg', 'invalid value')}"


def wanted_outputs(body: InferenceRequest, manifest: dict[str, Any]) -> list[TensorMetadata]:
    """The outputs to answer, in the order asked for (all of them when the request names none)."""
    tensors = described(manifest).outputs
    if not body.outputs:
        return list(tensors.values())
    names = list(dict.fromkeys(output.name for output in body.outputs))
    for name in names:
        if name not in tensors:
            raise Refused(f"unknown output `{name}`: the model answers {', '.join(f'`{n}`' for n in tensors)}")
    return [tensors[name] for name in names]


def output_tensor(
    tensor: TensorMetadata, predictions: list[Any], probabilities: list[dict[str, float]] | None
) -> dict[str, Any]:
    """One output tensor of the response, flat in row-major order."""
    if tensor.name == "predict":
        return {"name": tensor.name, "datatype": tensor.datatype, "shape": [len(predictions)], "data": predictions}
    rows = probabilities or []
    labels = list(rows[0]) if rows else []  # the classes, in the model's order
    data = [row[label] for row in rows for label in labels]
    return {"name": tensor.name, "datatype": tensor.datatype, "shape": [len(rows), len(labels)], "data": data}


# --- the endpoints -------------------------------------------------------------------------


@router.get("", response_model=ServerMetadata)
async def server_metadata(request: Request) -> Response:
    """Server metadata: the service's name and version."""
    manifest = request.app.state.manifest
    return answer({"name": manifest["name"], "version": manifest["version"], "extensions": []})


@router.get("/health/live")
async def live() -> Response:
    """Liveness: the process answers."""
    return answer({"live": True})


@router.get("/health/ready", responses={400: {"model": V2Error}})
async def ready(request: Request) -> Response:
    """Readiness: 200 once the model is loaded and warmed up, 400 before and from SIGTERM on."""
    if is_ready(request):
        return answer({"ready": True})
    return refusal("the service is not ready", ready=False)


@router.get("/models/{name}", response_model=ModelMetadata, responses=ERRORS)
@router.get("/models/{name}/versions/{version}", response_model=ModelMetadata, responses=ERRORS)
async def model_metadata(request: Request, name: str, version: str | None = None) -> Response:
    """The model's metadata: its version, platform, input and output tensors."""
    try:
        manifest = served(request, name, version)
    except Refused as refused:
        return refusal(refused.message, refused.status)
    return Response(described(manifest).metadata_json, media_type="application/json")


@router.get("/models/{name}/ready", response_model=ModelReady, responses=ERRORS)
@router.get("/models/{name}/versions/{version}/ready", response_model=ModelReady, responses=ERRORS)
async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
    """Whether the model is ready to score: 200 when it is, 400 when it is not (yet)."""
    try:
        manifest = served(request, name, version)
    except Refused as refused:
        return refusal(refused.message, refused.status)
    if is_ready(request):
        return answer({"name": manifest["name"], "ready": True})
    return refusal("the model is not ready", name=manifest["name"], ready=False)


@dataclass(slots=True)
class Inference:
    """The answer to an inference request, before a transport writes it."""

    model_version: str
    outputs: list[dict[str, Any]]
    rows: int
    warnings: list[str]


@dataclass(slots=True)
class Prepared:
    """An inference request the model takes, ready to score."""

    scorer: Any  # scoring.Scorer
    outputs: list[TensorMetadata]  # to answer, in order
    records: list[dict[str, Any]]  # as the schema gave them
    warnings: list[str]

    def answered(self, answers: tuple[list[Any], list[dict[str, float]] | None]) -> Inference:
        predictions, probabilities = answers
        tensors = [output_tensor(tensor, predictions, probabilities) for tensor in self.outputs]
        return Inference(self.scorer.predictor.version, tensors, len(predictions), self.warnings)


def prepared(state: Any, body: InferenceRequest, strict: bool) -> Prepared:
    """An inference request checked against what the model takes (`state`: the app's state);
    `strict`: refuse values unlike the training data (routes.strict) instead of warning."""
    manifest: dict[str, Any] = state.manifest
    outputs = wanted_outputs(body, manifest)
    records = plain_rows(body) or validated(records_of(body, manifest), True)
    warnings = state.metrics.drift.warnings(records)
    if warnings and strict:
        state.metrics.drift.add(records)  # counted as the schema's refusals are
        raise Refused(f"{warnings[0]} (refused: X-Strict asks for values like the training data's)")
    scorer = state.scorer
    if scorer is None:
        raise NotReadyError("the model is not loaded yet")
    return Prepared(scorer, outputs, records, warnings)


async def run_inference(state: Any, body: InferenceRequest, strict: bool = False) -> Inference:
    """Score an inference request with the app's scorer, on the event loop."""
    ready = prepared(state, body, strict)
    return ready.answered(await ready.scorer.predict_batch(ready.records))


def run_inference_waiting(state: Any, body: InferenceRequest, strict: bool = False) -> Inference:
    """`run_inference` for a caller on a thread of its own (gRPC's), which waits for the answers."""
    ready = prepared(state, body, strict)
    return ready.answered(ready.scorer.predict_batch_waiting(ready.records))


def binary_outputs(body: InferenceRequest) -> set[str]:
    """The outputs the request asks in binary: all with `binary_data_output`, else per output `binary_data`."""
    default = (body.parameters or {}).get("binary_data_output") is True
    asked = {output.name: (output.parameters or {}).get("binary_data", default) for output in body.outputs or ()}
    return {name for name, binary in asked.items() if binary is True} if asked else ({"*"} if default else set())


def binary_answer(content: dict[str, Any], binary: set[str]) -> tuple[bytes, int]:
    """`content` with the outputs named in `binary` (or all: `*`) as bytes after the JSON header;
    (the body, the length of its JSON header)."""
    chunks: list[bytes] = []
    for output in content["outputs"]:
        if "*" in binary or output["name"] in binary:
            data = v2_binary.encode(output.pop("data"), output["datatype"])
            output["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
    header = orjson.dumps(content)
    return header + b"".join(chunks), len(header)


def answer_of(
    manifest: dict[str, Any], body: InferenceRequest, inference: Inference, request_id: str
) -> tuple[bytes, int | None]:
    """The bytes of the answer to an inference request, and the length of its JSON header when its
    outputs are binary (the answer's Inference-Header-Content-Length; then it is application/octet-stream)."""
    content: dict[str, Any] = {
        "model_name": manifest["name"],
        "model_version": inference.model_version,
        "id": body.id if body.id is not None else request_id,
        "outputs": inference.outputs,
    }
    if inference.warnings:
        content["parameters"] = {"warnings": "; ".join(inference.warnings)}
    binary = binary_outputs(body)
    return binary_answer(content, binary) if binary else (orjson.dumps(content), None)


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses=ERRORS,
    openapi_extra=request_body(InferenceRequest),
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=ERRORS,
    openapi_extra=request_body(InferenceRequest),
)
async def infer(request: Request, name: str, version: str | None = None) -> Response:
    """Score the rows of the input tensors (at most MAX_BATCH), as POST /predict/batch scores records."""
    try:
        manifest = served(request, name, version)
        body = parse_request(await request.body(), request.headers.get("inference-header-content-length"))
        inference = await run_inference(request.app.state, body, strict(request))
    except Refused as refused:
        return refusal(refused.message, refused.status)
    except (PredictionError, NotReadyError) as err:
        return refusal(str(err))
    request.scope["state"]["rows"] = inference.rows  # for metrics and the request log
    data, header_length = answer_of(manifest, body, inference, getattr(request.state, "request_id", ""))
    if header_length is None:
        return Response(data, media_type="application/json")
    headers = {"Inference-Header-Content-Length": str(header_length)}
    return Response(data, media_type="application/octet-stream", headers=headers)


INFER_ROUTE = next(route for route in router.routes if getattr(route, "path", "") == "/v2/models/{name}/infer")


async def infer_on_lane(request: Request) -> Response:
    """`infer` for the served model's own path, on the prediction lane (fastpath): FastAPI's routing
    costs more than the rest of a one-row inference. Counted under the route's path, as through FastAPI."""
    request.scope["route"] = INFER_ROUTE
    return await infer(request, request.app.state.manifest["name"])


def install(app: FastAPI) -> None:
    """Add the v2 endpoints to `app`, with the inference request's schema in its OpenAPI document;
    `POST /v2/models/{name}/infer` of the served model also takes the prediction lane."""
    app.include_router(router)
    fastpath.ENDPOINTS[f"/v2/models/{app.state.manifest['name']}/infer"] = infer_on_lane
    build = app.openapi
    _, definitions = models_json_schema([(InferenceRequest, "validation")], ref_template=REF)

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

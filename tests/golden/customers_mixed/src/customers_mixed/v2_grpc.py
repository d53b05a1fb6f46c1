"""The Open Inference Protocol (v2) over gRPC: `inference.GRPCInferenceService` on its own port.

It runs in the service's process, beside the HTTP server, on `GRPC_PORT` (default 8081;
`0` takes a free port, logged at start) of `GRPC_HOST` (default all interfaces). It is grpcio's
threaded server: each call runs whole on one of its `THREADS` threads (decoding, the schema's
checks, drift, scoring, the answer, metrics), never handed to the event loop, which would cost
more than the call itself. A compiled model scores a few rows on that thread (its session is
thread-safe); a scikit-learn model is scored on the one scoring thread, which the call waits for.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer answer what
their REST twins in `v2` answer: an inference request goes through `v2.run_inference_waiting`,
the same schema and scorer as `POST /v2/models/{name}/infer`. Inputs come as typed `contents` or
as `raw_input_contents`; the outputs are `raw_output_contents` when the request sent raw inputs
or asks for binary outputs (`binary_data_output`), else typed contents.

Errors are gRPC statuses with the REST answer's message: INVALID_ARGUMENT for a request the model
cannot take, NOT_FOUND for another model or version, UNAVAILABLE before the model is loaded,
INTERNAL (with the request id; the traceback is logged) for a fault of the service. Every call is
counted in /metrics and the request log under its method's path
(`/inference.GRPCInferenceService/ModelInfer`), with the HTTP status of the same answer. On
SIGTERM, ServerReady and ModelReady answer false at once; calls go on being answered through the
drain, and once the HTTP server has stopped, calls in flight get `IN_FLIGHT_SECONDS` to finish.

The messages are `open_inference_pb2`, generated from `open_inference.proto` (the protocol's
published definition) when nb2prod was released; the handlers are registered here by name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from time import perf_counter
from types import SimpleNamespace
from typing import Any

import grpc
from fastapi import FastAPI
from google.protobuf.message import Message
from pydantic import ValidationError

from customers_mixed import open_inference_pb2 as pb
from customers_mixed import v2, v2_binary
from customers_mixed.errors import NotReadyError
from customers_mixed.middleware import REQUEST_ID, new_request_id
from customers_mixed.model import PredictionError

GRPC_PORT = "GRPC_PORT"  # the environment variables
GRPC_HOST = "GRPC_HOST"
DEFAULT_GRPC_PORT = 8081
# After the HTTP server has stopped, calls in flight get this long to finish.
IN_FLIGHT_SECONDS = 15
# gRPC's threads. Calls hold the GIL for most of their time: a few threads keep the core busy,
# more would only take turns at it.
THREADS = 4
SERVICE = "inference.GRPCInferenceService"
# The typed contents field of each datatype.
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND, 503: grpc.StatusCode.UNAVAILABLE}
log = logging.getLogger("uvicorn.error")
Handler = Callable[[Any, dict[str, Any]], Message]


def grpc_address() -> str:
    text = os.environ.get(GRPC_PORT, "").strip() or str(DEFAULT_GRPC_PORT)
    if not text.isdigit() or int(text) > 65535:
        raise RuntimeError(
            f"{GRPC_PORT}={text!r}: give the gRPC port as a number, e.g. {GRPC_PORT}={DEFAULT_GRPC_PORT}"
        )
    host = os.environ.get(GRPC_HOST, "").strip() or "0.0.0.0"
    return f"{host}:{text}"


class InferenceService:
    """The handlers of `inference.GRPCInferenceService`, over the FastAPI app's state."""

    def __init__(self, app: FastAPI) -> None:
        self.state = app.state

    def ready(self) -> bool:
        return self.state.scorer is not None and not self.state.shutdown.draining

    def server_live(self, request: pb.ServerLiveRequest, _: dict[str, Any]) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    def server_ready(self, request: pb.ServerReadyRequest, _: dict[str, Any]) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.ready())

    def model_ready(self, request: pb.ModelReadyRequest, _: dict[str, Any]) -> pb.ModelReadyResponse:
        v2.served_by(self.state.manifest, request.name, request.version or None)
        return pb.ModelReadyResponse(ready=self.ready())

    def server_metadata(self, request: pb.ServerMetadataRequest, _: dict[str, Any]) -> pb.ServerMetadataResponse:
        manifest = self.state.manifest
        return pb.ServerMetadataResponse(name=manifest["name"], version=manifest["version"], extensions=[])

    def model_metadata(self, request: pb.ModelMetadataRequest, _: dict[str, Any]) -> pb.ModelMetadataResponse:
        manifest = v2.served_by(self.state.manifest, request.name, request.version or None)
        metadata = v2.described(manifest).metadata
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata.name,
            versions=metadata.versions,
            platform=metadata.platform,
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.inputs],
            outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.outputs],
        )

    def model_infer(self, request: pb.ModelInferRequest, state: dict[str, Any]) -> pb.ModelInferResponse:
        manifest = v2.served_by(self.state.manifest, request.model_name, request.model_version or None)
        body = inference_request(request)
        inference = v2.run_inference_waiting(self.state, body, state["strict"])
        state["rows"] = inference.rows
        response = pb.ModelInferResponse(
            model_name=manifest["name"], model_version=inference.model_version, id=request.id
        )
        if inference.warnings:
            response.parameters["warnings"].string_param = "; ".join(inference.warnings)
        raw = bool(request.raw_input_contents) or (body.parameters or {}).get("binary_data_output") is True
        for output in inference.outputs:
            tensor = response.outputs.add(name=output["name"], datatype=output["datatype"], shape=output["shape"])
            if raw:
                response.raw_output_contents.append(v2_binary.encode(output["data"], output["datatype"]))
            elif output["datatype"] == "BYTES":
                tensor.contents.bytes_contents.extend(str(value).encode() for value in output["data"])
            else:
                getattr(tensor.contents, CONTENTS[output["datatype"]]).extend(output["data"])
        return response

    def handler(self, metrics: Any) -> grpc.GenericRpcHandler:
        methods: dict[str, tuple[Handler, type[Message]]] = {
            "ServerLive": (self.server_live, pb.ServerLiveRequest),
            "ServerReady": (self.server_ready, pb.ServerReadyRequest),
            "ModelReady": (self.model_ready, pb.ModelReadyRequest),
            "ServerMetadata": (self.server_metadata, pb.ServerMetadataRequest),
            "ModelMetadata": (self.model_metadata, pb.ModelMetadataRequest),
            "ModelInfer": (self.model_infer, pb.ModelInferRequest),
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                answered(f"/{SERVICE}/{name}", method, metrics),
                request_deserializer=message.FromString,
                response_serializer=lambda response: response.SerializeToString(),
            )
            for name, (method, message) in methods.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


def answered(path: str, method: Handler, metrics: Any) -> Callable[[Any, grpc.ServicerContext], Message]:
    """`method` with the error rule of the protocol as gRPC statuses, counted and logged as HTTP requests are."""
    route = SimpleNamespace(path=path)

    def call(request: Any, context: grpc.ServicerContext) -> Message:
        began = perf_counter()
        metadata = dict(context.invocation_metadata() or ())
        given = metadata.get("x-request-id", "")
        request_id = given if isinstance(given, str) and REQUEST_ID.fullmatch(given) else new_request_id()
        strict = str(metadata.get("x-strict", "")).strip().lower() in ("true", "1", "yes")
        scope: dict[str, Any] = {"path": path, "method": "GRPC", "route": route, "state": {"strict": strict}}
        status, message = 500, f"internal error; request_id {request_id}"
        try:
            response = method(request, scope["state"])
            status = 200
            return response
        except v2.Refused as refused:
            status, message = refused.status, refused.message
        except PredictionError as err:
            status, message = 400, str(err)
        except NotReadyError as err:
            status, message = 503, str(err)
        except Exception:
            log.exception("request %s: gRPC %s failed", request_id, path)
        finally:
            metrics.observe(scope, request_id, status, began)
        context.set_trailing_metadata((("x-request-id", request_id),))
        context.abort(CODES.get(status, grpc.StatusCode.INTERNAL), message)  # raises

    return call


def inference_request(request: pb.ModelInferRequest) -> v2.InferenceRequest:
    """The REST form of a gRPC inference request, its tensors' elements as Python values."""
    raw = request.raw_input_contents
    if not request.inputs:
        raise v2.Refused("invalid inference request: inputs: the request has no inputs")
    if raw and len(raw) != len(request.inputs):
        raise v2.Refused(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs")
    inputs = []
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        if any(size < 0 for size in shape):
            raise v2.Refused(f"input `{tensor.name}`: shape {shape} has a negative size")
        data = elements(tensor, raw[i] if raw else None)
        inputs.append({"name": tensor.name, "shape": shape, "datatype": tensor.datatype, "data": data})
    outputs = [{"name": output.name, "parameters": parameters(output.parameters)} for output in request.outputs]
    value = {
        "id": request.id or None,
        "parameters": parameters(request.parameters),
        "inputs": inputs,
        "outputs": outputs or None,
    }
    try:  # the REST schema's checks, which cost less than building its models unchecked
        return v2.InferenceRequest.model_validate(value)
    except ValidationError as err:
        raise v2.Refused(v2.envelope_error(value, err)) from None


def elements(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> list[Any]:
    """A tensor's elements, from its raw bytes or from the typed contents of its datatype."""
    try:
        if raw is not None:
            return v2_binary.decode(raw, tensor.datatype, math.prod(tensor.shape), tensor.name)
        if tensor.datatype not in CONTENTS:
            raise v2.Refused(f"input `{tensor.name}`: datatype {tensor.datatype!r} is not one of {', '.join(CONTENTS)}")
        values = list(getattr(tensor.contents, CONTENTS[tensor.datatype]))
        if tensor.datatype == "BYTES":
            return [value.decode() for value in values]
        return values
    except v2_binary.BinaryError as err:
        raise v2.Refused(str(err)) from None
    except UnicodeDecodeError:
        raise v2.Refused(f"input `{tensor.name}`: an element is not UTF-8 text") from None


def parameters(given: Any) -> dict[str, Any] | None:
    """Protocol parameters as plain values (the one of bool, int64 and string each holds)."""
    values = {
        key: getattr(value, value.WhichOneof("parameter_choice") or "string_param") for key, value in given.items()
    }
    return values or None


def with_grpc(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """`lifespan`, with the gRPC server serving while the model is loaded (started after it, stopped before it)."""

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="grpc")
            # No port sharing: a second service on the same port fails to start instead of sharing its calls.
            server = grpc.server(threads, options=[("grpc.so_reuseport", 0)])
            server.add_generic_rpc_handlers((InferenceService(app).handler(app.state.metrics),))
            address = grpc_address()
            try:
                port = server.add_insecure_port(address)
            except RuntimeError as err:
                raise RuntimeError(f"gRPC cannot listen on {address} (is the port in use? set {GRPC_PORT})") from err
            server.start()
            log.info("gRPC (Open Inference Protocol) on %s", address.rpartition(":")[0] + f":{port}")
            try:
                yield
            finally:
                # New calls are refused; calls in flight finish (within IN_FLIGHT_SECONDS), then the threads end.
                stopped = server.stop(IN_FLIGHT_SECONDS)
                await asyncio.to_thread(stopped.wait)
                threads.shutdown(wait=False)

    return serving

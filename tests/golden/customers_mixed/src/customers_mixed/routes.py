"""The endpoints of the customers-mixed service: health, readiness, metadata and predictions.

A prediction's answer lists in `warnings` the values unlike anything in the training sample (a
number outside its range, an unseen value, a null where it had none; the manifest's statistics,
as the drift counters read them); the answer is otherwise the same. A request with
`X-Strict: true` is refused instead, with a 422 naming the field.

`/predict/batch` checks each record with the schema (`schemas.BatchRequest`): this model runs
without pandas, which the column checks of `predict_frame` need, and the service does not import it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from customers_mixed.bodies import answer, read_body, request_body
from customers_mixed.errors import error_response
from customers_mixed.lifecycle import is_ready, scorer_of
from customers_mixed.metrics import Drift
from customers_mixed.schemas import BatchPrediction, BatchRequest, ErrorBody, Prediction, Record

PUBLIC_MANIFEST_KEYS = ("name", "version", "nb2prod_version", "notebook", "python", "model", "input_schema")
PUBLIC_MANIFEST_KEYS += ("output", "metrics", "seed")

router = APIRouter()


def strict(request: Request) -> bool:
    """Whether the request asks to refuse values unlike the training data (`X-Strict: true`)."""
    return request.headers.get("x-strict", "").strip().lower() in ("true", "1", "yes")


def refused_as_strict(warnings: list[str]) -> Response:
    message = f"{warnings[0]} (refused: X-Strict asks for values like the training data's)"
    return error_response(422, message, warnings=warnings)


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": ErrorBody}})
async def ready(request: Request) -> Any:
    """Readiness: the model is loaded, verified and warmed up, and the service is not shutting down."""
    if not is_ready(request):
        reason = "shutting down" if request.app.state.scorer is not None else "the model is not loaded yet"
        return error_response(503, reason)
    return {"status": "ready", "model_version": request.app.state.manifest["version"]}


@router.get("/metadata")
async def metadata(request: Request) -> dict[str, Any]:
    """The public part of the manifest: model, schema, classes, metrics, versions."""
    manifest = request.app.state.manifest
    return {key: manifest[key] for key in PUBLIC_MANIFEST_KEYS if key in manifest}


@router.post("/predict", response_model=Prediction, openapi_extra=request_body(Record))
async def predict(request: Request) -> Response:
    """Score one record."""
    record = await read_body(request, Record)
    records = [record.model_dump(by_alias=True)]
    drift: Drift = request.app.state.metrics.drift
    warnings = drift.warnings(records)
    if warnings and strict(request):
        drift.add(records)  # counted as the schema's refusals are
        return refused_as_strict(warnings)
    scorer = scorer_of(request)
    predictions, probabilities = await scorer.predict(records)
    request.scope["state"]["rows"] = 1  # for metrics and the request log
    content: dict[str, Any] = {
        "prediction": predictions[0],
        "probabilities": probabilities[0] if probabilities else None,
        "model_version": scorer.predictor.version,
    }
    if warnings:
        content["warnings"] = warnings
    return answer(content)


@router.post("/predict/batch", response_model=BatchPrediction, openapi_extra=request_body(BatchRequest))
async def predict_batch(request: Request) -> Response:
    """Score several records at once (at most MAX_BATCH); a record that cannot be scored is named."""
    batch = await read_body(request, BatchRequest)
    records = [r.model_dump(by_alias=True) for r in batch.records]
    drift: Drift = request.app.state.metrics.drift
    warnings = drift.warnings(records)
    if warnings and strict(request):
        drift.add(records)
        return refused_as_strict(warnings)
    scorer = scorer_of(request)
    predictions, probabilities = await scorer.predict_batch(records)
    request.scope["state"]["rows"] = len(predictions)
    content: dict[str, Any] = {
        "predictions": predictions,
        "probabilities": probabilities,
        "model_version": scorer.predictor.version,
    }
    if warnings:
        content["warnings"] = warnings
    return answer(content)

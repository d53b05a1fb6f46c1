"""The endpoints of the customers-mixed service: health, readiness, metadata and predictions.

A prediction's answer lists in `warnings` the values unlike anything in the training sample (a
number outside its range, an unseen value, a null where it had none; the manifest's statistics,
as the drift counters read them); the answer is otherwise the same. A request with
`X-Strict: true` is refused instead, with a 422 naming the field.

`/predict/batch` checks and scores its records column by column, as `predict_frame` does a frame
(`frame.score_records`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from customers_mixed.bodies import answer, read_body, read_records, request_body
from customers_mixed.errors import error_response
from customers_mixed.frame import score_records
from customers_mixed.lifecycle import is_ready, scorer_of
from customers_mixed.metrics import Drift
from customers_mixed.model import PredictionError
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
    """Score several records at once (at most MAX_BATCH), checked and scored column by column
    (`frame.score_records`); a record the schema refuses or the model cannot score is named."""
    records = await read_records(request)
    scorer = scorer_of(request)
    batch = await scorer.call(score_records, scorer.predictor, records, rows=len(records))
    if batch.refused:  # every refusal, in record order, as the schema of the whole body gives them
        refused = sorted(batch.refused.items())
        raise RequestValidationError([{**e, "loc": ("body", "records", i, *e["loc"])} for i, es in refused for e in es])
    drift: Drift = request.app.state.metrics.drift
    warnings = drift.warnings(batch.records)
    drift.add(batch.records)
    if warnings and strict(request):
        return refused_as_strict(warnings)
    if batch.failed:
        index = min(batch.failed)
        raise PredictionError(f"record {index}: {batch.failed[index]}")
    request.scope["state"]["rows"] = len(batch.predictions)
    content: dict[str, Any] = {
        "predictions": batch.predictions,
        "probabilities": batch.probabilities,
        "model_version": scorer.predictor.version,
    }
    if warnings:
        content["warnings"] = warnings
    return answer(content)

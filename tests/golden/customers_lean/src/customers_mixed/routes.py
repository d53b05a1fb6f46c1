"""The endpoints of the customers-mixed service: health, readiness, metadata and predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from customers_mixed.bodies import answer, read_body, request_body
from customers_mixed.errors import error_response
from customers_mixed.lifecycle import is_ready, scorer_of
from customers_mixed.schemas import BatchPrediction, BatchRequest, ErrorBody, Prediction, Record

PUBLIC_MANIFEST_KEYS = ("name", "version", "nb2prod_version", "notebook", "python", "model", "input_schema")
PUBLIC_MANIFEST_KEYS += ("output", "metrics", "seed")

router = APIRouter()


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
    scorer = scorer_of(request)
    predictions, probabilities = await scorer.predict([record.model_dump(by_alias=True)])
    request.scope["state"]["rows"] = 1  # for metrics and the request log
    return answer(
        {
            "prediction": predictions[0],
            "probabilities": probabilities[0] if probabilities else None,
            "model_version": scorer.predictor.version,
        }
    )


@router.post("/predict/batch", response_model=BatchPrediction, openapi_extra=request_body(BatchRequest))
async def predict_batch(request: Request) -> Response:
    """Score several records at once (at most MAX_BATCH); a record that cannot be scored is named."""
    batch = await read_body(request, BatchRequest)
    scorer = scorer_of(request)
    predictions, probabilities = await scorer.predict_batch([r.model_dump(by_alias=True) for r in batch.records])
    request.scope["state"]["rows"] = len(predictions)
    return answer(
        {
            "predictions": predictions,
            "probabilities": probabilities,
            "model_version": scorer.predictor.version,
        }
    )

"""The endpoints of the customers-mixed service: health, readiness, metadata and predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from customers_mixed.lifecycle import predictor_of
from customers_mixed.schemas import BatchPrediction, BatchRequest, ErrorBody, Prediction, Record

PUBLIC_MANIFEST_KEYS = ("name", "version", "nb2prod_version", "notebook", "python", "model", "input_schema")
PUBLIC_MANIFEST_KEYS += ("output", "metrics", "seed")

router = APIRouter()


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": ErrorBody}})
def ready(request: Request) -> Any:
    """Readiness: the model is loaded, verified and warmed up."""
    if request.app.state.predictor is None:
        return JSONResponse({"error": "the model is not loaded yet"}, status_code=503)
    return {"status": "ready", "model_version": request.app.state.manifest["version"]}


@router.get("/metadata")
def metadata(request: Request) -> dict[str, Any]:
    """The public part of the manifest: model, schema, classes, metrics, versions."""
    manifest = request.app.state.manifest
    return {key: manifest[key] for key in PUBLIC_MANIFEST_KEYS if key in manifest}


@router.post("/predict", response_model=Prediction)
def predict(record: Record, request: Request) -> Prediction:
    """Score one record."""
    predictor = predictor_of(request)
    predictions, probabilities = predictor.predict([record.model_dump(by_alias=True)])
    return Prediction(
        prediction=predictions[0],
        probabilities=probabilities[0] if probabilities else None,
        model_version=predictor.version,
    )


@router.post("/predict/batch", response_model=BatchPrediction)
def predict_batch(batch: BatchRequest, request: Request) -> BatchPrediction:
    """Score several records at once (at most MAX_BATCH)."""
    predictor = predictor_of(request)
    predictions, probabilities = predictor.predict([r.model_dump(by_alias=True) for r in batch.records])
    return BatchPrediction(
        predictions=predictions,
        probabilities=probabilities,
        model_version=predictor.version,
    )

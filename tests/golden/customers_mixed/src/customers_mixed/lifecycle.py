"""The customers-mixed service's lifecycle: the model is loaded, verified and warmed up before it is ready."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from customers_mixed.errors import NotReadyError
from customers_mixed.model import Predictor


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    predictor = Predictor.load()
    predictor.warm_up()
    app.state.predictor = predictor
    yield
    app.state.predictor = None


def predictor_of(request: Request) -> Predictor:
    """The loaded model, or NotReadyError (a 503) while it is still loading."""
    predictor: Predictor | None = request.app.state.predictor
    if predictor is None:
        raise NotReadyError("the model is not loaded yet")
    return predictor

"""The hand-written FastAPI app that nb2prod's service is measured against.

It is the naive pattern people write: a pydantic body, an `async def` endpoint that calls
`model.predict` on one row, one uvicorn worker. `MODEL_PATH` names a joblib file; `INPUT_KIND` is
`array` (`{"features": [...]}` -> `model.predict(np.array([features]))`) or `frame` (a record
keyed by column -> `model.predict(pd.DataFrame([record]))`).

    MODEL_PATH=model.joblib INPUT_KIND=array uvicorn handwritten_app:app --app-dir benchmarks
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL_PATH"])
app = FastAPI()


class Features(BaseModel):
    features: list[float]


def plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


if os.environ.get("INPUT_KIND", "array") == "array":

    @app.post("/predict")
    async def predict(request: Features) -> dict[str, Any]:
        return {"prediction": plain(model.predict(np.array([request.features]))[0])}

else:

    @app.post("/predict")
    async def predict_record(record: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": plain(model.predict(pd.DataFrame([record]))[0])}

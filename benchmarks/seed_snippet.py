"""The seed's snippet: the minimal FastAPI app of nb2prod's original brief, as a data scientist
writes it first: a `dict` body, a plain `def` endpoint, `model.predict(pd.DataFrame([record]))`.

For an array model (`INPUT_KIND=array`, body `{"features": [...]}`) the frame is built from the
feature list, the one change that lets the same snippet score it. `MODEL_PATH` names a joblib file.

    MODEL_PATH=model.joblib INPUT_KIND=frame uvicorn seed_snippet:app --app-dir benchmarks
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI

model = joblib.load(os.environ["MODEL_PATH"])
ARRAY = os.environ.get("INPUT_KIND", "frame") == "array"
app = FastAPI()


@app.post("/predict")
def predict(record: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame([record["features"]]) if ARRAY else pd.DataFrame([record])
    return {"prediction": model.predict(frame).tolist()[0]}

"""Request and response schemas of the diabetes-custom service.

Field names are the notebook's training columns; unknown fields, NaN and Infinity are refused.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000


class Record(BaseModel):
    """One input row, keyed by the notebook's training column names."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    age: Annotated[
        float,
        Field(alias="age", strict=True, allow_inf_nan=False),
    ]
    sex: Annotated[
        float,
        Field(alias="sex", strict=True, allow_inf_nan=False),
    ]
    bmi: Annotated[
        float,
        Field(alias="bmi", strict=True, allow_inf_nan=False),
    ]
    bp: Annotated[
        float,
        Field(alias="bp", strict=True, allow_inf_nan=False),
    ]
    s1: Annotated[
        float,
        Field(alias="s1", strict=True, allow_inf_nan=False),
    ]
    s2: Annotated[
        float,
        Field(alias="s2", strict=True, allow_inf_nan=False),
    ]
    s3: Annotated[
        float,
        Field(alias="s3", strict=True, allow_inf_nan=False),
    ]
    s4: Annotated[
        float,
        Field(alias="s4", strict=True, allow_inf_nan=False),
    ]
    s5: Annotated[
        float,
        Field(alias="s5", strict=True, allow_inf_nan=False),
    ]
    s6: Annotated[
        float,
        Field(alias="s6", strict=True, allow_inf_nan=False),
    ]


class BatchRequest(BaseModel):
    """Several records, answered in order."""

    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH)]


class Prediction(BaseModel):
    """The model's answer for one record."""

    prediction: float
    model_version: str
    warnings: list[str] | None = Field(
        default=None, description="Values unlike the training data's, each naming its field; absent when none."
    )


class BatchPrediction(BaseModel):
    """The model's answers for a batch, in the order of the records."""

    predictions: list[float]
    model_version: str
    warnings: list[str] | None = Field(
        default=None, description="Values unlike the training data's, each naming its record and field."
    )


class ErrorBody(BaseModel):
    """Every error answer: a message saying what is wrong and where (see errors.py)."""

    error: str
    request_id: str | None = Field(default=None, description="Only on a 500: the id its log line carries.")

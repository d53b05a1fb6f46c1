"""Request and response schemas of the svc-free-text service.

Field names are the notebook's training columns; unknown fields, NaN and Infinity are refused.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000


class Record(BaseModel):
    """One input row, keyed by the notebook's training column names."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: Annotated[
        str,
        Field(alias="name", strict=True),
    ]
    age: Annotated[
        int,
        Field(alias="age", strict=True, ge=-9223372036854775808, le=9223372036854775807),
    ]
    fare: Annotated[
        float,
        Field(alias="fare", strict=True, allow_inf_nan=False),
    ]
    port: Annotated[
        str,
        Field(alias="port", strict=True),
    ]


class BatchRequest(BaseModel):
    """Several records, answered in order."""

    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH)]


class Prediction(BaseModel):
    """The model's answer for one record."""

    prediction: str
    model_version: str
    warnings: list[str] | None = Field(
        default=None, description="Values unlike the training data's, each naming its field; absent when none."
    )


class BatchPrediction(BaseModel):
    """The model's answers for a batch, in the order of the records."""

    predictions: list[str]
    model_version: str
    warnings: list[str] | None = Field(
        default=None, description="Values unlike the training data's, each naming its record and field."
    )


class ErrorBody(BaseModel):
    """Every error answer: a message saying what is wrong and where (see errors.py)."""

    error: str
    request_id: str | None = Field(default=None, description="Only on a 500: the id its log line carries.")

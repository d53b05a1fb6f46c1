"""Request and response schemas of the customers-mixed service.

Field names are the notebook's training columns; unknown fields, NaN and Infinity are refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000


class Record(BaseModel):
    """One input row, keyed by the notebook's training column names."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    age: Annotated[
        int | None,
        Field(alias="age", strict=True, ge=-9223372036854775808, le=9223372036854775807),
    ]
    income: Annotated[
        float | None,
        Field(alias="income", strict=True, allow_inf_nan=False),
    ] = None
    city: Annotated[
        str | None,
        Field(alias="city", strict=True),
    ] = None
    plan: Annotated[
        Literal["basic", "plus", "premium"] | None,
        Field(alias="plan"),
    ]
    is_member: Annotated[
        bool | None,
        Field(alias="is_member", strict=True),
    ]
    monthly_spend: Annotated[
        float | None,
        Field(alias="monthly spend", strict=True, allow_inf_nan=False),
    ]


class BatchRequest(BaseModel):
    """Several records, answered in order."""

    model_config = ConfigDict(extra="forbid")

    records: Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH)]


class Prediction(BaseModel):
    """The model's answer for one record."""

    prediction: str
    probabilities: dict[str, float] | None = Field(
        default=None, description="Probability of each class, keyed by the class label as text."
    )
    model_version: str
    warnings: list[str] | None = Field(
        default=None, description="Values unlike the training data's, each naming its field; absent when none."
    )


class BatchPrediction(BaseModel):
    """The model's answers for a batch, in the order of the records."""

    predictions: list[str]
    probabilities: list[dict[str, float]] | None = None
    model_version: str
    warnings: list[str] | None = Field(
        default=None, description="Values unlike the training data's, each naming its record and field."
    )


class ErrorBody(BaseModel):
    """Every error answer: a message saying what is wrong and where (see errors.py)."""

    error: str
    request_id: str | None = Field(default=None, description="Only on a 500: the id its log line carries.")

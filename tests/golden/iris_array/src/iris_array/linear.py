"""The iris-array model as plain sums, for the few rows of a request.

The notebook's model (LogisticRegression) is, for each output, an intercept plus a
weighted sum of the inputs, then a link (softmax). The conversion wrote the weights to
`manifest.json` (`inference.linear`) and proved that these sums,
computed as below, give the notebook's labels, and its answers within the tolerance, on the
training sample and on every golden row. For a request's few rows they cost a fraction of a call
into ONNX Runtime; larger batches, and a row with a null, are scored by ONNX Runtime (`model.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import Any

Answers = tuple[list[Any], list[dict[str, float]] | None]


def expit(z: float) -> float:
    """1 / (1 + e^-z), without overflow for any finite z."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class Linear:
    """The weights, intercepts and link from the manifest, and the classes they answer."""

    def __init__(self, form: dict[str, Any], classes: list[Any] | None) -> None:
        self.link: str = form["link"]
        self.sums = list(zip(form["weights"], form["intercepts"], strict=True))  # one (weights, intercept) per output
        self.classes = classes or []
        self.labels = [str(c) for c in self.classes]

    def answer(self, row: Sequence[float]) -> tuple[Any, list[float] | None]:
        """(the class index, or the regression value; the probabilities or None) for one row. A null
        (None) in the row raises TypeError, and sums too far below zero for any class ZeroDivisionError."""
        zs = [intercept + sum(map(mul, weights, row)) for weights, intercept in self.sums]
        if self.link == "identity":
            return zs[0], None
        top = (1 if zs[0] > 0 else 0) if len(zs) == 1 else zs.index(max(zs))  # two classes: one sum's sign
        if self.link == "logistic":
            p = expit(zs[0])
            return top, [1.0 - p, p]
        if self.link == "softmax":
            largest = zs[top]
            exps = [math.exp(z - largest) for z in zs]
            total = sum(exps)
            return top, [e / total for e in exps]
        ps = [expit(z) for z in zs]  # "one-vs-rest"
        total = sum(ps)
        return top, [p / total for p in ps]

    def predict(self, rows: Sequence[Sequence[float]]) -> Answers:
        """Predictions (and class probabilities) for `rows`, as `Predictor.predict` answers them."""
        answers = [self.answer(row) for row in rows]
        predictions = [self.classes[top] for top, _ in answers]
        return predictions, [dict(zip(self.labels, values, strict=True)) for _, values in answers]

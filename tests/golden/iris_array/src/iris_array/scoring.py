"""Where the iris-array model scores: one dedicated thread, outside the event loop.

scikit-learn's joblib helpers save, reset and restore the process-wide warning filters around
each parallel step (a `ColumnTransformer`, a forest), which is not thread-safe: one model scored
on many threads at once races on those filters and floods the log with "`sklearn.utils.parallel.
delayed` should be used with `sklearn.utils.parallel.Parallel`". One scoring thread cannot race,
gives the same answers, keeps BLAS from oversubscribing the CPU, and leaves the event loop free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from iris_array.model import PredictionError, Predictor

Answers = tuple[list[Any], list[dict[str, float]] | None]
T = TypeVar("T")


class Scorer:
    """The loaded model behind its one scoring thread; requests queue for it in order."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer")

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def call(self, function: Callable[..., T], *args: Any, rows: int) -> T:
        """`function(*args)`, which scores `rows` rows, where the model scores: on the event loop when
        the model scores so few rows quickly (`runs_inline`), else on the scoring thread."""
        if self.predictor.runs_inline(rows):
            return function(*args)
        return await self._run(function, *args)

    async def warm_up(self) -> None:
        await self._run(self.predictor.warm_up)

    async def predict(self, records: list[dict[str, Any]]) -> Answers:
        if self.predictor.runs_inline(len(records)):
            # A compiled model scores a few rows faster than a hop to the scoring thread, and
            # without scikit-learn's warning filters there is nothing to race on.
            return self.predictor.predict(records)
        return await self._run(self.predictor.predict, records)

    async def predict_batch(self, records: list[dict[str, Any]]) -> Answers:
        """Like `predict`; when the model cannot score the batch, the error names the first record it cannot score."""
        try:
            return await self.predict(records)
        except PredictionError:
            found = await self._run(self._first_unscorable, records)
            if found is None:
                raise
            index, error = found
            raise PredictionError(f"record {index}: {error}") from error

    def predict_batch_waiting(self, records: list[dict[str, Any]]) -> Answers:
        """`predict_batch` for a caller on a thread of its own (gRPC's), which waits for the answers: a
        compiled model scores a few rows right there (its session is thread-safe), else the scoring thread does."""
        try:
            if self.predictor.runs_inline(len(records)):
                return self.predictor.predict(records)
            return self._thread.submit(self.predictor.predict, records).result()
        except PredictionError:
            found = self._thread.submit(self._first_unscorable, records).result()
            if found is None:
                raise
            index, error = found
            raise PredictionError(f"record {index}: {error}") from error

    def _first_unscorable(self, records: list[dict[str, Any]]) -> tuple[int, PredictionError] | None:
        """Bisect the batch: about a dozen predictions for the largest batch, not one per record (their
        inputs were counted for drift already)."""
        low, high = 0, len(records)  # records[low:high] holds the record that fails
        while high - low > 1:
            middle = (low + high) // 2
            try:
                self.predictor.predict(records[low:middle], observe=False)
                low = middle
            except PredictionError:
                high = middle
        try:
            self.predictor.predict(records[low : low + 1], observe=False)
        except PredictionError as error:
            return low, error
        return None  # only the batch as a whole fails

    def close(self) -> None:
        self._thread.shutdown(wait=True)

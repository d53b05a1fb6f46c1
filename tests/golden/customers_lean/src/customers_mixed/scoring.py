"""Where the customers-mixed model scores: one dedicated thread, outside the event loop.

scikit-learn's joblib helpers save, reset and restore the process-wide warning filters around
each parallel step (a `ColumnTransformer`, a forest), which is not thread-safe: one model scored
on many threads at once races on those filters and floods the log with "`sklearn.utils.parallel.
delayed` should be used with `sklearn.utils.parallel.Parallel`". One scoring thread cannot race,
gives the same answers, keeps BLAS from oversubscribing the CPU, and leaves the event loop free.

Single records that arrive while the thread is busy are scored together, in one model call, when
it is free: scikit-learn's cost per call (checks, column selection, pandas) is far larger than its
cost per row, so under load this is many times faster. The answers are the ones each record gets
alone: the conversion proved it on the training sample (`inference.rows_independent` in the
manifest). A lone client waits for no one: its request is scored at once. Under load, a group is
formed from the requests that queued behind the one being scored, and when fewer are waiting than
the last group held, the scorer waits a millisecond for the clients it has just answered. When a
group cannot be scored, each of its records is scored alone, so a bad record fails its own request
only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from customers_mixed.model import PredictionError, Predictor

Answers = tuple[list[Any], list[dict[str, float]] | None]
T = TypeVar("T")
# The most records scored together for requests of one record each.
MOST_COALESCED = 64
# When fewer records wait than the last group held, the clients just answered are likely sending
# again: wait this long for them before scoring (never when the last group was a single record).
GATHER_SECONDS = 0.001


class Scorer:
    """The loaded model behind its one scoring thread; requests queue for it in order."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer")
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[Answers]]] = []
        self._scoring: asyncio.Task[None] | None = None
        self._last_group = 1

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
        if len(records) == 1:
            return await self._coalesced(records[0])
        return await self._run(self.predictor.predict, records)

    async def _coalesced(self, record: dict[str, Any]) -> Answers:
        """One record's answers, scored with the records that queue up while the thread is busy."""
        future: asyncio.Future[Answers] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        if self._scoring is None:
            self._scoring = asyncio.create_task(self._score_waiting())
        return await future

    async def _score_waiting(self) -> None:
        try:
            while self._waiting:
                if len(self._waiting) < self._last_group:
                    await asyncio.sleep(GATHER_SECONDS)
                group, self._waiting = self._waiting[:MOST_COALESCED], self._waiting[MOST_COALESCED:]
                self._last_group = len(group)
                await self._score_group(group)
        finally:
            self._scoring = None

    async def _score_group(self, group: list[tuple[dict[str, Any], asyncio.Future[Answers]]]) -> None:
        try:
            predictions, probabilities = await self._run(self.predictor.predict, [record for record, _ in group])
        except Exception:  # noqa: BLE001 - each record is scored alone below, and fails on its own
            for record, future in group:
                try:
                    answers = await self._run(self.predictor.predict, [record], False)  # counted with the group
                except Exception as error:  # noqa: BLE001 - its request answers it (errors.py)
                    if not future.done():
                        future.set_exception(error)
                else:
                    if not future.done():
                        future.set_result(answers)
            return
        for i, (_, future) in enumerate(group):
            if not future.done():  # a request whose client left is cancelled
                future.set_result(([predictions[i]], [probabilities[i]] if probabilities is not None else None))

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

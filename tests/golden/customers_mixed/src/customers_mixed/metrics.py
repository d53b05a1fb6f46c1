"""What the customers-mixed service reports: Prometheus metrics at `GET /metrics`, and one JSON log line
per request on standard output.

Metrics, all prefixed `nb2prod_` (the same names in every service nb2prod generates):

- `nb2prod_requests_total{endpoint, status}`: requests answered (`endpoint` is the route's path,
  `other` for a path no route has; `status` is 0 when the client left before any answer);
- `nb2prod_request_duration_seconds{endpoint}`: a histogram of the time to answer, middleware included;
- `nb2prod_rows_scored_total{endpoint}`: records scored by the prediction endpoints;
- `nb2prod_model_info{name, version, model_class, task, inference, nb2prod_version}`: always 1;
- drift, per feature, in the records the prediction endpoints received (scored, or refused by the
  schema with a 422): `nb2prod_drift_out_of_range_total{feature}` (a number outside the training
  sample's min..max), `nb2prod_drift_unseen_category_total{feature}` (a value the training sample
  did not have, for columns whose values the manifest lists: never free text), and
  `nb2prod_drift_null_total{feature}` (a null or a missing value in a column that had no nulls).
  An array model's features are its positions, `x0`, `x1`, ...;
- `process_*`: the process's CPU time, memory and open files.

The log line: `{"time", "level", "request_id", "method", "path", "status", "ms", "rows"}`, the request
id being the one the answer's `X-Request-ID` carries; never a request's body. `time` is RFC 3339 in
UTC with milliseconds (`2026-12-02T15:04:05.123Z`). `LOG_REQUESTS=0` turns it off. The service's
other log records (uvicorn's startup and shutdown, errors with their tracebacks) are JSON lines
too, `{"time", "level", "logger", "message"}` (and `"traceback"`): `log_as_json` sets that up, and
silences uvicorn's own access log, which would be a second line per request (run uvicorn with
`--no-access-log` as well: then it does not even format it).

Both cost little on the prediction lane: a request adds to plain counters (under a lock, as gRPC
calls are counted on gRPC's threads), which prometheus_client reads only when /metrics is
scraped; its log line's fields join a buffer, turned into JSON and
written out at most `LOG_FLUSH_SECONDS` later (or once it holds `LOG_FLUSH_LINES`); its records
are counted for drift from what its warnings found in them (a request of a few records), or join a
queue checked `CHECK_ROWS` rows at a time, in a few NumPy operations, and before each scrape.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import sys
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

LOG_REQUESTS = "LOG_REQUESTS"  # the environment variable; 0, false, no or off turns the log line off
LOG_FLUSH_SECONDS = 0.1
# Each wake of the writer thread costs the event loop more than the lines it writes (the two take
# turns at the GIL around every system call): at 64 lines a wake, a one-row /predict cost 12-15 µs
# more CPU than at 1,024 lines, the most a tenth of a second holds at 10,000 requests a second.
LOG_FLUSH_LINES = 1024
PIPE_BYTES = 4096  # a pipe writes this much whole: the lines of several workers never mix
PREDICTION_PATHS = ("/predict", "/predict/batch")
CHECK_ROWS = 256  # drift is checked this many scored rows at a time, and at each scrape
# Up to this many records, `Drift.warnings` compares in Python: building arrays costs more for so few values.
FEW_ROWS = 8
# Upper bounds of the latency histogram's buckets, in seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Schema errors that are drift: a null (or missing) value, a category the schema does not list, a
# number past its dtype's range.
REFUSED = {"missing": "null", "literal_error": "unseen", "greater_than_equal": "range", "less_than_equal": "range"}

router = APIRouter()


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency, rows scored, the model, and drift per feature."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(request.app.state.metrics.registry), media_type=content_type)


class Endpoint:
    """The counts of one endpoint."""

    __slots__ = ("buckets", "rows", "seconds", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0
        self.rows = 0


class Metrics:
    """The service's counters, its log line, and the registry /metrics exposes them in."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.endpoints: dict[str, Endpoint] = {path: Endpoint() for path in PREDICTION_PATHS}
        self.drift = Drift(manifest["input_schema"])
        self.logging = os.environ.get(LOG_REQUESTS, "1").strip().lower() not in ("0", "false", "no", "off")
        self.lines: deque[tuple[float, str, str, str, int, float, int]] = deque()
        # The lines are written by a thread of their own: a slow reader of standard output (a full
        # pipe, a busy disk) holds up the log, never the requests.
        self._wake = threading.Event()
        self._writing = threading.Lock()
        self._writer: threading.Thread | None = None
        # Requests are counted on the event loop and on gRPC's threads: the counts change under a lock
        # (uncontended, it costs a few tens of nanoseconds).
        self._counting = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def observe(self, scope: dict[str, Any], request_id: str, status: int, began: float) -> None:
        """Count a request answered with `status` (begun at `perf_counter()` `began`), and log it."""
        seconds = time.perf_counter() - began
        path = scope["path"]
        route = scope.get("route")
        if route is not None:
            endpoint = route.path
        else:
            endpoint = path if path in PREDICTION_PATHS else "other"
        rows = scope["state"].get("rows", 0)
        with self._counting:
            counts = self.endpoints.get(endpoint)
            if counts is None:
                counts = self.endpoints[endpoint] = Endpoint()
            statuses = counts.statuses
            statuses[status] = statuses.get(status, 0) + 1
            counts.buckets[bisect_left(BUCKETS, seconds)] += 1
            counts.seconds += seconds
            counts.rows += rows
        if self.logging:
            # Only the fields here; the line is formatted and written with the others of its batch.
            self.lines.append((time.time(), request_id, scope["method"], path, status, seconds, rows))
            if self._writer is None:
                with self._counting:
                    if self._writer is None:
                        self._writer = threading.Thread(target=self._write_forever, name="request-log", daemon=True)
                        self._writer.start()
            if len(self.lines) >= LOG_FLUSH_LINES and not self._wake.is_set():  # set once, not per request
                self._wake.set()

    def _write_forever(self) -> None:
        while True:
            self._wake.wait(LOG_FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write the buffered log lines to standard output, in writes a pipe keeps whole."""
        with self._writing:
            lines = [self.lines.popleft() for _ in range(len(self.lines))]
            if lines:
                self._write(lines)

    def _write(self, lines: list[tuple[float, str, str, str, int, float, int]]) -> None:
        chunks: list[bytes] = []
        chunk = b""
        for when, request_id, method, path, status, seconds, rows in lines:
            line = {
                "time": rfc3339(when),
                "level": "info",
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "ms": seconds * 1000,
                "rows": rows,
            }
            text = orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
            if chunk and len(chunk) + len(text) > PIPE_BYTES:
                chunks.append(chunk)
                chunk = b""
            chunk += text
        chunks.append(chunk)
        stream = getattr(sys.stdout, "buffer", None)
        try:
            for data in chunks:
                if stream is not None:
                    stream.write(data)
                else:
                    sys.stdout.write(data.decode())
                sys.stdout.flush()
        except (OSError, ValueError):  # standard output closed: the lines are lost, not the requests
            pass

    def collect(self) -> Iterator[Metric]:
        """The metrics, for prometheus_client, at each scrape."""
        requests = CounterMetricFamily("nb2prod_requests", "Requests answered.", labels=["endpoint", "status"])
        latency = HistogramMetricFamily(
            "nb2prod_request_duration_seconds", "Time to answer a request.", labels=["endpoint"]
        )
        rows = CounterMetricFamily("nb2prod_rows_scored", "Records scored.", labels=["endpoint"])
        bounds = [str(bound) for bound in BUCKETS] + ["+Inf"]
        with self._counting:  # one consistent reading: a histogram's buckets agree with its sum
            taken = [
                (endpoint, dict(counts.statuses), list(counts.buckets), counts.seconds, counts.rows)
                for endpoint, counts in self.endpoints.items()
            ]
        for endpoint, statuses, buckets, seconds, scored in taken:
            for status, count in statuses.items():
                requests.add_metric([endpoint, str(status)], count)
            cumulative = list(accumulate(buckets))
            if cumulative[-1]:
                latency.add_metric([endpoint], list(zip(bounds, cumulative, strict=True)), seconds)
            if scored or endpoint in PREDICTION_PATHS:
                rows.add_metric([endpoint], scored)
        yield requests
        yield latency
        yield rows
        yield self.model_info()
        yield from self.drift.collect()

    def model_info(self) -> InfoMetricFamily:
        manifest = self.manifest
        model = manifest.get("model", {})
        info = {
            "name": manifest.get("name", ""),
            "version": manifest.get("version", ""),
            "model_class": model.get("class", ""),
            "task": model.get("task", ""),
            "inference": manifest.get("inference", {}).get("path", "scikit-learn"),
            "nb2prod_version": manifest.get("nb2prod_version", ""),
        }
        family = InfoMetricFamily("nb2prod_model", "The model this service scores with.")
        family.add_metric([], {key: str(value) for key, value in info.items()})
        return family


def rfc3339(when: float) -> str:
    """`time.time()` as RFC 3339 in UTC with milliseconds: 2026-12-02T15:04:05.123Z."""
    return _millisecond(int(when * 1000))


@lru_cache(maxsize=4)
def _millisecond(millis: int) -> str:
    """A millisecond since the epoch as RFC 3339, made once for the lines logged in it."""
    return f"{_second(millis // 1000)}.{millis % 1000:03d}Z"


@lru_cache(maxsize=4)
def _second(second: int) -> str:
    """A second since the epoch as RFC 3339 in UTC, made once for the lines logged in it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class JsonLines(logging.Formatter):
    """A log record as one JSON line, in the request log line's format."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class StandardOutput(logging.Handler):
    """Writes to whatever `sys.stdout` is when a record comes (a test may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging's own rule: a failed record never stops the caller
            self.handleError(record)


JSON_HANDLER = "json-lines"


def log_as_json() -> None:
    """Write the service's log records and uvicorn's to standard output as JSON lines (through the
    root logger), and silence uvicorn's access log: the request log line says it all. Called again,
    it changes nothing more."""
    root = logging.getLogger()
    if not any(handler.name == JSON_HANDLER for handler in root.handlers):  # by name: any service's will do
        handler = StandardOutput()
        handler.set_name(JSON_HANDLER)
        handler.setFormatter(JsonLines())
        root.addHandler(handler)
    for name in ("uvicorn", "customers_mixed"):
        logger = logging.getLogger(name)
        logger.handlers = []  # uvicorn's plain-text handler
        logger.propagate = True
        logger.setLevel(logging.INFO)
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.disabled = True


class Drift:
    """Per-feature counts of inputs unlike the training sample, from the manifest's `input_schema`.

    `add` queues the records a prediction scores; they are checked `CHECK_ROWS` at a time (and
    before each scrape), in a few NumPy operations for all of them: checking one record at a time
    would cost more than scoring it. Except when `warnings` has just looked at the same few records
    (the same list): then what it found is counted at once, and nothing is queued. `refused` counts
    what the schema refused. Records are added on the scoring thread and on the event loop: the queue
    is a deque, and the counts change under a lock.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        features: list[dict[str, Any]] = schema["features"]
        self.array = schema["kind"] == "array"
        self.names = [str(f["name"]) for f in features]
        self.index = {name: i for i, name in enumerate(self.names)}
        size = len(features)
        self.out_of_range = np.zeros(size, dtype=np.int64)
        self.unseen = np.zeros(size, dtype=np.int64)
        self.nulls = np.zeros(size, dtype=np.int64)
        self.queue: deque[list[dict[str, Any]] | np.ndarray] = deque()
        self.queued = 0  # rows, about: only says when to check
        self.lock = threading.Lock()
        self.ranged = [i for i, f in enumerate(features) if _bound(f.get("min")) and _bound(f.get("max"))]
        self.listed = [i for i, f in enumerate(features) if f["kind"] in ("string", "category") and f.get("categories")]
        self.nullable = np.array([bool(f.get("nullable")) for f in features], dtype=bool)
        # Columns that had no nulls in training: the schema refuses a null there, unless the served
        # pipeline handles it (`nullable_because`: imputed, or the model takes NaN); then it is taken and counted.
        self.imputed = [i for i, f in enumerate(features) if f.get("nullable_because")]
        self.never_null = [i for i, f in enumerate(features) if not f.get("nullable") or f.get("nullable_because")]
        self.low = np.array([features[i]["min"] for i in self.ranged], dtype=np.float64)
        self.high = np.array([features[i]["max"] for i in self.ranged], dtype=np.float64)
        self.low_floats, self.high_floats = self.low.tolist(), self.high.tolist()
        self.ranged_at: Callable[[Sequence[Any]], Sequence[Any]] = (
            itemgetter(*self.ranged) if len(self.ranged) > 1 else lambda row: [row[i] for i in self.ranged]
        )
        ranged = [self.names[i] for i in self.ranged]
        self.ranged_values: Callable[[dict[str, Any]], Any] = itemgetter(*ranged) if ranged else tuple
        # A null reaches the model only in an array whose positions take nulls, as some did in training;
        # a frame's schema refuses it in a column that had none.
        self.nulls_reach = self.array and bool(self.nullable.any()) and not bool(self.nullable.all())
        # The text columns whose values the manifest lists (a category column's schema refuses the others).
        self.text_columns = [
            (i, self.names[i], frozenset(features[i]["categories"]) | {None})
            for i in self.listed
            if features[i]["kind"] == "string"
        ]
        # What `check` counts as a null: where nulls reach an array model, in the columns a frame's pipeline imputes.
        self.nulls_counted = frozenset(self.never_null if self.nulls_reach else () if self.array else self.imputed)
        # An array model's matrix holds the records' numbers exactly as float64 (not rounded to float32):
        # then what `warnings` compares (as float64) is what `check` compares.
        self.exact = not self.array or all(_float64_exact(f.get("dtype")) for f in features)
        self.all_ranged = self.ranged == list(range(size))
        # The last few records `warnings` looked at and what it found there, for `add` to count: (records, found).
        self.last: tuple[list[dict[str, Any]], list[tuple[int, str]]] | None = None

    def add(self, records: list[dict[str, Any]], values: np.ndarray | None = None) -> None:
        """Queue records given to the model (keyed by column, or `{"features": [...]}`) for the next check;
        or `values`, when the model takes them as one matrix: one row per record, one column per feature.
        Records that `warnings` has just looked at (this very list, a few records) are counted at once."""
        last, self.last = self.last, None
        if last is not None and last[0] is records and (values is None or self._exact_matrix(values)):
            self._count_found(last[1], matrix=values is not None)
            return
        self.queue.append(records if values is None else values)
        self.queued += len(records)
        if self.queued >= CHECK_ROWS:
            self.check()

    def check(self) -> None:
        """Count what the queued records hold: numbers out of range, unseen categories, nulls."""
        self.queued = 0
        matrices: list[np.ndarray] = []
        records: list[dict[str, Any]] = []
        while self.queue:
            try:
                item = self.queue.popleft()
            except IndexError:  # another thread took the last ones
                break
            if isinstance(item, np.ndarray):
                matrices.append(item)
            else:
                records += item
        if matrices:
            self._count_matrix(np.concatenate(matrices) if len(matrices) > 1 else matrices[0])
        if records and self.array:
            self._count_matrix(np.array([record["features"] for record in records], dtype=np.float64))  # None -> NaN
        elif records:
            if self.ranged:
                values = np.array(list(map(self.ranged_values, records)), dtype=np.float64)
                self._count_out_of_range(values.reshape(len(records), len(self.ranged)))
            for i, column, seen in self.text_columns:
                unseen = len(records) - sum(map(seen.__contains__, map(itemgetter(column), records)))
                if unseen:
                    with self.lock:
                        self.unseen[i] += unseen
            for i in self.imputed:
                nulls = sum(record.get(self.names[i]) is None for record in records)
                if nulls:
                    with self.lock:
                        self.nulls[i] += nulls

    def _exact_matrix(self, values: np.ndarray) -> bool:
        """Whether `check` would compare `values` as `warnings` compared the records they were made from."""
        return self.exact and values.dtype.char == "d"  # float64

    def _count_found(self, found: list[tuple[int, str]], matrix: bool) -> None:
        """Count what `warnings` found, (feature, kind), as `check` counts the same records (or their
        `matrix`): numbers out of range; unseen text, not in a frame's matrix; nulls where `check` counts them."""
        if not found:
            return
        with self.lock:
            for i, kind in found:
                if kind == "range":
                    self.out_of_range[i] += 1
                elif kind == "unseen":
                    if not matrix or self.array:
                        self.unseen[i] += 1
                elif i in self.nulls_counted:
                    self.nulls[i] += 1

    def _count_matrix(self, values: np.ndarray) -> None:
        """Count out-of-range values, and nulls where they can reach the model, in a matrix of all features."""
        if self.nulls_reach and values.dtype.kind == "f":
            nulls = np.isnan(values[:, self.never_null]).sum(axis=0)
            with self.lock:
                self.nulls[self.never_null] += nulls
        if self.imputed and not self.array and values.dtype.kind == "f":  # a frame fed as one matrix
            nulls = np.isnan(values[:, self.imputed]).sum(axis=0)
            with self.lock:
                self.nulls[self.imputed] += nulls
        if self.ranged:
            self._count_out_of_range(values[:, self.ranged])

    def _count_out_of_range(self, values: np.ndarray) -> None:
        """`values`: one column per ranged feature."""
        outside = self._outside(values).sum(axis=0)
        with self.lock:
            self.out_of_range[self.ranged] += outside

    def _outside(self, values: np.ndarray) -> np.ndarray:
        """Which of `values` (one column per ranged feature) are outside the training range. Compared
        in the values' own float type, a training extreme is equal to itself, not past it; NaN is neither."""
        low, high = self.low, self.high
        if values.dtype.kind == "f":
            low, high = low.astype(values.dtype), high.astype(values.dtype)
        return (values < low) | (values > high)  # type: ignore[no-any-return]

    def warnings(self, records: list[dict[str, Any]]) -> list[str]:
        """What the counters would count in `records`, one line per value naming its field (and its
        record when there are several): a number outside the training range, a value a listed text
        column never had, a null where training had none. Records are as the schema gave them. For a
        few records, what it found is kept for `add` to count, if `add` gets the same list next."""
        found: list[tuple[int, int, str, str]] = []  # (record, feature, what, kind)
        if self.array:
            rows = [record["features"] for record in records]
            maybe_null = True
            if self.ranged and len(rows) <= FEW_ROWS:
                outside, inside = self._outside_few(
                    rows if self.all_ranged else list(map(self.ranged_at, rows)), lambda row, i: rows[row][i]
                )
                found += outside
                maybe_null = not (inside and self.all_ranged)  # else every value compared with numbers: no null
            elif self.ranged:
                values = np.array(rows, dtype=np.float64)[:, self.ranged]  # None -> NaN
                found += self._outside_lines(values, lambda row, i: rows[row][i])
            if maybe_null and any(None in row for row in rows):
                found += [
                    (row, i, "null", "null") for i in self.never_null for row, r in enumerate(rows) if r[i] is None
                ]
        else:
            if self.ranged and len(records) <= FEW_ROWS:
                values = [self.ranged_values(record) for record in records]
                if len(self.ranged) == 1:
                    values = [(value,) for value in values]  # itemgetter of one name gives the value itself
                found += self._outside_few(values, lambda row, i: records[row][self.names[i]])[0]
            elif self.ranged:
                values = np.array(list(map(self.ranged_values, records)), dtype=np.float64)
                values = values.reshape(len(records), len(self.ranged))
                found += self._outside_lines(values, lambda row, i: records[row][self.names[i]])
            for i, column, seen in self.text_columns:
                found += [
                    (row, i, f"{r[column]!r} is not a value seen in training", "unseen")
                    for row, r in enumerate(records)
                    if r[column] not in seen
                ]
            for i in self.never_null:
                found += [(row, i, "null", "null") for row, r in enumerate(records) if r.get(self.names[i]) is None]
        self.last = (records, [(i, kind) for _, i, _, kind in found]) if len(records) <= FEW_ROWS else None
        if not found:
            return []
        lines = []
        for row, i, what, _ in sorted(found):
            what = "null, but training had no nulls here" if what == "null" else what
            record = f"record {row}: " if len(records) > 1 else ""
            lines.append(f"{record}field `{self.names[i]}`: {what}")
        return lines

    def _inside(self, values: Sequence[Any]) -> bool:
        """Whether every one of `values` (one per ranged feature) is a number inside the training range."""
        try:  # compared exactly: then inside as float64 too (rounding keeps the order)
            return not any(map(operator.lt, values, self.low_floats)) and not any(
                map(operator.gt, values, self.high_floats)
            )
        except TypeError:  # a null among them
            return False

    def _outside_few(
        self, rows: list[Sequence[Any]], value_at: Callable[[int, int], Any]
    ) -> tuple[list[tuple[int, int, str, str]], bool]:
        """`_outside_lines` for a few records, in Python: as NumPy compares them (as float64; a null or NaN
        is never outside), without the cost of building arrays for a handful of values; and whether
        every record was inside, compared value by value with numbers (so it holds no null)."""
        found = []
        inside = True
        for row, values in enumerate(rows):
            if self._inside(values):
                continue
            inside = False  # outside, or a null among them: compared one by one below
            for column, (value, low, high) in enumerate(zip(values, self.low_floats, self.high_floats, strict=True)):
                if value is None:
                    continue
                number = float(value)
                if number < low or number > high:
                    i = self.ranged[column]
                    bounds = f"{self.low[column]:g} to {self.high[column]:g}"
                    found.append((row, i, f"{value_at(row, i)!r} is outside the training range {bounds}", "range"))
        return found, inside

    def _outside_lines(
        self, values: np.ndarray, value_at: Callable[[int, int], Any]
    ) -> list[tuple[int, int, str, str]]:
        outside = self._outside(values)
        if not outside.any():
            return []
        found = []
        for row, column in zip(*np.nonzero(outside), strict=True):
            i = self.ranged[column]
            low, high = self.low[column], self.high[column]
            what = f"{value_at(row, i)!r} is outside the training range {low:g} to {high:g}"
            found.append((int(row), i, what, "range"))
        return found

    def refused(self, path: str, errors: Iterable[dict[str, Any]]) -> None:
        """Count what the schema refused in a prediction request: nulls, unknown categories, numbers past their dtype."""
        if path not in PREDICTION_PATHS:
            return
        for error in errors:
            i = self._feature_at(error.get("loc", ()))
            if i is None:
                continue
            kind = "null" if "input" in error and error["input"] is None else REFUSED.get(error.get("type", ""))
            with self.lock:
                if kind == "null" and not self.nullable[i]:
                    self.nulls[i] += 1
                elif kind == "unseen" and i in self.listed:
                    self.unseen[i] += 1
                elif kind == "range" and i in self.ranged:
                    self.out_of_range[i] += 1

    def _feature_at(self, loc: Sequence[Any]) -> int | None:
        """The feature an error's location names: ("body", ["records", 3,] "age") or (..., "features", 2)."""
        parts = [part for part in loc if part != "body"]
        if len(parts) >= 2 and parts[0] == "records" and isinstance(parts[1], int):
            parts = parts[2:]
        if self.array:
            found = len(parts) == 2 and parts[0] == "features" and isinstance(parts[1], int)
            return parts[1] if found and 0 <= parts[1] < len(self.names) else None
        return self.index.get(parts[0]) if len(parts) == 1 and isinstance(parts[0], str) else None

    def collect(self) -> Iterator[Metric]:
        self.check()
        kinds = (
            ("out_of_range", "Numbers outside the training range.", self.out_of_range, self.ranged),
            ("unseen_category", "Values not among the training categories.", self.unseen, self.listed),
            ("null", "Nulls or missing values in columns that had none in training.", self.nulls, self.never_null),
        )
        for name, documentation, counts, features in kinds:
            family = CounterMetricFamily(f"nb2prod_drift_{name}", documentation, labels=["feature"])
            for i in features:
                family.add_metric([self.names[i]], int(counts[i]))
            yield family


def _float64_exact(dtype: Any) -> bool:
    """Whether an array of `dtype` holds JSON numbers as float64 holds them (float32 rounds them)."""
    try:
        kind = np.dtype(dtype or "float64")
    except TypeError:
        return False
    return kind.kind in "iub" or kind == np.float64


def _bound(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""Score a table with a converted service: the same validation and the same answers as its `/predict/batch`.

Each chunk is read, turned into records by column kind (`tables`), validated one record at a time
by the service's own `schemas.Record`, and scored by its `model.Predictor`. A row that fails
validation, or that the model cannot score, is a reject: with `rejects`, it goes there with the
reason in the service's words and the rest is scored; without, the first one stops the run and
nothing is written. The output is written beside its final path and renamed into place at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from nb2prod.batch.service import BatchError, LoadedService, load_service
from nb2prod.batch.tables import TableWriter, cell_value, read_chunks, table_format

ROW = "row"  # 1-based row number in the input, when no --id column is named
Progress = Callable[[int], None]  # rows read so far


@dataclass(frozen=True)
class BatchResult:
    output: Path
    rejects: Path | None
    rows: int
    scored: int
    rejected: int
    ignored_columns: tuple[str, ...]


@dataclass(frozen=True)
class Reject:
    row: int
    key: Any
    error: str


def predict(
    out: Path,
    source: Path,
    output: Path,
    *,
    rejects: Path | None = None,
    id_column: str | None = None,
    chunk_rows: int = 10_000,
    force: bool = False,
    progress: Progress | None = None,
) -> BatchResult:
    """Score every row of `source` with the service in `out`; write answers to `output`."""
    for path, what in ((output, "output"), (rejects, "--rejects")):
        if path is not None:
            table_format(path, what)
            if path.exists() and not force:
                raise BatchError(f"{path} exists; nb2prod predict does not overwrite it.", hint="Pass --force.")
    service = load_service(out)
    partial = {path: path.with_name(f".{os.getpid()}.partial.{path.name}") for path in (output, rejects) if path}
    writers = {path: TableWriter(tmp) for path, tmp in partial.items()}
    rows = scored = rejected = 0
    ignored: tuple[str, ...] = ()
    try:
        for number, chunk in enumerate(read_chunks(source, chunk_rows)):
            if number == 0:
                ignored = _check_columns(service, chunk, source, id_column)
            first_row = rows + 1
            rows += len(chunk)
            answers, bad = _score_chunk(service, chunk, first_row, id_column)
            if bad and rejects is None:
                raise BatchError(
                    f"{source}: row {bad[0].row}{_key(bad[0].key, id_column)}: {bad[0].error}",
                    hint="Fix the row, or pass --rejects FILE to set bad rows aside and score the rest.",
                )
            writers[output].write(answers)
            if rejects is not None and bad:
                writers[rejects].write(_rejects_frame(bad, id_column))
            scored += len(answers)
            rejected += len(bad)
            if progress is not None:
                progress(rows)
        if rows == 0:
            writers[output].write(_answers_frame(service, [], id_column))
        if rejects is not None and rejected == 0:
            writers[rejects].write(_rejects_frame([], id_column))
        for writer in writers.values():
            writer.close()
        for path, tmp in partial.items():
            if tmp.exists():
                tmp.replace(path)
    finally:
        for writer in writers.values():
            writer.close()
        for tmp in partial.values():
            tmp.unlink(missing_ok=True)
    return BatchResult(output, rejects, rows, scored, rejected, ignored)


def _key(key: Any, id_column: str | None) -> str:
    return f" ({id_column} {key})" if id_column else ""


def _check_columns(service: LoadedService, chunk: pd.DataFrame, source: Path, id_column: str | None) -> tuple[str, ...]:
    columns = [str(c) for c in chunk.columns]
    if id_column is not None and id_column not in columns:
        raise BatchError(f"{source} has no column `{id_column}` (--id).", hint=f"Its columns: {', '.join(columns)}.")
    needed = [f.name for f in service.features]
    missing = [name for name in needed if name not in columns]
    if missing:
        raise BatchError(
            f"{source} lacks the column(s) {', '.join(f'`{m}`' for m in missing)} that the model takes.",
            hint=f"The model takes: {', '.join(needed)}.",
        )
    return tuple(c for c in columns if c not in needed and c != id_column)


def _records(service: LoadedService, chunk: pd.DataFrame) -> list[dict[str, Any]]:
    columns = {f.name: [cell_value(v, f.kind) for v in chunk[f.name].tolist()] for f in service.features}
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    if service.array:
        return [{"features": list(row.values())} for row in rows]
    return rows


def _score_chunk(
    service: LoadedService, chunk: pd.DataFrame, first_row: int, id_column: str | None
) -> tuple[pd.DataFrame, list[Reject]]:
    keys = chunk[id_column].tolist() if id_column else list(range(first_row, first_row + len(chunk)))
    valid: list[tuple[int, Any, dict[str, Any]]] = []
    bad: list[Reject] = []
    for offset, (key, record) in enumerate(zip(keys, _records(service, chunk), strict=True)):
        try:
            checked = service.record.model_validate(record).model_dump(by_alias=True)
        except ValidationError as err:
            bad.append(Reject(first_row + offset, key, _validation_message(err, service)))
            continue
        valid.append((first_row + offset, key, checked))
    answers: list[tuple[Any, Any, dict[str, float] | None]] = []
    for row, key, prediction, probabilities, error in _scored(service, valid):
        if error is not None:
            bad.append(Reject(row, key, error))
        else:
            answers.append((key, prediction, probabilities))
    bad.sort(key=lambda reject: reject.row)
    return _answers_frame(service, answers, id_column), bad


def _scored(
    service: LoadedService, rows: list[tuple[int, Any, dict[str, Any]]]
) -> list[tuple[int, Any, Any, dict[str, float] | None, str | None]]:
    """Score `rows` together; when the model refuses them, halve until each refusal is one row."""
    if not rows:
        return []
    try:
        predictions, probabilities = service.predictor.predict([record for _, _, record in rows])
    except service.prediction_error as err:
        if len(rows) == 1:
            return [(rows[0][0], rows[0][1], None, None, str(err))]
        middle = len(rows) // 2
        return _scored(service, rows[:middle]) + _scored(service, rows[middle:])
    return [
        (row, key, prediction, probabilities[i] if probabilities else None, None)
        for i, ((row, key, _), prediction) in enumerate(zip(rows, predictions, strict=True))
    ]


def _validation_message(err: ValidationError, service: LoadedService) -> str:
    """The service's 422 message: the field and pydantic's words (an array model's column by name)."""
    first = err.errors(include_url=False)[0]
    loc = list(first["loc"])
    if service.array and len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
        loc = [service.features[loc[1]].name, *loc[2:]]
    field = ".".join(str(part) for part in loc) or "record"
    return f"invalid field `{field}`: {first['msg']}"


def _answers_frame(
    service: LoadedService, answers: list[tuple[Any, Any, dict[str, float] | None]], id_column: str | None
) -> pd.DataFrame:
    labels = [str(c) for c in service.classes] if service.classes is not None else []
    has_proba = any(p is not None for _, _, p in answers) or (not answers and bool(labels))
    data: dict[str, list[Any]] = {id_column or ROW: [key for key, _, _ in answers]}
    data["prediction"] = [prediction for _, prediction, _ in answers]
    if has_proba:
        for label in labels:
            data[f"probability_{label}"] = [p[label] if p else None for _, _, p in answers]
    return pd.DataFrame(data)


def _rejects_frame(bad: list[Reject], id_column: str | None) -> pd.DataFrame:
    data: dict[str, list[Any]] = {ROW: [r.row for r in bad]}
    if id_column:
        data[id_column] = [r.key for r in bad]
    data["error"] = [r.error for r in bad]
    return pd.DataFrame(data)

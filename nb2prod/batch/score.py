"""Score a table with a converted service: the same validation and the same answers as its `/predict`.

Each chunk is read, its CSV text turned into values by column kind (`tables`), and given whole to
the service's own `predict_frame` (its `frame.py`), which checks the rows column by column with the
schema's rules, words refusals as the service does, and scores the valid rows in one model call. A
row that fails validation, or that the model cannot score, is a reject: with `rejects`, it goes
there with the reason and the rest is scored; without, the first one stops the run and nothing is
written. The output is written beside its final path and renamed into place at the end.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nb2prod.batch.service import BatchError, LoadedService, load_service
from nb2prod.batch.tables import TableWriter, read_chunks, table_format, typed_column

ROW = "row"  # 1-based row number in the input, when no --id column is named
Progress = Callable[[int], None]  # rows scored so far
ARRAY_FIELD = re.compile(r"^invalid field `features\.(\d+)`")


@dataclass(frozen=True)
class BatchResult:
    output: Path
    rejects: Path | None
    rows: int
    scored: int
    rejected: int
    ignored_columns: tuple[str, ...]
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


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
    started = time.perf_counter()
    check_outputs(output, rejects, force)
    service = load_service(out)
    if not source.is_file():
        raise BatchError(f"{source}: no such file.", hint="Pass the CSV or Parquet file to score.")
    text = table_format(source, "input") == "csv"
    with Outputs(output, rejects) as outputs:
        rows = 0
        ignored: tuple[str, ...] = ()
        for number, chunk in enumerate(read_chunks(source, chunk_rows)):
            if number == 0:
                ignored = check_columns(service, chunk.columns, source, id_column)
            answers, bad = score_chunk(service, chunk, rows + 1, id_column, text=text)
            rows += len(chunk)
            outputs.write(answers, bad, source, id_column)
            if progress is not None:
                progress(rows)
        outputs.finish(service, id_column)
    return BatchResult(output, rejects, rows, outputs.scored, outputs.rejected, ignored, time.perf_counter() - started)


def check_outputs(output: Path, rejects: Path | None, force: bool) -> None:
    for path, what in ((output, "output"), (rejects, "--rejects")):
        if path is not None:
            table_format(path, what)
            if path.exists() and not force:
                raise BatchError(f"{path} exists; nb2prod predict does not overwrite it.", hint="Pass --force.")


class Outputs:
    """The answers and the rejects, written beside their final paths and renamed into place by `finish`."""

    def __init__(self, output: Path, rejects: Path | None) -> None:
        self.output, self.rejects = output, rejects
        self.partial = {
            path: path.with_name(f".{os.getpid()}.partial.{path.name}") for path in (output, rejects) if path
        }
        self.writers = {path: TableWriter(tmp) for path, tmp in self.partial.items()}
        self.scored = self.rejected = 0

    def __enter__(self) -> Outputs:
        return self

    def write(self, answers: pd.DataFrame, bad: pd.DataFrame, source: Path, id_column: str | None) -> None:
        if len(bad) and self.rejects is None:
            first = bad.iloc[0]
            key = f" ({id_column} {first[id_column]})" if id_column else ""
            raise BatchError(
                f"{source}: row {first[ROW]}{key}: {first['error']}",
                hint="Fix the row, or pass --rejects FILE to set bad rows aside and score the rest.",
            )
        self.writers[self.output].write(answers)
        if self.rejects is not None and len(bad):
            self.writers[self.rejects].write(bad)
        self.scored += len(answers)
        self.rejected += len(bad)

    def finish(self, service: LoadedService, id_column: str | None) -> None:
        if self.scored == 0:
            self.writers[self.output].write(empty_answers(service, id_column))
        if self.rejects is not None and self.rejected == 0:
            self.writers[self.rejects].write(empty_rejects(id_column))
        for writer in self.writers.values():
            writer.close()
        for path, tmp in self.partial.items():
            if tmp.exists():
                tmp.replace(path)

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            writer.close()
        for tmp in self.partial.values():
            tmp.unlink(missing_ok=True)


def check_columns(service: LoadedService, columns: Any, source: Path, id_column: str | None) -> tuple[str, ...]:
    names = [str(c) for c in columns]
    if id_column is not None and id_column not in names:
        raise BatchError(f"{source} has no column `{id_column}` (--id).", hint=f"Its columns: {', '.join(names)}.")
    needed = [f.name for f in service.features]
    missing = [name for name in needed if name not in names]
    if missing:
        raise BatchError(
            f"{source} lacks the column(s) {', '.join(f'`{m}`' for m in missing)} that the model takes.",
            hint=f"The model takes: {', '.join(needed)}.",
        )
    return tuple(c for c in names if c not in needed and c != id_column)


def score_chunk(
    service: LoadedService, chunk: pd.DataFrame, first_row: int, id_column: str | None, *, text: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(answers, rejects) for one chunk whose first row is row `first_row` of the input."""
    chunk = chunk.reset_index(drop=True)
    if text:
        features = pd.DataFrame({f.name: typed_column(chunk[f.name], f.kind) for f in service.features})
    else:
        features = chunk[[f.name for f in service.features]]
    scored = service.predict_frame(features)
    bad = scored["error"].notna().to_numpy()
    rows = pd.RangeIndex(first_row, first_row + len(chunk))
    answers = pd.DataFrame({id_column or ROW: chunk[id_column] if id_column else rows.to_series(index=chunk.index)})
    for name in scored.columns:
        if name != "error":
            answers[name] = scored[name]
    data: dict[str, Any] = {ROW: rows[bad]}
    if id_column:
        data[id_column] = chunk[id_column].to_numpy()[bad]
    errors = scored["error"].to_numpy()[bad]
    data["error"] = [_column_named(service, e) for e in errors] if service.array else errors
    return answers[~bad].reset_index(drop=True), pd.DataFrame(data)


def _column_named(service: LoadedService, error: str) -> str:
    """An array model's refusal names the column (`x2`), not the position in `features`."""
    found = ARRAY_FIELD.match(error)
    if found is None or int(found[1]) >= len(service.features):
        return error
    return f"invalid field `{service.features[int(found[1])].name}`" + error[found.end() :]


def empty_answers(service: LoadedService, id_column: str | None) -> pd.DataFrame:
    data: dict[str, list[Any]] = {id_column or ROW: [], "prediction": []}
    if service.has_proba:
        for label in service.classes or []:
            data[f"probability_{label}"] = []
    return pd.DataFrame(data)


def empty_rejects(id_column: str | None) -> pd.DataFrame:
    return pd.DataFrame({ROW: [], **({id_column: []} if id_column else {}), "error": []})

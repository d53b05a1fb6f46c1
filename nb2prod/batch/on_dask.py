"""`nb2prod predict --engine dask`: the same scoring, one partition per task on a Dask cluster.

The input (a CSV or Parquet file, a glob or a folder of them) is read by `dask.dataframe` into
partitions in file order. Each worker scores whole partitions with the service's `predict_frame`
(`score.score_chunk`, as the local engine scores a chunk); the service is loaded once per worker
process, at its first partition (`service.load_service` keeps it). The answers come back to this
process partition by partition, in order, and are written there: one CSV file, or a Parquet folder
with one file per partition, so row numbers are counted right across partitions. Without a
scheduler address, a `LocalCluster` with one single-threaded worker process per core is started
and stopped. On a remote cluster, every worker needs nb2prod and the service's dependencies
installed and OUT at the same path.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from nb2prod.batch.score import (
    ROW,
    BatchResult,
    Progress,
    check_columns,
    check_outputs,
    empty_answers,
    empty_rejects,
    score_chunk,
)
from nb2prod.batch.service import BatchError, LoadedService, load_service
from nb2prod.batch.tables import CSV_SUFFIXES, PARQUET_SUFFIXES, TableWriter, table_format

INSTALL = 'pip install "nb2prod[dask]"'


def predict(
    out: Path,
    source: str,
    output: Path,
    *,
    rejects: Path | None = None,
    id_column: str | None = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> BatchResult:
    """Score every row of `source` on a Dask cluster with the service in `out`; write answers to `output`."""
    started = time.perf_counter()
    dd, distributed, delayed = _dask()
    check_outputs(output, rejects, force)
    service = load_service(out.resolve())
    files, kind = input_files(source)
    text = kind == "csv"
    if text:
        frame = dd.read_csv(files, dtype=str, keep_default_na=False, sep="\t" if files[0].endswith(".tsv") else ",")
    else:
        frame = dd.read_parquet(files)
    ignored = check_columns(service, frame.columns, Path(source), id_column)
    frame = frame[list(dict.fromkeys([f.name for f in service.features] + ([id_column] if id_column else [])))]
    if partitions:
        frame = frame.repartition(npartitions=partitions)
    with _client(distributed, scheduler, workers) as client:
        score = delayed(_score_part)
        futures = client.compute([score(part, str(out.resolve()), id_column, text) for part in frame.to_delayed()])
        rows, scored, rejected = _write(service, futures, output, rejects, id_column, Path(source), progress)
    return BatchResult(output, rejects, rows, scored, rejected, ignored, time.perf_counter() - started)


def _dask() -> tuple[Any, Any, Any]:
    try:
        import dask.dataframe as dd
        import distributed
        from dask import delayed
    except ImportError as err:
        raise BatchError(
            f"--engine dask needs Dask, which is not installed here ({err.name} is missing).",
            hint=f"Install the extra: {INSTALL}",
        ) from err
    return dd, distributed, delayed


def input_files(source: str) -> tuple[list[str], str]:
    """The files `source` names (a file, a glob or a folder), in name order, and their format."""
    path = Path(source)
    if path.is_dir():
        found = sorted(str(p) for p in path.iterdir() if p.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES))
    else:
        found = sorted(glob.glob(source)) if glob.has_magic(source) else ([source] if path.is_file() else [])
    if not found:
        raise BatchError(f"{source}: no CSV or Parquet file there.", hint="Pass a file, a glob or a folder of them.")
    kinds = {table_format(Path(f), "input") for f in found}
    if len(kinds) > 1:
        raise BatchError(f"{source} holds both CSV and Parquet files.", hint="Score one format at a time.")
    return found, kinds.pop()


@contextmanager
def _client(distributed: Any, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    if scheduler is not None:
        with distributed.Client(scheduler) as client:
            yield client
        return
    count = workers or os.cpu_count() or 1
    with (
        distributed.LocalCluster(
            n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _score_part(part: pd.DataFrame, out: str, id_column: str | None, text: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """On a worker: one partition's (answers, rejects), rows counted from 1 within the partition."""
    return score_chunk(load_service(Path(out)), part, 1, id_column, text=text)


def _write(
    service: LoadedService,
    futures: list[Any],
    output: Path,
    rejects: Path | None,
    id_column: str | None,
    source: Path,
    progress: Progress | None,
) -> tuple[int, int, int]:
    """Gather the partitions in order; write them with row numbers counted across partitions."""
    partial = {path: path.with_name(f".{os.getpid()}.partial.{path.name}") for path in (output, rejects) if path}
    writers = {path: _Writer(tmp) for path, tmp in partial.items()}
    rows = scored = rejected = 0
    try:
        for future in futures:
            answers, bad = future.result()
            future.release()
            count = len(answers) + len(bad)
            if not id_column:
                answers[ROW] += rows
            bad[ROW] += rows
            if len(bad) and rejects is None:
                first = bad.iloc[0]
                key = f" ({id_column} {first[id_column]})" if id_column else ""
                raise BatchError(
                    f"{source}: row {first[ROW]}{key}: {first['error']}",
                    hint="Fix the row, or pass --rejects FILE to set bad rows aside and score the rest.",
                )
            writers[output].write(answers)
            if rejects is not None:
                writers[rejects].write(bad)
            rows, scored, rejected = rows + count, scored + len(answers), rejected + len(bad)
            if progress is not None:
                progress(rows)
        if scored == 0:
            writers[output].write(empty_answers(service, id_column), empty=True)
        if rejects is not None and rejected == 0:
            writers[rejects].write(empty_rejects(id_column), empty=True)
        for writer in writers.values():
            writer.close()
        for path, tmp in partial.items():
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            tmp.replace(path)
    finally:
        for writer in writers.values():
            writer.close()
        for tmp in partial.values():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink(missing_ok=True)
    return rows, scored, rejected


class _Writer:
    """One CSV file (`TableWriter`), or a Parquet folder with one file per partition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parquet = table_format(path, "output") == "parquet"
        self.table = None if self.parquet else TableWriter(path)
        self.parts = 0

    def write(self, frame: pd.DataFrame, empty: bool = False) -> None:
        if self.table is not None:
            self.table.write(frame)  # an empty frame: the header, written at close when nothing else was
            return
        if frame.empty and not empty:
            return
        self.path.mkdir(exist_ok=True)
        frame.to_parquet(self.path / f"part.{self.parts:05d}.parquet", index=False)
        self.parts += 1

    def close(self) -> None:
        if self.table is not None:
            self.table.close()

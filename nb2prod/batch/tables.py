"""CSV and Parquet in and out, a chunk at a time, so memory stays bounded whatever the file's size.

CSV cells are text; each is turned into the JSON value the service would receive, by the kind
of its column: an empty cell is null; integer columns take whole numbers (`3` or `3.0`); number
columns take anything `float()` reads but NaN (Infinity too, which the schema then refuses, as the
service does); boolean columns take true/false/1/0 in any case; text stays text. A cell that does
not read as its kind is passed on as text, and the schema names the problem. Each distinct text of
a column is read once (`typed_column`), and a column whose cells all read as its kind becomes a
typed column, which the service's `predict_frame` checks without looking at each value.
Parquet columns are typed already; their values are passed on as they are.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nb2prod.batch.service import BatchError

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
WHOLE = re.compile(r"[+-]?\d+(\.0*)?")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def table_format(path: Path, what: str) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise BatchError(
        f"{what} {path}: unknown format.",
        hint=f"Use a file ending in {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}.",
    )


def read_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, `rows` at a time: CSV as text (empty cells as ""), Parquet as stored."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file.", hint="Pass the CSV or Parquet file to score.")
    try:
        if table_format(path, "input") == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas()
            return
        separator = "\t" if path.name.lower().endswith(".tsv") else ","
        yield from pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=rows, sep=separator)
    except (OSError, ValueError) as err:
        raise BatchError(f"{path}: cannot read it: {err}", hint="Check that the file is a valid table.") from err


def cell_value(value: Any, kind: str) -> Any:
    """The JSON value the service would get for one cell of a column of `kind`."""
    if isinstance(value, str):
        return _from_text(value, kind)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):  # a NumPy scalar from Parquet
        value = value.item()
    return value


def _from_text(text: str, kind: str) -> Any:
    if text == "":
        return None
    if kind == "integer" and WHOLE.fullmatch(text.strip()):
        return int(float(text)) if "." in text else int(text)
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return text if number != number else number  # NaN is not a number JSON can carry
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in TRUE | FALSE:
            return lowered in TRUE
    return text


def typed_column(column: pd.Series, kind: str) -> pd.Series:
    """A CSV column's cells as the values the service would get (`cell_value`), each distinct text read once."""
    codes, texts = pd.factorize(column, use_na_sentinel=False)
    values = [cell_value(text, kind) for text in texts.tolist()]
    return pd.Series(_array(values, kind)[codes], index=column.index, name=column.name)


def _array(values: list[Any], kind: str) -> Any:
    """`values` in a typed array when they all are of the column's kind (or null), else as objects."""
    present = [v for v in values if v is not None]
    has_null = len(present) < len(values)
    if kind == "integer" and all(type(v) is int and -(2**63) <= v < 2**63 for v in present):
        return pd.array(values, dtype="Int64") if has_null else np.array(values, dtype="int64")
    if kind == "number" and all(type(v) is float for v in present):
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if kind == "boolean" and not has_null and all(type(v) is bool for v in values):
        return np.array(values, dtype=bool)
    objects = np.empty(len(values), dtype=object)
    objects[:] = values
    return objects


class TableWriter:
    """Rows appended chunk by chunk into a CSV or Parquet file (created at the first rows, or at
    `close` when there were none)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = table_format(path, "output")
        self._parquet: Any = None
        self._csv: Any = None
        self._file: Any = None
        self._columns: pd.DataFrame | None = None  # an empty chunk, kept for the header

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            self._columns = frame if self._columns is None else self._columns
            return
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        if self._file is None:
            opener: Any = gzip.open if self.path.name.lower().endswith(".gz") else open
            self._file = opener(self.path, "wt", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file, delimiter="\t" if self.path.name.lower().endswith(".tsv") else ",")
            self._csv.writerow(frame.columns)
        self._csv.writerows(frame.itertuples(index=False, name=None))

    def close(self) -> None:
        if self._parquet is None and self._file is None and self._columns is not None:
            if self.format == "parquet":
                self._columns.to_parquet(self.path, index=False)
            else:
                self._columns.to_csv(self.path, index=False)
        if self._parquet is not None:
            self._parquet.close()
        if self._file is not None:
            self._file.close()
        self._parquet = self._file = self._columns = None

"""`nb2prod predict`'s reading side: CSV text to values by column kind, typed where it can be, and the
Dask engine's clear message when Dask is not installed."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from nb2prod.batch import on_dask
from nb2prod.batch.service import BatchError
from nb2prod.batch.tables import cell_value, typed_column


@pytest.mark.parametrize(
    ("kind", "texts", "dtype"),
    [
        ("integer", ["3", "3.0", "-7", "3"], "int64"),
        ("integer", ["3", "", "12"], "Int64"),
        ("integer", ["3", "3.5", ""], "object"),  # 3.5 stays text: the schema names it
        ("number", ["1.5", "", "2", "inf"], "float64"),
        ("number", ["1.5", "nan"], "object"),  # NaN is no number JSON carries; it stays text, and is refused
        ("boolean", ["true", "FALSE", "1", "no"], "bool"),
        ("boolean", ["true", ""], "object"),
        ("string", ["Oslo", "", "Oslo"], None),  # object, or pandas' own text dtype
    ],
)
def test_csv_text_reads_as_the_service_would_get_each_cell(kind: str, texts: list[str], dtype: str | None) -> None:
    column = typed_column(pd.Series(texts, dtype=object), kind)
    assert dtype is None or str(column.dtype) == dtype
    expected = [cell_value(text, kind) for text in texts]
    got = [None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v for v in column.tolist()]
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_the_dask_engine_without_dask_installed_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(BatchError) as raised:
        on_dask._dask()
    assert "distributed" in str(raised.value)
    assert 'pip install "nb2prod[dask]"' in raised.value.hint

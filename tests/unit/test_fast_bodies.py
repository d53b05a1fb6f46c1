"""The generated service reads request bodies without FastAPI's routing: same values, same errors.

`bodies.parse_json` must give what `json.loads` gives (FastAPI's parser), and the prediction
endpoints must answer bad bodies with the same statuses whether they are reached through the
fast path or through the router.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.stand_in import serve_in_process

TRICKY = [
    b'{"a": 1, "a": 2}',
    b'{"x": 18446744073709551615}',
    b'{"x": 18446744073709551616}',
    b'{"x": -9223372036854775809}',
    b'{"x": 100000000000000000000000000000}',
    b'{"x": 0.1234567890123456789}',
    b'{"x": NaN, "y": Infinity, "z": -Infinity}',
    b'{"x": 1e400}',
    b'{"x": "\\ud800"}',
    b'{"x": -0, "y": 1E2, "z": 5e-324}',
    b"\xef\xbb\xbf{}",
    '{"x": "é"}'.encode("utf-16"),
]
MALFORMED = [b"{not json", b'{"x": 1,}', b"[1, 2", b'{"x": 01}', b"\xff\xfe\xfd"]


@pytest.fixture(scope="module")
def app_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return serve_in_process("iris_array", tmp_path_factory.mktemp("iris"))


@pytest.fixture(scope="module")
def bodies(app_module: ModuleType) -> ModuleType:
    import sys

    return sys.modules[app_module.__name__.rsplit(".", 1)[0] + ".bodies"]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("data", TRICKY, ids=range(len(TRICKY)))
def test_parse_json_gives_what_json_loads_gives(bodies: ModuleType, data: bytes) -> None:
    assert same(bodies.parse_json(data), json.loads(data))


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_parse_json_fails_as_json_loads_fails(bodies: ModuleType, data: bytes) -> None:
    with pytest.raises(ValueError) as ours:
        bodies.parse_json(data)
    with pytest.raises(ValueError) as theirs:
        json.loads(data)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "application/json", 422),
        (b"{not json", "application/json", 400),
        (b'{"features": [1, 2, 3, 4]}', "text/plain", 422),
        (b'{"features": [1, 2, 3, 4]}', None, 422),
        (b'{"features": [1, 2, 3, 4]}', "application/vnd.api+json", 200),
        (b'{"features": [1, 2, 3, 4]}', "application/json; charset=utf-8", 200),
        (b'{"features": [NaN, 2, 3, 4]}', "application/json", 422),
        (b"\xff\xfe\xfd", "application/json", 400),
    ],
)
def test_bodies_get_the_answers_fastapi_gives(
    app_module: ModuleType, tmp_path: Path, body: bytes, content_type: str | None, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with TestClient(app_module.app, raise_server_exceptions=False) as client:
        response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    # FastAPI answers a body it cannot decode with {"detail": ...}; the fast path keeps that answer.
    assert bool(response.json().keys() & {"error", "detail"}) == (status != 200)

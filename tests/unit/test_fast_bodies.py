"""The generated service reads request bodies without FastAPI's routing: same values, same errors.

`bodies.parse_json` must give what `json.loads` gives (FastAPI's parser), and the prediction
endpoints must give the same answers, bad bodies included, whether they are reached through their
own lane (`fastpath.Service`) or through FastAPI's router.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
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


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
JSONISH = st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNIity\\u \t', max_size=30)


def outcome(parse: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "value", parse(data)
    except ValueError as err:
        return "error", (type(err), str(err))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=JSON_VALUES, ascii_only=st.booleans(), noise=st.binary(max_size=24), jsonish=JSONISH)
def test_parse_json_agrees_with_json_loads_on_any_input(
    bodies: ModuleType, value: Any, ascii_only: bool, noise: bytes, jsonish: str
) -> None:
    for data in (json.dumps(value, ensure_ascii=ascii_only).encode(), noise, jsonish.encode()):
        ours, theirs = outcome(bodies.parse_json, data), outcome(json.loads, data)
        assert ours[0] == theirs[0], data
        assert same(ours[1], theirs[1]) if ours[0] == "value" else ours[1] == theirs[1], data


def validated(bodies: ModuleType, data: Any) -> tuple[str, Any]:
    try:
        return "value", bodies.Record.model_validate(data, from_attributes=True).model_dump(by_alias=True)
    except ValueError as err:
        return "error", err.errors(include_url=False)  # type: ignore[attr-defined]


def record_outcome(bodies: ModuleType, data: Any) -> tuple[str, Any]:
    try:
        return "value", bodies.record_of(data)
    except ValueError as err:
        return "error", err.errors(include_url=False)  # type: ignore[attr-defined]


def identical(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down, and -0.0 apart from 0.0."""
    return repr(a) == repr(b) and same(a, b)


FOUR = [5.1, 3.5, 1.4, 0.2]
RECORDS = [
    {"features": FOUR},
    {"features": [5, 3, 1, 0]},
    {"features": [-0.0, 0, -0, 5e-324]},
    {"features": [2**53, -(2**53), 2**52 + 1, 1.0]},
    {"features": [2**53 + 1, 1.0, 2.0, 3.0]},
    {"features": [2**63 + 1, 2**64, -(2**70) - 1, 1.0]},
    {"features": [2**1100, 1.0, 2.0, 3.0]},
    {"features": [1e308, 1e308, 1e308, 1.0]},  # every value finite, their sum is not
    {"features": [float("nan"), 1.0, 2.0, 3.0]},
    {"features": [float("inf"), 1.0, 2.0, 3.0]},
    {"features": [float("-inf"), float("inf"), 2.0, 3.0]},
    {"features": [True, 1.0, 2.0, 3.0]},
    {"features": [False, 0, 1, 2]},
    {"features": [None, 1.0, 2.0, 3.0]},
    {"features": ["1.0", 1.0, 2.0, 3.0]},
    {"features": [[1.0], 1.0, 2.0, 3.0]},
    {"features": [{"x": 1}, 1.0, 2.0, 3.0]},
    {"features": FOUR[:3]},
    {"features": [*FOUR, 1.0]},
    {"features": []},
    {"features": tuple(FOUR)},
    {"features": None},
    {"features": "5.1, 3.5, 1.4, 0.2"},
    {"feature": FOUR},
    {"features": FOUR, "extra": 1},
    {},
    [FOUR],
    FOUR,
    None,
    "features",
    1.0,
]


def test_a_plain_array_record_is_taken_as_the_schema_takes_it(bodies: ModuleType) -> None:
    """`record_of` skips pydantic for a plain record: the same values (floats, -0.0 kept, integers made
    floats) or the same errors as `Record.model_validate(...).model_dump()`, on every edge case."""
    plain = 0
    calls: list[Any] = []
    real = bodies.Record.model_validate
    for data in RECORDS:
        theirs = validated(bodies, data)
        before = len(calls)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bodies.Record, "model_validate", lambda *a, **k: calls.append(a) or real(*a, **k))
            ours = record_outcome(bodies, data)
        assert ours[0] == theirs[0], data
        assert identical(ours[1], theirs[1]) if ours[0] == "value" else ours[1] == theirs[1], data
        plain += len(calls) == before
    assert plain == 4  # the float, integer, zero and integers up to 2**53 records never reached pydantic


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(
        st.floats() | st.integers() | st.integers(min_value=-(2**54), max_value=2**54) | st.booleans() | st.none(),
        min_size=3,
        max_size=5,
    )
)
def test_any_array_record_is_taken_as_the_schema_takes_it(bodies: ModuleType, values: list[Any]) -> None:
    ours, theirs = record_outcome(bodies, {"features": values}), validated(bodies, {"features": list(values)})
    assert ours[0] == theirs[0], values
    assert identical(ours[1], theirs[1]) if ours[0] == "value" else ours[1] == theirs[1], values


def test_plain_batches_are_taken_as_the_batch_schema_takes_them(bodies: ModuleType) -> None:
    """`plain_records` (the v2 infer's rows) gives the batch schema's records when every one is plain,
    and None (pydantic decides) when any one is not, or the batch is empty or too long."""
    plain = [data for data in RECORDS if record_outcome(bodies, data)[0] == "value"]
    for batch in ([data] for data in RECORDS):
        ours = bodies.plain_records(batch)
        if ours is not None:
            theirs = [
                r.model_dump(by_alias=True) for r in bodies.BatchRequest.model_validate({"records": batch}).records
            ]
            assert identical(ours, theirs), batch
    mixed = [plain[0], {"features": [True, 1.0, 2.0, 3.0]}, plain[1]]
    assert bodies.plain_records(mixed) is None
    assert bodies.plain_records([]) is None
    assert bodies.plain_records([plain[0]] * (bodies.MAX_BATCH + 1)) is None
    taken = bodies.plain_records([plain[0]] * bodies.MAX_BATCH)
    assert taken is not None and len(taken) == bodies.MAX_BATCH


@pytest.fixture(scope="module")
def v2(app_module: ModuleType) -> ModuleType:
    import sys

    return sys.modules[app_module.__name__.rsplit(".", 1)[0] + ".v2"]


def inference_outcome(v2: ModuleType, manifest: dict[str, Any], body: Any, general: bool) -> tuple[str, Any]:
    """The records an inference request's tensors give (`general`: by the general checks, else by
    `plain_rows`, None when it leaves the request to them), or the refusal's message."""
    try:
        request = v2.InferenceRequest.model_validate(body)
        if not general:
            return "value", v2.plain_rows(request)
        return "value", v2.validated(v2.records_of(request, manifest), True)
    except v2.Refused as refused:
        return "error", str(refused)


PLAIN_NUMBERS = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
ODD_ELEMENTS = st.floats() | st.integers() | st.booleans() | st.none() | st.just("1.0") | st.just([1.0])


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.sampled_from([1, 1, 2, 3, 0]),
    width=st.sampled_from([4] * 8 + [3, 5]),
    datatype=st.sampled_from(["FP64"] * 5 + ["FP32"] * 2 + ["FP16", "INT64", "BOOL", "BYTES"]),
    name=st.sampled_from(["input-0"] * 8 + ["input-1"]),
    shape_of_data=st.sampled_from(["flat"] * 8 + ["nested", "short", "long"]),
    draw=st.data(),
)
def test_the_usual_inference_request_takes_the_general_checks_records(
    app_module: ModuleType,
    v2: ModuleType,
    rows: int,
    width: int,
    datatype: str,
    name: str,
    shape_of_data: str,
    draw: st.DataObject,
) -> None:
    """`plain_rows` (the v2 infer's one look at the usual request) gives exactly the records the
    general checks give (tensor shape, datatype, elements, then the batch schema), or leaves the
    request to them; it never takes what they refuse."""
    count = rows * width + {"short": -1, "long": 1}.get(shape_of_data, 0)
    kinds = PLAIN_NUMBERS | ODD_ELEMENTS if draw.draw(st.booleans()) else PLAIN_NUMBERS
    elements = draw.draw(st.lists(kinds, min_size=max(count, 0), max_size=max(count, 0)))
    data: list[Any] = elements
    if shape_of_data == "nested":
        data = [elements[row * width : (row + 1) * width] for row in range(rows)]
    body = {"inputs": [{"name": name, "shape": [rows, width], "datatype": datatype, "data": data}]}
    manifest = app_module.app.state.manifest
    ours = inference_outcome(v2, manifest, body, general=False)
    if ours[1] is None:
        return
    theirs = inference_outcome(v2, manifest, body, general=True)
    assert theirs[0] == "value", body
    assert identical(ours[1], theirs[1]), body


def test_plain_rows_takes_the_requests_clients_send(v2: ModuleType) -> None:
    """tritonclient's JSON (flat FP64 or FP32 data) and a batch of integers: taken in one look."""
    four = [[5.1, 3.5, 1.4, 0.2], [6, 3, 5, 2]]
    for datatype in ("FP64", "FP32"):
        flat = [value for row in four for value in row]
        request = v2.InferenceRequest.model_validate(
            {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": datatype, "data": flat}]}
        )
        taken = v2.plain_rows(request)
        assert taken == [{"features": [5.1, 3.5, 1.4, 0.2]}, {"features": [6.0, 3.0, 5.0, 2.0]}]
        assert all(type(value) is float for record in taken for value in record["features"])
    two = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": four[0]}
    assert v2.plain_rows(v2.InferenceRequest.model_validate({"inputs": [two, two]})) is None


HOSTILE = [
    ("/predict", b'{"features": [1, 2, 3, 4]}', "application/json"),
    ("/predict", b'{"features": [1, 2, 3, 4], "extra": 1}', "application/json"),
    ("/predict", b'{"features": [1, 2, 3]}', "application/json"),
    ("/predict", b'{"features": [1, 2, 3, "four"]}', "application/json"),
    ("/predict", b'{"features": [1e400, 2, 3, 4]}', "application/json"),
    ("/predict", b'{"features": [100000000000000000000000000000, 2, 3, 4]}', "application/json"),
    ("/predict", b'{"features": ["\\ud800", 2, 3, 4]}', "application/json"),
    ("/predict", b"[]", "application/json"),
    ("/predict", b"", "application/json"),
    ("/predict", b"{not json", "application/json"),
    ("/predict", b"\xef\xbb\xbf{}", "application/json"),
    ("/predict", b'{"features": [1, 2, 3, 4]}', "text/plain"),
    ("/predict/batch", b'{"records": [{"features": [1, 2, 3, 4]}, {"features": [1, 2]}]}', "application/json"),
    ("/predict/batch", b'{"records": []}', "application/json"),
    ("/predict/batch", b'{"records": [{"features": [1, 2, 3, 4]}]}', "application/vnd.api+json"),
]


def answer_of(client: TestClient, path: str, body: bytes, content_type: str) -> tuple[int, Any, str]:
    response = client.post(path, content=body, headers={"content-type": content_type, "x-request-id": "same-id"})
    return response.status_code, response.json(), response.headers["x-request-id"]


def test_the_prediction_lane_answers_as_fastapi_router_does(app_module: ModuleType) -> None:
    """Every body gets the same status, JSON and request id on the lane as through FastAPI's stack."""
    app = app_module.app
    lane = app.prediction_lane
    assert lane is not None
    with TestClient(app, raise_server_exceptions=False) as client:
        fast = [answer_of(client, *case) for case in HOSTILE]
        app.prediction_lane = None  # the same endpoints, reached through FastAPI's middleware and router
        try:
            routed = [answer_of(client, *case) for case in HOSTILE]
        finally:
            app.prediction_lane = lane
    assert fast == routed
    assert {status for status, _, _ in fast} >= {200, 400, 422}


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
    # Every error answer has the rule's shape, a body FastAPI itself could not decode included.
    assert ("error" in response.json()) == (status != 200)
    assert "detail" not in response.json() or status == 422


def test_unknown_paths_and_methods_get_the_rules_error_shape(app_module: ModuleType) -> None:
    with TestClient(app_module.app, raise_server_exceptions=False) as client:
        missing = client.get("/no-such-endpoint")
        wrong_method = client.get("/predict")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"error": "Method Not Allowed"})
    assert wrong_method.headers["allow"] == "POST"


ONE_PASS_CASES = [
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}', {"content-type": "application/json"}),
    ("/predict", b'{"features": [5, 3, 1, 0]}', {"content-type": "application/json", "x-request-id": "given-id"}),
    ("/predict", b'{"features": [50.1, 3.5, 1.4, 0.2]}', {"content-type": "application/json"}),  # a warning
    ("/predict", b'{"features": [50.1, 3.5, 1.4, 0.2]}', {"content-type": "application/json", "x-strict": "true"}),
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}', {"content-type": "application/json", "x-strict": "Yes"}),
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}', {"content-type": "application/json; charset=utf-8"}),
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}', {"content-type": "application/json", "x-request-id": "a b"}),
    ("/predict", b'{"features": [1e400, 3.5, 1.4, 0.2]}', {"content-type": "application/json"}),
    ("/predict", b'{"features": [null, 3.5, 1.4, 0.2]}', {"content-type": "application/json"}),
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2], "x": 1}', {"content-type": "application/json"}),
    ("/predict", b"{not json", {"content-type": "application/json"}),
    ("/predict", b"\xff\xfe\xfd", {"content-type": "application/json"}),
    ("/predict", b"", {"content-type": "application/json"}),
    ("/predict", b'{"features": [' + b"1, " * 400_000 + b"1]}", {"content-type": "application/json"}),  # over the limit
    ("/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}', {}),
]


def exchange(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    response = client.post(path, content=body, headers=headers)
    answer = dict(response.headers)
    if answer["x-request-id"] != headers.get("x-request-id"):  # a new id: only its shape can be the same
        assert len(answer.pop("x-request-id")) == 32
    return response.status_code, response.json(), answer


def counters(client: TestClient) -> dict[str, float]:
    """The request, row and drift counters of /metrics (not the latency, which differs run to run)."""
    found = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(("nb2prod_requests_total", "nb2prod_rows_scored_total", "nb2prod_drift_")):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_post_predict_in_one_pass_answers_and_counts_as_the_lane_does(app_module: ModuleType) -> None:
    """`rawpredict`: the same status, body and headers as the lane (and FastAPI) for every case, the
    same counters in /metrics, and the plain requests never reach the lane."""
    app = app_module.app
    one_pass = app.one_pass
    assert one_pass is not None
    reached = []
    lane = one_pass.lane

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await lane(scope, receive, send)

    with TestClient(app, raise_server_exceptions=False) as client:
        before = counters(client)
        one_pass.lane = counted
        try:
            fast = [exchange(client, *case) for case in ONE_PASS_CASES]
        finally:
            one_pass.lane = lane
        middle = counters(client)
        app.one_pass = None
        try:
            routed = [exchange(client, *case) for case in ONE_PASS_CASES]
        finally:
            app.one_pass = one_pass
        after = counters(client)
    assert fast == routed
    statuses = [status for status, _, _ in fast]
    assert statuses[:3] == [200, 200, 200] and {400, 413, 422} <= set(statuses)
    assert "warnings" in fast[2][1] and fast[3][0] == 422
    assert fast[1][2]["x-request-id"] == "given-id"
    added = {key: value - before.get(key, 0) for key, value in middle.items()}
    assert added == {key: value - middle.get(key, 0) for key, value in after.items()}
    assert added['nb2prod_requests_total{endpoint="/predict",status="200"}'] == statuses.count(200)
    # Only the unusual requests went to the lane: not the five plain ones (a warning, a bad id among them).
    assert len(reached) == len(ONE_PASS_CASES) - 5


def test_the_apps_state_holds_plain_attributes(app_module: ModuleType) -> None:
    """`app.state` (read several times a request on the prediction lane) keeps its values as plain
    attributes, not in Starlette's dict behind `__getattr__`, and still behaves as a state."""
    state = app_module.app.state
    assert {"manifest", "metrics", "shutdown", "scorer"} <= set(vars(state))
    state.probe = 1
    assert vars(state)["probe"] == 1 and state.probe == 1
    del state.probe
    with pytest.raises(AttributeError):
        _ = state.probe

"""The Open Inference Protocol as its clients send it: Triton's own client (tritonclient) over HTTP,
with its binary tensor data on and off, and over gRPC, against the converted examples served by a
real uvicorn on 127.0.0.1; bad binary bodies and bad gRPC requests; per-answer warnings and
strict mode.

Every example service must answer its golden rows as the notebook's model did: an array model
(iris_array: one `[N, 4]` input, sent as FP64 and as FP32), a frame model (customers_mixed: one
`[N]` input per column, BYTES and BOOL among them), a regression with custom preprocessing
(diabetes_custom: `predict` only) and a grid search's best estimator (wine_gridsearch).
"""

from __future__ import annotations

import json
import math
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.conftest import EXAMPLES, ConvertExample
from tests.e2e.service import golden_of, grpc_on_loopback, serving_here

pytestmark = pytest.mark.slow
NUMPY_TYPES = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_, "BYTES": np.object_}


@dataclass
class Served:
    url: str
    grpc: str  # host:port
    name: str
    golden: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture(scope="module")
def iris(convert_example: ConvertExample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(convert_example, EXAMPLES / "iris_array.ipynb", tmp_path_factory.mktemp("iris"))


@pytest.fixture(scope="module")
def diabetes(convert_example: ConvertExample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(convert_example, EXAMPLES / "diabetes_custom.ipynb", tmp_path_factory.mktemp("diabetes"))


@pytest.fixture(scope="module")
def wine(convert_example: ConvertExample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(convert_example, EXAMPLES / "wine_gridsearch.ipynb", tmp_path_factory.mktemp("wine"))


@pytest.fixture(scope="module")
def customers(convert_example: ConvertExample, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(convert_example, EXAMPLES / "customers_mixed.ipynb", tmp_path_factory.mktemp("customers"))


def serve(convert_example: ConvertExample, notebook: Path, folder: Path) -> Iterator[Served]:
    out, result = convert_example(notebook)
    assert result.returncode == 0, result.stderr
    env = grpc_on_loopback()
    with serving_here(out, folder / "server.log", env=env) as (url, _):
        metadata = httpx.get(f"{url}/metadata", timeout=10).json()
        yield Served(url, f"127.0.0.1:{env['GRPC_PORT']}", metadata["name"], golden_of(out), metadata)


# --- the golden rows as tensors, and the answers compared ----------------------------------------


def golden_rows(served: Served) -> list[dict[str, Any]]:
    """The golden examples a tensor can carry: a BYTES or BOOL tensor has no null (a float's null is NaN)."""
    model = served.metadata["input_schema"]
    rows = [example for example in served.golden["examples"]]
    if model["kind"] == "array":
        return rows
    texts = [f["name"] for f in model["features"] if f["kind"] in ("string", "category", "boolean", "integer")]
    return [example for example in rows if all(example["input"].get(name) is not None for name in texts)]


def golden_tensors(served: Served, examples: list[dict[str, Any]], array_type: str = "FP64") -> dict[str, np.ndarray]:
    """name -> NumPy array, for the inputs the model metadata states (an array model's in `array_type`)."""
    records = [example["input"] for example in examples]
    inputs = httpx.get(f"{served.url}/v2/models/{served.name}", timeout=10).json()["inputs"]
    if len(inputs) == 1 and inputs[0]["name"] == "input-0":
        rows = [[math.nan if v is None else v for v in record["features"]] for record in records]
        return {"input-0": np.array(rows, dtype=NUMPY_TYPES[array_type])}
    tensors = {}
    for tensor in inputs:
        values = [record.get(tensor["name"]) for record in records]
        if tensor["datatype"] == "FP64":
            values = [math.nan if v is None else v for v in values]
        tensors[tensor["name"]] = np.array(values, dtype=NUMPY_TYPES[tensor["datatype"]])
    return tensors


def datatype_of(array: np.ndarray) -> str:
    return {np.dtype(t): name for name, t in NUMPY_TYPES.items()}[array.dtype]


def output_names(served: Served) -> tuple[str, ...]:
    """A classifier answers labels and probabilities; a regression its predictions only."""
    return ("predict", "predict_proba") if served.metadata["output"]["classes"] is not None else ("predict",)


def assert_golden_answers(
    served: Served, examples: list[dict[str, Any]], predict: np.ndarray, proba: np.ndarray | None, array_type: str
) -> None:
    # FP32 rows are the golden rows rounded to float32: the probabilities move by about that much.
    tolerance = served.golden["tolerance"] if array_type == "FP64" else 1e-5
    if served.metadata["output"]["classes"] is None:
        assert proba is None and predict.shape == (len(examples),)
        expected = [example["prediction"] for example in examples]
        assert predict.tolist() == pytest.approx(expected, rel=tolerance, abs=tolerance)
        return
    labels = [str(label) for label in served.metadata["output"]["classes"]]
    assert predict.shape == (len(examples),) and proba.shape == (len(examples), len(labels))
    for index, example in enumerate(examples):
        answer = predict[index]
        answer = answer.decode() if isinstance(answer, bytes) else answer.item() if hasattr(answer, "item") else answer
        assert answer == example["prediction"], f"row {example['row']}"
        expected = [example["probabilities"][label] for label in labels]
        assert proba[index].tolist() == pytest.approx(expected, rel=tolerance, abs=tolerance), f"row {example['row']}"


# --- tritonclient over HTTP and gRPC ---------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("model", ["iris", "customers", "diabetes", "wine"])
def test_tritonclient_http_answers_the_golden_rows(request: pytest.FixtureRequest, model: str, binary: bool) -> None:
    served: Served = request.getfixturevalue(model)
    client = httpclient.InferenceServerClient(served.host)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(served.name)
    metadata = client.get_model_metadata(served.name)
    assert metadata["name"] == served.name and metadata["versions"] == [served.golden["model_version"]]
    examples = golden_rows(served)
    for array_type in ("FP64", "FP32") if model == "iris" else ("FP64",):
        inputs = []
        for name, array in golden_tensors(served, examples, array_type).items():
            tensor = httpclient.InferInput(name, list(array.shape), datatype_of(array))
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
        # tritonclient's defaults: outputs in binary; without binary data, ask for them in JSON.
        outputs = (
            None if binary else [httpclient.InferRequestedOutput(n, binary_data=False) for n in output_names(served)]
        )
        result = client.infer(served.name, inputs, outputs=outputs, request_id="golden")
        assert result.get_response()["id"] == "golden"
        assert [o["name"] for o in result.get_response()["outputs"]] == list(output_names(served))
        assert_golden_answers(
            served, examples, result.as_numpy("predict"), result.as_numpy("predict_proba"), array_type
        )
    client.close()


@pytest.mark.parametrize("model", ["iris", "customers", "diabetes", "wine"])
def test_tritonclient_grpc_answers_the_golden_rows(request: pytest.FixtureRequest, model: str) -> None:
    served: Served = request.getfixturevalue(model)
    client = grpcclient.InferenceServerClient(served.grpc)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(served.name)
    metadata = client.get_model_metadata(served.name, as_json=True)
    assert metadata["name"] == served.name and metadata["versions"] == [served.golden["model_version"]]
    examples = golden_rows(served)
    for array_type in ("FP64", "FP32") if model == "iris" else ("FP64",):
        inputs = []
        for name, array in golden_tensors(served, examples, array_type).items():
            tensor = grpcclient.InferInput(name, list(array.shape), datatype_of(array))
            tensor.set_data_from_numpy(array)  # raw_input_contents
            inputs.append(tensor)
        result = client.infer(served.name, inputs, request_id="golden")
        assert result.get_response().id == "golden"
        assert_golden_answers(
            served, examples, result.as_numpy("predict"), result.as_numpy("predict_proba"), array_type
        )
    client.close()


def test_grpc_on_the_scikit_learn_path_answers_the_golden_rows_from_many_callers_at_once(
    convert_example: ConvertExample, tmp_path: Path
) -> None:
    """diabetes_custom keeps scikit-learn (a custom transformer): each gRPC thread hands its rows to the
    one scoring thread and waits. Eight callers at once get the golden answers, each its own."""
    serving = serve(convert_example, EXAMPLES / "diabetes_custom.ipynb", tmp_path)
    served = next(serving)
    try:
        answer_from_many_callers(served)
    finally:
        serving.close()  # the server stops


def answer_from_many_callers(served: Served) -> None:
    platform = httpx.get(f"{served.url}/v2/models/{served.name}", timeout=10).json()["platform"]
    assert platform == "sklearn_joblib"  # not the compiled path
    examples = golden_rows(served)
    tensors = golden_tensors(served, examples)
    tolerance = served.golden["tolerance"]
    wrong: list[str] = []

    def caller(offset: int) -> None:
        client = grpcclient.InferenceServerClient(served.grpc)
        for round_ in range(5):
            row = (offset + round_) % len(examples)
            inputs = []
            for name, array in tensors.items():
                tensor = grpcclient.InferInput(name, [1, *array.shape[1:]], datatype_of(array))
                tensor.set_data_from_numpy(array[row : row + 1])
                inputs.append(tensor)
            answer = client.infer(served.name, inputs).as_numpy("predict").tolist()[0]
            if answer != pytest.approx(examples[row]["prediction"], rel=tolerance, abs=tolerance):
                wrong.append(f"row {examples[row]['row']}: {answer} != {examples[row]['prediction']}")
        client.close()

    threads = [threading.Thread(target=caller, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not wrong, wrong[:3]


def test_grpc_bad_requests_are_invalid_argument_or_not_found(iris: Served) -> None:
    client = grpcclient.InferenceServerClient(iris.grpc)
    rows = np.zeros((2, 3), dtype=np.float64)  # the model takes 4 features
    tensor = grpcclient.InferInput("input-0", [2, 3], "FP64")
    tensor.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException) as bad:
        client.infer(iris.name, [tensor])
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "input `input-0`: shape [2, 3] is not [N, 4]" in bad.value.message()
    with pytest.raises(InferenceServerException) as other:
        client.infer("another-model", [tensor])
    assert other.value.status() == "StatusCode.NOT_FOUND"
    assert "unknown model `another-model`" in other.value.message()
    client.close()
    scraped = httpx.get(f"{iris.url}/metrics", timeout=10).text
    assert 'nb2prod_requests_total{endpoint="/inference.GRPCInferenceService/ModelInfer",status="400"}' in scraped


def counted(url: str, endpoint: str, status: str) -> float:
    """The value of nb2prod_requests_total for `endpoint` and `status` in /metrics (0 before the first)."""
    line = f'nb2prod_requests_total{{endpoint="{endpoint}",status="{status}"}} '
    scraped = httpx.get(f"{url}/metrics", timeout=10).text
    return next((float(row.removeprefix(line)) for row in scraped.splitlines() if row.startswith(line)), 0.0)


def test_metrics_count_every_tritonclient_grpc_call(iris: Served) -> None:
    infer, ready = "/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ServerReady"
    before = {path: counted(iris.url, path, "200") for path in (infer, ready)}
    client = grpcclient.InferenceServerClient(iris.grpc)
    examples = golden_rows(iris)[:3]
    for example in examples:
        tensor = grpcclient.InferInput("input-0", [1, 4], "FP64")
        tensor.set_data_from_numpy(np.array([example["input"]["features"]], dtype=np.float64))
        assert client.infer(iris.name, [tensor]).as_numpy("predict").tolist() == [example["prediction"]]
    assert client.is_server_ready()
    client.close()
    assert counted(iris.url, infer, "200") == before[infer] + len(examples)
    assert counted(iris.url, ready, "200") == before[ready] + 1


def scraped_value(url: str, line: str) -> float:
    """The value of the /metrics sample written `line` (its name and labels), 0 when there is none yet."""
    scraped = httpx.get(f"{url}/metrics", timeout=10).text
    return next(
        (float(row.removeprefix(line + " ")) for row in scraped.splitlines() if row.startswith(line + " ")), 0.0
    )


def test_metrics_stay_exact_when_grpc_threads_and_http_count_at_once(iris: Served) -> None:
    """gRPC calls are counted on gRPC's threads while /predict is counted on the event loop: under both
    loads at once, no count is lost, and each histogram's count agrees with the requests counted."""
    infer = "/inference.GRPCInferenceService/ModelInfer"
    samples = {
        "grpc": f'nb2prod_requests_total{{endpoint="{infer}",status="200"}}',
        "grpc_seen": f'nb2prod_request_duration_seconds_count{{endpoint="{infer}"}}',
        "grpc_rows": f'nb2prod_rows_scored_total{{endpoint="{infer}"}}',
        "http": 'nb2prod_requests_total{endpoint="/predict",status="200"}',
        "http_seen": 'nb2prod_request_duration_seconds_count{endpoint="/predict"}',
    }
    before = {key: scraped_value(iris.url, line) for key, line in samples.items()}
    example = golden_rows(iris)[0]
    rows = np.array([example["input"]["features"]] * 3, dtype=np.float64)
    calls, failures = 60, []

    def grpc_load() -> None:
        client = grpcclient.InferenceServerClient(iris.grpc)
        for _ in range(calls):
            tensor = grpcclient.InferInput("input-0", [3, 4], "FP64")
            tensor.set_data_from_numpy(rows)
            if client.infer(iris.name, [tensor]).as_numpy("predict").tolist() != [example["prediction"]] * 3:
                failures.append("gRPC: a wrong answer")
        client.close()

    def http_load() -> None:
        with httpx.Client(base_url=iris.url, timeout=10) as client:
            for _ in range(calls):
                answer = client.post("/predict", json=example["input"])
                if answer.status_code != 200:
                    failures.append(f"/predict: {answer.status_code}")

    threads = [threading.Thread(target=load) for load in (grpc_load, http_load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[:3]
    after = {key: scraped_value(iris.url, line) for key, line in samples.items()}
    assert after["grpc"] - before["grpc"] == 4 * calls
    assert after["grpc_rows"] - before["grpc_rows"] == 4 * calls * 3
    assert after["http"] - before["http"] == 4 * calls
    assert after["grpc_seen"] - before["grpc_seen"] == 4 * calls
    assert after["http_seen"] - before["http_seen"] == 4 * calls


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_in_one_pass_answers_as_the_lane(iris: Served, binary: bool) -> None:
    """The served model's infer is answered in one pass (rawinfer); a chunked body takes the lane
    (middleware and v2.infer). Both give the same status, headers and bytes, and are counted alike."""
    rows = [example["input"]["features"] for example in golden_rows(iris)[:5]]
    if binary:
        tensor = {"name": "input-0", "shape": [5, 4], "datatype": "FP64", "parameters": {"binary_data_size": 160}}
        header = {"id": "same", "inputs": [tensor], "parameters": {"binary_data_output": True}}
        body, headers = binary_body(header, struct.pack("<20d", *[v for row in rows for v in row]))
    else:
        tensor = {"name": "input-0", "shape": [5, 4], "datatype": "FP64", "data": rows}
        body, headers = json.dumps({"id": "same", "inputs": [tensor]}).encode(), {}
    headers["x-request-id"] = "one-pass-or-lane"
    url = f"{iris.url}/v2/models/{iris.name}/infer"
    infer = 'nb2prod_requests_total{endpoint="/v2/models/{name}/infer",status="200"}'
    before = scraped_value(iris.url, infer)
    one_pass = httpx.post(url, content=body, headers=headers, timeout=10)
    lane = httpx.post(url, content=iter([body]), headers=headers, timeout=10)  # chunked: the lane
    assert lane.request.headers.get("transfer-encoding") == "chunked"
    assert one_pass.status_code == lane.status_code == 200, one_pass.text
    assert one_pass.content == lane.content
    shown = ("content-type", "content-length", "inference-header-content-length", "x-request-id")
    assert {h: one_pass.headers.get(h) for h in shown} == {h: lane.headers.get(h) for h in shown}
    assert one_pass.headers["x-request-id"] == "one-pass-or-lane"
    assert ("inference-header-content-length" in one_pass.headers) == binary
    assert scraped_value(iris.url, infer) == before + 2


# --- bad binary bodies: a 400 naming the input, never a 5xx ---------------------------------------


def binary_body(header: dict[str, Any], data: bytes, header_length: int | None = None) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    length = len(text) if header_length is None else header_length
    return text + data, {"Inference-Header-Content-Length": str(length)}


@pytest.mark.parametrize(
    ("size", "data", "header_length", "expected"),
    [
        (
            64,
            struct.pack("<8d", *[5.0] * 7, 1.0)[:-8],
            None,
            "binary_data_size is 64, past the end of the body (56 bytes left)",
        ),
        (1 << 20, struct.pack("<8d", *[5.0] * 8), None, "binary_data_size is 1048576, past the end of the body"),
        (
            56,
            struct.pack("<8d", *[5.0] * 8)[:56],
            None,
            "input `input-0`: 56 bytes of FP64 data, but its shape holds 8 values",
        ),
        (64, struct.pack("<8d", *[5.0] * 8), 10_000, "Inference-Header-Content-Length is 10000, past the end of the"),
    ],
    ids=["truncated-tensor", "size-larger-than-body", "size-against-shape", "header-length-past-the-end"],
)
def test_bad_binary_bodies_are_400_naming_the_input(
    iris: Served, size: int, data: bytes, header_length: int | None, expected: str
) -> None:
    tensor = {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "parameters": {"binary_data_size": size}}
    body, headers = binary_body({"inputs": [tensor]}, data, header_length)
    response = httpx.post(f"{iris.url}/v2/models/{iris.name}/infer", content=body, headers=headers, timeout=10)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def test_binary_body_over_the_limit_is_413(iris: Served) -> None:
    tensor = {
        "name": "input-0",
        "shape": [40_000, 4],
        "datatype": "FP64",
        "parameters": {"binary_data_size": 1_280_000},
    }
    body, headers = binary_body({"inputs": [tensor]}, bytes(1_280_000))
    response = httpx.post(f"{iris.url}/v2/models/{iris.name}/infer", content=body, headers=headers, timeout=10)
    assert response.status_code == 413


def test_json_body_without_content_type_is_read_as_json(iris: Served) -> None:
    features = iris.golden["examples"][0]["input"]["features"]
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": features}]})
    for content_type in (None, "application/octet-stream"):
        headers = {"content-type": content_type} if content_type else {}
        response = httpx.post(
            f"{iris.url}/v2/models/{iris.name}/infer", content=body.encode(), headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [iris.golden["examples"][0]["prediction"]]


# --- warnings and strict mode -----------------------------------------------------------------------


def test_values_unlike_training_are_warned_and_refused_when_strict(customers: Served) -> None:
    record = dict(customers.golden["examples"][0]["input"])
    ordinary = httpx.post(f"{customers.url}/predict", json=record, timeout=10).json()
    assert "warnings" not in ordinary
    record["age"] = 130  # training saw 18 to 79
    record["city"] = "Paris"  # a text column whose four values (Berlin, Lisbon, Madrid, Oslo) the manifest lists
    answer = httpx.post(f"{customers.url}/predict", json=record, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["warnings"] == [
        "field `age`: 130 is outside the training range 18 to 79",
        "field `city`: 'Paris' is not a value seen in training",
    ]
    assert set(body) == {"prediction", "probabilities", "model_version", "warnings"}
    v2 = {"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [130]}]}
    for name, value in record.items():
        if name != "age" and value is not None:
            datatype = "BOOL" if isinstance(value, bool) else "FP64" if isinstance(value, float) else "BYTES"
            v2["inputs"].append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    inferred = httpx.post(f"{customers.url}/v2/models/{customers.name}/infer", json=v2, timeout=10).json()
    assert inferred["parameters"]["warnings"] == "; ".join(body["warnings"])
    assert inferred["outputs"][0]["data"] == [body["prediction"]]

    strict = httpx.post(f"{customers.url}/predict", json=record, headers={"X-Strict": "true"}, timeout=10)
    assert strict.status_code == 422
    assert strict.json()["error"].startswith("field `age`: 130 is outside the training range 18 to 79")
    refused = httpx.post(
        f"{customers.url}/v2/models/{customers.name}/infer", json=v2, headers={"X-Strict": "true"}, timeout=10
    )
    assert refused.status_code == 400 and "field `age`" in refused.json()["error"]


# --- draining covers gRPC -------------------------------------------------------------------------


def test_sigterm_turns_grpc_readiness_false_and_calls_are_answered_through_the_drain(
    convert_example: ConvertExample, tmp_path: Path
) -> None:
    out, _ = convert_example(EXAMPLES / "iris_array.ipynb")
    env = {**grpc_on_loopback(), "DRAIN_SECONDS": "3"}
    example = golden_of(out)["examples"][0]
    with serving_here(out, tmp_path / "server.log", env=env) as (url, server):
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{env['GRPC_PORT']}")
        name = httpx.get(f"{url}/metadata", timeout=10).json()["name"]
        assert client.is_server_ready() and client.is_model_ready(name)
        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while client.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.is_server_ready() and not client.is_model_ready(name)
        assert client.is_server_live()
        tensor = grpcclient.InferInput("input-0", [1, 4], "FP64")
        tensor.set_data_from_numpy(np.array([example["input"]["features"]], dtype=np.float64))
        assert client.infer(name, [tensor]).as_numpy("predict").tolist() == [example["prediction"]]
        client.close()
        server.wait(timeout=40)  # it stops by itself after the drain
    assert server.returncode in (0, -signal.SIGTERM)
    assert "gRPC (Open Inference Protocol) on 127.0.0.1:" in (tmp_path / "server.log").read_text()


@dataclass
class GrpcCaller:
    """tritonclient gRPC ModelInfer calls one after another on one channel, each call's start, end and outcome kept."""

    address: str
    name: str
    example: dict[str, Any]
    stop: threading.Event
    calls: list[tuple[float, float, str]] = field(default_factory=list)  # (began, ended, "ok" or the error)

    def run(self) -> None:
        client = grpcclient.InferenceServerClient(self.address)
        rows = np.array(
            [self.example["input"]["features"]] * 50, dtype=np.float64
        )  # long enough to be caught in flight
        deadline = time.monotonic() + 60  # bounded even if `stop` is never set
        while not self.stop.is_set() and time.monotonic() < deadline:
            tensor = grpcclient.InferInput("input-0", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows)
            began = time.monotonic()
            try:
                answer = client.infer(self.name, [tensor]).as_numpy("predict").tolist()
                outcome = "ok" if answer == [self.example["prediction"]] * len(rows) else f"wrong answer {answer[:3]}"
            except InferenceServerException as err:
                outcome = f"{err.status()}: {err.message()}"
            self.calls.append((began, time.monotonic(), outcome))
        client.close()


def test_grpc_calls_in_flight_at_sigterm_finish_and_none_is_lost_through_the_drain(
    convert_example: ConvertExample, tmp_path: Path
) -> None:
    out, _ = convert_example(EXAMPLES / "iris_array.ipynb")
    env = {**grpc_on_loopback(), "DRAIN_SECONDS": "3"}
    example = golden_of(out)["examples"][0]
    with serving_here(out, tmp_path / "server.log", env=env) as (url, server):
        name = httpx.get(f"{url}/metadata", timeout=10).json()["name"]
        stop = threading.Event()
        callers = [GrpcCaller(f"127.0.0.1:{env['GRPC_PORT']}", name, example, stop) for _ in range(8)]
        threads = [threading.Thread(target=caller.run) for caller in callers]
        for thread in threads:
            thread.start()
        _wait_for(lambda: all(len(c.calls) >= 3 for c in callers), what="the gRPC load starts")
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        _wait_for(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 503, what="/ready turns 503")
        time.sleep(1.0)  # the load goes on for a while after the signal, as behind a load balancer
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.wait(timeout=40)  # it stops by itself after the drain
    calls = [call for caller in callers for call in caller.calls]
    failed = [outcome for _, _, outcome in calls if outcome != "ok"]
    assert not failed, f"{len(failed)} of {len(calls)} gRPC calls failed, e.g. {failed[0]}"
    in_flight = [call for call in calls if call[0] < signalled < call[1]]
    assert in_flight, "no call was in flight when SIGTERM came"
    assert sum(1 for began, _, _ in calls if began > signalled) >= len(callers), "the load did not go on after SIGTERM"
    assert server.returncode in (0, -signal.SIGTERM)


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit:.0f} s")
        time.sleep(0.02)

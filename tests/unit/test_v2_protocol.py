"""The generated service's Open Inference Protocol (v2) endpoints, in this process, without a kernel.

Each service is rendered from a stored capture with a stand-in model (tests/stand_in.py). An
inference request must answer what `POST /predict/batch` answers for the same rows; a request the
model cannot take is a 400 `{"error": ...}` naming the input, never a 422 or a 5xx. Also: the
Kubernetes manifests (the PodDisruptionBudget and the KServe InferenceService) fit the Deployment.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from nb2prod.generate.render import MAX_BATCH
from tests.unit.conftest import Services


@pytest.fixture(scope="module")
def clients(services: Services) -> Iterator[Callable[[str], TestClient]]:
    """`clients(branch)`: a started test client of the branch's service, one per branch."""
    with contextlib.ExitStack() as stack:
        cache: dict[str, TestClient] = {}

        def get(branch: str) -> TestClient:
            if branch not in cache:
                client = TestClient(services(branch).app, raise_server_exceptions=False)
                cache[branch] = stack.enter_context(client)
            return cache[branch]

        yield get


@pytest.fixture
def iris(clients: Callable[[str], TestClient]) -> TestClient:
    return clients("iris_array")


@pytest.fixture
def customers(clients: Callable[[str], TestClient]) -> TestClient:
    return clients("customers_mixed")


def project_of(app_module: ModuleType) -> Path:
    return Path(str(app_module.__file__)).parents[2]


def golden_records(app_module: ModuleType) -> list[dict[str, Any]]:
    golden = json.loads((project_of(app_module) / "tests" / "golden.json").read_text(encoding="utf-8"))
    return [example["input"] for example in golden["examples"]]


def manifest(client: TestClient) -> dict[str, Any]:
    return dict(client.app.state.manifest)  # type: ignore[attr-defined]


def model_path(client: TestClient) -> str:
    return f"/v2/models/{manifest(client)['name']}"


def v2_request(client: TestClient, records: list[dict[str, Any]], *, nested: bool = False) -> dict[str, Any]:
    """The inference request for `records`, with the datatypes the model's metadata states."""
    inputs = client.get(model_path(client)).json()["inputs"]
    if manifest(client)["input_schema"]["kind"] == "array":
        rows = [record["features"] for record in records]
        data = rows if nested else [value for row in rows for value in row]
        shape = [len(rows), len(rows[0])]
        return {"inputs": [{"name": "input-0", "shape": shape, "datatype": inputs[0]["datatype"], "data": data}]}
    return {
        "inputs": [
            {
                "name": tensor["name"],
                "shape": [len(records)],
                "datatype": tensor["datatype"],
                "data": [record.get(tensor["name"]) for record in records],
            }
            for tensor in inputs
        ]
    }


def post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    # json.dumps writes NaN as the bare word some clients send.
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


# --- metadata and health -----------------------------------------------------------------------


def test_server_metadata_and_health(iris: TestClient) -> None:
    assert iris.get("/v2").json() == {"name": "iris-array", "version": manifest(iris)["version"], "extensions": []}
    assert iris.get("/v2/health/live").json() == {"live": True}
    assert iris.get("/v2/health/ready").json() == {"ready": True}
    assert iris.get(f"{model_path(iris)}/ready").json() == {"name": "iris-array", "ready": True}
    version = manifest(iris)["version"]
    assert iris.get(f"{model_path(iris)}/versions/{version}/ready").status_code == 200


def test_array_model_metadata(iris: TestClient) -> None:
    body = iris.get(model_path(iris)).json()
    assert body == {
        "name": "iris-array",
        "versions": [manifest(iris)["version"]],
        "platform": "sklearn_joblib",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ],
    }
    assert iris.get(f"{model_path(iris)}/versions/{manifest(iris)['version']}").json() == body


def test_frame_model_metadata(customers: TestClient) -> None:
    body = customers.get(model_path(customers)).json()
    inputs = {tensor["name"]: (tensor["datatype"], tensor["shape"]) for tensor in body["inputs"]}
    assert inputs == {
        "age": ("INT64", [-1]),
        "income": ("FP64", [-1]),
        "city": ("BYTES", [-1]),
        "plan": ("BYTES", [-1]),
        "is_member": ("BOOL", [-1]),
        "monthly spend": ("FP64", [-1]),
    }
    assert [t["name"] for t in body["inputs"]] == [f["name"] for f in manifest(customers)["input_schema"]["features"]]
    assert body["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
    ]


def test_unknown_model_or_version_is_404(iris: TestClient) -> None:
    body = v2_request(iris, [manifest(iris)["example"]])
    version = manifest(iris)["version"]
    for path in ("/v2/models/other", "/v2/models/other/ready", f"{model_path(iris)}/versions/9.9.9"):
        response = iris.get(path)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error"}
    for path in (
        "/v2/models/other/infer",
        f"/v2/models/other/versions/{version}/infer",
        f"{model_path(iris)}/versions/0/infer",
    ):
        response = post(iris, path, body)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error"}


def test_not_ready_is_a_400_on_the_v2_health_endpoints(iris: TestClient) -> None:
    shutdown = iris.app.state.shutdown  # type: ignore[attr-defined]
    shutdown.begin()
    try:
        assert iris.get("/v2/health/ready").status_code == 400
        assert iris.get(f"{model_path(iris)}/ready").json()["ready"] is False
        assert iris.get("/v2/health/live").status_code == 200
    finally:
        shutdown.draining = False


def test_openapi_documents_the_v2_endpoints(iris: TestClient) -> None:
    document = iris.get("/openapi.json").json()
    assert "/v2/models/{name}/infer" in document["paths"]
    assert "/v2/models/{name}/versions/{version}/infer" in document["paths"]
    assert {"InferenceRequest", "InferenceInput", "Record"} <= set(document["components"]["schemas"])


# --- inference answers what /predict/batch answers -------------------------------------------


def assert_same_answers(client: TestClient, records: list[dict[str, Any]], answer: dict[str, Any]) -> None:
    batch = client.post("/predict/batch", json={"records": records}).json()
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert outputs["predict"]["data"] == batch["predictions"]
    assert outputs["predict"]["shape"] == [len(records)]
    if "probabilities" in batch:
        labels = [str(c) for c in manifest(client)["output"]["classes"]]
        expected = [row[label] for row in batch["probabilities"] for label in labels]
        assert outputs["predict_proba"]["data"] == expected
        assert outputs["predict_proba"]["shape"] == [len(records), len(labels)]
    else:
        assert set(outputs) == {"predict"}
    assert answer["model_name"] == manifest(client)["name"]
    assert answer["model_version"] == batch["model_version"]


@pytest.mark.parametrize(
    ("branch", "nested"),
    [("iris_array", False), ("iris_array", True), ("customers_mixed", False), ("diabetes_custom", False)],
)
def test_infer_answers_what_predict_batch_answers(
    services: Services, clients: Callable[[str], TestClient], branch: str, nested: bool
) -> None:
    records = golden_records(services(branch))
    client = clients(branch)
    body = {"id": "request-7", **v2_request(client, records, nested=nested)}
    response = post(client, f"{model_path(client)}/infer", body)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "request-7"
    assert_same_answers(client, records, response.json())
    versioned = post(client, f"{model_path(client)}/versions/{manifest(client)['version']}/infer", body)
    assert versioned.json() == response.json()


def test_frame_inputs_take_n_by_1_shapes_and_leave_out_nullable_columns(customers: TestClient) -> None:
    records = [{k: v for k, v in manifest(customers)["example"].items() if k != "income"}] * 2
    body = v2_request(customers, records)
    body["inputs"] = [tensor for tensor in body["inputs"] if tensor["name"] != "income"]
    for tensor in body["inputs"]:
        tensor["shape"] = [2, 1]
    response = post(customers, f"{model_path(customers)}/infer", body)
    assert response.status_code == 200, response.text
    assert_same_answers(customers, records, response.json())
    assert response.json()["id"] == response.headers["x-request-id"]  # no id given: the request's own


def test_requested_outputs_only_and_in_order(iris: TestClient) -> None:
    body = {
        **v2_request(iris, [manifest(iris)["example"]]),
        "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
    }
    answer = post(iris, f"{model_path(iris)}/infer", body).json()
    assert [output["name"] for output in answer["outputs"]] == ["predict_proba", "predict"]
    body["outputs"] = [{"name": "predict"}]
    assert [output["name"] for output in post(iris, f"{model_path(iris)}/infer", body).json()["outputs"]] == ["predict"]


def test_integer_data_is_taken_for_a_float_input(iris: TestClient) -> None:
    records = [{"features": [5, 3, 1, 0]}]
    body = v2_request(iris, records)
    body["inputs"][0]["datatype"] = "INT32"
    response = post(iris, f"{model_path(iris)}/infer", body)
    assert response.status_code == 200, response.text
    assert_same_answers(iris, records, response.json())


# --- bad requests are 400s naming the input --------------------------------------------------


def edit_input(name: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        tensor = next(t for t in body["inputs"] if t["name"] == name)
        tensor.update(changes)

    return edit


def set_value(name: str, row: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        next(t for t in body["inputs"] if t["name"] == name)["data"][row] = value

    return edit


def drop_input(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        body["inputs"] = [t for t in body["inputs"] if t["name"] != name]

    return edit


FRAME_CASES = [
    pytest.param(edit_input("age", datatype="FP64"), "`age`", id="float-datatype-for-an-integer-column"),
    pytest.param(edit_input("plan", datatype="INT64"), "`plan`", id="integer-datatype-for-a-category"),
    pytest.param(edit_input("is_member", datatype="NOPE"), "`is_member`", id="unknown-datatype"),
    pytest.param(edit_input("age", shape=[3]), "`age`", id="shape-and-data-disagree"),
    pytest.param(edit_input("age", shape=[2, 2]), "`age`", id="two-dimensional-column"),
    pytest.param(edit_input("city", shape=[1], data=["Oslo"]), "`city`", id="rows-differ-between-inputs"),
    pytest.param(set_value("age", 1, "old"), "`age`, row 1", id="text-in-an-integer-column"),
    pytest.param(set_value("age", 1, 2**64), "`age`, row 1", id="integer-outside-its-dtype"),
    pytest.param(set_value("age", 0, True), "`age`, row 0", id="boolean-in-an-integer-column"),
    pytest.param(set_value("plan", 1, "never-seen"), "`plan`, row 1", id="unseen-category"),
    pytest.param(set_value("is_member", 0, 1), "`is_member`, row 0", id="integer-for-a-boolean"),
    pytest.param(set_value("city", 0, ["nested"]), "`city`", id="nested-data-for-a-column"),
    pytest.param(drop_input("age"), "`age`", id="required-column-left-out"),
    pytest.param(lambda body: body["inputs"].append({**body["inputs"][0]}), "`age`", id="input-given-twice"),
    pytest.param(
        lambda body: body["inputs"].append({"name": "nope", "shape": [2], "datatype": "FP64", "data": [1, 2]}),
        "`nope`",
        id="unknown-input",
    ),
    pytest.param(lambda body: body["inputs"][0].pop("data"), "`age`", id="input-without-data"),
    pytest.param(edit_input("age", shape=[2.0]), "`age`", id="float-in-shape"),
    pytest.param(lambda body: body.update(outputs=[{"name": "predict_log"}]), "`predict_log`", id="unknown-output"),
]


@pytest.mark.parametrize(("edit", "named"), FRAME_CASES)
def test_bad_frame_request_is_400_naming_the_input(
    customers: TestClient, edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    body = v2_request(customers, [manifest(customers)["example"]] * 2)
    edit(body)
    response = post(customers, f"{model_path(customers)}/infer", body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    assert named in response.json()["error"]


@pytest.mark.parametrize("missing", [float("nan"), None], ids=["nan", "null"])
def test_a_null_in_a_column_the_pipeline_imputes_is_answered_with_a_warning(
    customers: TestClient, missing: Any
) -> None:
    """`monthly spend` had no nulls in training; the served pipeline's SimpleImputer covers it."""
    body = v2_request(customers, [manifest(customers)["example"]] * 2)
    set_value("monthly spend", 1, missing)(body)
    response = post(customers, f"{model_path(customers)}/infer", body)
    assert response.status_code == 200, response.text
    assert (
        response.json()["parameters"]["warnings"]
        == "record 1: field `monthly spend`: null, but training had no nulls here"
    )


ARRAY_CASES = [
    pytest.param(edit_input("input-0", shape=[2, 3]), "`input-0`", id="wrong-width"),
    pytest.param(edit_input("input-0", shape=[8]), "`input-0`", id="one-dimensional"),
    pytest.param(edit_input("input-0", datatype="BYTES"), "`input-0`", id="text-datatype"),
    pytest.param(set_value("input-0", 5, "x"), "`input-0`, row 1, column 1", id="text-value"),
    pytest.param(set_value("input-0", 6, float("inf")), "`input-0`, row 1, column 2", id="infinity"),
    pytest.param(
        edit_input("input-0", data=[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]]), "`input-0`", id="ragged-nested-data"
    ),
    pytest.param(
        edit_input("input-0", shape=[MAX_BATCH + 1, 4], data=[1.0] * 4 * (MAX_BATCH + 1)),
        "`input-0`",
        id="batch-too-large",
    ),
    pytest.param(edit_input("input-0", shape=[0, 4], data=[]), "`input-0`", id="no-rows"),
    pytest.param(lambda body: body["inputs"][0].update(name=7), "input 0", id="name-not-text"),
]


@pytest.mark.parametrize(("edit", "named"), ARRAY_CASES)
def test_bad_array_request_is_400_naming_the_input(
    iris: TestClient, edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    body = v2_request(iris, [manifest(iris)["example"]] * 2)
    edit(body)
    response = post(iris, f"{model_path(iris)}/infer", body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    assert named in response.json()["error"]


@pytest.mark.parametrize(
    "content", [b'{"inputs": ', b"[]", b"{}", b'{"inputs": []}', b'{"inputs": [1]}', b'"text"', b"\xff\xfe"]
)
def test_body_that_is_no_inference_request_is_400(iris: TestClient, content: bytes) -> None:
    response = iris.post(f"{model_path(iris)}/infer", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}


def test_value_error_from_the_model_is_a_400(customers: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing:
        def predict(self, *args: Any) -> Any:
            raise ValueError("cannot encode this value")

        predict_proba = predict

    monkeypatch.setattr(customers.app.state.predictor, "model", Failing())  # type: ignore[attr-defined]
    response = post(
        customers, f"{model_path(customers)}/infer", v2_request(customers, [manifest(customers)["example"]])
    )
    assert response.status_code == 400, response.text
    assert "cannot encode this value" in response.json()["error"]


# --- the binary tensor data extension -------------------------------------------------------------


def binary_request(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """`body` with every input's data as raw bytes after the JSON header (the FP64, BOOL and BYTES encodings)."""
    raw = []
    for tensor in body["inputs"]:
        data = tensor.pop("data")
        if tensor["datatype"] == "BYTES":
            chunk = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in data)
        else:
            code = {"FP64": "d", "FP32": "f", "INT64": "q", "INT32": "i", "BOOL": "?"}[tensor["datatype"]]
            chunk = struct.pack(f"<{len(data)}{code}", *data)
        tensor["parameters"] = {"binary_data_size": len(chunk)}
        raw.append(chunk)
    header = json.dumps(body).encode()
    return header + b"".join(raw), {"Inference-Header-Content-Length": str(len(header))}


def test_binary_inputs_and_outputs_answer_what_json_answers(services: Services, customers: TestClient) -> None:
    records = [r for r in golden_records(services("customers_mixed")) if None not in r.values()][:5]
    body = v2_request(customers, records)
    expected = post(customers, f"{model_path(customers)}/infer", body).json()
    content, headers = binary_request({**body, "parameters": {"binary_data_output": True}})
    response = customers.post(f"{model_path(customers)}/infer", content=content, headers=headers)  # no content type
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    header, data = json.loads(response.content[:length]), response.content[length:]
    predict, proba = header["outputs"]
    assert "data" not in predict and predict["parameters"]["binary_data_size"] + proba["parameters"][
        "binary_data_size"
    ] == len(data)
    labels, offset = [], 0
    while offset < predict["parameters"]["binary_data_size"]:
        (size,) = struct.unpack_from("<I", data, offset)
        labels.append(data[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    assert labels == expected["outputs"][0]["data"]
    assert list(struct.unpack(f"<{len(records) * 2}d", data[offset:])) == expected["outputs"][1]["data"]


def test_infer_on_the_prediction_lane_is_counted_under_its_route(iris: TestClient) -> None:
    def count() -> float:
        line = '{endpoint="/v2/models/{name}/infer",status="200"}'
        found = [
            row for row in iris.get("/metrics").text.splitlines() if row.startswith("nb2prod_requests_total" + line)
        ]
        return float(found[0].split()[-1]) if found else 0.0

    before = count()
    assert post(iris, f"{model_path(iris)}/infer", v2_request(iris, [manifest(iris)["example"]])).status_code == 200
    assert count() == before + 1


def test_one_output_in_binary_when_asked_per_output(iris: TestClient) -> None:
    body = {
        **v2_request(iris, [manifest(iris)["example"]]),
        "outputs": [{"name": "predict"}, {"name": "predict_proba", "parameters": {"binary_data": True}}],
    }
    response = iris.post(f"{model_path(iris)}/infer", content=json.dumps(body), headers={"content-type": "text/plain"})
    length = int(response.headers["inference-header-content-length"])
    predict, proba = json.loads(response.content[:length])["outputs"]
    assert "data" in predict and "data" not in proba
    assert len(response.content) - length == proba["parameters"]["binary_data_size"] == 3 * 8


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        pytest.param(
            lambda c: c[:-8] + struct.pack("<I", 9) + b"Oslo",
            "`city`: element 1 says 9 bytes",
            id="bytes-length-too-long",
        ),
        pytest.param(lambda c: c + b"\0\0", "2 bytes after the binary data", id="bytes-left-over"),
        pytest.param(lambda c: c.replace(b"Oslo", b"Osl\xff"), "`city`: element", id="bytes-not-utf8"),
    ],
)
def test_bad_binary_bytes_are_400_naming_the_input(
    customers: TestClient, edit: Callable[[bytes], bytes], named: str
) -> None:
    body = v2_request(customers, [{**manifest(customers)["example"], "city": "Oslo"}] * 2)
    body["inputs"] = [t for t in body["inputs"] if t["name"] in ("age", "city")]
    content, headers = binary_request(body)
    response = customers.post(f"{model_path(customers)}/infer", content=edit(content), headers=headers)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]


def test_binary_data_size_without_the_header_is_400(iris: TestClient) -> None:
    content, _ = binary_request(v2_request(iris, [manifest(iris)["example"]]))
    length = content.index(b"}]}") + 3
    response = iris.post(f"{model_path(iris)}/infer", content=content[:length])
    assert response.status_code == 400
    assert (
        "input `input-0` has binary_data_size, but the request has no Inference-Header-Content-Length" in response.text
    )


# --- the Kubernetes manifests ----------------------------------------------------------------


def test_pod_disruption_budget_and_inference_service_fit_the_deployment(services: Services) -> None:
    folder = project_of(services("iris_array")) / "deploy" / "kubernetes"
    deployment = yaml.safe_load((folder / "deployment.yaml").read_text())
    budget = yaml.safe_load((folder / "pdb.yaml").read_text())
    service = yaml.safe_load((folder / "kserve" / "inferenceservice.yaml").read_text())
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert (budget["apiVersion"], budget["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert budget["metadata"]["name"] == deployment["metadata"]["name"]
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 0 < budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]

    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert service["metadata"]["name"] == deployment["metadata"]["name"]
    predictor = service["spec"]["predictor"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= predictor["labels"].items()
    (container,) = predictor["containers"]
    (ours,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == ours["image"]
    assert {"name": "PROTOCOL", "value": "v2"} in container["env"]
    assert [e for e in ours["env"] if e not in container["env"]] == []
    assert container["ports"][0]["containerPort"] == ours["ports"][0]["containerPort"] == 8000
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == ours[probe]["httpGet"]["path"]
        assert container[probe]["httpGet"]["port"] == 8000
    assert container["resources"] == ours["resources"]


@pytest.mark.parametrize("branch", ["iris_array", "customers_mixed"])
def test_readme_v2_example_is_answered(services: Services, clients: Callable[[str], TestClient], branch: str) -> None:
    readme = (project_of(services(branch)) / "README.md").read_text(encoding="utf-8")
    example = readme.split("/infer \\\n", 1)[1].split("-d '", 1)[1].split("'\n", 1)[0]
    client = clients(branch)
    response = post(client, f"{model_path(client)}/infer", json.loads(example))
    assert response.status_code == 200, response.text

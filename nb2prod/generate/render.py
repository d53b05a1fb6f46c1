"""Render stage: templates + artifact -> the files of the output project, in memory.

The only module that imports Jinja. Templates live in the wheel (`nb2prod/templates`) or, in a
source checkout, in the repository's `templates/` folder.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2

from nb2prod._version import __version__
from nb2prod.errors import TemplateError
from nb2prod.generate.artifact import Artifact
from nb2prod.generate.extract import ExtractedCode
from nb2prod.generate.schema import Feature, InputSchema, python_type_of
from nb2prod.manifest import InferenceRecord, canonical_json
from nb2prod.run.capture import TOLERANCE
from nb2prod.run.captured import Capture, Task

MAX_BATCH = 1000
MAX_BODY_BYTES = 1_048_576
# After SIGTERM the service answers (not ready) for this long before it stops; the Deployment's
# preStop hook and termination grace period are sized from it and from the time requests in
# flight get to finish after that.
DRAIN_SECONDS = 5
IN_FLIGHT_SECONDS = 15
# The Open Inference Protocol's gRPC port, beside HTTP's 8000 (the GRPC_PORT variable changes it).
GRPC_PORT = 8081
# Files of the generated service shipped as they are, not rendered: the protocol's definition and
# the messages generated from it, with their types
# (python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. open_inference.proto).
STATIC = {
    "src/grpc/open_inference.proto": "src/{package}/open_inference.proto",
    "src/grpc/open_inference_pb2.py": "src/{package}/open_inference_pb2.py",
    "src/grpc/open_inference_pb2.pyi": "src/{package}/open_inference_pb2.pyi",
}

# template -> output path ({package} is filled in)
TEMPLATES = {
    "pyproject.toml.j2": "pyproject.toml",
    "README.md.j2": "README.md",
    "Dockerfile.j2": "Dockerfile",
    "dockerignore.j2": ".dockerignore",
    "deploy/kubernetes/deployment.yaml.j2": "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/service.yaml.j2": "deploy/kubernetes/service.yaml",
    "deploy/kubernetes/hpa.yaml.j2": "deploy/kubernetes/hpa.yaml",
    "deploy/kubernetes/pdb.yaml.j2": "deploy/kubernetes/pdb.yaml",
    "deploy/kubernetes/kserve/inferenceservice.yaml.j2": "deploy/kubernetes/kserve/inferenceservice.yaml",
    "src/init.py.j2": "src/{package}/__init__.py",
    "src/app.py.j2": "src/{package}/app.py",
    "src/bodies.py.j2": "src/{package}/bodies.py",
    "src/fastpath.py.j2": "src/{package}/fastpath.py",
    "src/onepass.py.j2": "src/{package}/onepass.py",
    "src/rawpredict.py.j2": "src/{package}/rawpredict.py",
    "src/frame.py.j2": "src/{package}/frame.py",
    "src/errors.py.j2": "src/{package}/errors.py",
    "src/lifecycle.py.j2": "src/{package}/lifecycle.py",
    "src/metrics.py.j2": "src/{package}/metrics.py",
    "src/middleware.py.j2": "src/{package}/middleware.py",
    "src/routes.py.j2": "src/{package}/routes.py",
    "src/scoring.py.j2": "src/{package}/scoring.py",
    "src/model.py.j2": "src/{package}/model.py",
    "src/schemas.py.j2": "src/{package}/schemas.py",
    "src/v2.py.j2": "src/{package}/v2.py",
    "src/v2_binary.py.j2": "src/{package}/v2_binary.py",
    "src/v2_grpc.py.j2": "src/{package}/v2_grpc.py",
    "src/rawinfer.py.j2": "src/{package}/rawinfer.py",
    "tests/test_service.py.j2": "tests/test_service.py",
}
# template -> (output path, the context key that must be true for it to be written)
OPTIONAL = {
    "src/linear.py.j2": ("src/{package}/linear.py", "linear"),
}


# The annotation of an array record's `features` that `bodies.plain_record` checks by hand.
PLAIN_ARRAY = "list[Annotated[float, Field(strict=True, allow_inf_nan=False)]]"


@dataclass(frozen=True)
class RenderInput:
    artifact: Artifact
    capture: Capture
    schema: InputSchema
    code: ExtractedCode
    notebook_name: str
    executed_notebook: bytes


def templates_dir() -> Path:
    """Where the templates are: inside the installed package, else the source checkout."""
    package_root = Path(__file__).resolve().parents[1]
    for candidate in (package_root / "templates", package_root.parent / "templates"):
        if (candidate / "src" / "app.py.j2").is_file():
            return candidate
    raise TemplateError(
        "nb2prod's service templates are missing.", hint="Reinstall nb2prod: pip install --force-reinstall nb2prod"
    )


@functools.lru_cache(maxsize=1)
def _environment(folder: Path) -> jinja2.Environment:
    """One Jinja environment per templates folder: it keeps the compiled templates (and recompiles
    one whose file changed)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def prepare_templates() -> None:
    """Compile every template ahead of `render_project` (the pipeline does it while the notebook runs)."""
    env = _environment(templates_dir())
    for template in TEMPLATES:
        env.get_template(template)


def render_project(data: RenderInput) -> dict[str, bytes]:
    """Every file of the output project, keyed by its path relative to the output folder."""
    env = _environment(templates_dir())
    context = _context(data)
    package = data.artifact.package
    files: dict[str, bytes] = {}
    optional = {template: target for template, (target, key) in OPTIONAL.items() if context[key]}
    for template, target in {**TEMPLATES, **optional}.items():
        try:
            text = env.get_template(template).render(**context)
        except jinja2.TemplateError as err:
            raise TemplateError(
                f"template {template} failed: {err}", hint="Reinstall nb2prod; report this if it persists."
            ) from err
        files[target.format(package=package)] = text.encode()
    for source, target in STATIC.items():
        files[target.format(package=package)] = (templates_dir() / source).read_bytes()
    files[f"src/{package}/preprocessing.py"] = data.code.preprocess.source.encode()
    for name, content in data.artifact.files().items():
        files[f"src/{package}/artifacts/{name}"] = content
    files["tests/golden.json"] = canonical_json(_golden(data))
    files["notebook/executed.ipynb"] = data.executed_notebook
    return files


def _golden(data: RenderInput) -> dict[str, Any]:
    return {
        "model_version": data.artifact.version,
        "tolerance": TOLERANCE,
        "examples": [
            {"row": g.row, "input": g.input, "prediction": g.prediction, "probabilities": g.probabilities}
            for g in data.capture.golden
        ],
    }


def _context(data: RenderInput) -> dict[str, Any]:
    artifact, capture, schema = data.artifact, data.capture, data.schema
    classifier = capture.model.task is Task.CLASSIFICATION
    python_minor = ".".join(capture.python.split(".")[:2])
    base, _, build = artifact.version.partition("+")
    fields = [_field(schema, f) for f in schema.features] if schema.kind == "frame" else [_array_field(schema)]
    return {
        "name": artifact.name,
        "package": artifact.package,
        "version": artifact.version,
        "image_tag": f"{base}-{build}" if build else base,
        "notebook": data.notebook_name,
        "nb2prod_version": __version__,
        "python_minor": python_minor,
        "pins": data.code.serve_pins or data.code.pins,
        "test_pins": data.code.test_pins,
        "hatchling_pin": _hatchling_pin(),
        "frame": schema.kind == "frame",
        "input_kind": schema.kind,
        "array_dtype": schema.array_dtype or "float64",
        "uses_preprocess": data.code.preprocess.defines_preprocess,
        "classifier": classifier,
        "has_proba": classifier and "predict_proba" in capture.model.predict_methods,
        "prediction_type": _prediction_type(capture),
        "model_class": capture.model.class_path,
        "task": capture.model.task.value,
        "model_file": artifact.model_file,
        "compiled": artifact.manifest.inference.path == "compiled",
        "onnx_file": artifact.manifest.inference.file,
        "onnx_layout": artifact.manifest.inference.layout,
        "label_from_proba": artifact.manifest.inference.label_from_proba,
        "coalesce": artifact.manifest.inference.rows_independent,  # the scikit-learn path only (artifact.py)
        # A scaled linear model on the compiled path: a request's few rows scored as plain sums (linear.py).
        "linear": _linear(artifact.manifest.inference, data.code.preprocess.defines_preprocess, schema.array_dtype),
        "inference": artifact.manifest.inference,
        "service_input": artifact.manifest.service_input,
        "target_transform": artifact.manifest.target_transform,
        "fields": fields,
        # A plain array record (finite numbers, strict, no bounds, no nulls): bodies.py takes it without pydantic.
        "plain_array": schema.kind == "array" and fields[0]["annotation"] == PLAIN_ARRAY,
        "frame_rules": _frame_rules(schema),
        "spark_schema": _spark_schema(capture, classifier and "predict_proba" in capture.model.predict_methods),
        "record_doc": _record_doc(schema),
        "features": [_readme_feature(f) for f in schema.features],
        "bad_cases": _bad_cases(schema),
        "uses_literal": any(f.column.kind == "category" for f in schema.features),
        "max_batch": MAX_BATCH,
        "max_body_bytes": MAX_BODY_BYTES,
        "drain_seconds": DRAIN_SECONDS,
        "grpc_port": GRPC_PORT,
        "in_flight_seconds": IN_FLIGHT_SECONDS,
        # preStop sleep, then the drain, then requests in flight, then a margin before SIGKILL
        "grace_seconds": 2 * DRAIN_SECONDS + IN_FLIGHT_SECONDS + 5,
        "example_json": json.dumps(_example_record(schema)).replace("'", "'\\''"),
        "v2_example_json": json.dumps(_v2_example(schema)).replace("'", "'\\''"),
        "history": artifact.manifest.history,
        "canary_percent": artifact.manifest.history.canary_percent if artifact.manifest.history else None,
    }


def _linear(inference: InferenceRecord, uses_preprocess: bool, array_dtype: str | None) -> dict[str, Any] | None:
    """The proven linear form, when the service feeds the model its records as they come, as one
    float64 matrix (an array trained in float32 is rounded to it first: the sums would not be)."""
    layout = inference.layout or {}
    if inference.path != "compiled" or uses_preprocess or layout.get("kind") != "matrix":
        return None
    if array_dtype not in (None, "float64"):
        return None
    return inference.linear


def _hatchling_pin() -> str:
    try:
        return f">={metadata.version('hatchling')}"
    except metadata.PackageNotFoundError:
        return ">=1.21"


def _prediction_type(capture: Capture) -> str:
    classes = capture.model.classes
    return "float" if classes is None else python_type_of(classes)


def _field(schema: InputSchema, feature: Feature) -> dict[str, Any]:
    column = feature.column
    if column.kind == "category" and column.categories is not None:
        annotation = (
            "Literal[" + ", ".join(json.dumps(c) if isinstance(c, str) else repr(c) for c in column.categories) + "]"
        )
    else:
        annotation = feature.python_type
    args = [f"alias={json.dumps(feature.name)}"]
    if column.kind != "category":  # Literal already matches exactly; pydantic refuses strict there
        args.append("strict=True")
    if annotation == "float":
        args.append("allow_inf_nan=False")
    args += _bound_args(feature.bounds)
    if column.nullable:
        annotation += " | None"
    return {
        "identifier": feature.identifier,
        "annotation": annotation,
        "field_args": ", ".join(args),
        # A column without nulls in training whose null the pipeline handles takes null, but is still sent.
        "optional": column.nullable and not column.nullable_because,
    }


def _spark_schema(capture: Capture, has_proba: bool) -> str:
    """The columns `predict_frame` returns, as a Spark DDL schema (for the README's mapInPandas sketch)."""
    spark = {"str": "string", "int": "bigint", "float": "double", "bool": "boolean"}
    columns = [f"prediction {spark[_prediction_type(capture)]}"]
    if has_proba:
        columns += [f"`probability_{c}` double" for c in capture.model.classes or []]
    return ", ".join([*columns, "error string"])


def _frame_rules(schema: InputSchema) -> list[dict[str, Any]]:
    """The schema's fields column by column, for frame.py: what each column takes, null included."""
    if schema.kind == "array":
        field = _array_field(schema)
        kind = "integer" if schema.array_of_integers else "number"
        bounds = schema.array_bounds
        return [
            {
                "name": f.name,
                "kind": kind,
                "nullable": "| None" in field["annotation"],
                "bounds": bounds,
                "categories": None,
                "sent": False,
            }
            for f in schema.features
        ]
    rules = []
    for feature in schema.features:
        column = feature.column
        categories = None
        if column.kind == "category" and column.categories is not None:  # a tuple, written as Python source
            values = [json.dumps(c) if isinstance(c, str) else repr(c) for c in column.categories]
            categories = "(" + ", ".join(values) + ("," if len(values) == 1 else "") + ")"
        rules.append(
            {
                "name": feature.name,
                "kind": column.kind,
                "nullable": column.nullable,  # as schemas.Record takes it
                "sent": column.nullable and not _field(schema, feature)["optional"],  # takes null, still required
                "bounds": feature.bounds,
                "categories": categories,
            }
        )
    return rules


def _bound_args(bounds: tuple[int | float, int | float] | None) -> list[str]:
    """`ge=`/`le=` for a dtype's range: a value outside it is refused, never wrapped or overflowed."""
    return [] if bounds is None else [f"ge={bounds[0]!r}", f"le={bounds[1]!r}"]


def _array_field(schema: InputSchema) -> dict[str, Any]:
    n = len(schema.features)
    nullable = any(f.column.nullable for f in schema.features)
    args = ["strict=True", *_bound_args(schema.array_bounds)]
    if schema.array_of_integers:
        item = f"Annotated[int, Field({', '.join(args)})]"
    else:
        item = f"Annotated[float, Field({', '.join([*args, 'allow_inf_nan=False'])})]"
    item += " | None" if nullable else ""
    return {
        "identifier": "features",
        "annotation": f"list[{item}]",
        "field_args": f'min_length={n}, max_length={n}, description="the {n} input values, in training order"',
        "optional": False,
    }


def _record_doc(schema: InputSchema) -> str:
    if schema.kind == "array":
        return f"One input row: `features`, the {len(schema.features)} values the model was trained on."
    return "One input row, keyed by the notebook's training column names."


def _readme_feature(feature: Feature) -> dict[str, Any]:
    c = feature.column
    if feature.free_text:
        shown = "free text" + (f" ({c.distinct_count} distinct values)" if c.distinct_count is not None else "")
    elif c.categories is not None:
        shown = ", ".join(str(v) for v in c.categories[:8]) + (" ..." if len(c.categories) > 8 else "")
    elif c.minimum is not None:
        shown = f"{c.minimum} .. {c.maximum}"
    else:
        shown = ""
    nullable = "yes" if c.nullable else "no"
    if c.nullable_because:  # none in training: taken because the served pipeline handles it
        nullable = f"yes, {c.nullable_because}; none in training".replace("|", "\\|")
    return {
        "name": feature.name.replace("|", "\\|"),
        "json_type": feature.json_type,
        "column": c,
        "seen": shown,
        "nullable": nullable,
    }


def _example_record(schema: InputSchema) -> dict[str, Any]:
    """A valid record for the README, made from the schema's ranges, not taken from the training rows."""
    values = {f.name: _example_value(f) for f in schema.features}
    return {"features": list(values.values())} if schema.kind == "array" else values


def _example_value(feature: Feature) -> Any:
    c = feature.column
    if c.kind == "boolean":
        return False
    if c.categories:
        return c.categories[0]
    if feature.free_text:
        return "text"
    if c.kind in ("integer", "number") and c.minimum is not None and c.maximum is not None:
        middle = (c.minimum + c.maximum) / 2
        return int(middle) if c.kind == "integer" else round(middle, 2)
    return None if c.nullable else {"integer": 0, "number": 0.0}.get(c.kind, "text")


def _bad_cases(schema: InputSchema) -> list[dict[str, str]]:
    """Generated bad-input tests: (field, Python expression of a bad value) for the first golden record."""
    if schema.kind == "array":
        cases = [
            {"id": "wrong_length", "field": "features", "value": 'EXAMPLE["features"][:-1]'},
            {"id": "nan_value", "field": "features", "value": '[float("nan"), *EXAMPLE["features"][1:]]'},
            {"id": "text_value", "field": "features", "value": '["text", *EXAMPLE["features"][1:]]'},
        ]
        if schema.array_of_integers and schema.array_bounds is not None:
            too_large = f'[{schema.array_bounds[1] + 1}, *EXAMPLE["features"][1:]]'
            cases.append({"id": "integer_out_of_range", "field": "features", "value": too_large})
        return cases
    cases = []
    integer = next((f for f in schema.features if f.column.kind == "integer" and f.bounds is not None), None)
    if integer is not None and integer.bounds is not None:
        cases.append({"id": "integer_out_of_range", "field": integer.name, "value": repr(integer.bounds[1] + 1)})
    numeric = next((f for f in schema.features if f.column.kind == "number"), None)
    if numeric is not None:
        cases.append({"id": "nan_value", "field": numeric.name, "value": 'float("nan")'})
        cases.append({"id": "infinite_value", "field": numeric.name, "value": 'float("inf")'})
    typed = next((f for f in schema.features if f.column.kind in ("number", "integer", "boolean")), None)
    if typed is not None:
        cases.append({"id": "wrong_type", "field": typed.name, "value": '"text"'})
    category = next((f for f in schema.features if f.column.kind == "category"), None)
    if category is not None:
        cases.append({"id": "unseen_category", "field": category.name, "value": '"never-seen-in-training"'})
    required = next((f for f in schema.features if not f.column.nullable or f.column.nullable_because), None)
    if required is not None:
        cases.append({"id": "missing_field", "field": required.name, "value": "MISSING"})
    return cases


def _v2_datatype(feature: Feature, dtype: str) -> str:
    """The Open Inference Protocol datatype the generated service states for a feature (see v2.py.j2)."""
    kind = feature.column.kind
    if kind == "category":
        return {"bool": "BOOL", "int": "INT64", "float": "FP64"}.get(feature.python_type, "BYTES")
    if kind in ("boolean", "string"):
        return "BOOL" if kind == "boolean" else "BYTES"
    name = dtype.upper().replace("FLOAT", "FP")
    if kind == "integer":
        return name if name.startswith(("INT", "UINT")) and name[-1].isdigit() else "INT64"
    return name if name in ("FP16", "FP32", "FP64") else "FP64"


def _v2_example(schema: InputSchema) -> dict[str, Any]:
    """The README's example record as an Open Inference Protocol (v2) inference request."""
    record = _example_record(schema)
    if schema.kind == "array":
        datatype = _v2_datatype(schema.features[0], schema.array_dtype or "float64") if schema.features else "FP64"
        tensor = {"name": "input-0", "shape": [1, len(record["features"])], "datatype": datatype}
        return {"inputs": [{**tensor, "data": record["features"]}]}
    tensors = [
        {"name": f.name, "shape": [1], "datatype": _v2_datatype(f, f.column.dtype), "data": [record[f.name]]}
        for f in schema.features
    ]
    return {"inputs": tensors}

"""Input schema: Python identifiers for any column name, JSON Schema, generated pydantic fields."""

from __future__ import annotations

from pathlib import Path

from nb2prod.generate.render import _field
from nb2prod.generate.schema import infer_schema
from nb2prod.run.captured import Capture, CaptureReport, Column, FeatureSample, ModelInfo


def col(
    name: str,
    dtype: str,
    kind: str,
    nullable: bool,
    minimum: float | None = None,
    maximum: float | None = None,
    **more: object,
) -> Column:
    return Column.model_validate(
        {"name": name, "dtype": dtype, "kind": kind, "nullable": nullable, "min": minimum, "max": maximum, **more}
    )


def capture_with(columns: list[Column], kind: str = "frame") -> Capture:
    report = CaptureReport(
        capture_version=2,
        model=ModelInfo(
            variable="m", class_path="sklearn.x.Y", is_classifier=True, predict_methods=("predict",), classes=(0, 1)
        ),
        features=FeatureSample(
            kind=kind, variable="X", rows=10, columns=tuple(columns), array_dtype="float64" if kind == "array" else None
        ),
        golden=(),
        metrics={},
        distributions={},
        python="3.11.7",
        model_file="model.joblib",
    )
    return Capture(model_file=Path("model.joblib"), report=report)


def test_identifiers_for_awkward_column_names() -> None:
    names = ["monthly spend", "od280/od315", "class", "2nd", "model_type", "Monthly Spend", "records", "ümlaut"]
    schema = infer_schema(capture_with([col(n, "float64", "number", False) for n in names]))
    idents = [f.identifier for f in schema.features]
    assert idents == [
        "monthly_spend",
        "od280_od315",
        "class_",
        "f_2nd",
        "model_type_",
        "monthly_spend_2",
        "records_",
        "ümlaut",
    ]
    assert all(ident.isidentifier() for ident in idents)


def test_json_schema_required_nullable_and_categories() -> None:
    schema = infer_schema(
        capture_with(
            [
                col("age", "int64", "integer", False, 18, 80),
                col("city", "object", "string", True, categories=("Oslo", "Rome")),
                col("plan", "category", "category", False, categories=("a", "b"), category_dtype="object"),
            ]
        )
    )
    json_schema = schema.json_schema()
    assert json_schema["required"] == ["age", "plan"]
    assert json_schema["additionalProperties"] is False
    assert json_schema["properties"]["city"]["type"] == ["string", "null"]
    assert json_schema["properties"]["plan"]["enum"] == ["a", "b"]
    stats = {s["name"]: s for s in schema.feature_stats()}
    assert stats["age"]["min"] == 18 and stats["age"]["max"] == 80
    assert stats["city"]["categories"] == ["Oslo", "Rome"]


def test_generated_fields_are_strict_and_refuse_nan() -> None:
    schema = infer_schema(
        capture_with(
            [
                col("income", "float64", "number", True),
                col("plan", "category", "category", False, categories=("a", "b")),
                col("member", "bool", "boolean", False),
            ]
        )
    )
    income, plan, member = (_field(schema, f) for f in schema.features)
    assert income["annotation"] == "float | None" and income["optional"] is True
    assert "allow_inf_nan=False" in income["field_args"] and "strict=True" in income["field_args"]
    assert plan["annotation"] == 'Literal["a", "b"]' and "strict" not in plan["field_args"]
    assert member["annotation"] == "bool" and "strict=True" in member["field_args"]


def test_array_schema_has_fixed_length() -> None:
    schema = infer_schema(capture_with([col(f"x{i}", "float64", "number", False) for i in range(4)], "array"))
    features = schema.json_schema()["properties"]["features"]
    assert features["minItems"] == features["maxItems"] == 4

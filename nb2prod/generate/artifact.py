"""Artifact stage: the model file plus `manifest.json`, with hashes and no timestamps.

Two conversions of the same notebook with the same parameters give byte-identical files: the
manifest is canonical JSON (sorted keys) built only from what the run determined.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2prod._version import __version__
from nb2prod.analysis.service_input import ServiceInput
from nb2prod.analysis.target_scale import find_target_transform
from nb2prod.generate.extract import ExtractedCode
from nb2prod.generate.schema import InputSchema
from nb2prod.manifest import (
    CellRecord,
    DataFile,
    FeatureProfile,
    GitRecord,
    HistoryRecord,
    InferenceRecord,
    InputSchemaRecord,
    Manifest,
    ModelRecord,
    NotebookRecord,
    OutputRecord,
    PreprocessingRecord,
    ProofRecord,
    ProvenanceRecord,
    ServiceInputRecord,
    TargetTransformRecord,
    canonical_json,
    digest,
)
from nb2prod.notebook.spec import NotebookSpec, Role
from nb2prod.run.captured import Capture
from nb2prod.run.provenance import parameter_files


@dataclass(frozen=True)
class Artifact:
    """Files of `src/<package>/artifacts/` and the manifest they are described by."""

    model_file: str
    model_bytes: bytes
    manifest: Manifest
    compiled: dict[str, bytes] = field(default_factory=dict)  # the ONNX file, on the compiled path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def package(self) -> str:
        return self.manifest.package

    @property
    def version(self) -> str:
        return self.manifest.version

    def files(self) -> dict[str, bytes]:
        return {self.model_file: self.model_bytes, **self.compiled, "manifest.json": self.manifest.to_bytes()}


def data_files(spec: NotebookSpec, capture: Capture, parameters: dict[str, Any]) -> list[DataFile]:
    """Every file the kernel saw the run read, and every file a string parameter names (C readers
    such as pyarrow open files unseen), sorted by path, with the parameters that name each."""
    found = {read.path: (read.size, read.sha256) for read in capture.report.data_reads}
    named: dict[str, list[str]] = {}
    for name, path in parameter_files(spec, parameters).items():
        shown = shown_path(path, spec.path.parent)
        if shown not in found:
            data = path.read_bytes()
            found[shown] = (len(data), digest(data))
        named.setdefault(shown, []).append(name)
    return [
        DataFile(path=path, size=size, sha256=sha256, parameters=sorted(named.get(path, [])))
        for path, (size, sha256) in sorted(found.items())
    ]


def shown_path(path: Path, folder: Path) -> str:
    """How the manifest names a file: relative to `folder` with `/` when inside it, else absolute.
    The kernel names the files it saw read the same way (`run.kernel.reads._shown_path`)."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return real.relative_to(base).as_posix() if real.is_relative_to(base) else str(real)


def cell_records(spec: NotebookSpec) -> list[CellRecord]:
    """The cells that ran (code cells not tagged `skip`): index, roles and the digest of the source."""
    return [
        CellRecord(index=cell.index, roles=[str(role) for role in cell.roles], sha256=digest(cell.source.encode()))
        for cell in spec.code_cells()
        if not cell.has(Role.SKIP)
    ]


def provenance_record(spec: NotebookSpec, out: Path | None, git: GitRecord | None) -> ProvenanceRecord:
    """The notebook's path relative to OUT (its file name when OUT is not known), the cells that
    ran, and the git state the pipeline found."""
    notebook = spec.path.resolve()
    where = os.path.relpath(notebook, out.resolve()) if out is not None else notebook.name
    return ProvenanceRecord(notebook_path=Path(where).as_posix(), cells=cell_records(spec), git=git)


def build_artifact(
    *,
    spec: NotebookSpec,
    name: str,
    package: str,
    base_version: str,
    capture: Capture,
    schema: InputSchema,
    code: ExtractedCode,
    parameters: dict[str, Any],
    seed: int,
    out: Path | None = None,
    git: GitRecord | None = None,
    history: HistoryRecord | None = None,
    requirements: tuple[str, ...] = (),
    service_input: ServiceInput | None = None,
) -> Artifact:
    """Assemble the manifest. The version ends in a hash of model, code and schema. `out`: where
    the project is written (the manifest names the notebook relative to it); `git`: the state of
    the notebook's repository (`run.provenance.git_state`), None outside one."""
    model_bytes = capture.model_file.read_bytes()
    model_digest = digest(model_bytes)
    compiled = _compiled_files(capture)
    compiled_digests = {name: digest(data) for name, data in compiled.items()}
    hashed = [model_digest, code.preprocess.source, schema.json_schema(), *compiled_digests.values()]
    build_sha = hashlib.sha256(canonical_json(hashed))
    version = f"{base_version}+{build_sha.hexdigest()[:12]}"
    model_file = capture.model_file.name
    manifest = Manifest(
        name=name,
        package=package,
        version=version,
        nb2prod_version=__version__,
        notebook=NotebookRecord(file=spec.path.name, content_hash=spec.content_hash),
        provenance=provenance_record(spec, out, git),
        parameters={key: _jsonable(value) for key, value in sorted(parameters.items())},
        requirements=list(requirements),
        data_files=data_files(spec, capture, parameters),
        seed=seed,
        python=capture.python,
        packages=dict(code.pins),
        artifacts={model_file: model_digest, **compiled_digests},
        model=ModelRecord(
            class_path=capture.model.class_path,
            variable=capture.model.variable,
            task=capture.model.task.value,
            file=model_file,
            predict_methods=list(capture.model.predict_methods),
            uses_preprocess_function=code.preprocess.defines_preprocess,
        ),
        inference=inference_record(capture, code),
        input_schema=InputSchemaRecord(
            kind=schema.kind,
            json_schema=schema.json_schema(),
            features=schema.feature_stats(),
            training_rows=capture.features.rows,
            sample_variable=capture.features.variable,
        ),
        output=OutputRecord(classes=list(capture.model.classes) if capture.model.classes is not None else None),
        metrics=capture.metrics,
        example=capture.golden[0].input if capture.golden else None,
        preprocessing=preprocessing_record(capture),
        training_data=training_profile(capture),
        history=history,
        service_input=service_input_record(service_input, capture) if service_input is not None else None,
        target_transform=target_transform_record(spec, capture.model.variable),
    )
    return Artifact(model_file=model_file, model_bytes=model_bytes, manifest=manifest, compiled=compiled)


def service_input_record(service: ServiceInput, capture: Capture) -> ServiceInputRecord:
    """What a request carries, in the words `convert` printed, and why not the raw data."""
    service = dataclasses.replace(service, columns=tuple(c.name for c in capture.features.columns))
    blocking = service.blocking if service.kind == "engineered" else None
    return ServiceInputRecord(
        kind=service.kind,
        description=service.describe(),
        reason=blocking.reason if blocking is not None else None,
        fix=blocking.fix or None if blocking is not None else None,
    )


def target_transform_record(spec: NotebookSpec, model: str) -> TargetTransformRecord | None:
    """The transform on the label that the served model learned, if the notebook applies one."""
    found = find_target_transform(spec, model)
    if found is None:
        return None
    return TargetTransformRecord(
        expression=found.expression, cell=found.cell_number, line=found.line, inverse=found.inverse
    )


def training_profile(capture: Capture) -> list[FeatureProfile] | None:
    """The training sample's per-feature profile; None for a capture made before profiles."""
    columns = capture.features.columns
    if any(c.null_count is None for c in columns):
        return None
    return [
        FeatureProfile(
            name=c.name,
            kind=c.kind,
            rows=capture.features.rows,
            null_count=c.null_count or 0,
            quantiles=list(c.quantiles) if c.quantiles is not None else None,
            frequencies=[(value, count) for value, count in c.frequencies] if c.frequencies is not None else None,
        )
        for c in columns
    ]


def _compiled_files(capture: Capture) -> dict[str, bytes]:
    onnx_file = capture.onnx_file
    return {onnx_file.name: onnx_file.read_bytes()} if onnx_file is not None else {}


def inference_record(capture: Capture, code: ExtractedCode) -> InferenceRecord:
    """The manifest's inference record: the kernel's proof, and the runtime the service pins."""
    report = capture.inference
    compiled = report.path == "compiled"
    runtime = dict(code.pins).get("onnxruntime") if compiled else None
    return InferenceRecord(
        path=report.path,
        reason=report.reason,
        runtime=f"onnxruntime=={runtime}" if runtime else None,
        file=report.file if compiled else None,
        tolerance=report.tolerance,
        max_difference=report.max_difference,
        rows_checked=report.rows_checked,
        layout=report.layout.model_dump(mode="json", exclude_none=True) if compiled and report.layout else None,
        label_from_proba=report.label_from_proba,
        requested=report.requested,
        rows_independent=report.rows_independent and not compiled,
        linear=report.linear.model_dump(mode="json") if compiled and report.linear else None,
    )


def preprocessing_record(capture: Capture) -> PreprocessingRecord:
    """The manifest's preprocessing record: the method, the composed transformers and the proof."""
    report = capture.report.preprocessing
    proof = report.proof
    return PreprocessingRecord(
        method=report.method,
        raw_variable=report.raw_variable,
        transformers=list(report.transformers),
        frozen=list(report.frozen),
        label_columns=list(report.label_columns),
        proof=ProofRecord.model_validate(proof.model_dump()) if proof is not None else None,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)

"""The conversion pipeline: the one place that knows the order of the stages.

read -> lint -> execute (+capture) -> extract -> infer schema -> build artifact -> render -> write
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb2prod.analysis.lint import Finding, Severity, lint_notebook
from nb2prod.analysis.preprocess import PreprocessModule, assemble_preprocess
from nb2prod.analysis.roles import RolePlan, RoleProposal
from nb2prod.analysis.roles import propose_roles as plan_roles
from nb2prod.analysis.service_input import ServiceInput, planned_input
from nb2prod.analysis.targets import CaptureTargets, find_targets
from nb2prod.diff.api import compare_api
from nb2prod.diff.blame import blame
from nb2prod.diff.compare import read_version
from nb2prod.errors import CellExecutionError, IncompatibleVersion, LintError, OptionsError, RequirementNotMet
from nb2prod.generate.artifact import Artifact, build_artifact
from nb2prod.generate.extract import extract_code, prepare_pins
from nb2prod.generate.render import RenderInput, prepare_templates, render_project
from nb2prod.generate.schema import infer_schema
from nb2prod.generate.write import check_output, keep_failed_run, write_project
from nb2prod.manifest import HistoryRecord, Manifest
from nb2prod.notebook.spec import NotebookSpec, Role, read_notebook
from nb2prod.options import ConvertOptions, MetricRequirement, package_name, slug_name
from nb2prod.run.capture import capture_cell_source, read_capture, setup_cell_source
from nb2prod.run.captured import Capture
from nb2prod.run.execute import ExecutedRun, ProgressCallback, RunRequest, choose_kernel, run_notebook
from nb2prod.run.provenance import git_state, parameter_files, read_paths
from nb2prod.run.recording import recording_edits


@dataclass(frozen=True)
class ConversionResult:
    """What a successful conversion produced, for the CLI and (later) the Jupyter job API."""

    output: Path
    name: str
    version: str
    model_class: str
    model_variable: str
    features_variable: str
    metrics: dict[str, float]
    golden_examples: int
    kernel: str
    elapsed: float
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    service_input: ServiceInput | None = None  # what the service takes, its columns filled in


def lint(
    notebook: Path, *, model: str | None = None, features: str | None = None
) -> tuple[NotebookSpec, list[Finding]]:
    """Read and lint a notebook without running it."""
    spec = read_notebook(notebook)
    return spec, lint_notebook(spec, model_var=model, features_var=features)


def propose_roles(spec: NotebookSpec | Path, model: str | None = None) -> list[RoleProposal]:
    """A proposed role per code cell (`cell_index`, `role`, `roles`, `reason`), from a def-use
    analysis of the notebook without running it. Raises ModelChoiceError when several models are
    fitted and `model` (or notebook metadata `nb2prod.model`) does not say which one is served."""
    return list(plan_roles(_spec(spec), model).proposals)


@dataclass(frozen=True)
class TagResult:
    """What `nb2prod tag` proposed, and where it wrote the tags (if it was asked to)."""

    spec: NotebookSpec
    plan: RolePlan
    written: Path | None
    changed: int
    stored_model: str | None = None  # written as notebook metadata `nb2prod.model`


def tag(notebook: Path, *, model: str | None = None, write: bool = False, copy: Path | None = None) -> TagResult:
    """Propose roles for `notebook`; with `write`, store them as its cell tags; with `copy`, write
    a tagged copy there (never over an existing file)."""
    from nb2prod.notebook.tagging import write_roles

    if write and copy is not None:
        raise OptionsError("--write and -o both given.", hint="Tag the notebook itself (--write) or a copy (-o COPY).")
    spec = read_notebook(notebook)
    plan = plan_roles(spec, model)
    if not write and copy is None:
        return TagResult(spec, plan, None, 0)
    roles = {p.cell_index: p.roles for p in plan.proposals if not p.fixed}
    chosen = plan.model if (model or plan.convert_needs_model) and plan.model != spec.config.model else None
    written, changed = write_roles(spec.path, roles, destination=copy, model=chosen)
    return TagResult(spec, plan, written, changed, chosen)


def _spec(spec: NotebookSpec | Path) -> NotebookSpec:
    return spec if isinstance(spec, NotebookSpec) else read_notebook(Path(spec))


Warn = Callable[[str], None]


@dataclass(frozen=True)
class _Plan:
    """Everything known before the run: the checked notebook, names, targets, the kernel."""

    spec: NotebookSpec
    module: PreprocessModule
    findings: list[Finding]
    name: str
    package: str
    out: Path
    parameters: dict[str, Any]
    targets: CaptureTargets
    kernel: str
    warnings: tuple[str, ...]
    service_input: ServiceInput
    base: Manifest | None  # --compatible-with: the earlier version's manifest


def convert(
    options: ConvertOptions, progress: ProgressCallback | None = None, warn: Warn | None = None
) -> ConversionResult:
    """Run the notebook and write the service project; raise an Nb2ProdError on any problem.

    `progress` hears of each cell as it starts; `warn` hears warnings as soon as they are known
    (before the run, when they may explain a failure). The result lists them all again.
    """
    started = time.monotonic()
    plan = _plan(options)
    if warn is not None:
        for message in plan.warnings:
            warn(message)
        if plan.service_input.kind == "engineered" and plan.service_input.blocking is not None:
            warn(plan.service_input.explain())  # before the run: the service will not take raw rows
    run, capture, artifact, files = _produce(plan, options, progress)
    written = write_project(plan.out, files, plan.spec.path, options.force, options.discard_changes)
    spec, findings = plan.spec, plan.findings
    return ConversionResult(
        output=written,
        name=plan.name,
        version=artifact.version,
        model_class=capture.model.class_path,
        model_variable=capture.model.variable,
        features_variable=capture.features.variable,
        metrics=capture.metrics,
        golden_examples=len(capture.golden),
        kernel=run.kernel_name,
        elapsed=time.monotonic() - started,
        warnings=plan.warnings + capture.report.warnings + _metric_warnings(spec, capture),
        notes=capture.notes
        + tuple(f.message for f in findings if f.severity is Severity.NOTE)
        + _metric_notes(spec, capture),
        service_input=dataclasses.replace(plan.service_input, columns=tuple(c.name for c in capture.features.columns)),
    )


def reproduce(options: ConvertOptions, progress: ProgressCallback | None = None) -> dict[str, bytes]:
    """Every file `convert` would write for `options`, in memory: the output folder is neither
    checked nor written (`nb2prod verify` compares these with what is there)."""
    plan = _plan(options, writing=False)
    return _produce(plan, options, progress)[3]


def _produce(
    plan: _Plan, options: ConvertOptions, progress: ProgressCallback | None
) -> tuple[ExecutedRun, Capture, Artifact, dict[str, bytes]]:
    """Run the notebook in a temporary folder, then build the project's files from the capture."""
    # While the kernel runs the notebook, this process mostly waits: compile the templates and
    # walk the web stack's pins meanwhile, on a second core.
    preparing = threading.Thread(target=_prepare_build, name="nb2prod-prepare", daemon=True)
    preparing.start()
    with tempfile.TemporaryDirectory(prefix="nb2prod-run-") as work_dir:
        run, capture = _run(plan, options, Path(work_dir), progress)
        preparing.join()
        artifact, files = _build(plan, options, capture, run.executed_path.read_bytes())
    return run, capture, artifact, files


def _prepare_build() -> None:
    """What `_build` needs that does not depend on the run. A failure here is left for `_build`
    to meet again and report."""
    try:
        prepare_templates()
        prepare_pins()
    except Exception:  # noqa: BLE001, S110 - `_build` does the same work and raises with context
        pass


def _plan(options: ConvertOptions, *, writing: bool = True) -> _Plan:
    """Read and lint the notebook and settle every name, without starting a kernel."""
    spec = read_notebook(options.notebook)
    module = assemble_preprocess(spec, raw=options.raw, model=options.model)
    findings = lint_notebook(spec, model_var=options.model, module=module, features_var=options.features)
    _raise_for_errors(spec, findings)
    name = options.name or spec.config.name or slug_name(spec.path.stem)
    out = options.output or spec.path.parent / f"{name}-service"
    if writing:
        check_output(out, spec.path, options.force, options.discard_changes)
    parameters = coerce_parameters(spec, options.parameters)
    targets = find_targets(spec, model=options.model, features=options.features)
    kernel, kernel_warnings = choose_kernel(spec, options.kernel)
    base = read_version(options.compatible_with).manifest if options.compatible_with is not None else None
    lint_warnings = tuple(f.message for f in findings if f.severity is Severity.WARNING)
    return _Plan(
        spec=spec,
        module=module,
        findings=findings,
        name=name,
        package=package_name(name),
        out=out,
        parameters=parameters,
        targets=targets,
        kernel=kernel,
        warnings=tuple(kernel_warnings) + lint_warnings,
        service_input=planned_input(spec, raw=options.raw, model=options.model, module=module),
        base=base,
    )


def _run(
    plan: _Plan, options: ConvertOptions, work: Path, progress: ProgressCallback | None
) -> tuple[ExecutedRun, Capture]:
    """Run the notebook with the capture cell; keep the executed notebook beside OUT if a cell fails."""
    spec, module = plan.spec, plan.module
    request = RunRequest(
        spec=spec,
        parameters=plan.parameters,
        kernel=plan.kernel,
        seed=options.seed,
        timeout=options.timeout,
        capture_source=capture_cell_source(
            out_dir=work,
            package=plan.package,
            targets=plan.targets,
            spec=spec,
            module=module,
            compile_model=options.compile_model,
        ),
        executed_path=work / "executed.ipynb",
        edits=recording_edits(spec, module),
        setup_source=setup_cell_source(notebook_dir=spec.path.parent, exclude=(work, plan.out)),
    )
    try:
        run = run_notebook(request, progress)
    except CellExecutionError as err:
        kept = request.executed_path.is_file()
        err.executed_notebook = keep_failed_run(request.executed_path, plan.out) if kept else None
        raise
    capture = read_capture(work, spec, module)
    check_requirements(spec, options.requirements, capture.metrics, capture.report.metrics_problems)
    return run, capture


def _build(
    plan: _Plan, options: ConvertOptions, capture: Capture, executed_notebook: bytes
) -> tuple[Artifact, dict[str, bytes]]:
    """From the capture to the files of the project, in memory."""
    spec = plan.spec
    parameters = {p.name: p.value for p in spec.parameters} | plan.parameters
    inputs = read_paths(spec, capture.report.data_reads) + list(parameter_files(spec, parameters).values())
    schema = infer_schema(capture)
    module = plan.module
    if capture.report.preprocessing.records:  # nb2prod's own preprocess(frame) rebuilds the training dicts
        module = dataclasses.replace(module, callables=(*module.callables, "preprocess"))
    code = extract_code(
        module, capture.distributions, capture.report.preprocessing.source, capture.report.serve_distributions
    )
    artifact = build_artifact(
        spec=spec,
        name=plan.name,
        package=plan.package,
        base_version=options.version or spec.config.version or "0.1.0",
        capture=capture,
        schema=schema,
        code=code,
        parameters=parameters,
        seed=options.seed,
        out=plan.out,
        git=git_state(spec.path, inputs, exclude=(plan.out,)),
        requirements=tuple(str(requirement) for requirement in options.requirements),
        service_input=plan.service_input,
    )
    history = options.history if plan.base is None else check_compatible(plan, plan.base, artifact.manifest, options)
    if history is not None:
        artifact = dataclasses.replace(artifact, manifest=artifact.manifest.model_copy(update={"history": history}))
    files = render_project(RenderInput(artifact, capture, schema, code, spec.path.name, executed_notebook))
    return artifact, files


def check_compatible(plan: _Plan, base: Manifest, new: Manifest, options: ConvertOptions) -> HistoryRecord:
    """`--compatible-with`: refuse a new version that breaks the base's clients, naming each change and
    the cell whose code made it; else the history the new manifest records."""
    api = compare_api(base, new)
    if api.breaking:
        lines = []
        for change in api.breaking:
            cell = blame(plan.spec, change)
            lines.append(change.detail + (f" (made by {cell.label})" if cell is not None else ""))
        listed = "\n".join(f"  - {line}" for line in lines)
        raise IncompatibleVersion(
            f"{plan.spec.path.name}: the new version would break clients of {base.name} {base.version} "
            f"({options.compatible_with}); nothing was written:\n{listed}",
            hint="Keep the fields and categories clients send, or convert without --compatible-with "
            "and release it as a new, breaking version.",
            changes=lines,
            notebook=plan.spec.path,
        )
    return HistoryRecord(
        checked_against=base.version,
        breaking=0,
        changes=[change.detail for change in api.changes],
        canary_percent=options.canary,
    )


def _metric_warnings(spec: NotebookSpec, capture: Capture) -> tuple[str, ...]:
    """What the kernel left out of `metrics` (a module, a non-number): a warning, never a failure."""
    problems = capture.report.metrics_problems
    return tuple(f"{spec.path.name}: {why}; it is left out of the manifest's metrics." for why in problems.values())


def _metric_notes(spec: NotebookSpec, capture: Capture) -> tuple[str, ...]:
    evaluate = spec.code_cells(Role.EVALUATE)
    if not evaluate or capture.metrics or capture.report.metrics_problems:
        return ()
    return (
        f"{spec.path.name}: the evaluate cells ({', '.join(c.label for c in evaluate)}) set no `metrics` dict "
        "of numbers and call no metric on the served model's predictions (`accuracy_score(y_test, pred)`), "
        "so the manifest records no metrics.",
    )


def _raise_for_errors(spec: NotebookSpec, findings: list[Finding]) -> None:
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if not errors:
        return
    if len(errors) == 1:
        raise LintError(errors[0].message, hint=errors[0].hint, findings=list(errors), notebook=spec.path)
    listed = "\n".join(f"  - {f.message}" for f in errors)
    raise LintError(
        f"{spec.path.name}: {len(errors)} problems found before running:\n{listed}",
        hint=errors[0].hint,
        findings=list(errors),
        notebook=spec.path,
    )


def coerce_parameters(spec: NotebookSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """Check `-p` names against the parameters cell and give text values the cell's types."""
    known = {p.name: p for p in spec.parameters}
    if raw and spec.parameters_cell is None:
        raise OptionsError(
            f"{spec.path.name}: -p {next(iter(raw))} given, but no cell has the role `parameters`.",
            hint="Tag the cell that sets the defaults `parameters`.",
            notebook=spec.path,
        )
    result = {}
    for name, value in raw.items():
        if name not in known:
            cell = spec.parameters_cell.label if spec.parameters_cell else "?"
            raise OptionsError(
                f"{spec.path.name}: -p {name}: the parameters cell ({cell}) "
                f"does not set `{name}` (it sets: {', '.join(known) or 'nothing'}).",
                hint="Check the spelling, or add the parameter to the parameters cell.",
                notebook=spec.path,
            )
        result[name] = _coerce(spec, name, value, known[name].value) if isinstance(value, str) else value
    return result


def _coerce(spec: NotebookSpec, name: str, text: str, default: Any) -> Any:
    target = type(default)
    try:
        if target is bool:
            lowered = text.lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return lowered in {"true", "1", "yes"}
        if target in (int, float):
            return target(text)
        if target is str:
            return text
        return _guess(text)
    except ValueError:
        raise OptionsError(
            f"{spec.path.name}: -p {name} {text}: the parameters cell sets {name} = {default!r}, "
            f"a {target.__name__}, and {text!r} is not one.",
            hint=f"Give a {target.__name__} value.",
            notebook=spec.path,
        ) from None


def _guess(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def check_requirements(
    spec: NotebookSpec,
    requirements: tuple[MetricRequirement, ...],
    metrics: dict[str, float],
    problems: dict[str, str] | None = None,
) -> None:
    """Fail the conversion when a `--require` gate does not hold. `problems` says what was left
    out of the notebook's metrics variable and why (the kernel's `metrics_problems`)."""
    problems = problems or {}
    for requirement in requirements:
        if requirement.metric not in metrics:
            have = ", ".join(sorted(metrics)) or "none"
            why = problems.get(requirement.metric) or problems.get("")
            raise RequirementNotMet(
                f"{spec.path.name}: --require {requirement}: the notebook reports no metric `{requirement.metric}` "
                f"(metrics: {have})" + (f": {why}." if why else "."),
                hint="Set it in the `metrics` dict of a cell tagged `evaluate`, or compute it there with a metric "
                "call on the served model's predictions (`accuracy_score(y_test, pred)` is `accuracy_score`).",
                notebook=spec.path,
            )
        actual = metrics[requirement.metric]
        if not requirement.holds(actual):
            raise RequirementNotMet(
                f"{spec.path.name}: {requirement.metric} is {actual:g}, but --require asks {requirement}.",
                hint="Improve the model, or relax the requirement.",
                notebook=spec.path,
            )

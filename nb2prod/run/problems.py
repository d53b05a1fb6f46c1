"""Phrasing the problems the kernel reports: one message and hint per kind, located at a cell."""

from __future__ import annotations

from typing import Any

from nb2prod.analysis import names as analysis
from nb2prod.analysis.preprocess import PreprocessModule
from nb2prod.errors import CaptureError
from nb2prod.notebook.spec import Cell, NotebookSpec, Role
from nb2prod.run.captured import CaptureProblem
from nb2prod.run.proof_problems import proof_error


def _assigning_cell(spec: NotebookSpec, name: str) -> Cell | None:
    """The last cell of the run that binds `name` at top level (where the object was made)."""
    ran = [c for c in spec.code_cells() if c.role is not Role.SKIP]
    found = analysis.cells_binding(ran, name)
    return found[-1] if found else None


def _where(spec: NotebookSpec, name: str) -> tuple[str, int | None]:
    cell = _assigning_cell(spec, name)
    return (f" (assigned in {cell.label})", cell.index) if cell else ("", None)


def problem_error(spec: NotebookSpec, module: PreprocessModule, problem: CaptureProblem) -> CaptureError:
    """One message per kind of problem the kernel can report."""
    kind, details, nb = problem.kind, problem.details, spec.path.name
    preprocessing = proof_error(spec, module, problem)
    if preprocessing is not None:
        return preprocessing
    builders = {
        "missing": _missing,
        "not_estimator": _not_estimator,
        "not_fitted": _not_fitted,
        "ambiguous": _ambiguous,
        "no_model": _no_model,
        "no_features": _no_features,
        "features_type": _features_type,
        "lambda": _lambda,
        "not_serializable": _not_serializable,
        "main_reference": _main_reference,
        "predict_failed": _predict_failed,
        "column_type": _column_type,
        "metrics_type": _metrics_type,
        "records": _records,
    }
    builder = builders.get(kind)
    if builder is not None:
        message, hint, cell_index = builder(spec, problem.message, details | {"_module": module})
    else:
        message, hint, cell_index = problem.message, "", None
    return CaptureError(f"{nb}: {message}", hint=hint, notebook=spec.path, cell_index=cell_index, rule=kind)


Built = tuple[str, str, int | None]


def _records(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    where, index = _where(spec, str(details.get("name")))
    return (
        f"the model was fitted on the list of dicts `{details.get('name')}`{where}; scored on the same dicts "
        f"rebuilt from a frame of their keys (as the service rebuilds a request's records), {message}.",
        "Give every dict the same keys (a missing value as None or NaN throughout), or fit on a DataFrame.",
        index,
    )


def _missing(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    return (
        f"{message} after the run (looking for `{details['name']}`).",
        "Check the name given by --model/--features or notebook metadata `nb2prod`.",
        None,
    )


def _not_estimator(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    where, index = _where(spec, details["name"])
    return (
        f"the model `{details['name']}`{where} is a {details['type']}, not a scikit-learn-compatible "
        "estimator (it has no fit/predict).",
        "Name the fitted estimator with --model VAR or notebook metadata nb2prod.model.",
        index,
    )


def _not_fitted(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    name = details["names"][0]
    where, index = _where(spec, name)
    passed = sorted({f for c in spec.code_cells() for f in analysis.calls_passing(c, name)})
    extra = f"; it was only passed to {', '.join(passed)}, which fits copies" if passed else ""
    return (f"the model `{name}`{where} is not fitted{extra}.", f"Call `{name}.fit(X, y)` in a train cell.", index)


def _ambiguous(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    listed = ", ".join(f"`{n}` ({t})" for n, t in details["candidates"].items())
    return (
        f"more than one fitted estimator could be the model: {listed}.",
        'Choose one with --model VAR, or notebook metadata "nb2prod": {"model": "VAR"}.',
        None,
    )


def _no_model(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    seen = ", ".join(f"`{n}` ({t})" for n, t in details["candidates"].items()) or "none"
    return (
        f"no fitted model found: the train cells define no estimator (variables seen: {seen}).",
        "Fit the model in a cell tagged `train`, or name it with --model VAR.",
        None,
    )


def _no_features(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    return (
        f"cannot tell which variable holds the model's training input: no `{details['model']}.fit(X, ...)` "
        "was found in the train cells.",
        "Name it with --features VAR or notebook metadata nb2prod.features.",
        None,
    )


def _features_type(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    name = details.get("variable", "?")
    where, index = _where(spec, name)
    return (
        f"the features sample `{name}`{where} cannot describe the service input: {message}.",
        "Use a pandas DataFrame with string column names, or a 2-D numeric NumPy array.",
        index,
    )


def _lambda(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    where, index = _where(spec, details["variable"])
    return (
        f"the model `{details['variable']}`{where} holds a lambda, which cannot be serialized.",
        "Define a named function in a preprocess cell and use it instead of the lambda.",
        index,
    )


def _not_serializable(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    where, index = _where(spec, details["variable"])
    return (
        f"the model `{details['variable']}`{where} cannot be serialized: {message}.",
        "Keep only picklable objects in the model (no open files, connections, lambdas or generators); "
        "open resources outside the model.",
        index,
    )


def _main_reference(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    names = details["names"]
    cells = [c for c in (_assigning_cell(spec, n) for n in names) if c is not None]
    where = f", defined in {cells[0].label}" if cells else ""
    return (
        f"the model uses {', '.join(f'`{n}`' for n in names)}{where}, which is not in a preprocess cell; "
        "the service could not unpickle it.",
        "Move the class or function into a cell tagged `preprocess`.",
        cells[0].index if cells else None,
    )


def _predict_failed(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    uses = "preprocess(row)" if details["_module"].defines_preprocess else "the row"
    return (
        f"the model could not predict row {details.get('row')} of its own input sample ({uses}): {message}.",
        "The service calls model.predict(preprocess(X)) when preprocess cells define `preprocess`, else "
        "model.predict(X): fit the model the same way, or name the right sample with --features VAR.",
        None,
    )


def _column_type(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    return (
        f"the input sample cannot become a JSON schema: {message}.",
        "Service inputs are numbers, booleans, strings and categories: convert other columns (dates, "
        "objects) in the notebook before fitting, or inside preprocess(frame) from a string column.",
        None,
    )


def _metrics_type(spec: NotebookSpec, message: str, details: dict[str, Any]) -> Built:
    cells = spec.code_cells(Role.EVALUATE)
    where = f" ({cells[-1].label})" if cells else ""
    return (
        f"the evaluate cells' metrics{where} are not usable: {message}.",
        'Set `metrics = {"name": number, ...}` with finite numbers in a cell tagged `evaluate`.',
        cells[-1].index if cells else None,
    )

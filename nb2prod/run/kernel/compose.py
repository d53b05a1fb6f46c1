"""What the service runs: the shipped preprocessing, fitted transformers composed with the model.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
The model was fitted on its fit input; the service gets raw records. Between them are the
shipped `preprocess(frame)` (generated or hand-written) and the fitted transformers the notebook
applied before `fit`, which are composed with the model into one pipeline. Whenever there is
anything between them, the proof checks it reproduces the fit input from the raw rows.
"""

import sys

from nb2prod.run.kernel.common import _CaptureProblem
from nb2prod.run.kernel.frozen import _frozen_load_shipped, _frozen_shipped_source
from nb2prod.run.kernel.proof import (
    _proof_compare,
    _proof_keyed,
    _proof_prove,
    _proof_row_labels,
    _proof_row_positions,
)

_SERVED_PROOF_ROWS = 100


def _served_inputs(namespace, config, model, variable):
    """The served model and the sample the service describes, with the preprocessing record."""
    plan = config.get("preprocessing") or {}
    recorded = namespace.get("_nb2prod_recorded") or {}
    kept = recorded.get("kept", {})
    root = variable.split(".")[0]
    chain = plan.get("chains", {}).get(root) or {"transformers": [], "function": False, "start": None}
    source, function = _served_module(plan, recorded, config["package"])
    transformers = [(name, _served_transformer(namespace, name)) for name in chain["transformers"]]
    raw, raw_variable, method = _served_raw(plan, chain, kept, root, function, transformers, recorded)
    record = {
        "method": method,
        "raw_variable": raw_variable,
        "transformers": [name for name, _ in transformers],
        "source": source,
        "frozen": sorted(recorded.get("values", {})) if plan.get("frozen") else [],
        "label_columns": [],
        "proof": None,
    }
    served = {"model": _served_compose(transformers, model), "record": record, "function": function}
    served.update(sample=None, inputs=None, positions=None)
    fit_input = kept.get("fit:" + root)
    if fit_input is None and raw is not None:
        fit_input = _served_fit_input(namespace, chain.get("features"))
    if raw is not None and fit_input is not None:
        rows = kept.get("rows:" + root)  # the fit's label: its index names the rows of an array fit input
        _served_prove(served, raw, fit_input, plan.get("label_columns", []), transformers, rows)
    return served


def _served_module(plan, recorded, package):
    """The shipped module's source (frozen values filled in) and its `preprocess`, if any."""
    if plan.get("module") is None:
        return None, None
    source = _frozen_shipped_source(plan["module"], recorded, plan.get("frozen", []), plan.get("label_columns", []))
    function = getattr(_frozen_load_shipped(source, package), "preprocess", None)
    return source, function if callable(function) else None


def _served_prove(served, raw, fit_input, labels, transformers, rows=None):
    """Prove the shipped preprocessing on the raw rows as a request has them (no label columns)."""
    record = served["record"]
    request, record["label_columns"] = _served_without_labels(raw, labels)
    transform = _served_transform(served["function"], transformers)
    if record["method"] == "replayed":
        record["unused_columns"] = _served_unused_columns(transform, request, fit_input, rows)
        request = request.drop(columns=record["unused_columns"])
    try:
        record["proof"] = _proof_prove(transform, request, fit_input, _SERVED_PROOF_ROWS, rows)
    except _CaptureProblem as problem:
        problem.details.update(method=record["method"], transformers=record["transformers"])
        raise
    served.update(sample=request, inputs=fit_input, positions=_proof_row_positions(request, fit_input, rows))


def _served_unused_columns(transform, request, fit_input, rows=None):
    """Raw columns the replayed cells never read (an id they drop, the label under a new name):
    a request need not send them. Each is left out only if the fit input is still reproduced."""
    if not hasattr(request, "columns"):  # an array's columns have no names to leave out
        return []
    try:
        positions = _proof_row_positions(request, fit_input, rows)
        labels = _proof_row_labels(_proof_keyed(fit_input, rows))
    except Exception:  # noqa: BLE001 - the proof reports what is wrong
        return []
    frame = request.reset_index(drop=True)
    rows = list(range(len(positions)))
    unused = []
    for name in list(getattr(frame, "columns", [])):
        try:
            result = transform(frame.drop(columns=[*unused, name]))
            _proof_compare(fit_input, result, positions, rows, labels, "batch")
        except Exception:  # noqa: BLE001 - the column is needed
            continue
        unused.append(name)
    return unused


def _served_fit_input(namespace, features):
    """The fit call's `X` evaluated after the run: when its cell could not be edited to record it."""
    if not features:
        return None
    try:
        return eval(features, namespace)  # noqa: S307 - the notebook's own expression, in its own kernel
    except Exception:  # noqa: BLE001 - then there is nothing to prove against
        return None


def _served_raw(plan, chain, kept, root, function, transformers, recorded):
    """The raw frame the service's records are rows of, its name, and how preprocessing is done."""
    if plan.get("generates_function"):
        if recorded.get("missing") or "raw" not in kept:
            raise _CaptureProblem("raw_missing", "no such variable", name=plan.get("raw"))
        return kept["raw"], plan["raw"], "replayed"
    start = kept.get("start:" + root)
    if start is not None and (chain["function"] or transformers):
        return start, chain["start"], "function" if chain["function"] else "model"
    return None, None, "function" if function is not None else "model"


def _served_transformer(namespace, name):
    value = namespace.get(name)
    if value is None or not callable(getattr(value, "transform", None)):
        raise _CaptureProblem("not_transformer", "it has no transform method", name=name)
    return value


def _served_compose(transformers, model):
    if not transformers:
        return model
    from sklearn.pipeline import Pipeline

    steps = [(name.replace("__", "_"), transformer) for name, transformer in transformers]
    return Pipeline(steps + [("model", model)])


def _served_transform(function, transformers):
    def transform(frame):
        value = function(frame) if function is not None else frame
        for _, transformer in transformers:
            value = transformer.transform(value)
        return value

    return transform


def _served_without_labels(raw, labels):
    """The raw frame as a request has it: without the label columns."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(raw, pandas.DataFrame):
        return raw, []
    dropped = [c for c in labels if c in raw.columns]
    return raw.drop(columns=dropped), dropped

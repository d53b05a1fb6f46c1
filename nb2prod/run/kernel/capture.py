"""Code that runs inside the notebook's kernel after the last cell (the capture step).

nb2prod sends the kernel package's modules as one extra cell (their imports of each other
removed, in dependency order; see `nb2prod.run.capture.kernel_source`), followed by a call with a JSON config. It
must only need the standard library and what a scikit-learn notebook already has (NumPy,
joblib, scikit-learn, pandas when the input is a DataFrame); it never imports nb2prod, because
the kernel may live in another environment. It writes `capture.json` and the model file into
`config["out_dir"]`; problems are reported in `capture.json`, not raised, so that nb2prod can
phrase them.
"""

import json
import os
import sys

from nb2prod.run.kernel.common import CAPTURE_VERSION, _CaptureProblem
from nb2prod.run.kernel.compiled import _compile_model, _inference_note
from nb2prod.run.kernel.compose import _served_inputs
from nb2prod.run.kernel.environment import _distributions
from nb2prod.run.kernel.frozen import _frozen_load_shipped
from nb2prod.run.kernel.golden import _golden_examples
from nb2prod.run.kernel.model import _apply_labels, _describe_model, _find_model, _metrics, _metrics_problems
from nb2prod.run.kernel.nulls import _handled_nulls, _null_rows
from nb2prod.run.kernel.pickling import _check_picklable, _dump, _rebind_preprocess_definitions
from nb2prod.run.kernel.reads import _data_reads
from nb2prod.run.kernel.records import _records_frame, _records_prove, _records_source
from nb2prod.run.kernel.sample import _as_numbers, _describe_sample, _find_features


def _nb2prod_capture(namespace, config):
    """Capture the model and the input sample from `namespace` (the notebook's globals)."""
    out_dir = config["out_dir"]
    reads = _data_reads(namespace)  # first: the hook goes inert before the capture opens any file
    try:
        result = _capture(namespace, config)
        if reads is None:
            result["notes"].append("the data files the notebook read were not recorded (its namespace was reset).")
        else:
            result["data_reads"] = reads
    except _CaptureProblem as problem:
        result = {"error": {"kind": problem.kind, "message": str(problem), "details": problem.details}}
    with open(os.path.join(out_dir, "capture.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, sort_keys=True, allow_nan=False, default=str)
    return "error" not in result


def _null_reason_text(schema):
    reasons = {c["nullable_because"] for c in schema["columns"] if c.get("nullable_because")}
    return "; ".join(sorted(reasons))


def _served_records(served, sample, variable, model, config, notes):
    """A list of dicts as the fit input: the sample becomes their frame, and a shipped preprocess rebuilds them."""
    frame = _records_frame(sample) if served["function"] is None else None
    if frame is None:
        return sample
    source = _records_source(sample, variable, frame)
    function = _frozen_load_shipped(source, config["package"]).preprocess
    _records_prove(model, sample, frame, function, variable)
    served["function"] = function
    served["record"].update(method="function", source=source, records=True)
    notes.append(f"`{variable}` is a list of dicts: the service takes their keys as fields ({frame.shape[1]}).")
    return frame


def _capture(namespace, config):
    notes = []
    variable, model = _find_model(namespace, config)
    metrics = _metrics(namespace, config)  # before anything here changes the model (labels)
    if hasattr(model, "best_estimator_") and hasattr(model, "cv_results_"):
        notes.append(f"`{variable}` is a {type(model).__name__}; its best_estimator_ is served.")
        variable, model = variable + ".best_estimator_", model.best_estimator_
    _apply_labels(model, config, notes)
    served = _served_inputs(namespace, config, model, variable)
    if served["sample"] is None:
        features_variable, sample = _find_features(namespace, config, variable, notes)
        sample = _served_records(served, sample, features_variable, model, config, notes)
    else:  # the raw frame the shipped preprocessing was proven on
        features_variable = served["record"]["raw_variable"]
        sample = _as_numbers(served["sample"], features_variable, notes)  # `X.values` of dummies and numbers
    preprocess = served["function"]
    schema = _describe_sample(sample, features_variable, namespace)
    golden = _golden_examples(model, sample, preprocess, config["golden_rows"], served["inputs"], served["positions"])
    model = served["model"]  # with the fitted transformers applied before `fit`, if any
    handled = _handled_nulls(schema, model, preprocess, sample)
    if handled:
        names = ", ".join(f"`{name}`" for name in handled)
        notes.append(f"a null is taken in {names} (no nulls in training): {_null_reason_text(schema)}.")
        config = {**config, "null_rows": _null_rows(sample, handled), "null_columns": names}
    inference = _compile_model(model, sample, preprocess, golden, config)
    notes.append(_inference_note(inference))
    _rebind_preprocess_definitions(namespace, config["package"], config["preprocess_callables"])
    modules = _check_picklable(model, variable)
    model_path = os.path.join(config["out_dir"], config["model_file"])
    _dump(model, model_path, variable)
    modules |= set(config["import_modules"]) | {"numpy", "joblib", "sklearn"}
    if schema["kind"] == "frame":
        modules.add("pandas")
    serve_modules = None
    if inference["path"] == "compiled":
        modules.add("onnxruntime")  # the version that gave the proof is the one the service pins
        # ONNX Runtime scores and the pickle is never loaded at serve time: what unpickling it needs
        # (scikit-learn, SciPy, joblib) is left out unless the preprocess code the service runs imports it.
        serve_modules = {"numpy", "onnxruntime"}
        if config["has_preprocess"]:
            serve_modules |= set(config["import_modules"]) | ({"pandas"} if schema["kind"] == "frame" else set())
    return {
        "capture_version": CAPTURE_VERSION,
        "model": _describe_model(model, variable),
        "preprocessing": served["record"],
        "features": schema,
        "golden": golden,
        "inference": inference,
        "metrics": metrics,
        "metrics_problems": _metrics_problems(namespace, config),
        "distributions": _distributions(modules, config["package"]),
        "serve_distributions": None if serve_modules is None else _distributions(serve_modules, config["package"]),
        "python": ".".join(str(part) for part in sys.version_info[:3]),
        "model_file": config["model_file"],
        "notes": notes,
    }

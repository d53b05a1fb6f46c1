"""The inference path: compile the served model to ONNX and prove it gives the notebook's answers.

The kernel has the fitted model and the whole training sample, so the proof is made here: the
compiled model scores a few thousand rows of the sample in one batch, and every golden row one
at a time as the service will, and must give the same labels and probabilities (or regression
values) within the tolerance. When skl2onnx or onnxruntime is missing, a part of the model has no
converter, or an answer differs, the service keeps scikit-learn, and the report says why.

The same rows also prove (or not) that the label is `classes_[argmax(predict_proba)]`, which
lets the scikit-learn path make one model call per request instead of two.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9;
skl2onnx, onnx and onnxruntime are imported when present.
"""

import copy
import os
import sys
import warnings

from nb2prod.run.kernel.common import _missing, _plain
from nb2prod.run.kernel.linear import _linear_form, _LinearSession
from nb2prod.run.kernel.onnx_exact import _finish_exact_trees, _register_exact_converters

ONNX_OPSET = 21
ONNX_ML_OPSET_FOR_SKL2ONNX = 3


class _Fallback(Exception):
    """The compiled path is not taken; the message says why."""

    def __init__(self, reason, max_difference=None, compared=False):
        super().__init__(reason)
        self.max_difference = max_difference
        self.compared = compared or max_difference is not None  # the model converted and ran


def _compile_model(model, sample, preprocess, golden, config):
    """The inference report; writes the ONNX file into `out_dir` when the compiled path is chosen."""
    tolerance = config["tolerance"]
    report = {"tolerance": tolerance, "max_difference": None, "rows_checked": 0, "file": None, "layout": None}
    try:
        inputs = preprocess(sample) if preprocess is not None else sample
        rows = _proof_rows(len(inputs), [g["row"] for g in golden], config["proof_rows"])
        subset = _take(inputs, rows)
    except Exception as err:  # noqa: BLE001 - the user's preprocess may raise anything
        report.update(path="sklearn", reason=f"preprocess failed on the training sample: {type(err).__name__}: {err}")
        report.update(label_from_proba=False)
        return report
    answers = _BatchAnswers(model, subset)
    report.update(_label_from_proba_proof(model, answers))
    report["rows_checked"] = len(rows) + len(golden)
    if not config.get("compile", True):
        reason = "compiling was turned off (--no-compile)"
        return _kept_sklearn(report, model, subset, reason=reason, requested="sklearn")
    try:
        onnx_bytes, layout, difference = _compile_and_prove(model, answers, sample, preprocess, golden, config)
    except _Fallback as why:
        return _kept_sklearn(report, model, subset, reason=str(why), max_difference=why.max_difference)
    except Exception as err:  # noqa: BLE001 - a failed proof is a reason to keep scikit-learn, never a failed run
        reason = f"the compiled model could not be checked: {type(err).__name__}: {err}"
        return _kept_sklearn(report, model, subset, reason=reason)
    null_rows = config.get("null_rows")
    if null_rows is not None:  # columns that take a null training never had: the compiled model must answer it too
        try:
            difference = max(difference, _prove_nulls(model, onnx_bytes, layout, null_rows, preprocess, tolerance))
        except Exception as err:  # noqa: BLE001 - as above: scikit-learn is kept, with the reason
            reason = f"with a null in {config['null_columns']}, the compiled model {_failure(err)}"
            return _kept_sklearn(report, model, subset, reason=reason)
    path = os.path.join(config["out_dir"], config["onnx_file"])
    with open(path, "wb") as handle:
        handle.write(onnx_bytes)
    reason = (
        f"the ONNX model gave the same labels and answers within {tolerance:g} "
        f"on {len(rows)} training rows and {len(golden)} golden rows"
    )
    if null_rows is not None:
        reason += f", and on {len(null_rows)} training rows with a null in {config['null_columns']}"
    report.update(path="compiled", reason=reason, max_difference=difference, file=config["onnx_file"], layout=layout)
    if null_rows is None and preprocess is None:
        _add_linear(report, model, answers, sample, golden, tolerance)
    return report


def _add_linear(report, model, answers, sample, golden, tolerance):
    """Add the model's linear form (`linear.py`) to a compiled report when the proof holds for it:
    the service then scores a request's few rows with plain sums, and larger batches with ONNX."""
    layout = report["layout"]
    if layout["kind"] != "matrix" or layout["dtype"] != "float64":
        return
    try:
        form = _linear_form(model, _feed(layout, answers.subset)[layout["input"]].shape[1])
        if form is None:
            return
        classes = getattr(model, "classes_", None)
        keys = list(_label_lookup(classes)) if classes is not None else []
        difference = _prove(model, _LinearSession(form, keys), layout, answers, sample, None, golden, tolerance)
    except Exception:  # noqa: BLE001 - a form that fails its proof is simply not taken: ONNX Runtime scores
        return
    form["max_difference"] = difference
    report["linear"] = form
    report["reason"] += (
        f"; as plain sums ({' + '.join(form['steps'])}, {form['link']}), within {difference:.3g} on the same rows"
    )


def _prove_nulls(model, onnx_bytes, layout, rows, preprocess, tolerance):
    """The largest difference on rows holding the nulls the service takes (imputed columns)."""
    inputs = preprocess(rows) if preprocess is not None else rows
    session = _session(onnx_bytes, _converter_tools())
    _bind_input_names(layout, session)
    return _prove(model, session, layout, _BatchAnswers(model, inputs), rows, preprocess, [], tolerance)


def _failure(err):
    if isinstance(err, _Fallback):
        return f"was not proven: {err}"
    return f"could not be checked: {type(err).__name__}: {err}"


def _inference_note(report):
    """One line for the conversion output: the path taken and why."""
    if report["path"] == "compiled":
        largest = f"largest difference {report['max_difference']:.1e}"
        return f"inference: compiled (ONNX Runtime): {report['reason']} ({largest})."
    return f"inference: scikit-learn: {report['reason']}."


def _proof_rows(count, golden_rows, limit):
    """Evenly spread rows of the sample (all of them when there are few), plus the golden rows."""
    if count <= limit:
        chosen = set(range(count))
    else:
        chosen = {int(i * (count - 1) / (limit - 1)) for i in range(limit)}
    return sorted(chosen | {r for r in golden_rows if r < count})


def _is_frame(value):
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _take(inputs, rows):
    import numpy as np

    return inputs.iloc[rows] if _is_frame(inputs) else np.asarray(inputs)[rows]


class _BatchAnswers:
    """The model's `predict` and `predict_proba` on the proof rows in one batch, each computed once
    for the proofs that compare with them (a pipeline's call costs far more than its rows)."""

    def __init__(self, model, subset):
        self.model = model
        self.subset = subset
        self._computed = {}

    def _of(self, method):
        import numpy as np

        if method not in self._computed:
            self._computed[method] = np.asarray(getattr(self.model, method)(self.subset))
        return self._computed[method]

    def predict(self):
        return self._of("predict")

    def predict_proba(self):
        return self._of("predict_proba")


def _label_from_proba_proof(model, answers):
    """Whether `classes_[argmax(predict_proba)]` equals `predict` on every proof row."""
    import numpy as np

    classes = getattr(model, "classes_", None)
    if classes is None or not callable(getattr(model, "predict_proba", None)):
        return {"label_from_proba": False}
    try:
        derived = np.asarray(classes)[np.argmax(answers.predict_proba(), axis=1)]
        same = bool(np.array_equal(derived, answers.predict()))
    except Exception:  # noqa: BLE001 - then the service simply calls predict as well
        same = False
    return {"label_from_proba": same}


def _kept_sklearn(report, model, subset, **fields):
    """The report of the scikit-learn path, with the proof that lets it score requests together."""
    report.update(path="sklearn", **fields)
    report.update(_rows_independent_proof(model, subset))
    return report


# Rows scored one at a time, against the same rows scored together, in the proof below.
INDEPENDENCE_ROWS = 64


def _rows_independent_proof(model, subset):
    """Whether the model gives each row, bit for bit, the same answer alone as among others (on
    evenly spread proof rows): the scikit-learn path may then score concurrent requests in one
    call, and an answer never depends on the load. Trees and element-wise transformers pass; a
    matrix product may round differently for one row than for many, and a transformer that uses
    the batch's own statistics gives other answers: those models are scored request by request."""
    import numpy as np

    count = len(subset)
    spread = min(count, INDEPENDENCE_ROWS)
    rows = sorted({int(i * (count - 1) / max(1, spread - 1)) for i in range(spread)})
    if len(rows) < 2:
        return {"rows_independent": False}
    chosen = _take(subset, rows)
    proba = getattr(model, "classes_", None) is not None and callable(getattr(model, "predict_proba", None))

    def answers(inputs):
        predicted = [repr(_plain(v)) for v in np.asarray(model.predict(inputs))]
        values = np.asarray(model.predict_proba(inputs), dtype="float64") if proba else None
        return predicted, values

    try:
        labels, values = answers(chosen)
        alone = [answers(_take(chosen, [i])) for i in range(len(rows))]
        same = labels == [row_labels[0] for row_labels, _ in alone]
        if same and values is not None:
            stacked = np.vstack([row_values.reshape(1, -1) for _, row_values in alone])
            same = stacked.shape == values.shape and bool(np.array_equal(values, stacked, equal_nan=True))
    except Exception:  # noqa: BLE001 - a model that cannot score rows alone is scored as it is asked
        return {"rows_independent": False}
    return {"rows_independent": bool(same)}


def _compile_and_prove(model, answers, sample, preprocess, golden, config):
    """(ONNX bytes, input layout, largest difference) of the first layout that reproduces the answers."""
    subset = answers.subset
    tools = _converter_tools()
    _check_convertible(model, tools)
    failures = []
    # "float32" is a deliberately lossy conversion that the proof must reject; tests use it.
    for layout in _layouts(subset, "float32" if config.get("precision") == "float32" else "float64"):
        try:
            onnx_bytes = _convert(model, layout, subset, tools, config)
            session = _session(onnx_bytes, tools)
            _bind_input_names(layout, session)
            difference = _prove(model, session, layout, answers, sample, preprocess, golden, config["tolerance"])
        except _Fallback as why:
            failures.append(why)
            continue
        return onnx_bytes, layout, difference
    differing = [f for f in failures if f.compared]
    raise (differing or failures)[0]


def _converter_tools():
    missing = []
    tools = {}
    for module in ("skl2onnx", "onnx", "onnxruntime"):
        try:
            tools[module] = __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise _Fallback(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed in the kernel")
    return tools


def _parts(model):
    """Every estimator inside `model` that needs a converter of its own (pipelines and column sets opened)."""
    if hasattr(model, "steps"):
        return [p for _, step in model.steps if step not in (None, "passthrough") for p in _parts(step)]
    if hasattr(model, "transformers_"):
        fitted = [t for _, t, _ in model.transformers_ if not isinstance(t, str)]
        return [p for t in fitted for p in _parts(t)]
    if hasattr(model, "transformer_list"):
        return [p for _, t in model.transformer_list if not isinstance(t, str) for p in _parts(t)]
    return [model]


def _check_convertible(model, tools):
    from skl2onnx._supported_operators import sklearn_operator_name_map

    for part in _parts(model):
        kind = type(part)
        if kind in sklearn_operator_name_map:
            continue
        if kind.__module__.split(".")[0] != "sklearn":
            raise _Fallback(f"custom transformer {kind.__name__} cannot be converted to ONNX (no converter for it)")
        version = tools["skl2onnx"].__version__
        raise _Fallback(f"{kind.__name__} has no ONNX converter in skl2onnx {version}")


def _layouts(subset, dtype):
    """How the service will feed the compiled model, in order of preference.

    `matrix`: one float64 [N, F] tensor. `columns`: one [N, 1] tensor per column, float64 for
    numbers and text for strings and categories (missing -> ""); booleans are tried as text first
    (as one-hot encoders see them), then as numbers.
    """
    if not _is_frame(subset):
        return [{"kind": "matrix", "input": "X", "dtype": dtype}]
    kinds = {str(name): _column_kind(subset[name]) for name in subset.columns}
    layouts = []
    if all(kind in ("number", "boolean") for kind in kinds.values()):
        layouts.append({"kind": "matrix", "input": "X", "dtype": dtype})
    for boolean in ("string", "double"):
        types = [
            {"name": name, "type": "double" if kind == "number" else ("string" if kind == "text" else boolean)}
            for name, kind in kinds.items()
        ]
        layouts.append({"kind": "columns", "dtype": dtype, "columns": types})
    if "boolean" not in kinds.values():
        layouts.pop()
    return layouts


def _column_kind(column):
    dtype = column.dtype
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iuf":
        return "number"
    return "text"


def _feed(layout, inputs):
    """The ONNX inputs for a batch of model inputs (what the service computes from its records)."""
    import numpy as np

    if layout["kind"] == "matrix":
        return {layout["input"]: np.asarray(inputs, dtype=layout["dtype"]).reshape(len(inputs), -1)}
    feed = {}
    for column in layout["columns"]:
        values = inputs[column["name"]]
        if column["type"] == "double":
            feed[column.get("input", column["name"])] = values.to_numpy(dtype=layout["dtype"], na_value=np.nan).reshape(
                -1, 1
            )
        else:
            text = ["" if _missing(v) else str(v) for v in values.tolist()]
            feed[column.get("input", column["name"])] = np.array(text, dtype=object).reshape(-1, 1)
    return feed


def _convert(model, layout, subset, tools, config):
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    if layout["kind"] == "matrix":
        width = _feed(layout, subset[:1])[layout["input"]].shape[1]
        initial = [(layout["input"], DoubleTensorType([None, width]))]
        target = model
    else:
        kinds = {"double": DoubleTensorType, "string": StringTensorType}
        initial = [(c["name"], kinds[c["type"]]([None, 1])) for c in layout["columns"]]
        target = _with_text_categories(model) if any(c["type"] == "string" for c in layout["columns"]) else model
    if layout["dtype"] == "float32":
        from skl2onnx.common.data_types import FloatTensorType

        initial = [
            (name, FloatTensorType(kind.shape) if isinstance(kind, DoubleTensorType) else kind)
            for name, kind in initial
        ]
    _register_exact_converters()
    options = {id(part): {"zipmap": False} for part in _parts(target) if hasattr(part, "classes_")}
    try:
        with warnings.catch_warnings():  # deprecation notes from the converters are not the notebook's business
            warnings.simplefilter("ignore")
            onnx_model = tools["skl2onnx"].convert_sklearn(
                target,
                initial_types=initial,
                options=options,
                target_opset={"": ONNX_OPSET, "ai.onnx.ml": ONNX_ML_OPSET_FOR_SKL2ONNX},
            )
    except Exception as err:  # noqa: BLE001 - converters raise many types
        raise _Fallback(f"skl2onnx could not convert the model: {type(err).__name__}: {str(err)[:300]}") from None
    onnx_model.graph.name = type(model).__name__  # skl2onnx names it with a random uuid; the file must not vary
    return _finish_exact_trees(onnx_model).SerializeToString()


def _with_text_categories(model):
    """A copy whose imputers and encoders see text categories: missing as "", others as str(value).

    String tensors cannot hold NaN, and the service sends every category as text; the proof
    then checks the copy's ONNX graph against the original model.
    """
    import numpy as np

    copied = copy.deepcopy(model)
    for part in _parts(copied):
        statistics = getattr(part, "statistics_", None)
        if statistics is not None and statistics.dtype.kind == "O":
            if _missing(part.missing_values):
                part.missing_values = ""
            part.statistics_ = np.array([_as_text(v) for v in statistics], dtype=object)
        categories = getattr(part, "categories_", None)
        if categories is not None:
            part.categories_ = [
                np.array([_as_text(v) for v in values], dtype=object) if values.dtype.kind == "O" else values
                for values in categories
            ]
    return copied


def _as_text(value):
    return "" if _missing(value) else str(value)


def _bind_input_names(layout, session):
    """skl2onnx may rename inputs (a space becomes `_`): record each column's ONNX input name."""
    names = [i.name for i in session.get_inputs()]
    if layout["kind"] == "matrix":
        layout["input"] = names[0]
        return
    for column, name in zip(layout["columns"], names):
        column["input"] = name


def _session(onnx_bytes, tools):
    runtime = tools["onnxruntime"]
    options = runtime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return runtime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise _Fallback(f"onnxruntime could not load the converted model: {str(err)[:300]}") from None


def _prove(model, session, layout, answers, sample, preprocess, golden, tolerance):
    """The largest difference seen; raises _Fallback on a different label or a difference over tolerance."""
    import numpy as np

    subset = answers.subset
    classes = getattr(model, "classes_", None)
    proba = classes is not None and callable(getattr(model, "predict_proba", None))
    expected_labels = [_label(v) for v in answers.predict()]
    labels, values = _run(session, layout, subset, classes, proba)
    if classes is not None:
        _same_labels(labels, expected_labels, "training row")
    worst = 0.0
    if values is not None:  # probabilities, or regression values; a classifier without them has labels only
        expected = np.asarray(answers.predict_proba() if proba else answers.predict(), dtype="float64")
        worst = _difference(values, expected.reshape(len(values), -1))
    for example in golden:
        row = _take(sample, [example["row"]])
        inputs = preprocess(row) if preprocess is not None else row
        labels, values = _run(session, layout, inputs, classes, proba)
        if classes is not None:
            _same_labels(labels, [_label(example["prediction"])], f"golden row {example['row']}")
        recorded = example["probabilities"] if proba else None
        wanted = [recorded[str(_plain(c))] for c in classes] if recorded else [example["prediction"]]
        if values is not None:
            worst = max(worst, _difference(values, np.asarray([wanted], dtype="float64")))
    if worst > tolerance:
        raise _Fallback(f"the ONNX model's answers differ by {worst:.3g} > tolerance {tolerance:g}", worst)
    return worst


def _run(session, layout, inputs, classes, proba):
    """(labels as the notebook's classes or None, numbers to compare or None)."""
    import numpy as np

    try:
        outputs = session.run(None, _feed(layout, inputs))
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise _Fallback(f"onnxruntime could not score the training sample: {str(err)[:300]}") from None
    if classes is None:
        return None, np.asarray(outputs[0], dtype="float64").reshape(len(inputs), -1)
    lookup = _label_lookup(classes)
    try:
        labels = [lookup[_label(v)] for v in np.asarray(outputs[0]).ravel()]
    except KeyError as err:
        raise _Fallback(f"the ONNX model answered a label the model does not have: {err}") from None
    values = np.asarray(outputs[1], dtype="float64") if proba and len(outputs) > 1 else None
    return labels, values


def _label_lookup(classes):
    """ONNX label -> the notebook's class: skl2onnx writes text labels as text and others as integers."""
    texts = all(isinstance(c, str) for c in classes)
    lookup = {}
    for c in classes:
        plain = _label(c)
        try:
            key = str(plain) if texts else int(plain)
        except (TypeError, ValueError):
            raise _Fallback(f"class label {plain!r} cannot be an ONNX label") from None
        if key in lookup:
            raise _Fallback(f"class labels {lookup[key]!r} and {plain!r} are the same ONNX label")
        lookup[key] = plain
    return lookup


def _label(value):
    """A class label as JSON will carry it (NumPy text and numbers become plain Python values)."""
    value = _plain(value)
    return str(value) if isinstance(value, str) else value


def _same_labels(actual, expected, where):
    for i, (got, wanted) in enumerate(zip(actual, expected)):
        if got != wanted or type(got) is not type(wanted):
            at = f"{where} {i}" if where == "training row" else where
            raise _Fallback(f"the ONNX model's label differs: {got!r} instead of {wanted!r} ({at})", compared=True)


def _difference(actual, expected):
    """Largest |compiled - scikit-learn| / max(1, |scikit-learn|): absolute for probabilities."""
    import numpy as np

    if actual.shape != expected.shape:
        raise _Fallback(f"the ONNX model answered shape {actual.shape} instead of {expected.shape}", compared=True)
    scale = np.maximum(1.0, np.abs(expected))
    gaps = np.abs(actual - expected) / scale
    if np.isnan(gaps).any():
        if not (np.isnan(actual) == np.isnan(expected)).all():
            raise _Fallback("the ONNX model answered NaN where scikit-learn did not, or the reverse", compared=True)
        gaps = np.nan_to_num(gaps, nan=0.0)
    return float(gaps.max()) if gaps.size else 0.0

"""The shipped preprocessing module: recorded training values written as Python literals.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
The host sends the module with a `FROZEN = {}` line; here it becomes the recorded values, each
written as a literal that evaluates back to an equal value (checked), and the whole module is
executed in a fresh namespace, so the code the proof runs is byte for byte the code shipped.
"""

import json
import linecache
import math
import sys
import types

from nb2prod.run.kernel.common import _CaptureProblem, _same_value

_FROZEN_LINE = "FROZEN = {}"
_LARGEST_FROZEN = 100000  # elements; a whole training frame is not a statistic


def _frozen_literal(value):
    """Python source that evaluates to `value` (NumPy scalars as Python numbers)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a Python literal, in double quotes as ruff writes them
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, (list, tuple)):
        items = ", ".join(_frozen_literal(v) for v in value)
        return f"[{items}]" if isinstance(value, list) else "({}{})".format(items, "," if len(value) == 1 else "")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_frozen_literal(k)}: {_frozen_literal(v)}" for k, v in value.items()) + "}"
    return _frozen_container_literal(value)


def _frozen_container_literal(value):
    pandas = sys.modules.get("pandas")
    numpy = sys.modules.get("numpy")
    size = getattr(value, "size", 0)
    if isinstance(size, int) and size > _LARGEST_FROZEN:
        raise _CaptureProblem("frozen_type", f"it has {size} values, too many to be a training statistic")
    if pandas is not None and isinstance(value, pandas.Series) and not isinstance(value.index, pandas.MultiIndex):
        values, index = _frozen_literal(value.tolist()), _frozen_index_literal(value.index)
        name = _frozen_literal(value.name)
        return f"pandas.Series({values}, index={index}, dtype={_frozen_literal(str(value.dtype))}, name={name})"
    if pandas is not None and isinstance(value, pandas.Index) and not isinstance(value, pandas.MultiIndex):
        return _frozen_index_literal(value)
    if numpy is not None and isinstance(value, numpy.ndarray) and value.dtype.kind in "biufUO":
        return f"numpy.array({_frozen_literal(value.tolist())}, dtype={_frozen_literal(str(value.dtype))})"
    if numpy is not None and isinstance(value, numpy.dtype):
        return f"numpy.dtype({_frozen_literal(str(value))})"
    if numpy is not None and isinstance(value, type) and value.__module__ == "numpy":
        return f"numpy.{value.__name__}"
    if callable(getattr(value, "get_params", None)) and not isinstance(value, type):
        return _frozen_estimator_literal(value)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise _CaptureProblem("frozen_type", f"a {kind} cannot be written into the service's code", type=kind)


def _frozen_estimator_literal(estimator):
    """A fitted scikit-learn object: its class, the parameters that make it, and what it learned."""
    params = estimator.get_params(deep=False)
    state = {key: value for key, value in vars(estimator).items() if key not in params}
    path = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    return f"fitted({_frozen_literal(path)}, {_frozen_literal(params)}, {_frozen_literal(state)})"


_FITTED_SOURCE = '''def fitted(path, params, state):
    """A scikit-learn object as training fitted it: `params` make it, `state` is what it learned."""
    module, _, name = path.rpartition(".")
    estimator = getattr(importlib.import_module(module), name)(**params)
    estimator.__dict__.update(state)
    return estimator


'''


def _frozen_index_literal(index):
    values, name = _frozen_literal(index.tolist()), _frozen_literal(index.name)
    return f"pandas.Index({values}, dtype={_frozen_literal(str(index.dtype))}, name={name})"


def _frozen_entry(key, slots):
    """One FROZEN entry: the value, or {loop value: value} when it varies with a loop over constants."""
    if list(slots) == [()]:
        return _frozen_long_literal(slots[()])
    parts = []
    for slot, value in slots.items():
        slot_literal = _frozen_literal(slot[0] if len(slot) == 1 else slot)
        parts.append(f"        {slot_literal}: {_frozen_literal(value)},")
    return "{\n" + "\n".join(parts) + "\n    }"


def _frozen_long_literal(value):
    """A list too long for one line: one item per line, as ruff would format it."""
    text = _frozen_literal(value)
    if len(text) <= 88 or not isinstance(value, list):
        return text
    return "[\n" + "".join(f"        {_frozen_literal(item)},\n" for item in value) + "    ]"


def _frozen_render(recorded, frozen, label_columns):
    """The FROZEN dict's source, checking that every value reads back equal."""
    lines = ["FROZEN = {"]
    values = recorded.get("values", {})
    for key, what in frozen:
        if key in recorded.get("conflicts", []):
            raise _CaptureProblem("frozen_varies", "the value changes while the cells run", key=key)
        if key not in values:
            continue  # the statement never ran in the training pass
        slots = values[key]
        if what == "columns":
            slots = {slot: [c for c in columns if c[0] not in label_columns] for slot, columns in slots.items()}
        try:
            text = _frozen_entry(key, slots)
            same = all(_same_value(_frozen_evaluate(_frozen_literal(v)), v) for v in slots.values())
        except _CaptureProblem as problem:
            problem.details["key"] = key
            raise
        if not same:
            raise _CaptureProblem("frozen_type", "its value does not read back exactly from source", key=key)
        lines.append(f"    {_frozen_literal(key)}: {text},")
    lines.append("}")
    return "\n".join(lines) if len(lines) > 2 else "FROZEN = {}"


def _frozen_evaluate(text):
    import importlib

    import numpy
    import pandas

    namespace = {"numpy": numpy, "pandas": pandas, "float": float, "importlib": importlib}
    exec(_FITTED_SOURCE, namespace)  # noqa: S102 - our own helper
    return eval(text, namespace)  # noqa: S307 - our own literal


def _frozen_shipped_source(template, recorded, frozen, label_columns):
    """The module source with FROZEN filled in, and the imports its literals need."""
    if _FROZEN_LINE not in template.splitlines():
        return template
    rendered = _frozen_render(recorded, frozen, label_columns)
    lines = template.splitlines(keepends=True)
    index = [line.rstrip("\n") for line in lines].index(_FROZEN_LINE)
    fitted = "fitted(" in rendered
    lines[index] = (_FITTED_SOURCE if fitted else "") + rendered + "\n"
    source = "".join(lines)
    used = [m for m in ("numpy", "pandas") if m + "." in rendered] + (["importlib"] if fitted else [])
    needed = sorted(m for m in used if "\nimport " + m + "\n" not in source)
    if needed:
        end = source.index('"""', 3) + 4  # after the module docstring
        imports = "".join(f"import {m}\n" for m in needed)
        source = source[:end] + "\n" + imports + source[end:]
    return source


def _frozen_load_shipped(source, package):
    """Execute the shipped module in a fresh namespace (not registered: pickling keeps the notebook's)."""
    module = types.ModuleType(package + ".preprocessing")
    filename = package + "/preprocessing.py"
    # Its lines, for tracebacks: a proof that raises inside it names the line (`_proof_apply`).
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    try:
        exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - the notebook's code
    except Exception as err:  # noqa: BLE001 - whatever stops the module from importing is reported
        raise _CaptureProblem("module_import", f"{type(err).__name__}: {err}") from None
    return module

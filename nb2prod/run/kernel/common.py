"""What every part of the capture step shares: the problem report and the name lookup.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import math

# Also in nb2prod.run.capture (the host's reader); a unit test keeps the two equal.
CAPTURE_VERSION = 2


class _CaptureProblem(Exception):
    def __init__(self, kind, message, **details):
        super().__init__(message)
        self.kind = kind
        self.details = details


def _lookup(namespace, dotted):
    root, *rest = dotted.split(".")
    if root not in namespace:
        raise _CaptureProblem("missing", f"the notebook has no variable `{root}`", name=dotted)
    value = namespace[root]
    for attribute in rest:
        if not hasattr(value, attribute):
            raise _CaptureProblem("missing", f"`{root}` has no attribute `{attribute}`", name=dotted)
        value = getattr(value, attribute)
    return value


def _missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pd.NA compare unequal to themselves (or raise)
    except TypeError:
        return True


def _plain(value):
    """A JSON value for one cell of the sample (None for missing)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, (bool, int, float, str)):
        if _missing(value):
            return None
        raise _CaptureProblem("column_type", f"value {value!r} of type {type(value).__name__} is not JSON")
    return value


def _copy_value(value):
    """A copy of a frame, array, series or estimator (so later changes in the notebook do not reach it)."""
    copy = getattr(value, "copy", None)
    if callable(copy) and not isinstance(value, (dict, list, set)):
        try:
            return copy(deep=True)
        except TypeError:
            return copy()
    if callable(getattr(value, "get_params", None)):
        import copy as copying

        return copying.deepcopy(value)
    return value


def _same_value(first, second):
    """Equal values, NaN equal to NaN; False when equality cannot be decided."""
    if first is second:
        return True
    if isinstance(first, float) and isinstance(second, float) and math.isnan(first) and math.isnan(second):
        return True
    if callable(getattr(first, "get_params", None)) and type(first) is type(second):
        state, other = vars(first), vars(second)  # an estimator: the same parameters and learned state
        return state.keys() == other.keys() and all(_same_value(state[k], other[k]) for k in state)
    equals = getattr(first, "equals", None)
    if callable(equals) and type(first) is type(second):
        try:
            return bool(equals(second))
        except Exception:  # noqa: BLE001 - any failure means "not provably the same"
            return False
    try:
        import numpy

        if isinstance(first, numpy.ndarray) and isinstance(second, numpy.ndarray) and first.dtype.kind in "biuf":
            return first.dtype == second.dtype and bool(numpy.array_equal(first, second, equal_nan=True))
        return bool(numpy.array_equal(numpy.asarray(first, dtype=object), numpy.asarray(second, dtype=object)))
    except Exception:  # noqa: BLE001
        return repr(first) == repr(second)

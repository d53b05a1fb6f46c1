"""Recorders called by the edited cells of the production run (see `nb2prod.analysis.replay`).

Sent into the kernel as one cell before the first edited cell; standard library only, Python
>= 3.9. Each recorder returns its argument unchanged, so the notebook computes exactly what it
would without nb2prod; on the side, `_nb2prod_recorded` keeps the training values the replay
freezes, copies of the fit input and of the raw frame, for the capture step to read.
"""

from nb2prod.run.kernel.common import _copy_value, _same_value

_nb2prod_recorded = {"values": {}, "conflicts": [], "kept": {}, "loops": {}, "missing": []}  # type: dict


def _nb2prod_store(key, value, loop, varies):
    """Keep `value` under `key` (and the loop values it varies with), in the training pass only."""
    if loop is not None and not _nb2prod_recorded["loops"].get(loop):
        return
    slots = _nb2prod_recorded["values"].setdefault(key, {})
    slot = tuple(varies)
    if slot in slots and not _same_value(slots[slot], value):
        if key not in _nb2prod_recorded["conflicts"]:
            _nb2prod_recorded["conflicts"].append(key)
    slots[slot] = _copy_value(value)


def _nb2prod_frames(loop, frames, raw):
    """`for dataset in [train, test]`: note which pass is the training frame's."""
    for frame in frames:
        _nb2prod_recorded["loops"][loop] = frame is raw
        yield frame
    _nb2prod_recorded["loops"][loop] = False


def _nb2prod_freeze(key, value, loop, varies):
    _nb2prod_store(key, value, loop, varies)
    return value


def _nb2prod_columns(key, frame, loop, varies):
    """The columns and dtypes `get_dummies` made."""
    _nb2prod_store(key, [(name, str(dtype)) for name, dtype in frame.dtypes.items()], loop, varies)
    return frame


def _nb2prod_categories(key, values, loop, varies):
    """The categories `astype("category")` found: a list, or {column: list} for a frame."""
    columns = getattr(values, "columns", None)
    if columns is None:
        _nb2prod_store(key, values.cat.categories.tolist(), loop, varies)
    else:
        found = {name: values[name].cat.categories.tolist() for name in columns}
        _nb2prod_store(key, found, loop, varies)
    return values


def _nb2prod_bins(key, loop, varies, cut):
    """`pd.qcut` / `pd.cut(x, n)` as the notebook calls it, recording the bin edges it learned."""

    def binned(*args, **kwargs):
        result = cut(*args, **kwargs)
        edges = result[1] if kwargs.get("retbins") else cut(*args, **dict(kwargs, retbins=True))[1]
        _nb2prod_store(key, list(getattr(edges, "tolist", lambda: edges)()), loop, varies)
        return result

    return binned


def _nb2prod_fitted(key, estimator, result, loop, varies):
    """`le.fit_transform(x)` as the notebook calls it, keeping a copy of `le` as it fitted."""
    _nb2prod_store(key, estimator, loop, varies)
    return result


def _nb2prod_keep(key, value):
    """A copy of what the notebook passes on here (the fit input, the start of a chain)."""
    _nb2prod_recorded["kept"][key] = _copy_value(value)
    return value


def _nb2prod_snapshot(name, namespace):
    """The raw frame, before the first replayed cell changes it."""
    if name in namespace:
        _nb2prod_recorded["kept"]["raw"] = _copy_value(namespace[name])
    else:
        _nb2prod_recorded["missing"].append(name)

"""The proof: the shipped preprocessing, applied to the raw training rows, gives the fit input.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
The function (generated or hand-written, followed by any composed transformers) runs on the
raw rows as the service would get them: once on all of them, then one row at a time. Each
result must equal the fit input: same columns in the same order, integers, booleans, strings
and categories equal, floats equal within 1e-12 relative. The one-row pass catches statistics
recomputed on a request (the mean of one row is that row).
"""

import sys

from nb2prod.run.kernel.common import _CaptureProblem

_PROOF_TOLERANCE = 1e-12


def _proof_row_positions(request, fit_input, rows=None):
    """For each fit-input row, the position of the raw row it came from. A fit input without an
    index (`X_train.values`, a list of dicts) takes it from `rows`, the fit's label, when given."""
    pandas = sys.modules.get("pandas")
    same_length = len(fit_input) == len(request)
    index = getattr(request, "index", None)  # a NumPy array (`X.values` given to an imputer) has none
    keyed = _proof_keyed(fit_input, rows)
    indexed = pandas is not None and isinstance(keyed, (pandas.DataFrame, pandas.Series))
    if indexed and index is not None and index.is_unique:
        positions = request.index.get_indexer(keyed.index)
        if (positions >= 0).all():
            return [int(p) for p in positions]
    if same_length:
        return list(range(len(request)))
    raise _CaptureProblem("proof_rows", f"the fit input has {len(fit_input)} rows and the raw frame {len(request)}")


def _proof_keyed(fit_input, rows):
    """What gives the fit input's rows their labels: itself, or `rows` when it has no index."""
    pandas = sys.modules.get("pandas")
    indexed = pandas is not None and isinstance(fit_input, (pandas.DataFrame, pandas.Series))
    if rows is None or indexed or len(rows) != len(fit_input):
        return fit_input
    return rows


def _proof_single_rows(request, positions, limit):
    """Which fit-input rows to check one at a time: rows with missing values first, then spread."""
    missing = _proof_missing_rows(request)
    with_missing = [j for j, i in enumerate(positions) if missing[i]][: max(1, limit // 4)]
    step = max(1, len(positions) // max(1, limit - len(with_missing)))
    spread = [j for j in range(0, len(positions), step) if j not in set(with_missing)]
    return sorted(with_missing + spread[: limit - len(with_missing)])


def _proof_missing_rows(request):
    """Which rows of a frame or a 2-D array hold a missing value."""
    import numpy as np

    if hasattr(request, "isna"):
        return request.isna().any(axis=1).to_numpy()
    array = np.asarray(request)
    if array.dtype.kind == "f":
        return np.isnan(array).any(axis=1)
    return np.array([any(_proof_is_missing(v) for v in row) for row in array], dtype=bool)


def _proof_request_rows(request, positions=None):
    """The request's rows numbered from 0 (a frame's own index dropped), or those at `positions`."""
    if hasattr(request, "iloc"):
        rows = request if positions is None else request.iloc[positions]
        return rows.reset_index(drop=True)
    return request.copy() if positions is None else request[positions]


def _proof_apply(transform, frame, mode, row):
    try:
        return transform(frame)
    except Exception as err:  # noqa: BLE001 - the user's function may raise anything
        where = "on all training rows" if mode == "batch" else f"on training row {row} alone"
        problem = _CaptureProblem("proof_raised", f"{type(err).__name__}: {err}", mode=mode, row=row, where=where)
        problem.details.update(_proof_raised_at(err))
        raise problem from None


def _proof_raised_at(err):
    """The line of the shipped preprocessing module that raised `err` (the host maps it to its cell)."""
    import traceback

    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.endswith("/preprocessing.py")]
    if not frames:
        return {}
    return {"module_line": frames[-1].lineno, "module_text": (frames[-1].line or "").strip()}


def _proof_prove(transform, request, fit_input, limit, rows=None):
    """Check `transform(request)` against `fit_input`; returns the proof's record."""
    positions = _proof_row_positions(request, fit_input, rows)
    frame = _proof_request_rows(request)
    labels = _proof_row_labels(_proof_keyed(fit_input, rows))
    batch = _proof_apply(transform, frame.copy(), "batch", None)
    largest = _proof_compare(fit_input, batch, positions, list(range(len(positions))), labels, "batch")
    checked = _proof_single_rows(frame, positions, limit)
    for j in checked:
        one = _proof_apply(transform, _proof_request_rows(frame, [positions[j]]), "single", labels[j])
        largest = max(largest, _proof_compare(fit_input, one, [0], [j], labels, "single"))
    return {
        "rows": len(positions),
        "single_rows": len(checked),
        "max_difference": largest,
        "tolerance": _PROOF_TOLERANCE,
    }


def _proof_row_labels(fit_input):
    index = getattr(fit_input, "index", None)
    return [str(v) for v in index] if index is not None else [str(i) for i in range(len(fit_input))]


def _proof_columns(value):
    """(names, {name: 1-D values}) of a frame or a 2-D array."""
    import numpy as np

    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return [str(c) for c in value.columns], {str(c): value[c] for c in value.columns}
    array = value.toarray() if hasattr(value, "toarray") else np.asarray(value)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    names = [f"x{i}" for i in range(array.shape[1])]
    return names, {name: array[:, i] for i, name in enumerate(names)}


def _proof_compare(expected, actual, actual_rows, expected_rows, labels, mode):
    """Largest float difference; raises at the first column and row that differ."""
    names, want = _proof_columns(expected)
    got_names, got = _proof_columns(actual)
    if got_names != names:
        raise _CaptureProblem(
            "proof_columns",
            _proof_columns_message(names, got_names),
            mode=mode,
            column=_proof_first_odd(names, got_names),
        )
    if len(actual) <= max(actual_rows):
        raise _CaptureProblem("proof_rows", f"it returned {len(actual)} rows for {len(actual_rows)}", mode=mode)
    largest = 0.0
    for name in names:
        _proof_categories(name, want[name], got[name], labels[expected_rows[0]], mode)
        want_values = _proof_values(want[name])[expected_rows]
        got_values = _proof_values(got[name])[actual_rows]
        largest = max(
            largest, _proof_compare_column(name, want_values, got_values, [labels[j] for j in expected_rows], mode)
        )
    return largest


def _proof_categories(name, want, got, row, mode):
    """A category column must come with training's categories, in training's order (the codes a
    model sees depend on them), whatever rows the request has."""
    if str(getattr(want, "dtype", "")) != "category":
        return
    expected = want.cat.categories.tolist()
    found = got.cat.categories.tolist() if str(getattr(got, "dtype", "")) == "category" else None
    if found != expected:
        shown = "no categories" if found is None else f"categories {found[:6]!r}"
        message = f"categories {expected[:6]!r} expected, {shown} computed"
        raise _CaptureProblem("proof_values", message, mode=mode, column=name, row=row)


def _proof_values(column):
    import numpy as np

    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(column, pandas.Series):
        if str(column.dtype) == "category":
            return column.astype(object).to_numpy()
        return column.to_numpy()
    return np.asarray(column)


def _proof_compare_column(name, want, got, labels, mode):
    """Largest relative float difference in one column; raises at the first row that differs."""
    import numpy as np

    numeric = want.dtype.kind in "biuf" and got.dtype.kind in "biuf"
    largest = 0.0
    if numeric and "f" in (want.dtype.kind, got.dtype.kind):
        a, b = want.astype("float64"), got.astype("float64")
        missing_a, missing_b = np.isnan(a), np.isnan(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            difference = np.where(a == b, 0.0, np.abs(a - b) / np.maximum(np.abs(a), np.abs(b)))
        both = ~missing_a & ~missing_b
        bad = (missing_a != missing_b) | (both & ~(difference <= _PROOF_TOLERANCE))
        if both.any() and not bad.any():
            largest = float(difference[both].max())
    elif numeric:
        bad = want != got
    else:
        bad = np.array([not _proof_same_cell(a, b) for a, b in zip(want, got)], dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _CaptureProblem(
            "proof_values",
            f"{_proof_shown(want[i])!r} expected, {_proof_shown(got[i])!r} computed",
            mode=mode,
            column=name,
            row=labels[i],
        )
    return largest


def _proof_same_cell(a, b):
    missing_a, missing_b = _proof_is_missing(a), _proof_is_missing(b)
    if missing_a or missing_b:
        return missing_a and missing_b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def _proof_is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)
    except Exception:  # noqa: BLE001
        return False


def _proof_shown(value):
    return value.item() if hasattr(value, "item") else value


def _proof_columns_message(want, got):
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f"`{c}`" for c in missing[:5]))
        if extra:
            parts.append("extra " + ", ".join(f"`{c}`" for c in extra[:5]))
        return "the columns differ: " + "; ".join(parts)
    return f"the columns are in another order (first differs at `{_proof_first_odd(want, got)}`)"


def _proof_first_odd(want, got):
    for a, b in zip(want, got):
        if a != b:
            return a
    return next((c for c in want if c not in got), None)

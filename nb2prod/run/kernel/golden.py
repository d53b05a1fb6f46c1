"""Golden examples: the model's own answers for a few rows of its input sample.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
"""

import sys

from nb2prod.run.kernel.common import _CaptureProblem, _plain


def _golden_rows(sample, limit):
    """First rows, but with rows holding missing values first, so the examples exercise them."""
    import numpy as np

    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(sample, pandas.DataFrame):
        has_missing = sample.isna().any(axis=1).to_numpy()
    else:
        array = np.asarray(sample, dtype="float64")
        has_missing = np.isnan(array).any(axis=1)
    missing_rows = [int(i) for i in np.flatnonzero(has_missing)[: max(1, limit // 4)]]
    taken = set(missing_rows)
    rest = [i for i in range(min(len(has_missing), 2 * limit)) if i not in taken]
    return [(i, i) for i in sorted(missing_rows + rest[: limit - len(missing_rows)])]


def _golden_fit_rows(sample, positions, limit):
    """(sample row, fit-input row) pairs: rows the model was fitted on, missing values first."""
    picked = _golden_rows(sample.iloc[positions] if hasattr(sample, "iloc") else sample[positions], limit)
    return [(positions[j], j) for j, _ in picked]


def _golden_examples(model, sample, preprocess, limit, inputs=None, positions=None):
    """Records are rows of `sample`; answers are the model's on `preprocess(row)`, or, when the
    fit input is known (`inputs`, its row j made from sample row `positions[j]`), on its rows."""
    import numpy as np

    pandas = sys.modules.get("pandas")
    is_frame = pandas is not None and isinstance(sample, pandas.DataFrame)
    examples = []
    classes = getattr(model, "classes_", None)
    chosen = _golden_rows(sample, limit) if inputs is None else _golden_fit_rows(sample, positions, limit)
    for i, j in chosen:
        if is_frame:
            row = sample.iloc[[i]]
            # column by column: `row.iloc[0]` would make the ints of an all-number row floats
            record = {str(k): _plain(row[k].iloc[0]) for k in row.columns}
        else:
            row = np.asarray(sample)[i : i + 1]
            record = {"features": [_plain(v) for v in row[0]]}
        if inputs is not None:
            row = inputs.iloc[[j]] if hasattr(inputs, "iloc") else inputs[j : j + 1]
        inputs_row = preprocess(row) if preprocess is not None and inputs is None else row
        try:
            prediction = _plain(np.asarray(model.predict(inputs_row))[0])
            probabilities = None
            if classes is not None and callable(getattr(model, "predict_proba", None)):
                values = np.asarray(model.predict_proba(inputs_row))[0]
                if len(values) != len(classes):
                    raise ValueError(f"predict_proba gave {len(values)} columns for {len(classes)} classes")
                probabilities = {str(_plain(c)): float(p) for c, p in zip(classes, values)}
        except Exception as err:  # noqa: BLE001 - any failure of the user's model is reported, not raised
            raise _CaptureProblem("predict_failed", f"{type(err).__name__}: {err}", row=i) from None
        examples.append({"row": i, "input": record, "prediction": prediction, "probabilities": probabilities})
    return examples

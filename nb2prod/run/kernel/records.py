"""A model fitted on a list of dicts (DictVectorizer, FeatureHasher first): the dicts' keys are the fields.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
The service takes records with those keys, typed from the training dicts (described as a frame),
and ships a `preprocess(frame)` that turns the request's rows back into dicts; the conversion
proves the model answers them exactly as it answers the training dicts.
"""

import sys

from nb2prod.run.kernel.common import _CaptureProblem

_RECORDS_SOURCE = '''"""The request's rows as the dicts the model was fitted on (written by nb2prod).

The notebook fitted its model on a list of dicts (`{notebook_variable}`); a request's records are
rows of a frame with those keys as columns.
{missing_doc}
"""

import math

DROP_MISSING = {drop}


def preprocess(frame):
    """`frame`'s rows as dicts, one per row, in order."""
    rows = frame.to_dict("records")
    if DROP_MISSING:
        return [{{key: value for key, value in row.items() if not _missing(value)}} for row in rows]
    return rows


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))
'''


def _records_frame(sample):
    """The training dicts as a frame (a column per key, first-seen order); None unless `sample` is a list of dicts."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(sample, (list, tuple)) or not sample:
        return None
    if not all(isinstance(row, dict) and all(isinstance(k, str) for k in row) for row in sample):
        return None
    return pandas.DataFrame.from_records(list(sample))


def _records_source(sample, variable, frame):
    """The shipped module: a key a training dict lacked is left out of a request's dict when it is null."""
    width = frame.shape[1]
    absent = any(len(row) != width for row in sample)
    drop = absent or not any(_records_missing(v) for row in sample for v in row.values())
    doc = (
        "A null field is left out of its dict, as training dicts left out what they lacked."
        if drop
        else "A null field stays in its dict as NaN, as the training dicts had it."
    )
    return _RECORDS_SOURCE.format(notebook_variable=variable, missing_doc=doc, drop=drop)


def _records_missing(value):
    return value is None or (isinstance(value, float) and value != value)


def _records_prove(model, sample, frame, function, variable):
    """The model answers the dicts made from the frame exactly as it answers the training dicts."""
    import numpy as np

    try:
        made = function(frame)
        same = np.array_equal(np.asarray(model.predict(made)), np.asarray(model.predict(list(sample))))
        for method in ("predict_proba", "decision_function"):
            if same and callable(getattr(model, method, None)):
                same = np.allclose(getattr(model, method)(made), getattr(model, method)(list(sample)), rtol=0, atol=0)
    except Exception as err:  # noqa: BLE001 - the model's own failure is the reason
        raise _CaptureProblem("records", f"{type(err).__name__}: {err}", name=variable) from None
    if not same:
        raise _CaptureProblem("records", "its answers differ", name=variable)

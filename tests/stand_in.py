"""A generated service in this process, without a kernel: rendered from a stored capture, with a stand-in model.

The stand-in is a real scikit-learn model of the right kind (a `ColumnTransformer` pipeline for a
frame, a classifier without `predict_proba` where the notebook had one), fitted here on the
capture's golden rows. It is not the notebook's model: tests that use it check how the service
behaves (statuses, limits, errors, threads), not its answers.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import SVC

from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.notebook.spec import read_notebook
from nb2prod.run.captured import Capture, Column, Task
from tests.golden_render import BRANCHES, render_branch, stored_capture, write_tree


def training_inputs(capture: Capture) -> pd.DataFrame | np.ndarray:
    """The golden rows as the notebook's model took them: its columns and dtypes, or an array."""
    rows = [example.input for example in capture.golden]
    if capture.features.kind == "array":
        values = [[np.nan if v is None else v for v in row["features"]] for row in rows]
        return np.asarray(values, dtype=capture.features.array_dtype or "float64")
    columns = capture.features.columns
    frame = pd.DataFrame.from_records(rows, columns=[c.name for c in columns])
    for column in columns:
        if column.kind == "category":
            frame[column.name] = pd.Categorical(frame[column.name], categories=list(column.categories or ()))
        elif column.kind in ("integer", "number", "boolean") and column.dtype != "object":
            frame[column.name] = frame[column.name].astype(column.dtype)
    return frame


def _labels(column: Column) -> bool:
    return column.kind in ("boolean", "category") or (column.kind == "string" and not column.free_text)


def stand_in_model(capture: Capture, branch: str) -> Any:
    """A fitted model that takes what the service will give it; free text is dropped."""
    inputs = training_inputs(capture)
    spec = read_notebook(BRANCHES[branch])
    module = assemble_preprocess(spec)
    if module.defines_preprocess:
        namespace: dict[str, Any] = {}
        exec(compile(module.source, "preprocessing.py", "exec"), namespace)  # noqa: S102 - our own fixture
        inputs = namespace["preprocess"](inputs)
    if capture.model.task is Task.REGRESSION:
        estimator: Any = Ridge()
    elif "predict_proba" in capture.model.predict_methods:
        estimator = LogisticRegression(max_iter=1000)
    else:
        estimator = SVC()
    if isinstance(inputs, np.ndarray):
        model = make_pipeline(SimpleImputer(), estimator)
    else:
        labels = [c.name for c in capture.features.columns if _labels(c) and c.name in inputs.columns]
        columns = ColumnTransformer(
            [
                ("numbers", SimpleImputer(strategy="median"), make_column_selector(dtype_include="number")),
                ("labels", make_pipeline(SimpleImputer(strategy="most_frequent"), _one_hot()), labels),
            ]
        )
        model = Pipeline([("columns", columns), ("estimator", estimator)])
    return model.fit(inputs, [example.prediction for example in capture.golden])


def _one_hot() -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore")


def project_with_stand_in(branch: str, folder: Path, *, rows_independent: bool = False) -> Path:
    """Render `branch` with a stand-in model into `folder`/project; return the project's folder."""
    model_dir = folder / "model"
    model_dir.mkdir(parents=True)
    capture = stored_capture(branch, model_dir)
    joblib.dump(stand_in_model(capture, branch), capture.model_file)
    files = render_branch(branch, model_dir, scikit_learn=True, rows_independent=rows_independent)
    return write_tree(files, folder / "project")


def package_of(project: Path) -> str:
    return next((project / "src").glob("*/app.py")).parent.name


def serve_in_process(branch: str, folder: Path, *, rows_independent: bool = False) -> ModuleType:
    """Render `branch` with a stand-in model into `folder`, and import its `app` module."""
    project = project_with_stand_in(branch, folder, rows_independent=rows_independent)
    package = package_of(project)
    sys.path.insert(0, str(project / "src"))
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    return importlib.import_module(f"{package}.app")

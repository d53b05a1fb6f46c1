"""A scaled linear model as plain sums: which models have the form, the proof that takes it, and the
service's `linear.py` computing the kernel's sums to the bit.

The kernel code runs here as a module (it is plain Python), on models fitted inline; the service's
module is rendered from its template and imported.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, PolynomialFeatures, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from nb2prod.generate.render import templates_dir
from nb2prod.run.capture import PROOF_ROWS, TOLERANCE
from nb2prod.run.kernel.common import _plain
from nb2prod.run.kernel.compiled import _compile_model
from nb2prod.run.kernel.linear import _linear_answer, _linear_form

pytest.importorskip("skl2onnx")


def service_linear(tmp_path: Path, *, classifier: bool) -> Any:
    """The service's `linear` module, rendered from its template and imported."""
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir()), keep_trailing_newline=True)
    text = template.get_template("src/linear.py.j2").render(
        name="t",
        linear={"steps": ["StandardScaler", "LogisticRegression"], "link": "logistic"},
        classifier=classifier,
    )
    path = tmp_path / f"linear_{classifier}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("link", ["logistic", "softmax", "one-vs-rest", "identity"])
def test_the_service_computes_the_kernels_sums_to_the_bit(tmp_path: Path, link: str) -> None:
    rng = random.Random(7)
    outputs = 1 if link in ("logistic", "identity") else 4
    width = 30
    form = {
        "link": link,
        "weights": [[rng.uniform(-1, 1) for _ in range(width)] for _ in range(outputs)],
        "intercepts": [rng.uniform(-5, 5) for _ in range(outputs)],
    }
    sums = list(zip(form["weights"], form["intercepts"], strict=True))
    module = service_linear(tmp_path, classifier=link != "identity")
    service = module.Linear(form, list(range(2 if outputs == 1 else outputs)))
    for _ in range(500):
        row = [rng.choice([rng.uniform(-10, 10), rng.randint(-5, 5), rng.uniform(-1e-3, 1e-3)]) for _ in range(width)]
        assert service.answer(row) == _linear_answer(link, sums, row)  # floats compared with ==: the same bits


def test_sums_far_from_zero_give_probabilities_not_overflow(tmp_path: Path) -> None:
    module = service_linear(tmp_path, classifier=True)
    service = module.Linear({"link": "logistic", "weights": [[1.0]], "intercepts": [0.0]}, [0, 1])
    assert service.predict([[-1e6], [1e6]]) == ([0, 1], [{"0": 1.0, "1": 0.0}, {"0": 0.0, "1": 1.0}])


def golden(model: Any, x: np.ndarray, rows: list[int]) -> list[dict[str, Any]]:
    """Golden rows as the kernel records them: the model's answer for one row at a time."""
    examples = []
    for i in rows:
        probabilities = None
        if hasattr(model, "predict_proba"):
            values = model.predict_proba(x[i : i + 1])[0]
            probabilities = {str(_plain(c)): float(p) for c, p in zip(model.classes_, values, strict=True)}
        prediction = _plain(np.asarray(model.predict(x[i : i + 1]))[0])
        examples.append({"row": i, "prediction": prediction, "probabilities": probabilities})
    return examples


def text_labels(return_X_y: bool) -> tuple[np.ndarray, np.ndarray]:
    """The breast-cancer data with its classes as words."""
    x, y = load_breast_cancer(return_X_y=return_X_y)
    return x, np.where(y == 1, "benign", "malignant")


def fitted(model: Any, data: Any) -> tuple[Any, np.ndarray]:
    x, y = data(return_X_y=True)
    return model.fit(x, y), np.asarray(x, dtype="float64")


@pytest.mark.parametrize(
    ("model", "data", "link", "steps"),
    [
        (make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), load_breast_cancer, "logistic", 2),
        (make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=5000)), load_iris, "softmax", 2),
        (make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear")), load_breast_cancer, "logistic", 2),
        (make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)), load_wine, "softmax", 2),
        (make_pipeline(RobustScaler(), StandardScaler(), LogisticRegression(max_iter=5000)), load_wine, "softmax", 3),
        (make_pipeline(MaxAbsScaler(), LogisticRegression(max_iter=5000)), load_breast_cancer, "logistic", 2),
        (make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), text_labels, "logistic", 2),
        (LogisticRegression(fit_intercept=False, max_iter=5000), text_labels, "logistic", 1),
        (LinearRegression(), load_diabetes, "identity", 1),
        (make_pipeline(StandardScaler(with_mean=False), Ridge(alpha=3.0)), load_diabetes, "identity", 2),
        (make_pipeline(MinMaxScaler(), Lasso(alpha=0.1)), load_diabetes, "identity", 2),
        (make_pipeline(RobustScaler(with_centering=False), ElasticNet(alpha=0.01)), load_diabetes, "identity", 2),
    ],
)
def test_scaled_linear_models_are_scored_as_sums_with_their_proof(
    tmp_path: Path, model: Any, data: Any, link: str, steps: int
) -> None:
    model, x = fitted(model, data)
    config = {"out_dir": str(tmp_path), "onnx_file": "model.onnx", "tolerance": TOLERANCE, "proof_rows": PROOF_ROWS}
    report = _compile_model(model, x, None, golden(model, x, [0, 7, len(x) - 1]), config)
    assert report["path"] == "compiled", report["reason"]
    form = report["linear"]
    assert form["link"] == link
    assert len(form["steps"]) == steps
    assert form["max_difference"] <= TOLERANCE
    assert "as plain sums" in report["reason"]
    # The sums give the notebook's labels on every training row, not only the proof's.
    sums = list(zip(form["weights"], form["intercepts"], strict=True))
    answers = [_linear_answer(link, sums, row) for row in x.tolist()]
    if link == "identity":
        np.testing.assert_allclose([value for value, _ in answers], model.predict(x), rtol=1e-9, atol=1e-9)
    else:
        assert [model.classes_[top] for top, _ in answers] == model.predict(x).tolist()


@pytest.mark.parametrize(
    "model",
    [
        make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=5000)),  # not one weight per input
        make_pipeline(MinMaxScaler(clip=True), LogisticRegression(max_iter=5000)),  # clipping is not affine
        make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)),  # not a sum at all
    ],
)
def test_models_that_are_not_sums_have_no_linear_form(model: Any) -> None:
    model, x = fitted(model, load_breast_cancer)
    assert _linear_form(model, x.shape[1]) is None


def test_a_form_that_fails_its_proof_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime still scores: the compiled report stands, without the sums."""
    from nb2prod.run.kernel import compiled

    model, x = fitted(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), load_breast_cancer)

    def off_by_a_little(model: Any, width: int) -> dict[str, Any] | None:
        form = _linear_form(model, width)
        assert form is not None
        form["intercepts"] = [value + 1e-6 for value in form["intercepts"]]
        return form

    monkeypatch.setattr(compiled, "_linear_form", off_by_a_little)
    config = {"out_dir": str(tmp_path), "onnx_file": "model.onnx", "tolerance": TOLERANCE, "proof_rows": PROOF_ROWS}
    report = _compile_model(model, x, None, golden(model, x, [0, 1]), config)
    assert report["path"] == "compiled"
    assert "linear" not in report
    assert "plain sums" not in report["reason"]

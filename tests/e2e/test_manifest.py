"""The manifest records what the run depended on: parameters, data file hashes, versions, schema."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nb2prod.manifest import GitRecord, read_manifest
from nb2prod.notebook.spec import read_notebook
from nb2prod.run.provenance import git_state
from tests.conftest import code, markdown, run_cli, write_notebook

pytestmark = pytest.mark.slow


def test_manifest_records_parameters_data_files_versions_and_schema(make_notebook, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("size,colour,label\n1.5,red,0\n2.5,blue,1\n3.5,red,1\n0.5,,0\n2.0,blue,1\n1.0,red,0\n")
    notebook = make_notebook(
        [
            code('data_path = "train.csv"\nC = 1.0', "parameters"),
            code(
                "import pandas as pd\nframe = pd.read_csv(data_path)\nX = frame[['size', 'colour']]\ny = frame['label']",
                "load",
            ),
            code(
                "from sklearn.compose import make_column_transformer\n"
                "from sklearn.impute import SimpleImputer\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "from sklearn.pipeline import make_pipeline\n"
                "from sklearn.preprocessing import OneHotEncoder\n"
                "encode = make_pipeline(SimpleImputer(strategy='most_frequent'), OneHotEncoder(handle_unknown='ignore'))\n"
                "clf = make_pipeline(make_column_transformer((encode, ['colour']), remainder='passthrough'),"
                " LogisticRegression(C=C))\n"
                "clf.fit(X, y)",
                "train",
            ),
            code("metrics = {'accuracy': clf.score(X, y)}", "evaluate"),
        ],
        name="csv_model.ipynb",
    )
    result = run_cli("convert", notebook, "-o", tmp_path / "out", "-p", "C", "0.5")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out/src/csv_model/artifacts/manifest.json").read_text())

    assert manifest["parameters"] == {"data_path": "train.csv", "C": 0.5}
    assert manifest["data_files"] == [
        {
            "path": "train.csv",
            "size": len(data.read_bytes()),
            "sha256": "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest(),
            "parameters": ["data_path"],
        }
    ]
    assert manifest["provenance"]["notebook_path"] == "../csv_model.ipynb"
    assert manifest["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "scikit-learn" in manifest["packages"] and "pandas" in manifest["packages"]
    model_bytes = (tmp_path / "out/src/csv_model/artifacts/model.joblib").read_bytes()
    assert manifest["artifacts"]["model.joblib"] == "sha256:" + hashlib.sha256(model_bytes).hexdigest()
    # The typed model reads back what was written, version checked.
    typed = read_manifest(tmp_path / "out/src/csv_model/artifacts/manifest.json")
    assert typed.model.task == "classification" and typed.model.file == "model.joblib"
    assert typed.to_bytes() == (tmp_path / "out/src/csv_model/artifacts/manifest.json").read_bytes()
    assert manifest["model"]["class"] == "sklearn.pipeline.Pipeline"
    assert manifest["model"]["task"] == "classification"
    assert "predict_proba" in manifest["model"]["predict_methods"]
    assert manifest["output"]["classes"] == [0, 1]
    assert manifest["metrics"] == {"accuracy": 1.0}
    features = {f["name"]: f for f in manifest["input_schema"]["features"]}
    assert features["size"] | {} == {
        "name": "size",
        "dtype": "float64",
        "kind": "number",
        "nullable": False,
        "min": 0.5,
        "max": 3.5,
    }
    assert features["colour"]["nullable"] is True
    assert features["colour"]["categories"] == ["blue", "red"]
    assert manifest["input_schema"]["json_schema"]["required"] == ["size"]
    assert manifest["seed"] == 0
    assert manifest["version"].startswith("0.1.0+")
    pyproject = (tmp_path / "out/pyproject.toml").read_text()
    # The manifest records every package the notebook ran with; the service installs what it imports
    # at run time: on the compiled path ONNX Runtime, not what unpickling the model would need.
    assert manifest["inference"]["path"] == "compiled", manifest["inference"]
    assert f'"onnxruntime=={manifest["packages"]["onnxruntime"]}"' in pyproject
    assert '"scikit-learn==' not in pyproject and '"joblib==' not in pyproject and '"pandas==' not in pyproject
    assert '"fastapi==' in pyproject


def test_run_uses_a_fixed_hash_seed_and_the_notebooks_folder(make_notebook, tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here")
    notebook = make_notebook(
        [
            code("import os\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)", "load"),
            code(
                "from sklearn.tree import DecisionTreeClassifier\nclf = DecisionTreeClassifier()\nclf.fit(X, y)",
                "train",
            ),
            code(
                "metrics = {'hash': hash('nb2prod') % 100003, 'cwd_ok': float(os.path.exists('marker.txt'))}",
                "evaluate",
            ),
        ]
    )
    result = run_cli("convert", notebook, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(next((tmp_path / "out").glob("src/*/artifacts/manifest.json")).read_text())["metrics"]
    expected = subprocess.run(
        [sys.executable, "-c", "print(hash('nb2prod') % 100003)"],
        env={"PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert metrics == {"hash": int(expected), "cwd_ok": 1.0}


def test_chained_fit_on_an_expression_is_detected(make_notebook, tmp_path: Path) -> None:
    notebook = make_notebook(
        [
            code("from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True, as_frame=True)", "load"),
            code(
                "from sklearn.linear_model import LogisticRegression\nclf = LogisticRegression(max_iter=500).fit(X.values, y)",
                "train",
            ),
        ]
    )
    result = run_cli("convert", notebook, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "model `clf`" in result.stdout and "input `X.values`" in result.stdout
    manifest = json.loads(next((tmp_path / "out").glob("src/*/artifacts/manifest.json")).read_text())
    assert manifest["input_schema"]["kind"] == "array"
    assert len(manifest["input_schema"]["features"]) == 4


def _git(repo: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(repo), "PATH": os.environ["PATH"]}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_manifest_records_provenance_data_read_in_the_kernel_and_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    # Inputs the test writes (not the notebook): one beside the notebook, one by absolute path elsewhere.
    data = repo / "data" / "train.csv"
    data.parent.mkdir()
    data.write_text("size,label\n" + "".join(f"{i / 10},{int(i > 5)}\n" for i in range(12)))
    outside = tmp_path / "elsewhere" / "extra.csv"
    outside.parent.mkdir()
    outside.write_text("bonus\n1\n")
    cells = [
        markdown("# A model"),
        code("C = 1.0", "parameters"),
        code(
            "import pandas as pd\n"
            "frame = pd.read_csv('data/train.csv')\n"
            f"extra = pd.read_csv({str(outside)!r})\n"
            "frame.to_csv('scratch.csv', index=False)  # written by the run, then read: not an input\n"
            "frame = pd.read_csv('scratch.csv')\n"
            "X, y = frame[['size']], frame['label']",
            "load",
        ),
        code("print('not run')", "skip"),
        code("from sklearn.linear_model import LogisticRegression\nclf = LogisticRegression(C=C).fit(X, y)", "train"),
    ]
    notebook = write_notebook(repo / "model.ipynb", cells)
    (repo / "notes.txt").write_text("committed\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first")
    (repo / "notes.txt").write_text("changed after the commit\n")  # a tracked file modified: dirty

    out = repo / "model-service"  # inside the repository, as by default: it must not count as a change
    result = run_cli("convert", notebook, "-o", out)
    assert result.returncode == 0, result.stderr
    manifest_path = out / "src/model/artifacts/manifest.json"
    manifest = json.loads(manifest_path.read_text())

    assert manifest["manifest_version"] == 2
    assert manifest["data_files"] == [
        {"path": str(outside.resolve()), "size": 8, "sha256": _sha256(outside.read_bytes()), "parameters": []},
        {
            "path": "data/train.csv",
            "size": len(data.read_bytes()),
            "sha256": _sha256(data.read_bytes()),
            "parameters": [],
        },
    ]
    spec = read_notebook(notebook)
    assert manifest["notebook"] == {"file": "model.ipynb", "content_hash": spec.content_hash}
    assert manifest["notebook"]["content_hash"].startswith("sha256:")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    assert manifest["provenance"] == {
        "notebook_path": "../model.ipynb",
        "cells": [
            {"index": 1, "roles": ["parameters"], "sha256": _sha256(b"C = 1.0")},
            {"index": 2, "roles": ["load"], "sha256": _sha256(cells[2].source.encode())},
            {"index": 4, "roles": ["train"], "sha256": _sha256(cells[4].source.encode())},
        ],
        "git": {"commit": head.stdout.strip(), "dirty": True},
    }
    # A second conversion sees the same repository: OUT and scratch.csv (untracked, not inputs) do not count.
    inputs = [data, outside]
    assert git_state(notebook, inputs, exclude=(out,)) == GitRecord(commit=head.stdout.strip(), dirty=True)
    (repo / "notes.txt").write_text("committed\n")
    assert git_state(notebook, inputs, exclude=(out,)) == GitRecord(commit=head.stdout.strip(), dirty=False)
    assert read_manifest(manifest_path).to_bytes() == manifest_path.read_bytes()

    # Running and saving the notebook (outputs, counts) keeps its content hash; editing a source does not.
    saved = nbformat.read(str(notebook), as_version=4)
    saved.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="fitted")]
    saved.cells[4].execution_count = 3
    nbformat.write(saved, str(notebook))
    assert read_notebook(notebook).content_hash == manifest["notebook"]["content_hash"]
    saved.cells[4].source += "\n# tuned"
    nbformat.write(saved, str(notebook))
    assert read_notebook(notebook).content_hash != manifest["notebook"]["content_hash"]

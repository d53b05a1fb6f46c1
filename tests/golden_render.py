"""Generated projects rendered from stored captures, without a kernel: one per template branch.

`tests/golden/captures/<branch>.json` is the capture report of a real run of the branch's notebook
(written by `NB2PROD_REGENERATE_GOLDEN=1 python -m pytest tests/e2e/test_golden_tree.py`).
`render_branch` takes it through the real build stages (schema, extract, artifact, render) as
`convert` does after the run; `compared_files` masks what depends on the environment, for the
reviewed copies in `tests/golden/<branch>/`.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path

from nb2prod.analysis.preprocess import assemble_preprocess
from nb2prod.analysis.service_input import planned_input
from nb2prod.generate.artifact import build_artifact
from nb2prod.generate.extract import extract_code
from nb2prod.generate.render import RenderInput, render_project
from nb2prod.generate.schema import infer_schema
from nb2prod.manifest import HistoryRecord
from nb2prod.notebook.spec import read_notebook
from nb2prod.options import package_name, slug_name
from nb2prod.run.captured import NOT_REPORTED, Capture, CaptureReport
from tests.conftest import EXAMPLES, FIXTURES, ROOT

GOLDEN = ROOT / "tests" / "golden"
CAPTURES = GOLDEN / "captures"
# branch -> the notebook whose capture it renders, and what it exercises in the templates
BRANCHES = {
    "customers_mixed": EXAMPLES / "customers_mixed.ipynb",  # frame model: categories, nulls, probabilities
    "iris_array": EXAMPLES / "iris_array.ipynb",  # array model
    "diabetes_custom": EXAMPLES / "diabetes_custom.ipynb",  # regression with a preprocess function
    "svc_free_text": FIXTURES / "svc_free_text.ipynb",  # classifier without predict_proba; a free-text column
    # the frame model on the scikit-learn path, proved row-independent: concurrent requests scored together
    "customers_lean": EXAMPLES / "customers_mixed.ipynb",
}
# branch -> the convert options its capture was made with, besides the defaults
BRANCH_OPTIONS: dict[str, dict[str, object]] = {"customers_lean": {"compile_model": False}}
# Files that are code or configuration; model bytes, golden answers and the executed notebook are not.
COMPARED = (
    "pyproject.toml",
    "README.md",
    "Dockerfile",
    ".dockerignore",
    "deploy/kubernetes/*.yaml",
    "src/*/*.py",
    "tests/test_service.py",
)
MASKS = [
    # Which distributions are pinned depends on the environment's dependency tree, not on templates.
    (re.compile(r"^(dependencies|test) = \[\n.*?^\]", re.M | re.S), r"\1 = [<exact pins>]"),
    (re.compile(r"\d+\.\d+\.\d+\+[0-9a-f]{12}"), "<version>"),
    (re.compile(r"\d+\.\d+\.\d+-[0-9a-f]{12}"), "<image-tag>"),
    (re.compile(r"nb2prod \d+\.\d+\.\d+"), "nb2prod <version>"),
    (re.compile(r"hatchling>=[\d.]+"), "hatchling>=<version>"),
    (re.compile(r"python:\d+\.\d+-slim|==\d+\.\d+\.\*"), "<python>"),
]


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def compared_files(tree: dict[str, bytes]) -> dict[str, str]:
    """The compared files of a generated tree (path -> bytes), masked."""
    return {
        path: masked(content.decode())
        for path, content in sorted(tree.items())
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in COMPARED)
    }


def tree_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def golden_files(branch: str) -> dict[str, str]:
    return {path: content.decode() for path, content in tree_of(GOLDEN / branch).items()}


def write_golden(branch: str, files: dict[str, str]) -> None:
    """Replace the branch's golden copy with `files`."""
    shutil.rmtree(GOLDEN / branch, ignore_errors=True)
    for relative, text in files.items():
        target = GOLDEN / branch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def stored_capture(branch: str, model_dir: Path) -> Capture:
    """The branch's stored capture report, with its model file expected in `model_dir`."""
    report = CaptureReport.model_validate_json((CAPTURES / f"{branch}.json").read_text(encoding="utf-8"))
    return Capture(model_file=model_dir / report.model_file, report=report)


def store_capture(branch: str, capture: Capture) -> None:
    text = json.dumps(capture.report.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True)
    CAPTURES.mkdir(parents=True, exist_ok=True)
    (CAPTURES / f"{branch}.json").write_text(text + "\n", encoding="utf-8")


def render_branch(
    branch: str,
    model_dir: Path,
    *,
    scikit_learn: bool = False,
    rows_independent: bool = False,
    history: HistoryRecord | None = None,
) -> dict[str, bytes]:
    """Every file `convert` would write for the branch's notebook, from its stored capture.

    The model files must exist in `model_dir` (under the names the capture reports: the model,
    and the ONNX file when the capture chose the compiled path); rendering only reads their
    bytes for their digest, so stand-ins will do. `scikit_learn`: render the scikit-learn
    inference path whatever the capture chose (for a stand-in scikit-learn model), proved row
    by row independent if `rows_independent` (so that the service scores concurrent requests together).
    `history`: a `--compatible-with` check to record (the README's changes, a KServe canary).
    """
    spec = read_notebook(BRANCHES[branch])
    module = assemble_preprocess(spec)
    capture = stored_capture(branch, model_dir)
    if scikit_learn:
        capture = Capture(
            model_file=capture.model_file,
            report=capture.report.model_copy(
                update={
                    "inference": NOT_REPORTED.model_copy(update={"rows_independent": rows_independent}),
                    "serve_distributions": None,  # the scikit-learn path installs all the kernel's
                }
            ),
        )
    schema = infer_schema(capture)
    code = extract_code(module, capture.distributions, serve_distributions=capture.report.serve_distributions)
    name = spec.config.name or slug_name(spec.path.stem)
    artifact = build_artifact(
        spec=spec,
        name=name,
        package=package_name(name),
        base_version=spec.config.version or "0.1.0",
        capture=capture,
        schema=schema,
        code=code,
        parameters={p.name: p.value for p in spec.parameters},
        seed=0,
        history=history,
        service_input=planned_input(spec, raw=None, model=None, module=module),
    )
    return render_project(RenderInput(artifact, capture, schema, code, spec.path.name, b"{}\n"))


def write_tree(tree: dict[str, bytes], out: Path) -> Path:
    for relative, content in tree.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return out

"""The capture step: the extra cell that runs in the kernel, and reading what it reports.

`capture_cell_source` builds the cell from the `run.kernel` modules; `read_capture` turns
`capture.json` into a typed `Capture`, or raises a `CaptureError` that names the notebook, the
cell and the fix.
"""

from __future__ import annotations

import ast
import json
from importlib import resources
from pathlib import Path

from nb2prod.analysis.metrics import metric_calls
from nb2prod.analysis.preprocess import PreprocessModule
from nb2prod.analysis.targets import CaptureTargets
from nb2prod.notebook.spec import NotebookSpec, Role
from nb2prod.run.captured import Capture, CaptureProblem, load_report
from nb2prod.run.problems import problem_error
from nb2prod.run.recording import preprocessing_config

GOLDEN_ROWS = 20
MODEL_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
# Largest |compiled - scikit-learn| / max(1, |scikit-learn|) accepted; the golden tests use it too.
TOLERANCE = 1e-9
# Training rows the compiled model must reproduce in one batch (besides every golden row).
PROOF_ROWS = 4000
# The compiled model's input precision. Only tests change it: "float32" must fail the proof.
COMPILE_PRECISION = "float64"
# The kernel modules in dependency order; their imports of each other are dropped when joined.
KERNEL_MODULES = (
    "common",
    "environment",
    "sample",
    "model",
    "golden",
    "pickling",
    "onnx_exact",
    "linear",
    "compiled",
    "proof",
    "frozen",
    "compose",
    "nulls",
    "records",
    "reads",
    "capture",
)
# The modules of the setup cell, which runs before the notebook's first cell.
SETUP_MODULES = ("reads",)
KERNEL_PACKAGE = "nb2prod.run.kernel"
# The file, in the run's folder, that holds the kernel package for the capture cell.
KERNEL_FILE = "nb2prod_capture.py"


def kernel_source(modules: tuple[str, ...] = KERNEL_MODULES) -> str:
    """The kernel package as one cell body: its modules joined, without their imports of each other."""
    parts = []
    for name in modules:
        text = resources.files(KERNEL_PACKAGE).joinpath(f"{name}.py").read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = text.splitlines(keepends=True)
        for node in reversed(tree.body):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(KERNEL_PACKAGE):
                del lines[node.lineno - 1 : node.end_lineno]
        parts.append(f"# --- {KERNEL_PACKAGE}.{name} ---\n" + "".join(lines))
    return "\n\n".join(parts)


def capture_cell_source(
    *,
    out_dir: Path,
    package: str,
    targets: CaptureTargets,
    spec: NotebookSpec,
    module: PreprocessModule,
    compile_model: bool = True,
) -> str:
    """Source of the cell appended after the notebook's last cell; writes the kernel code it runs into `out_dir`."""
    config = {
        "out_dir": str(out_dir),
        "package": package,
        "model": targets.model,
        "features": targets.features,
        "model_candidates": list(targets.model_candidates),
        "fit_features": [list(pair) for pair in targets.fit_features],
        "preprocess_callables": list(module.callables),
        "has_preprocess": module.defines_preprocess,
        "import_modules": list(module.imports),
        "golden_rows": GOLDEN_ROWS,
        "model_file": MODEL_FILE,
        "onnx_file": ONNX_FILE,
        "tolerance": TOLERANCE,
        "proof_rows": PROOF_ROWS,
        "precision": COMPILE_PRECISION,
        "compile": compile_model,
        "evaluate": bool(spec.code_cells(Role.EVALUATE)),
        "metrics_variable": spec.config.metrics or "metrics",
        "metric_calls": [[m.name, m.expression] for m in metric_calls(spec, targets.model)],
        "labels": spec.config.labels,
        "preprocessing": preprocessing_config(module),
    }
    # The kernel code goes in a file beside the capture: IPython tokenizes and transforms every cell
    # it runs, which for two thousand lines cost more than half a second of the kernel's time.
    code = out_dir / KERNEL_FILE
    code.write_text(kernel_source(), encoding="utf-8")
    return (
        "# nb2prod capture step: added by nb2prod after your last cell; not part of your notebook.\n"
        f"# It runs nb2prod's kernel code (the nb2prod.run.kernel package as one module, {KERNEL_FILE}).\n"
        f"with open({str(code)!r}, encoding='utf-8') as _nb2prod_file:\n"
        f"    exec(compile(_nb2prod_file.read(), {str(code)!r}, 'exec'), globals())\n"
        f"_nb2prod_ok = _nb2prod_capture(globals(), json.loads({json.dumps(config)!r}))\n"
    )


def setup_cell_source(*, notebook_dir: Path, exclude: tuple[Path, ...]) -> str:
    """Source run before the notebook's first cell: the audit hook that notes which files the run
    opens (`kernel.reads`). `exclude`: folders nb2prod writes, never data."""
    config = {"root": str(notebook_dir.resolve()), "exclude": [str(p.resolve()) for p in exclude]}
    # Run in a namespace of its own: only `_nb2prod_reads` (the hook's state) reaches the notebook's
    # globals, so no import of ours can hide a missing import in the user's cells.
    code = f"compile({kernel_source(SETUP_MODULES)!r}, '<nb2prod setup>', 'exec')"
    return (
        "# nb2prod: notes which data files the run reads (an audit hook; see the manifest's data_files).\n"
        f"_nb2prod_setup = {{}}\nexec({code}, _nb2prod_setup)\n"
        f"_nb2prod_setup['_nb2prod_watch_reads'](globals(), {config!r})\n"
        "del _nb2prod_setup\n"
    )


def read_capture(out_dir: Path, spec: NotebookSpec, module: PreprocessModule) -> Capture:
    """Parse `capture.json`; turn a reported problem into a CaptureError."""
    report = load_report(out_dir / "capture.json", spec.path)
    if isinstance(report, CaptureProblem):
        raise problem_error(spec, module, report)
    return Capture(model_file=out_dir / report.model_file, report=report)

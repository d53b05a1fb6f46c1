"""Import the compiler's libraries in the background while the notebook runs, before the capture step needs them.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9.
Importing `onnx` costs about a second (its `ml_dtypes` extension), paid by the capture step after
the notebook's last cell. The seed cell starts it on a daemon thread instead, so it overlaps the
notebook's cells and the pauses between them. Only libraries that import none of what a notebook
imports (scikit-learn, pandas) are taken: two threads importing modules that import each other
could hand one of them a half-initialised module. A failed import is left for the capture step,
which meets it again and reports it. Nothing reaches the notebook's namespace.
"""

import sys
import threading

# Libraries that import only NumPy (already imported by the seed cell) and their own modules.
_PRELOADED = ("onnx", "onnxruntime")


def _nb2prod_preload(modules=_PRELOADED):
    """Start importing `modules` on a daemon thread; the thread, for tests to wait on."""

    def preload():
        for module in modules:
            if module in sys.modules:
                continue
            try:
                __import__(module)
            except Exception:  # noqa: BLE001, S112 - the capture step imports it again and says why
                continue

    thread = threading.Thread(target=preload, name="nb2prod-preload", daemon=True)
    thread.start()
    return thread

"""nb2prod: turn a tagged Jupyter notebook into a tested, deployable prediction service.

The package reads as its pipeline: `notebook/` reads, `analysis/` checks without a kernel,
`run/` executes (with `run/kernel/` shipped into the user's kernel), `generate/` turns the capture
into files, `pipeline.py` knows the order, and `cli/` and `jupyter/` are the two front doors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nb2prod._version import __version__

if TYPE_CHECKING:
    from nb2prod.errors import Nb2ProdError
    from nb2prod.options import ConvertOptions, build_options
    from nb2prod.pipeline import ConversionResult, convert, lint

__all__ = ["ConversionResult", "ConvertOptions", "Nb2ProdError", "__version__", "build_options", "convert", "lint"]

_PUBLIC = {
    "Nb2ProdError": "nb2prod.errors",
    "ConvertOptions": "nb2prod.options",
    "build_options": "nb2prod.options",
    "ConversionResult": "nb2prod.pipeline",
    "convert": "nb2prod.pipeline",
    "lint": "nb2prod.pipeline",
}


def __getattr__(name: str) -> Any:
    """Load the pipeline only when its API is used, so `nb2prod --version` stays fast."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'nb2prod' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

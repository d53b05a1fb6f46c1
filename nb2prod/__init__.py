"""nb2prod: turn a tagged Jupyter notebook into a tested, deployable prediction service."""

from __future__ import annotations

__version__ = "0.1.0"

from nb2prod.errors import Nb2ProdError  # noqa: E402
from nb2prod.options import ConvertOptions, build_options  # noqa: E402
from nb2prod.pipeline import ConversionResult, convert, lint  # noqa: E402

__all__ = ["ConversionResult", "ConvertOptions", "Nb2ProdError", "__version__", "build_options", "convert", "lint"]

"""The Jupyter server extension behind the "Convert to production" button, and its job runner."""

from __future__ import annotations

from typing import Any

# Registered in `jupyter-config/server-config/nb2prod.json` under this module's name, so
# installing the wheel enables the server extension; the prebuilt frontend ships as shared data.


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from nb2prod.jupyter.app import Nb2ProdExtension

    return [{"module": "nb2prod.jupyter", "app": Nb2ProdExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "nb2prod"}]

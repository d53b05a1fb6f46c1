"""The prediction endpoints without FastAPI's routing, which costs more than scoring a compiled model.

`PredictionRoutes` answers `POST /predict` and `POST /predict/batch` by calling the same endpoint
functions the router holds (`routes.predict`, `routes.predict_batch`), and turns their errors
into answers with the handlers the app installed (`errors`), as FastAPI would: same validation,
same answers, same error bodies. Every other request goes on to the app. It sits inside the other
middleware, so body limits, request ids and draining apply to it as to every request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from customers_mixed import routes

Endpoint = Callable[[Request], Awaitable[Response]]
ENDPOINTS: dict[str, Endpoint] = {"/predict": routes.predict, "/predict/batch": routes.predict_batch}


class PredictionRoutes:
    """POST /predict and /predict/batch straight to their endpoint functions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = ENDPOINTS.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:  # noqa: BLE001 - the app's handlers decide, as in FastAPI
            response = await handled(request, exc)
        await response(scope, receive, send)


async def handled(request: Request, exc: Exception) -> Response:
    """The answer of the app's exception handler for `exc`; re-raised when the app has none."""
    handlers = request.app.exception_handlers
    handler = next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)
    if handler is None:
        raise exc
    response = handler(request, exc)
    return await response if inspect.isawaitable(response) else response

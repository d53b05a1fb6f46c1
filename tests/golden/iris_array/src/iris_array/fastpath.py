"""The prediction endpoints on a lane of their own, in front of FastAPI's stack.

FastAPI's own stack (its telemetry check, the error middleware, the router) costs more than
scoring a compiled model. `Service` is the FastAPI app, except that `POST /predict` and
`POST /predict/batch` take a shorter lane: the same middleware as every request (request ids and
the 500 of last resort, draining, the body limit), then `PredictionRoutes`, which calls the
endpoint functions the router holds (`routes.predict`, `routes.predict_batch`) and turns their
errors into answers with the handlers the app installed (`errors`), as FastAPI would: same
validation, same answers, same error bodies. Every other request goes through FastAPI. The app's
state is a `PlainState`, whose values the lane reads as plain attributes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from iris_array import routes

Endpoint = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[ASGIApp], ASGIApp]
ENDPOINTS: dict[str, Endpoint] = {"/predict": routes.predict, "/predict/batch": routes.predict_batch}


class PlainState(State):
    """`app.state`, its values held as plain attributes. Starlette's `State` keeps them in a dict that
    each read reaches through `__getattr__`, about twenty times slower a read, and the prediction lane
    reads the state several times a request."""

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        object.__delattr__(self, key)


class Service(FastAPI):
    """FastAPI, with the two prediction endpoints on their own lane."""

    prediction_lane: ASGIApp | None = None
    # `POST /predict` in one pass (`rawpredict.RawPredict`), on the lane when it is set.
    one_pass: ASGIApp | None = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.state = PlainState()

    def use_middleware(self, middleware: Sequence[Middleware]) -> None:
        """Put `middleware` (outermost first) around every request, the prediction lane's included."""
        lane: ASGIApp = PredictionRoutes()
        for layer in reversed(middleware):
            self.add_middleware(layer)  # the one added last runs first
            lane = layer(lane)
        self.prediction_lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.prediction_lane
        if (
            lane is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in ENDPOINTS
            and not scope.get("root_path")
            and not self.root_path
        ):
            scope["app"] = self
            if self.one_pass is not None and scope["path"] == "/predict":
                lane = self.one_pass
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class PredictionRoutes:
    """POST /predict and /predict/batch straight to their endpoint functions."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await ENDPOINTS[scope["path"]](request)
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

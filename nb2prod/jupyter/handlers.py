"""The REST endpoints of the server extension: `/nb2prod/jobs`, `/nb2prod/jobs/{id}`, `/nb2prod/history`,
`/nb2prod/lint`, `/nb2prod/tag`, `/nb2prod/roles`, `/nb2prod/choices` and `/nb2prod/services`.

Every handler method requires the server's normal authentication (`@web.authenticated`, so an
anonymous request gets 403, and jupyter_server checks XSRF on cookie-authenticated POSTs).
Every error body is JSON with `"source": "nb2prod"` (the frontend tells a missing extension's 404
from ours by it), a message and a hint, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from nb2prod.errors import Nb2ProdError
from nb2prod.jupyter.job_options import job_request
from nb2prod.jupyter.jobs import JobManager
from nb2prod.jupyter.paths import PathError, confine, relative_to_root
from nb2prod.jupyter.records import error_body, findings_body, plain
from nb2prod.jupyter.serve import ServiceManager

AUTH_RESOURCE = "nb2prod"
# The cell roles of the product contract: the tags a proposal replaces (other tags are kept).
ROLE_TAGS = ["parameters", "load", "preprocess", "train", "evaluate", "skip"]


class ApiError(web.HTTPError):
    """An HTTP error whose JSON body says what went wrong and what to do."""

    def __init__(self, status: int, message: str, hint: str = "", **extra: Any) -> None:
        super().__init__(status, reason=HTTPStatus(status).phrase)
        self.body: dict[str, Any] = {"message": message, "hint": hint, **extra}


class Nb2ProdHandler(APIHandler):
    """Shared by the endpoints: the job manager, path confinement and JSON errors."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, jobs: JobManager, services: ServiceManager) -> None:
        self.jobs = jobs
        self.services = services

    @property
    def root(self) -> Path:
        return self.jobs.root

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            body = error.body
        elif isinstance(error, web.HTTPError):
            body = {"message": error.log_message or HTTPStatus(status_code).phrase, "hint": ""}
        else:
            body = {
                "message": f"internal error in the nb2prod server extension ({type(error).__name__}).",
                "hint": "The Jupyter server's log has the traceback.",
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"source": "nb2prod", "status": status_code, **body}))

    def reply(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"source": "nb2prod", **body}))

    def notebook(self, path: Any) -> Path:
        """The confined notebook file a request names: 400 for a bad path, 404 for a missing file."""
        try:
            notebook = confine(self.root, path, what="path")
        except PathError as error:
            raise ApiError(400, str(error), "Give the notebook's path relative to the Jupyter server's root.") from None
        if not notebook.is_file():
            raise ApiError(404, f"no notebook at {path!r}.", "Save the notebook, then try again.")
        return notebook

    def folder(self, path: Any) -> Path:
        """The confined output folder a request names: 400 for a bad path, 404 for a missing folder."""
        try:
            folder = confine(self.root, path, what="output")
        except PathError as error:
            raise ApiError(400, str(error), "Give the output folder relative to the Jupyter server's root.") from None
        if not folder.is_dir():
            raise ApiError(404, f"no folder {path!r}.", "Convert the notebook first.")
        return folder

    def body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ApiError(400, "the request body is not JSON.", 'Send {"path": "<notebook>"}.') from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object.", 'Send {"path": "<notebook>"}.')
        return body


class JobsHandler(Nb2ProdHandler):
    """`POST /nb2prod/jobs` `{"path": ..., "options": {...}}`: 202 and a new job, or 200 and the running one."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        try:
            request = job_request(self.root, notebook, body.get("options"))
        except PathError as error:
            raise ApiError(400, str(error), "Give the output folder relative to the Jupyter server's root.") from None
        except Nb2ProdError as error:
            raise ApiError(400, **error_body(error)) from None
        options = body.get("options") or {}
        job, created = self.jobs.submit(relative_to_root(self.root, notebook), notebook, request, options)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + job.id)
        self.reply(202 if created else 200, job.to_json())


class JobHandler(Nb2ProdHandler):
    """`GET /nb2prod/jobs/{id}`: status, progress, log tail, and the result or the error."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r} on this server.", "See /nb2prod/history for the jobs kept.")
        self.reply(200, job)


class HistoryHandler(Nb2ProdHandler):
    """`GET /nb2prod/history[?path=...]`: the last conversions (of one notebook), newest first, kept across restarts."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        relative = relative_to_root(self.root, self.notebook(path)) if path else None
        self.reply(200, {"path": relative, "jobs": self.jobs.history(relative)})


class LintHandler(Nb2ProdHandler):
    """`GET /nb2prod/lint?path=...[&model=VAR]`: the lint findings, without running anything."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from nb2prod.pipeline import lint

        notebook = self.notebook(self.get_query_argument("path", ""))
        model = self.get_query_argument("model", None) or None
        try:
            _, findings = await asyncio.to_thread(lint, notebook, model=model)
        except Nb2ProdError as error:
            raise ApiError(422, **error_body(error)) from None
        self.reply(200, {"path": relative_to_root(self.root, notebook), **findings_body(findings)})


class TagHandler(Nb2ProdHandler):
    """`GET /nb2prod/tag?path=...[&model=VAR]`: a proposed role per code cell; the notebook is not changed.

    The frontend applies the proposals as cell tags in the open notebook (undoable there), the
    way `nb2prod tag --write` does on disk: role tags replaced, other tags kept, fixed roles left.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from nb2prod.pipeline import propose_roles

        notebook = self.notebook(self.get_query_argument("path", ""))
        model = self.get_query_argument("model", None) or None
        try:
            proposals = await asyncio.to_thread(propose_roles, notebook, model)
        except Nb2ProdError as error:
            raise ApiError(422, **error_body(error)) from None
        self.reply(
            200,
            {"path": relative_to_root(self.root, notebook), "proposals": plain(proposals), "role_tags": ROLE_TAGS},
        )


class RolesHandler(Nb2ProdHandler):
    """`GET /nb2prod/roles?path=...[&model=VAR]`: each code cell's roles now, and the proposal with its reason."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from nb2prod.jupyter.view import cell_roles

        notebook = self.notebook(self.get_query_argument("path", ""))
        model = self.get_query_argument("model", None) or None
        try:
            roles = await asyncio.to_thread(cell_roles, notebook, model)
        except Nb2ProdError as error:
            raise ApiError(422, **error_body(error)) from None
        self.reply(200, {"path": relative_to_root(self.root, notebook), **roles})


class ChoicesHandler(Nb2ProdHandler):
    """`GET /nb2prod/choices?path=...[&model=VAR&raw=VAR]`: what the convert dialog offers, the
    sentence on what the service will take, and the options of the notebook's last conversion."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from nb2prod.jupyter.view import convert_choices

        notebook = self.notebook(self.get_query_argument("path", ""))
        model = self.get_query_argument("model", None) or None
        raw = self.get_query_argument("raw", None) or None
        path = relative_to_root(self.root, notebook)
        try:
            choices = await asyncio.to_thread(convert_choices, notebook, model, raw)
        except Nb2ProdError as error:
            raise ApiError(422, **error_body(error)) from None
        self.reply(200, {"path": path, **choices, "last": self.jobs.last_options(path)})


class ServicesHandler(Nb2ProdHandler):
    """`GET /nb2prod/services`: the running services; `POST {"output": ...}` serves a converted folder
    (200 when it already runs, 201 when started); `DELETE ?output=...` stops it."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(200, {"services": self.services.running()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        from nb2prod.jupyter.serve import ServeError

        output = self.folder(self.body().get("output"))
        try:
            service, created, warnings = await self.services.start(output)
        except ServeError as error:
            raise ApiError(409, **error_body(error)) from None
        self.reply(201 if created else 200, {**service.to_json(), "warnings": warnings})

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        output = self.folder(self.get_query_argument("output", ""))
        stopped = await self.services.stop(output)
        if not stopped:
            raise ApiError(404, f"no service runs for {relative_to_root(self.root, output)!r}.", "Serve it first.")
        self.reply(200, {"output": relative_to_root(self.root, output), "stopped": True})


class UnknownHandler(Nb2ProdHandler):
    """Any other path under `/nb2prod/`: a JSON 404 naming the endpoints (never the server's HTML page)."""

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        raise ApiError(
            404,
            f"no nb2prod endpoint {path!r}.",
            "The endpoints are jobs, jobs/{id}, history, lint, tag, roles, choices and services.",
        )

    post = get


def route_table(jobs: JobManager, services: ServiceManager) -> list[tuple[str, type[Nb2ProdHandler], dict[str, Any]]]:
    """URL patterns relative to the server's base URL (the extension app prefixes it)."""
    kwargs = {"jobs": jobs, "services": services}
    return [
        (r"/nb2prod/jobs/?", JobsHandler, kwargs),
        (r"/nb2prod/jobs/([^/]+)/?", JobHandler, kwargs),
        (r"/nb2prod/history/?", HistoryHandler, kwargs),
        (r"/nb2prod/roles/?", RolesHandler, kwargs),
        (r"/nb2prod/choices/?", ChoicesHandler, kwargs),
        (r"/nb2prod/services/?", ServicesHandler, kwargs),
        (r"/nb2prod/lint/?", LintHandler, kwargs),
        (r"/nb2prod/tag/?", TagHandler, kwargs),
        (r"/nb2prod/(.*)", UnknownHandler, kwargs),
    ]

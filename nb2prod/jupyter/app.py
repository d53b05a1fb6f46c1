"""The server extension app: routes, the job manager, and stopping running jobs with the server."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Integer

from nb2prod.jupyter.handlers import route_table
from nb2prod.jupyter.jobs import JobManager
from nb2prod.jupyter.serve import ServiceManager


class Nb2ProdExtension(ExtensionApp):
    """Converts notebooks under the server's root into services, one subprocess per job."""

    name = "nb2prod"
    description = "nb2prod: convert a tagged notebook into a prediction service from JupyterLab."

    max_running_jobs = Integer(
        2,
        config=True,
        help="How many conversions may run at once (each starts a kernel); more jobs wait, queued.",
    )

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        root = Path(self.serverapp.root_dir)
        # The job history lives in the server's data folder (never in the user's notebook folder).
        data = Path(self.serverapp.data_dir) / "nb2prod"
        self.jobs = JobManager(root, data, max_running=self.max_running_jobs, log=self.log)
        self.services = ServiceManager(root)

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_table(self.jobs, self.services))

    async def stop_extension(self) -> None:
        await self.services.shutdown()
        await self.jobs.shutdown()

"""Conversion jobs of the Jupyter server: one runner process each, watched without blocking the server.

At most one job runs per notebook: submitting a notebook whose job is queued or running returns
that job. Jobs of different notebooks run side by side, up to `max_running` at once (the rest
wait, `queued`). Each job's runner writes JSON lines (see `runner`); a reader task applies them
as they come, so progress is visible while the notebook runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import signal
import sys
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2prod.jupyter.paths import relative_to_root

ACTIVE = ("queued", "running")
_LOG_LINES = 400
_LOG_TAIL = 60
_KEEP_FINISHED = 200
_LINE_LIMIT = 16 * 1024 * 1024


@dataclass
class Job:
    """One conversion of one notebook, as `GET /nb2prod/jobs/{id}` shows it."""

    id: str
    path: str
    notebook: Path
    request: dict[str, Any]
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=_LOG_LINES))
    process: asyncio.subprocess.Process | None = None

    def to_json(self) -> dict[str, Any]:
        end = self.finished or time.time()
        return {
            "id": self.id,
            "path": self.path,
            "status": self.status,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "elapsed": round(end - self.started, 3) if self.started else 0.0,
            "progress": self.progress,
            "log": list(self.log)[-_LOG_TAIL:],
            "result": self.result,
            "error": self.error,
        }


class JobManager:
    """Starts, watches and stops the runner processes of one Jupyter server."""

    def __init__(self, root: Path, *, max_running: int = 2, log: logging.Logger | None = None) -> None:
        self.root = root.resolve()
        self.log = log or logging.getLogger(__name__)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._active: dict[Path, Job] = {}
        self._slots = asyncio.Semaphore(max(1, max_running))
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, path: str, notebook: Path, request: dict[str, Any]) -> tuple[Job, bool]:
        """The notebook's queued or running job, else a new one; True when it is new."""
        current = self._active.get(notebook)
        if current is not None and current.status in ACTIVE:
            return current, False
        job = Job(id=uuid.uuid4().hex, path=path, notebook=notebook, request=request)
        self._jobs[job.id] = job
        self._active[notebook] = job
        self._forget_old()
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job, True

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def shutdown(self) -> None:
        """Stop every runner (and the kernel it started) when the server stops."""
        for job in self._jobs.values():
            if job.status in ACTIVE:
                _kill_group(job.process)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)

    async def _run(self, job: Job) -> None:
        try:
            async with self._slots:
                await self._run_process(job)
        except asyncio.CancelledError:
            self._fail(job, "the Jupyter server stopped while the conversion ran.", "Convert again.")
            raise
        except Exception as error:  # noqa: BLE001 - any failure here must end as a failed job, never a stuck one
            self.log.exception("nb2prod job %s failed to run", job.id)
            self._fail(job, f"could not run the conversion: {type(error).__name__}: {error}", "See the server log.")
        finally:
            if self._active.get(job.notebook) is job:
                del self._active[job.notebook]

    async def _run_process(self, job: Job) -> None:
        job.status, job.started = "running", time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nb2prod.jupyter.runner",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.root,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: stopping the job stops its kernel too
            limit=_LINE_LIMIT,
        )
        job.process = process
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        process.stdin.write(json.dumps(job.request).encode())
        await process.stdin.drain()
        process.stdin.close()
        await asyncio.gather(self._read_records(job, process.stdout), self._read_log(job, process.stderr))
        code = await process.wait()
        if job.status in ACTIVE:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self._fail(job, f"the conversion process {how} without a result.", "The job's log may say why.")

    async def _read_records(self, job: Job, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                job.log.append(line)
                continue
            self._apply(job, record)

    async def _read_log(self, job: Job, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            job.log.extend(line.decode("utf-8", "replace").rstrip() for line in lines)
        if pending:
            job.log.append(pending.decode("utf-8", "replace").rstrip())

    def _apply(self, job: Job, record: dict[str, Any]) -> None:
        event = record.pop("event", None)
        if event == "progress":
            job.progress = record
            where = f"cell {record['cell']}/{record['total']}  {record['elapsed']:6.1f}s"
            job.log.append(f"{where}  {record['first_line']}")
        elif event == "result":
            job.result = self._with_next_steps(record)
            self._finish(job, "succeeded")
            job.log.append(f"converted {job.path} -> {job.result['output']}")
        elif event == "error":
            for key in ("executed_notebook", "notebook"):
                if record.get(key):
                    record[key] = relative_to_root(self.root, record[key])
            for key in ("message", "hint"):  # the browser names files relative to the root
                if isinstance(record.get(key), str):
                    record[key] = record[key].replace(f"{self.root}{os.sep}", "")
            job.error = record
            self._finish(job, "failed")
            job.log.append(f"error: {record.get('message')}")

    def _with_next_steps(self, record: dict[str, Any]) -> dict[str, Any]:
        output = relative_to_root(self.root, record["output"])
        record["output"] = output
        record["next"] = {
            "test": f"pip install {shlex.quote(f'./{output}[test]')} && pytest {shlex.quote(f'{output}/tests')}",
            "serve": f"nb2prod serve {shlex.quote(output)}",
        }
        return record

    def _fail(self, job: Job, message: str, hint: str) -> None:
        if job.status in ACTIVE:
            job.error = {"kind": "JobError", "message": message, "hint": hint, "exit_code": 70, "cell_index": None}
            self._finish(job, "failed")

    def _finish(self, job: Job, status: str) -> None:
        job.status, job.finished = status, time.time()

    def _forget_old(self) -> None:
        finished = [key for key, job in self._jobs.items() if job.status not in ACTIVE]
        for key in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self._jobs[key]


def _kill_group(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass

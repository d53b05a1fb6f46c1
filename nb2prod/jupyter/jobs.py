"""Conversion jobs of the Jupyter server: one runner process each, watched without blocking the server.

At most one job runs per notebook: submitting a notebook whose job is queued or running returns
that job. Every job is kept in the `JobStore` (SQLite) as it changes, so history and "the last
options used" survive a restart; a job the server was running when it stopped is `interrupted`.
Each runner gets its own temporary folder and an `NB2PROD_JOB_ID` in its environment, which its
kernel inherits: that is how a job's processes and files are found and removed, also after a
crash of the server. Jobs of different notebooks run side by side, up to `max_running` at once (the rest
wait, `queued`). Each job's runner writes JSON lines (see `runner`); a reader task applies them
as they come, so progress is visible while the notebook runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2prod.jupyter.paths import relative_to_root
from nb2prod.jupyter.procs import alive, kill_tagged
from nb2prod.jupyter.store import JobStore

ACTIVE = ("queued", "running")
JOB_ENV = "NB2PROD_JOB_ID"
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
    options: dict[str, Any] = field(default_factory=dict)  # as the client gave them (paths relative)
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=_LOG_LINES))
    process: asyncio.subprocess.Process | None = None

    def row(self) -> dict[str, Any]:
        """The job as the store keeps it."""
        return {
            "id": self.id,
            "path": self.path,
            "status": self.status,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "options": self.options,
            "result": self.result,
            "error": self.error,
            "server_pid": os.getpid(),
            "runner_pid": self.process.pid if self.process is not None else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {**row_json(self.row()), "progress": self.progress, "log": list(self.log)[-_LOG_TAIL:]}


def row_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored job as the API shows it (history entries have no log)."""
    started = row["started"]
    end = row["finished"] or (time.time() if row["status"] in ACTIVE else None)  # None: cut by a crash
    keys = ("id", "path", "status", "created", "started", "finished", "options", "result", "error")
    return {
        **{key: row[key] for key in keys},
        "elapsed": round(end - started, 3) if started and end else 0.0,
        "progress": None,
        "log": [],
    }


class JobManager:
    """Starts, watches and stops the runner processes of one Jupyter server."""

    def __init__(self, root: Path, data: Path, *, max_running: int = 2, log: logging.Logger | None = None) -> None:
        self.root = root.resolve()
        self.log = log or logging.getLogger(__name__)
        self.store = JobStore(data / "jobs.sqlite", self.root)
        self.runs = data / "runs"  # one temporary folder per running job
        self.recover()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._active: dict[Path, Job] = {}
        self._slots = asyncio.Semaphore(max(1, max_running))
        self._tasks: set[asyncio.Task[None]] = set()

    def recover(self) -> None:
        """Mark the jobs of stopped servers interrupted; end their processes; remove their files."""
        servers = {row["server_pid"] for row in self.store.orphans(set())}
        living = {pid for pid in servers if pid != os.getpid() and alive(pid)}
        for row in self.store.orphans(living):
            killed = kill_tagged(JOB_ENV, row["id"], signal.SIGKILL)
            shutil.rmtree(self.runs / row["id"], ignore_errors=True)
            self.store.mark_interrupted(row["id"], None, _interrupted())  # when it stopped is unknown
            self.log.info(
                "nb2prod: job %s of %s was interrupted; removed %d process(es)", row["id"], row["path"], killed
            )
        if self.runs.is_dir():
            for folder in self.runs.iterdir():
                kept = self.store.get(folder.name)
                if kept is None or kept["status"] not in ACTIVE:
                    shutil.rmtree(folder, ignore_errors=True)

    def submit(
        self, path: str, notebook: Path, request: dict[str, Any], options: dict[str, Any] | None = None
    ) -> tuple[Job, bool]:
        """The notebook's queued or running job, else a new one; True when it is new."""
        current = self._active.get(notebook)
        if current is not None and current.status in ACTIVE:
            return current, False
        job = Job(id=uuid.uuid4().hex, path=path, notebook=notebook, request=request, options=dict(options or {}))
        self._jobs[job.id] = job
        self._save(job)
        self._active[notebook] = job
        self._forget_old()
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job, True

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A job of this server run (with progress and log), else one kept from an earlier run."""
        job = self._jobs.get(job_id)
        if job is not None:
            return job.to_json()
        row = self.store.get(job_id)
        return row_json(row) if row is not None else None

    def history(self, path: str | None, limit: int = 20) -> list[dict[str, Any]]:
        return [row_json(row) for row in self.store.history(path, limit)]

    def last_options(self, path: str) -> dict[str, Any] | None:
        return self.store.last_options(path)

    async def shutdown(self) -> None:
        """Stop every runner (and the kernel it started) when the server stops: the jobs are interrupted."""
        active = [job for job in self._jobs.values() if job.status in ACTIVE]
        for job in active:
            job.error = _interrupted()
            self._finish(job, "interrupted")
            _kill_group(job.process)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        for job in active:
            kill_tagged(JOB_ENV, job.id, signal.SIGKILL)
            shutil.rmtree(self.runs / job.id, ignore_errors=True)

    async def _run(self, job: Job) -> None:
        try:
            async with self._slots:
                await self._run_process(job)
        except asyncio.CancelledError:
            if job.status in ACTIVE:
                job.error = _interrupted()
                self._finish(job, "interrupted")
            raise
        except Exception as error:  # noqa: BLE001 - any failure here must end as a failed job, never a stuck one
            self.log.exception("nb2prod job %s failed to run", job.id)
            self._fail(job, f"could not run the conversion: {type(error).__name__}: {error}", "See the server log.")
        finally:
            if self._active.get(job.notebook) is job:
                del self._active[job.notebook]
            if job.status not in ACTIVE:
                shutil.rmtree(self.runs / job.id, ignore_errors=True)

    async def _run_process(self, job: Job) -> None:
        job.status, job.started = "running", time.time()
        temporary = self.runs / job.id
        temporary.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(temporary), JOB_ENV: job.id}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nb2prod.jupyter.runner",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.root,
            env=env,
            start_new_session=True,  # its own process group: stopping the job stops its kernel too
            limit=_LINE_LIMIT,
        )
        job.process = process
        self._save(job)
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
        self._save(job)

    def _save(self, job: Job) -> None:
        try:
            self.store.save(job.row())
        except Exception:  # noqa: BLE001 - a full disk loses history, never the job itself
            self.log.exception("nb2prod: could not record job %s in %s", job.id, self.store.file)

    def _forget_old(self) -> None:
        finished = [key for key, job in self._jobs.items() if job.status not in ACTIVE]
        for key in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self._jobs[key]


def _interrupted() -> dict[str, Any]:
    return {
        "kind": "Interrupted",
        "message": "the Jupyter server stopped while the conversion ran.",
        "hint": "Convert again.",
        "exit_code": 70,
        "cell_index": None,
    }


def _kill_group(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass

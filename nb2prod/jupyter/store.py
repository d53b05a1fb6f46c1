"""Jobs kept across restarts: one small SQLite file in the Jupyter server's data folder.

Each job is one row, written when it is submitted, starts and ends. A row still `queued` or
`running` whose server process is gone belongs to a server that stopped mid-job: at startup it
is marked `interrupted`, and whatever it left (its runner, the kernel, its temporary folder) is
removed by the job manager.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    options TEXT NOT NULL,
    result TEXT,
    error TEXT,
    server_pid INTEGER NOT NULL,
    runner_pid INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_path ON jobs (root, path, created);
"""
_JSON_COLUMNS = ("options", "result", "error")


class JobStore:
    """The jobs of every server that shares the data folder; each server sees its own root's."""

    def __init__(self, file: Path, root: Path) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        self.file = file
        self.root = str(root)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.file, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def save(self, row: dict[str, Any]) -> None:
        """Insert or replace a job row (JSON columns given as Python values)."""
        values = {**row, "root": self.root}
        for column in _JSON_COLUMNS:
            values[column] = json.dumps(values.get(column), default=str) if values.get(column) is not None else None
        values["options"] = values["options"] or "{}"
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO jobs ({columns}) VALUES ({marks})", values)

    def history(self, path: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest jobs first: of one notebook, or of every notebook under this root."""
        query = "SELECT * FROM jobs WHERE root = ?"
        args: list[Any] = [self.root]
        if path is not None:
            query += " AND path = ?"
            args.append(path)
        query += " ORDER BY created DESC LIMIT ?"
        args.append(limit)
        with self._connect() as db:
            return [_row(raw) for raw in db.execute(query, args)]

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            raw = db.execute("SELECT * FROM jobs WHERE id = ? AND root = ?", (job_id, self.root)).fetchone()
        return _row(raw) if raw is not None else None

    def last_options(self, path: str) -> dict[str, Any] | None:
        """The options of the notebook's last conversion, as the client gave them."""
        rows = self.history(path, limit=1)
        return rows[0]["options"] if rows else None

    def orphans(self, alive: set[int]) -> list[dict[str, Any]]:
        """Jobs still queued or running whose server process is not among `alive` (any root)."""
        with self._connect() as db:
            rows = [_row(raw) for raw in db.execute("SELECT * FROM jobs WHERE status IN ('queued', 'running')")]
        return [row for row in rows if row["server_pid"] not in alive]

    def mark_interrupted(self, job_id: str, finished: float | None, error: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status = 'interrupted', finished = ?, error = ? WHERE id = ?",
                (finished, json.dumps(error), job_id),
            )


def _row(raw: sqlite3.Row) -> dict[str, Any]:
    row = dict(raw)
    for column in _JSON_COLUMNS:
        row[column] = json.loads(row[column]) if row[column] else ({} if column == "options" else None)
    return row

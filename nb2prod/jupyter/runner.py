"""One conversion job in its own process: `python -m nb2prod.jupyter.runner < request.json`.

The server starts one of these per job, because papermill changes the working directory and
nb2prod sets `PYTHONHASHSEED`: two conversions must never share a process. The request (see
`job_options`) comes as JSON on stdin. Stdout carries JSON lines only: a `progress` record
before each cell, then exactly one `result` or `error` record. Whatever else the conversion
prints is moved to stderr, which the server keeps as the job's log.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO, Any

from nb2prod.errors import Nb2ProdError
from nb2prod.jupyter.records import error_record, internal_error_record, progress_record, result_record


def claim_stdout() -> IO[str]:
    """A private stream on the original stdout; fd 1 then points at stderr for stray prints."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    return events


def emit(events: IO[str], record: dict[str, Any]) -> None:
    events.write(json.dumps(record, allow_nan=False, default=str) + "\n")
    events.flush()


def run(request: dict[str, Any], events: IO[str]) -> int:
    """Convert as the request says, reporting through `events`; the exit code of the CLI's classes."""
    from nb2prod.jupyter.job_options import to_convert_options
    from nb2prod.pipeline import convert

    try:
        options = to_convert_options(request)
        result = convert(options, progress=lambda event: emit(events, progress_record(event)))
    except Nb2ProdError as error:
        emit(events, error_record(error))
        return error.exit_code
    except Exception as error:  # noqa: BLE001 - reported as a record; the traceback goes to the log
        traceback.print_exc()
        emit(events, internal_error_record(error))
        return 70
    emit(events, result_record(result))
    return 0


def main() -> int:
    events = claim_stdout()
    try:
        request = json.load(sys.stdin)
    except ValueError as error:
        emit(events, internal_error_record(error))
        return 70
    return run(request, events)


if __name__ == "__main__":
    sys.exit(main())

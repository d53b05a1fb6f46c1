"""Score several tables with one converted service, in one process: `nb2prod diff` runs this once
per version (`python -m nb2prod.batch.several FOLDER JOBS.json`), so each version loads its own
package, even when two versions' packages share a name.

JOBS.json: a list of `{"source", "output", "rejects"}` paths. Prints a JSON list with, per job,
`null` when it was scored, else the reason (`nb2prod predict`'s message) it could not be.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nb2prod.batch.score import predict
from nb2prod.errors import Nb2ProdError


def score_tables(folder: Path, jobs: list[dict[str, str]]) -> list[str | None]:
    problems: list[str | None] = []
    for job in jobs:
        try:
            predict(folder, Path(job["source"]), Path(job["output"]), rejects=Path(job["rejects"]), force=True)
        except Nb2ProdError as err:
            problems.append(err.message)
        else:
            problems.append(None)
    return problems


def main(argv: list[str]) -> int:
    folder, jobs = Path(argv[0]), json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    sys.stdout.write(json.dumps(score_tables(folder, jobs)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The tutorial-style set: each notebook converted from `nb2prod tag --write` alone, in a fresh folder.

For every tutorial-style notebook in tests/notebooks that the raw-rows end-to-end tests use (listed
in NOTEBOOKS below, with the data files those tests write beside it and the `--model` they pass to
`tag`), this copies the notebook into a temporary folder, writes its data, runs `nb2prod tag --write`
and then `nb2prod convert`, and prints one table: whether it converted, the input the service takes
(the manifest's `service_input`), whether the generated service, imported in a fresh interpreter,
answers the golden rows as the notebook's model did (raw rows of the data when the input is raw; the
golden answers are the notebook's own model on its engineered rows), whether it accepts a row of the
data file as it is, the tag and convert times. Then the count served raw, the slowest convert and
the load average. A benchmark that prints figures, not a test; run it with `nice`:

    nice python benchmarks/tutorial_set.py [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.raw_data import (  # noqa: E402 - the data writers the tests use, from this checkout
    write_cars,
    write_churn,
    write_heart,
    write_houses,
    write_insurance,
    write_laptops,
    write_passengers,
)

FIXTURES = ROOT / "tests" / "notebooks"


def copy_loans(folder: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "loans.csv", folder / "loans.csv"))


@dataclass(frozen=True)
class Entry:
    test: str  # the end-to-end test that converts it
    data: Callable[[Path], Any] | None = None  # writes the data file(s) beside the notebook
    csv: str | None = None  # the file the raw frame is read from
    model: str | None = None  # `tag --model`, where the test passes one


NOTEBOOKS: dict[str, Entry] = {
    "tutorial_churn": Entry("test_tag_convert.py"),
    "tutorial_houses": Entry("test_tag_convert.py"),
    "tutorial_transformer": Entry("test_tag_convert.py"),
    "tutorial_loans": Entry("test_tag_convert.py", copy_loans, "loans.csv"),
    "raw_cars": Entry("test_raw_rows.py", write_cars, "cars.csv", model="rf"),
    "raw_churn": Entry("test_raw_rows.py", write_churn, "churn.csv", model="gb"),
    "raw_heart": Entry("test_raw_fit_forms.py", write_heart, "heart.csv"),
    "raw_insurance": Entry("test_raw_fit_forms.py", write_insurance, "insurance.csv"),
    "raw_laptops": Entry("test_raw_fit_forms.py", write_laptops, "laptops.csv"),
    "raw_titanic": Entry("test_raw_fit_forms.py", write_passengers, "train.csv"),
    "raw_read_cell": Entry("test_read_cell_replay.py", write_houses, "houses.csv"),
    "dict_records": Entry("test_dict_records.py", model="model"),
    "imputer_on_array": Entry("test_imputer_on_array.py", model="model"),
    "imputed_nulls": Entry("test_imputed_nulls.py"),
    "engineered_random_fill": Entry("test_engineered_input.py", write_passengers, "train.csv"),
    "engineered_merge": Entry("test_engineered_input.py", write_houses, "houses.csv", model="gbr"),
}

# Run in a fresh interpreter with the generated project's src/ on the path: the golden rows through
# /predict/batch (answers compared as the generated tests compare them), one data-file row through
# /predict. Prints one JSON line.
CHECK = r"""
import importlib, json, math, os, sys
import pandas as pd
from fastapi.testclient import TestClient
package, golden_path, csv = sys.argv[1], sys.argv[2], sys.argv[3] or None
os.environ.setdefault("GRPC_PORT", "0")
golden = json.loads(open(golden_path, encoding="utf-8").read())
tolerance = golden["tolerance"]
def same(a, b):
    if isinstance(b, float) and not isinstance(b, bool):
        return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    return a == b
app = importlib.import_module(package + ".app").app
examples = golden["examples"]
found = {"golden": len(examples), "equal": 0, "csv_status": None}
with TestClient(app) as client:
    answer = client.post("/predict/batch", json={"records": [e["input"] for e in examples]})
    if answer.status_code == 200:
        body = answer.json()
        for i, example in enumerate(examples):
            expected = example["probabilities"] or {}
            got = (body.get("probabilities") or [None] * len(examples))[i] or {}
            if same(body["predictions"][i], example["prediction"]) and expected.keys() == got.keys() and all(
                same(got[k], v) for k, v in expected.items()
            ):
                found["equal"] += 1
    if csv:
        fields = [f["name"] for f in client.get("/metadata").json()["input_schema"]["features"]]
        row = pd.read_csv(csv).iloc[[0]]
        kept = [c for c in row.columns if c in fields] or list(row.columns)  # none kept: the row as it is
        record = json.loads(row[kept].to_json(orient="records"))[0]
        found["csv_status"] = client.post("/predict", json=record).status_code
print(json.dumps(found))
"""


def nb2prod(*args: str | Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nb2prod", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )
    return done, time.perf_counter() - started


def check_service(out: Path, manifest: dict[str, Any], csv: Path | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(out / "src")}
    golden = out / "tests" / "golden.json"
    command = [sys.executable, "-c", CHECK, manifest["package"], str(golden), str(csv or "")]
    done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def one(name: str, entry: Entry, work: Path) -> dict[str, Any]:
    folder = work / name
    folder.mkdir()
    notebook = Path(shutil.copy(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb"))
    if entry.data is not None:
        entry.data(folder)
    row: dict[str, Any] = {"name": name, "model": entry.model}
    tag_args = ("--model", entry.model) if entry.model else ()
    tagged, row["tag_s"] = nb2prod("tag", notebook, *tag_args, "--write", cwd=folder)
    if tagged.returncode != 0:
        return {**row, "converted": False, "why": "tag: " + first_line(tagged.stderr or tagged.stdout)}
    done, row["convert_s"] = nb2prod("convert", notebook, "-o", folder / "service", cwd=folder)
    if done.returncode != 0:
        return {**row, "converted": False, "why": "convert: " + first_line(done.stderr)}
    manifest = json.loads(next((folder / "service").glob("src/*/artifacts/manifest.json")).read_text())
    served = manifest.get("service_input") or {}
    row.update(converted=True, kind=served.get("kind", "?"), input=served.get("description", "?"))
    csv = folder / entry.csv if entry.csv else None
    row["check"] = check_service(folder / "service", manifest, csv)
    return row


def answered(row: dict[str, Any]) -> str:
    check = row.get("check") or {}
    if "error" in check:
        return f"error: {check['error']}"
    if not check:
        return "-"
    what = "raw" if row["kind"] == "raw" else "engineered"
    return f"{check['equal']}/{check['golden']} {what} rows equal"


def data_row(row: dict[str, Any]) -> str:
    status = (row.get("check") or {}).get("csv_status")
    if status is None:
        return "no data file" if row.get("converted") else "-"
    return "accepted (200)" if status == 200 else f"refused ({status})"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| notebook | tag | converted | input served | golden rows answered as the notebook's model"
        " | a data-file row | tag s | convert s |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: |",
    ]
    for row in rows:
        tag = f"`--model {row['model']}`" if row["model"] else "alone"
        converted = "yes" if row.get("converted") else f"no: {row.get('why', '')}"
        served = row.get("input", "-").replace("|", "\\|")
        convert_s = f"{row['convert_s']:.0f}" if "convert_s" in row else "-"
        lines.append(
            f"| `{row['name']}` | {tag} | {converted} | {served} | {answered(row)} | {data_row(row)}"
            f" | {row['tag_s']:.1f} | {convert_s} |"
        )
    return "\n".join(lines)


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(NOTEBOOKS)} (default: all)")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in NOTEBOOKS]
    if unknown:
        parser.error(f"not in the set: {', '.join(unknown)}")
    names = args.names or list(NOTEBOOKS)
    print(f"before: {load()}  ({os.cpu_count()} cores)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nb2prod-tutorials-") as tmp:
        for name in names:
            rows.append(one(name, NOTEBOOKS[name], Path(tmp)))
            print(f"  {name}: {'converted' if rows[-1].get('converted') else 'not converted'}", flush=True)
    print(table(rows))
    converted = [r for r in rows if r.get("converted")]
    raw = [r for r in converted if r["kind"] == "raw" and (r.get("check") or {}).get("equal") == r["check"]["golden"]]
    from_tags = [r for r in raw if not r["model"]]
    print(
        f"\nconverted: {len(converted)} of {len(rows)}; served raw rows answering as the notebook's model: "
        f"{len(raw)} ({len(from_tags)} from `tag --write` alone, {len(raw) - len(from_tags)} with `--model`)"
    )
    if converted:
        slowest = max(converted, key=lambda r: r["convert_s"])
        print(f"slowest convert: {slowest['name']}, {slowest['convert_s']:.0f} s")
    print(f"after: {load()}")


if __name__ == "__main__":
    main()

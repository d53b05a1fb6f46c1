"""The `nb2prod` command. With the Jupyter handlers, the only place that prints or exits."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nb2prod._version import __version__
from nb2prod.analysis.lint import Severity
from nb2prod.errors import CellExecutionError, LintError, Nb2ProdError
from nb2prod.options import MetricRequirement, build_options
from nb2prod.run.execute import CellProgress

VERIFY_FAILED = 6  # exit code of `verify` when a check fails
DIFF_BREAKING = 7  # exit code of `diff` on an API break or too many changed answers (as IncompatibleVersion)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def report_error(error: BaseException, debug: bool) -> int:
    """Turn any exception into terminal text and an exit code."""
    if debug:
        err_console.print(escape("".join(traceback.format_exception(error))))
    if isinstance(error, Nb2ProdError):
        err_console.print(f"[bold red]error:[/] {escape(error.message)}")
        if isinstance(error, CellExecutionError):
            if error.executed_notebook is not None:
                err_console.print(f"  executed notebook kept at: {escape(str(error.executed_notebook))}")
        if error.hint:
            err_console.print(f"  [bold]fix:[/] {escape(error.hint)}")
        return error.exit_code
    err_console.print(f"[bold red]internal error:[/] {type(error).__name__}: {escape(str(error))}")
    if not debug:
        err_console.print("  run again with --debug for the traceback, and report it.")
    return 70


class ProgressPrinter:
    """Cell i of n, elapsed, and the cell's first line: a bar on a terminal, lines otherwise."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> ProgressPrinter:
        if err_console.is_terminal:
            self.progress = Progress(
                TextColumn("running"),
                MofNCompleteColumn(),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=err_console,
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: CellProgress) -> None:
        line = event.first_line[:70]
        if self.progress is None:
            err_console.print(f"cell {event.position}/{event.total}  {event.elapsed:6.1f}s  {escape(line)}")
            return
        if self.task is None:
            self.task = self.progress.add_task(line, total=event.total)
        self.progress.update(self.task, completed=event.position - 1, description=escape(line))


class RowsPrinter:
    """Rows scored so far and rows per second: a live line on a terminal, a line per chunk otherwise."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> RowsPrinter:
        if err_console.is_terminal:
            self.progress = Progress(
                TextColumn("scoring"),
                BarColumn(),
                TextColumn("{task.completed:,} rows"),
                TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("scoring", total=None, speed="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, rows: int) -> None:
        if self.progress is None:
            err_console.print(f"{rows:,} rows scored")
            return
        elapsed = self.progress.tasks[0].elapsed or 0.0
        speed = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
        self.progress.update(self.task, completed=rows, speed=speed)


def _shown(path: Path) -> str:
    """A path as the user would type it: relative when it is under the current folder."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every `finally` runs: the kernel is shut down and the
    # temporary run folder removed.
    raise KeyboardInterrupt


def _run(debug: bool, action: Any) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        action()
    except KeyboardInterrupt:
        # The cell nbclient was running fails once its kernel is shut down; that failure is the
        # interruption itself, so asyncio must not print it at exit ("Task exception was never retrieved").
        logging.getLogger("asyncio").disabled = True
        err_console.print("interrupted: the kernel was shut down and nothing was written")
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the one place errors become messages
        sys.exit(report_error(error, debug))


@click.group()
@click.version_option(__version__, prog_name="nb2prod")
def main() -> None:
    """Turn a tagged Jupyter notebook into a tested, deployable prediction service."""


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output folder [default: <name>-service beside the notebook].",
)
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Override a parameter of the parameters cell.",
)
@click.option("--name", help="Service name (lowercase, dashes) [default: from the notebook file name].")
@click.option("--model", help="Variable holding the fitted model (dotted attributes allowed).")
@click.option("--features", help="Variable holding the training input sample.")
@click.option("--raw", help="Raw frame the preprocess cells start from, when they are replayed [default: inferred].")
@click.option(
    "--require", "requirements", multiple=True, metavar="'METRIC>=X'", help="Fail unless the notebook's metric passes."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random and NumPy before the first cell.")
@click.option("--kernel", help="Kernel to run [default: the notebook's, if installed].")
@click.option(
    "--no-compile",
    "no_compile",
    is_flag=True,
    help="Serve with scikit-learn; do not try the compiled (ONNX Runtime) path.",
)
@click.option("--timeout", type=int, default=600, show_default=True, help="Seconds one cell may run.")
@click.option("--version", "version", help="Base version of the service [default: metadata nb2prod.version or 0.1.0].")
@click.option("--force", is_flag=True, help="Replace an existing output folder written by nb2prod.")
@click.option(
    "--discard-changes", is_flag=True, help="With --force: also delete files added to or edited in that folder."
)
@click.option(
    "--compatible-with",
    "compatible_with",
    type=click.Path(path_type=Path),
    help="An earlier conversion's folder: stop, writing nothing, if this version would break its clients.",
)
@click.option(
    "--canary",
    type=click.IntRange(0, 100),
    metavar="PERCENT",
    help="With --compatible-with: the KServe InferenceService sends PERCENT of the traffic to this version.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def convert(
    notebook: Path,
    output: Path | None,
    parameters: tuple[tuple[str, str], ...],
    name: str | None,
    model: str | None,
    features: str | None,
    raw: str | None,
    requirements: tuple[str, ...],
    seed: int,
    kernel: str | None,
    no_compile: bool,
    timeout: int,
    version: str | None,
    force: bool,
    discard_changes: bool,
    compatible_with: Path | None,
    canary: int | None,
    debug: bool,
) -> None:
    """Run NOTEBOOK deterministically and write a prediction service project."""
    from nb2prod.pipeline import convert as run_conversion

    def action() -> None:
        options = build_options(
            notebook=notebook,
            output=output,
            parameters=dict(parameters),
            name=name,
            model=model,
            features=features,
            raw=raw,
            requirements=tuple(MetricRequirement.parse(r) for r in requirements),
            seed=seed,
            kernel=kernel,
            compile_model=not no_compile,
            timeout=timeout,
            version=version,
            force=force,
            discard_changes=discard_changes,
            compatible_with=compatible_with,
            canary=canary,
        )
        shown: set[str] = set()

        def warn(message: str) -> None:
            shown.add(message)
            err_console.print(f"[yellow]warning:[/] {escape(message)}")

        with ProgressPrinter() as printer:
            result = run_conversion(options, progress=printer, warn=warn)
        for warning in result.warnings:
            if warning not in shown:
                warn(warning)
        for note in result.notes:
            err_console.print(f"note: {escape(note)}")
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()) or "none"
        out = _shown(result.output)
        out_console.print(f"[green]converted[/] {escape(str(notebook))} -> {escape(out)}")
        out_console.print(
            f"  service {result.name} {result.version}; model `{result.model_variable}` "
            f"({result.model_class}); input `{result.features_variable}`"
        )
        if result.service_input is not None:
            out_console.print(f"  input: {escape(result.service_input.describe())}")
        out_console.print(
            f"  metrics: {escape(metrics)}; {result.golden_examples} golden examples; "
            f"{result.elapsed:.1f}s on kernel {result.kernel}"
        )
        target = out if Path(out).is_absolute() else f"./{out}"
        tests = shlex.quote(f"{out}/tests")
        out_console.print(escape(f"  next: pip install {shlex.quote(target + '[test]')} && pytest {tests}"))

    _run(debug, action)


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--model", help="Variable holding the fitted model.")
@click.option("--features", help="Variable holding the training input sample.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def lint(notebook: Path, model: str | None, features: str | None, debug: bool) -> None:
    """Check NOTEBOOK's roles, preprocess code and cell order without running it."""
    from nb2prod.pipeline import lint as run_lint

    def action() -> None:
        _, findings = run_lint(notebook, model=model, features=features)
        colors = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "blue"}
        for finding in findings:
            color = colors[finding.severity]
            out_console.print(f"[{color}]{finding.severity.value}[/] [{finding.code}] {escape(finding.message)}")
            if finding.hint:
                out_console.print(f"  fix: {escape(finding.hint)}")
        errors = [f for f in findings if f.severity is Severity.ERROR]
        if errors:
            raise LintError(f"{len(errors)} error(s) in {notebook}", findings=list(errors), notebook=notebook)
        out_console.print(f"[green]ok[/] {escape(str(notebook))}: no errors")

    _run(debug, action)


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--model", help="Variable holding the model to serve (needed when several models are fitted).")
@click.option("--write", is_flag=True, help="Store the proposed roles as cell tags in NOTEBOOK (cell metadata only).")
@click.option("-o", "--output", "copy", type=click.Path(path_type=Path), help="Write a tagged copy to a new file.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def tag(notebook: Path, model: str | None, write: bool, copy: Path | None, debug: bool) -> None:
    """Propose a role for each code cell of NOTEBOOK from what its code does, without running it."""
    from nb2prod.pipeline import tag as run_tag

    def action() -> None:
        result = run_tag(notebook, model=model, write=write, copy=copy)
        for proposal in result.plan.proposals:
            label = result.spec.cells[proposal.cell_index].label
            roles = ", ".join(proposal.roles) or "(untagged)"
            out_console.print(f"{escape(label)}  [bold]{roles}[/]: {escape(proposal.reason)}")
        for warning in result.plan.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}")
        service = result.plan.service_input
        if service is not None:
            out_console.print(escape(service.explain()))
        chosen = model or result.plan.convert_needs_model
        model_flag = f" --model {shlex.quote(result.plan.model)}" if chosen else ""
        if result.written is None:
            out_console.print(
                escape(f"served model: `{result.plan.model}`. To store these roles as cell tags: ")
                + escape(f"nb2prod tag {shlex.quote(str(notebook))}{model_flag} --write (or -o COPY)")
            )
            return
        written = escape(_shown(result.written))
        stored = f"; notebook metadata nb2prod.model = {result.stored_model}" if result.stored_model else ""
        out_console.print(
            f"[green]tagged[/] {written}: {result.changed} cell(s) changed, cell metadata only{escape(stored)}"
        )
        out_console.print(escape(f"  next: nb2prod convert {shlex.quote(_shown(result.written))}"))

    _run(debug, action)


@main.command()
@click.argument("out", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Answers (.csv or .parquet).")
@click.option("--rejects", type=click.Path(path_type=Path), help="Set bad rows aside here, with the reason, and go on.")
@click.option("--id", "id_column", help="Column that identifies a row; copied to the answers and rejects.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=10_000, show_default=True, help="Rows per chunk.")
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help='local: this process, a chunk at a time; dask: partitions on a Dask cluster (pip install "nb2prod[dask]").',
)
@click.option(
    "--scheduler", metavar="ADDRESS", help="--engine dask: the cluster's scheduler [default: a local cluster]."
)
@click.option("--partitions", type=click.IntRange(min=1), help="--engine dask: split the input into N partitions.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="--engine dask without --scheduler: worker processes of the local cluster [default: one per core].",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT and REJECTS when they exist.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def predict(
    out: Path,
    source: str,
    output: Path,
    rejects: Path | None,
    id_column: str | None,
    chunk_rows: int,
    engine: str,
    scheduler: str | None,
    partitions: int | None,
    workers: int | None,
    force: bool,
    debug: bool,
) -> None:
    """Score every row of INPUT (CSV or Parquet; with --engine dask also a glob or a folder) with the
    service converted into OUT."""
    if engine == "local" and (scheduler or partitions or workers):
        raise click.UsageError("--scheduler, --partitions and --workers need --engine dask.")
    if scheduler and workers:
        raise click.UsageError("--workers starts a local cluster; a --scheduler's cluster has its own workers.")

    def action() -> None:
        with RowsPrinter() as printer:
            if engine == "dask":
                from nb2prod.batch.on_dask import predict as on_dask

                result = on_dask(
                    out,
                    source,
                    output,
                    rejects=rejects,
                    id_column=id_column,
                    scheduler=scheduler,
                    partitions=partitions,
                    workers=workers,
                    force=force,
                    progress=printer,
                )
            else:
                from nb2prod.batch.score import predict as score

                result = score(
                    out,
                    Path(source),
                    output,
                    rejects=rejects,
                    id_column=id_column,
                    chunk_rows=chunk_rows,
                    force=force,
                    progress=printer,
                )
        if result.ignored_columns:
            ignored = ", ".join(f"`{c}`" for c in result.ignored_columns)
            err_console.print(f"note: column(s) the model does not take were left out: {escape(ignored)}")
        out_console.print(
            f"[green]scored[/] {result.scored:,} of {result.rows:,} rows -> {escape(_shown(result.output))}"
            f" ({result.rows_per_second:,.0f} rows/s)"
        )
        if result.rejects is not None:
            out_console.print(f"  {result.rejected:,} rejected -> {escape(_shown(result.rejects))}")

    _run(debug, action)


@main.command()
@click.argument("output", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--notebook",
    type=click.Path(path_type=Path),
    help="The notebook OUTPUT was converted from [default: found beside OUTPUT].",
)
@click.option("--offline", is_flag=True, help="Don't run the notebook: check the files, its hash and this environment.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def verify(output: Path, notebook: Path | None, offline: bool, debug: bool) -> None:
    """Prove that OUTPUT is what its notebook gives: files, notebook, environment, and a rerun bit for bit."""
    from nb2prod.verify import verify as run_verify

    def action() -> None:
        with ProgressPrinter() as printer:
            report = run_verify(output, notebook, offline=offline, progress=printer)
        for check in report.checks:
            mark = "[green]ok  [/]" if check.ok else "[bold red]FAIL[/]"
            out_console.print(f"{mark} {check.name}: {escape(check.detail)}")
        if not report.ok:
            err_console.print(
                f"[bold red]error:[/] {escape(_shown(report.output))} is not what "
                f"{escape(_shown(report.notebook))} gives here (see FAIL above)."
            )
            sys.exit(VERIFY_FAILED)
        verdict = "checked without a rerun" if offline else "reproduced bit for bit"
        out_console.print(f"[green]verified[/] {escape(_shown(report.output))}: {verdict}")

    _run(debug, action)


@main.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--rows", type=click.Path(path_type=Path), help="More records to score with both (CSV or Parquet).")
@click.option(
    "--max-changed",
    "max_changed",
    type=click.FloatRange(0, 1),
    metavar="FRACTION",
    help="Exit 7 when more than this share of the answers changed.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def diff(old: Path, new: Path, rows: Path | None, max_changed: float | None, output_format: str, debug: bool) -> None:
    """Show what NEW changes against OLD (two converted folders): API, answers, training data, metrics, lineage."""
    from nb2prod.cli.diff_report import print_report
    from nb2prod.diff.compare import diff_folders

    def action() -> None:
        report = diff_folders(old, new, rows=rows, max_changed=max_changed)
        if output_format == "json":
            sys.stdout.write(report.to_json())
        else:
            print_report(out_console, report)
        if report.breaking:
            sys.exit(DIFF_BREAKING)

    _run(debug, action)


@main.command()
@click.argument("output", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
def serve(output: Path, host: str, port: int) -> None:
    """Serve a converted OUTPUT folder with uvicorn (its dependencies must be installed here)."""
    import uvicorn

    packages = [p for p in (output / "src").glob("*/app.py")]
    if not packages:
        sys.exit(
            report_error(
                Nb2ProdError(
                    f"{output} has no src/<package>/app.py.", hint="Pass a folder written by `nb2prod convert`."
                ),
                False,
            )
        )
    package = packages[0].parent.name
    # asyncio's loop, as the generated Dockerfile runs it: uvloop answers in bursts under load. No access
    # log, as there: the service writes one JSON line per request itself.
    uvicorn.run(
        f"{package}.app:app", host=host, port=port, app_dir=str(output / "src"), loop="asyncio", access_log=False
    )


if __name__ == "__main__":
    main()

"""`nb2prod diff`'s report on a terminal: one rich table per section."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nb2prod.diff.report import AnswersSection, DiffReport, TrainingDataSection


def print_report(console: Console, report: DiffReport) -> None:
    console.print(
        f"[bold]{escape(report.old.name)} {escape(report.old.version)}[/] -> "
        f"[bold]{escape(report.new.name)} {escape(report.new.version)}[/]"
    )
    _api(console, report)
    if report.answers is not None:
        _answers(console, report.answers)
    _training_data(console, report.training_data)
    _metrics(console, report)
    _lineage(console, report)
    if report.breaking:
        reasons = []
        if report.api.breaking:
            reasons.append(f"{len(report.api.breaking)} breaking API change(s)")
        if report.answers is not None and report.answers.exceeded:
            answers = report.answers
            reasons.append(f"{answers.changed_fraction:.1%} of answers changed (--max-changed {answers.max_changed:g})")
        console.print(f"[bold red]breaking:[/] {escape('; '.join(reasons))}")
    else:
        console.print("[green]compatible:[/] nothing breaks OLD's clients")


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _api(console: Console, report: DiffReport) -> None:
    if not report.api.changes:
        console.print("[bold]API[/]: unchanged")
        return
    table = _table("API", "", "where", "field", "change", "detail")
    for change in report.api.changes:
        mark = "[bold red]breaking[/]" if change.severity == "breaking" else "[green]compatible[/]"
        table.add_row(mark, change.where, escape(change.field or ""), change.change, escape(change.detail))
    console.print(table)


def _answers(console: Console, answers: AnswersSection) -> None:
    table = _table(
        f"Answers: {answers.changed} of {answers.scored} predictions changed ({answers.changed_fraction:.1%})",
        "rows",
        "scored",
        "changed",
        "largest / mean change",
        "rows that changed most",
    )
    for rows in answers.sets:
        if rows.problem is not None:
            table.add_row(escape(rows.rows), "-", "-", escape(rows.problem), "")
            continue
        classes = ", ".join(f"{c.name}: {c.largest:.4g} / {c.mean:.4g}" for c in rows.classes)
        most = ", ".join(f"row {r.row}: {_short(r.old)} -> {_short(r.new)} ({r.change:.3g})" for r in rows.most_changed)
        table.add_row(escape(rows.rows), str(rows.scored), str(rows.changed), escape(classes), escape(most))
    console.print(table)


def _training_data(console: Console, data: TrainingDataSection) -> None:
    if data.problem is not None:
        console.print(f"[bold]Training data[/]: {escape(data.problem)}")
        return
    limits = ", ".join(f"{k} {v:g}" for k, v in data.thresholds.items())
    table = _table(
        f"Training data: {data.old_rows} -> {data.new_rows} rows (flagged above: {limits})",
        "feature",
        "PSI",
        "min / max",
        "null share",
        "values",
        "flagged",
    )
    for f in data.features:
        span = f"{_short(f.old_min)}..{_short(f.old_max)} -> {_short(f.new_min)}..{_short(f.new_max)}"
        values = "; ".join(
            part
            for part in (
                f"new {f.new_values}" if f.new_values else "",
                f"vanished {f.vanished_values}" if f.vanished_values else "",
            )
            if part
        )
        table.add_row(
            escape(f.name),
            "" if f.psi is None else f"{f.psi:.3f}",
            span if f.old_min is not None else "",
            f"{f.old_null_share:.3f} -> {f.new_null_share:.3f}",
            escape(values),
            "[bold yellow]" + escape("; ".join(f.flagged)) + "[/]" if f.flagged else "",
        )
    console.print(table)


def _metrics(console: Console, report: DiffReport) -> None:
    table = _table("Metrics", "metric", "old", "new", "change")
    for m in report.metrics:
        change = "" if m.change is None else f"{m.change:+.4g}"
        table.add_row(escape(m.name), _short(m.old), _short(m.new), change)
    console.print(table)


def _lineage(console: Console, report: DiffReport) -> None:
    lineage = report.lineage
    notebook = "changed" if lineage.notebook_changed else "unchanged"
    console.print(
        f"[bold]Lineage[/]: notebook {notebook} ({lineage.old_notebook_hash[:19]} -> {lineage.new_notebook_hash[:19]})"
    )
    console.print(f"  git: {escape(str(lineage.old_commit))} -> {escape(str(lineage.new_commit))}")
    for name, (before, after) in lineage.parameters.items():
        console.print(f"  parameter {escape(name)}: {escape(repr(before))} -> {escape(repr(after))}")
    for data_file in lineage.data_files:
        console.print(f"  data {escape(data_file.path)}: {data_file.status}")
    for package in lineage.packages:
        console.print(f"  package {escape(package.name)}: {package.old or '-'} -> {package.new or '-'}")


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

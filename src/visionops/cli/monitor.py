"""`visionops monitor`: a window of production records against the model's registration baseline.

Exit codes (the scheduled Azure DevOps monitoring pipeline relies on them):

    0  no drift; also a window too small to tell (`insufficient_data`, with a warning line)
    3  drift detected in at least one column (the pipeline goes red)
    1  an error (no model, no records folder, a damaged baseline...); 2 is a bug, as everywhere

The statistics are visionops.monitoring.drift's, the files visionops.monitoring.drift_report's;
this module parses options, prints the table and picks the exit code.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from visionops.cli._app import _settings, app, console, err_console
from visionops.errors import ConfigError

EXIT_DRIFT = 3  # the one exit code a scheduled pipeline must tell apart from an error (1)
_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str | None, option: str, now: datetime | None = None) -> datetime | None:
    """`7d` / `12h` / `30m` / `2w` (that long before `now`), or an ISO date or date-time (naive = UTC)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    raw = text.strip()
    if m := _AGO.match(raw.lower()):
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: expected an ISO date or date-time (2026-12-01, 2026-12-01T08:00) or a "
            "duration back from now (30m, 12h, 7d, 2w)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@app.command("monitor")
def monitor_cmd(
    model: Annotated[str | None, typer.Option(
        help="name:version, or a name (its production version); default: the production model.")] = None,
    records: Annotated[Path | None, typer.Option(
        help="Collection folder with the production records (default: VISIONOPS_COLLECT_DIR or outputs/production).")]
    = None,
    since: Annotated[str | None, typer.Option(
        help="Window start: ISO date/time (UTC when no zone) or a duration back from now (7d, 12h).")] = None,
    until: Annotated[str | None, typer.Option(help="Window end (exclusive), same forms as --since.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for drift_report.html and .json (default: outputs/monitoring/<UTC time>).")] = None,
    rebuild_baseline: Annotated[bool, typer.Option(
        "--rebuild-baseline", help="Build the model's baseline again from its data set's test split and store it.")]
    = False,
) -> None:
    """Compare production records with the model's registration baseline; exit 3 on drift (0: none, or too few
    records to tell; 1: error)."""
    from visionops.monitoring.monitor import monitor

    lo, hi = parse_when(since, "--since"), parse_when(until, "--until")
    if lo is not None and hi is not None and lo >= hi:
        raise ConfigError(f"--since {since!r} is not before --until {until!r}: the window would be empty")
    result = monitor(_settings(), model=model, records=records, since=lo, until=hi, out=out,
                     rebuild_baseline=rebuild_baseline)
    report, ref, folder = result.report, result.model, result.records_dir
    if result.baseline_built:
        console.print(f"baseline       built from the test split of {ref.tags.get('dataset.name')}:"
                      f"{ref.tags.get('dataset.version')} ({result.baseline_images} images), stored with the version")
    _print(report, folder)
    console.print(f"report         {result.html}")
    console.print(f"json           {result.json}")
    if report.status == "drift":
        err_console.print(f"[red]drift detected[/] in {', '.join(report.drifted_columns)} (exit {EXIT_DRIFT})",
                          highlight=False)
        # SystemExit, not typer.Exit: `run_app` runs click with standalone_mode=False, where click
        # returns an Exit's code instead of exiting with it, and `main` would then exit 0
        raise SystemExit(EXIT_DRIFT)
    if report.status == "insufficient_data":
        err_console.print(f"[yellow]warning:[/] too few records to tell ({report.n_window} in the window, "
                          f"drift_min_records={report.thresholds.min_records}); no drift reported", highlight=False)


def _print(report, folder: Path) -> None:
    console.print(f"model          {report.model} (baseline: {report.n_baseline} test images)")
    span = (f"{report.window_start:%Y-%m-%d %H:%M} .. {report.window_end:%Y-%m-%d %H:%M} UTC"
            if report.window_start else "empty")
    console.print(f"window         {report.n_window} record(s) under {folder} ({span}); "
                  f"{report.skipped} corrupt line(s) skipped; {report.excluded} of other models/versions left out")
    table = Table(Column("column", no_wrap=True), "test", "stat", "p", "PSI", "n base", "n win",
                  Column("status", no_wrap=True))
    colour = {"ok": "green", "drift": "bold red", "insufficient_data": "yellow"}
    for c in report.columns:
        table.add_row(
            c.column, c.test, "-" if c.statistic is None else f"{c.statistic:.3f}",
            "-" if c.p_value is None else f"{c.p_value:.2g}", "-" if c.psi is None else f"{c.psi:.3f}",
            str(c.n_baseline), str(c.n_window), f"[{colour[c.status]}]{c.status}[/]",
        )
    console.print(table)
    alpha = "-" if report.alpha_per_column is None else f"{report.alpha_per_column:.2g}"
    console.print(f"rule           drift = p < {report.thresholds.p_value:g}/columns tested ({alpha}) and "
                  f"PSI > {report.thresholds.psi:g}")
    console.print(f"status         [{colour[report.status]}]{report.status}[/]")

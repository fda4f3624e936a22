"""`visionops notebooks|demo-summary|info`: the walkthrough notebooks and the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from visionops.cli._app import ProfileOpt, _settings, app, console
from visionops.errors import VisionOpsError


@app.command("notebooks")
def notebooks_cmd(
    profile: ProfileOpt = "quick",
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only this notebook (number such as 03, or name); repeat for more.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="NAME=VALUE for every notebook, VALUE read as YAML (e.g. keep_endpoint=true); repeatable.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for executed notebooks (default: outputs/notebooks).")
    ] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write an HTML copy of each notebook.")] = True,
    log_output: Annotated[bool, typer.Option("--log-output", help="Stream cell output to the console (CI logs).")
    ] = False,
) -> None:
    """Execute the numbered notebooks (00..08) in order with papermill (notebooks/profiles/<profile>.yaml); stops at the
    first failure and names the notebook and the cell."""
    import yaml

    from visionops.notebooks import run_notebooks

    params: dict[str, Any] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise VisionOpsError(f"--param {item!r}: write NAME=VALUE, e.g. --param epochs=5")
        params[name.strip()] = yaml.safe_load(value)
    runs = run_notebooks(
        profile, out_dir=out, only=only, parameters=params, html=html, log_output=log_output,
        on_event=lambda name, msg: console.print(f"[bold cyan]{name:>22}[/] {msg}", highlight=False),
    )
    table = Table("notebook", "seconds", "executed copy")
    for r in runs:
        table.add_row(r.name, f"{r.seconds:.1f}", str(r.html or r.output))
    console.print(table)
    console.print(f"total {sum(r.seconds for r in runs):.0f}s; summaries in {_settings().outputs_dir / 'notebooks'}")


@app.command("demo-summary")
def demo_summary_cmd(
    out: Annotated[Path | None, typer.Option(help="Folder of the executed notebooks (default: outputs/notebooks).")
    ] = None,
) -> None:
    """What the notebooks recorded: the decision, the model version, the endpoint check, where the executed
    notebooks are and how to open the MLflow UI (the end of `make demo`)."""
    from visionops.notebooks import demo_summary

    s = demo_summary(_settings(), out)
    if s["run_status"] is None and s["decision"] is None:
        raise VisionOpsError("no notebook results yet: run `make notebooks` (or `visionops notebooks`) first")
    console.rule(f"VisionOps walkthrough ({s['profile']} profile)")
    console.print(f"notebooks      {s['run_status']}: " + ", ".join(
        f"{n['name'][:2]} {n['status']} {n['seconds']:.0f}s" for n in s["notebooks"]))
    console.print(f"data set       {s['dataset']}")
    metrics = s["test_metrics"] or {}
    console.print(f"test metrics   {json.dumps({k: round(v, 4) for k, v in metrics.items()})}")
    console.print(f"decision       {(s['decision'] or '?').upper()}: {s['reason']}")
    registered = s["registered_version"]
    console.print(f"model          {'registered version ' + registered if registered else 'nothing registered'}; "
                  f"production version {s['champion_version'] or 'none'}")
    check = s["endpoint_check"] or {}
    checks = ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in (check.get("checks") or {}).items())
    latency = s["latency"] or {}
    console.print(f"endpoint       served v{s['deployed_version']}: {'PASSED' if check.get('ok') else 'FAILED'} "
                  f"({checks}); p50 {latency.get('p50_ms', '?')} ms")
    if s["endpoint_running"]:
        console.print(f"               still running at {s['endpoint_running']} (stop: visionops deploy --stop)")
    if s["pipeline"]:
        console.print(f"pipeline       {json.dumps(s['pipeline'])}")
    console.print(f"notebooks at   {s['executed_in']} (.ipynb and .html)")
    console.print(f"MLflow UI      {s['mlflow_ui']['command']}")
    console.print(f"               then open {s['mlflow_ui']['url']}")


@app.command("info")
def info_cmd() -> None:
    """Versions, hardware and the settings in effect (as notebook 00 shows them)."""
    from visionops.environment import describe

    console.print_json(json.dumps(describe(_settings()), default=str))

"""`visionops sweep`: a hyperparameter sweep over one search space, the best trial through the gate.

    visionops sweep --trials 8 [--dataset name:version] [--space file.yaml] [--profile quick]

Running the same command again resumes the study (its trials are kept in outputs/optuna.db) and
adds `--trials` more. The Azure ML sweep job runs each trial as

    python -m visionops.cli.sweep_trial trial --data DIR --out DIR --profile P --set lr0=0.003 --set batch=16

(`visionops.cli.sweep_trial`: the train step with the drawn values, in the CLI layer so that the
core never imports the CLI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionops.cli._app import ProfileOpt, _settings, app, console

DatasetOpt = Annotated[str | None, typer.Option(
    help="Data set name[:version] (default: the current one, made current by the last import/register).")]


def _say(step: str, msg: str) -> None:
    console.print(f"[bold cyan]{step:>9}[/] {msg}", highlight=False)


@app.command("sweep")
def sweep_cmd(
    trials: Annotated[int | None, typer.Option(
        min=1, help="Trials to add to the study (default: the profile's sweep budget; a rerun resumes it).")] = None,
    profile: ProfileOpt = "quick",
    dataset: DatasetOpt = None,
    space: Annotated[Path | None, typer.Option(
        help="Search space YAML (default: the package's space for detection, visionops/sweep/spaces/detect.yaml).")]
    = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of every trial (default: the profile's).")] = None,
    study: Annotated[str | None, typer.Option(
        help="Study name (default: from data set, profile and space, so the same sweep resumes).")] = None,
    pruning: Annotated[bool, typer.Option(help="Stop trials below the median of earlier ones, per epoch.")] = True,
    gate: Annotated[bool, typer.Option(
        help="Evaluate the best trial against the champion and register it on promote.")] = True,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling and training.")] = None,
) -> None:
    """Tune training knobs with Optuna (TPE, median pruning), one MLflow child run per trial."""
    from visionops.sweep.local import run_sweep

    s = _settings(seed=seed)
    result = run_sweep(s, trials, gate=gate, profile=profile, dataset=dataset, space=space,
                       knobs={"epochs": epochs}, study_name=study, pruning=pruning, on_step=_say)
    table = Table("trial", "state", result.metric, "epochs", "params")
    for t in result.trials:
        value = f"{t.value:.4f}" if t.value is not None else "-"
        table.add_row(str(t.number), t.state.lower(), value, str(t.epochs or "-"), json.dumps(t.params, default=str))
    console.print(table)
    console.print(f"study          {result.study_name} ({len(result.trials)} trials, {result.new_trials} new, "
                  f"{result.pruned} pruned) in {result.storage}")
    console.print(f"MLflow parent  {result.parent_run_id}")
    console.print(f"best trial     {result.best.number}: {result.metric} {result.best.value:.4f} "
                  f"{json.dumps(result.best.params, default=str)}")
    if result.evaluation is not None and result.registration is not None:
        ev = result.evaluation
        console.print(f"decision       {ev['decision'].upper()}: {ev['reason']}")
        reg = result.registration
        console.print(f"registered     {reg.model_name} version {reg.version} (production)" if reg.registered
                      else "registered     nothing (the decision was not promote)")

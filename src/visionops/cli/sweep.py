"""`visionops sweep`: a hyperparameter sweep over one search space, the best trial through the gate.

    visionops sweep --trials 8 [--dataset name:version] [--space file.yaml] [--profile quick]
    visionops sweep --backend azure --trials 16 [--concurrent 4] [--pipeline] [--wait]

Running the same command again resumes the study (its trials are kept in outputs/optuna.db) and
adds `--trials` more. With `--backend azure` the same search space becomes an Azure ML sweep job
(Bandit early termination, trials fanned out over the cluster's nodes), or with `--pipeline` the
training pipeline with a sweep step in place of train, whose best trial goes through evaluate
and register (the gate) in the same pipeline run. The Azure ML sweep job runs each trial as

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

from visionops.cli._app import BackendOpt, ProfileOpt, _dataset, _settings, app, console
from visionops.errors import VisionOpsError

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
    backend: BackendOpt = None,
    concurrent: Annotated[int | None, typer.Option(
        min=1, help="Azure: trials at once (default: the cluster's max nodes, one trial per node).")] = None,
    pipeline: Annotated[bool, typer.Option(
        help="Azure: the training pipeline with a sweep step (best trial evaluated and registered on "
             "promote) instead of a standalone sweep job.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Azure: wait for the job to end.")] = False,
) -> None:
    """Tune training knobs: locally with Optuna (TPE, median pruning, one MLflow child run per trial);
    on Azure ML as a sweep job or a pipeline with a sweep step, over the same search space."""
    s = _settings(backend, seed=seed)
    if s.backend == "azure":
        _azure_sweep(s, trials=trials, profile=profile, dataset=dataset, space=space, epochs=epochs,
                     concurrent=concurrent, pipeline=pipeline, wait=wait)
        return
    from visionops.sweep.local import run_sweep

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


def _azure_sweep(s, *, trials: int | None, profile: str, dataset: str | None, space: Path | None,
                 epochs: int | None, concurrent: int | None, pipeline: bool, wait: bool) -> None:
    """Submit the Azure ML sweep (`AzureWorkspace.submit_sweep`) and say where to follow it."""
    from visionops.profiles import get_profile
    from visionops.workspace import get_workspace

    if epochs is not None:
        raise VisionOpsError("--epochs is a local-sweep option; an Azure ML trial trains the profile's epochs "
                             "(choose the profile, or add epochs to the search space's knobs)")
    ws = get_workspace(s)
    ref = _dataset(s, dataset, profile)
    total = trials or get_profile(profile, ref.task).sweep.trials
    info = ws.submit_sweep(ref, space=space, profile=profile, pipeline=pipeline, max_total_trials=total,
                           max_concurrent_trials=concurrent, wait=wait)
    what = "pipeline with a sweep step" if info.kind == "pipeline" else "sweep job"
    console.print(f"{what:<14} {info.job_name}: {info.status} ({info.url})")
    console.print(f"objective      {info.goal} {info.primary_metric} ({info.task}) on {info.dataset}")
    console.print(f"limits         {info.max_total_trials} trials, {info.max_concurrent_trials} at once")

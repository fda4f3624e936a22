"""`visionops train|evaluate|register|models|run`: the model lifecycle, step by step or whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionops.cli._app import FormatOpt, ProfileOpt, TaskOpt, _settings, app, console
from visionops.errors import VisionOpsError
from visionops.settings import Settings

DatasetOpt = Annotated[str | None, typer.Option(
    help="Data set name[:version] (default: the current one, made current by the last import/register).")]
KnobOpt = Annotated[int | None, typer.Option(help="Override the profile's value.")]
ModelOpt = Annotated[str | None, typer.Option(
    help="Model yaml (e.g. yolo11s.yaml, from scratch) or a local .pt file to fine-tune; never downloaded.")]


def _train_knobs(epochs, imgsz, batch, patience, model) -> dict:
    return {"epochs": epochs, "imgsz": imgsz, "batch": batch, "patience": patience, "model": model}


def _say(step: str, msg: str) -> None:
    console.print(f"[bold cyan]{step:>9}[/] {msg}", highlight=False)


@app.command("train")
def train_cmd(
    profile: ProfileOpt = "quick",
    dataset: DatasetOpt = None,
    task: TaskOpt = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    patience: KnobOpt = None,
    model: ModelOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed for training (default: VISIONOPS_SEED or 0).")] = None,
    reuse: Annotated[bool, typer.Option(help="Reuse an earlier training with the same request.")] = False,
    metadata: Annotated[Path | None, typer.Option(
        help="Also write the training result (run id, weights, metrics) as JSON here.")] = None,
) -> None:
    """Train a YOLO detector or classifier on a registered data set (validated first), tracked in MLflow."""
    from visionops.runner import Runner

    runner = Runner(_settings(seed=seed), profile, _train_knobs(epochs, imgsz, batch, patience, model), on_step=_say,
                    task=task)
    ref = runner.dataset(dataset)
    result = runner.train(ref, reuse=reuse)
    console.print(f"trained in {result.duration_s:.0f}s: {json.dumps(result.metrics)}")
    console.print(f"MLflow run {result.run_id}; weights {result.weights}")
    if metadata:
        metadata.parent.mkdir(parents=True, exist_ok=True)
        metadata.write_text(result.model_dump_json(indent=2))


@app.command("evaluate")
def evaluate_cmd(
    run_id: Annotated[str | None, typer.Option(
        help="MLflow run id of the training to evaluate (default: the latest training with these knobs).")] = None,
    profile: ProfileOpt = "quick",
    dataset: DatasetOpt = None,
    task: TaskOpt = None,
    metric: Annotated[str | None, typer.Option(
        help="Decision metric (default: the profile's: map50_95 to detect, top1 to classify).")] = None,
    direction: Annotated[str | None, typer.Option(help="maximize or minimize.")] = None,
    min_gain: Annotated[float | None, typer.Option(help="Smallest improvement that promotes.")] = None,
    floor: Annotated[float | None, typer.Option(help="What the first model must reach.")] = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    patience: KnobOpt = None,
    model: ModelOpt = None,
) -> None:
    """Score the trained model and the champion on the frozen test split and decide (decision.json)."""
    from visionops.runner import Runner

    knobs = {"metric": metric, "direction": direction, "min_gain": min_gain, "floor": floor,
             **_train_knobs(epochs, imgsz, batch, patience, model)}
    runner = Runner(_settings(), profile, knobs, on_step=_say, task=task)
    ref = runner.dataset(dataset)
    trained = runner.find_training(ref)
    if trained is None or (run_id and trained.run_id != run_id):
        raise VisionOpsError(
            f"no training of {ref.name}:{ref.version} with these knobs{' and run id ' + run_id if run_id else ''}; "
            f"run `visionops train --dataset {ref.name}:{ref.version}` with the same profile and knobs first"
        )
    outcome = runner.evaluate(ref, trained)
    console.print(f"decision: {outcome.decision.outcome.upper()}: {outcome.decision.reason}")
    console.print(f"written: {outcome.decision_path}")


@app.command("register")
def register_cmd(
    profile: ProfileOpt = "quick",
    dataset: DatasetOpt = None,
    task: TaskOpt = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    patience: KnobOpt = None,
    model: ModelOpt = None,
) -> None:
    """Register the evaluated model when its decision says promote; exits non-zero and registers nothing otherwise."""
    from visionops.runner import Runner

    runner = Runner(_settings(), profile, _train_knobs(epochs, imgsz, batch, patience, model), on_step=_say,
                    task=task)
    ref = runner.dataset(dataset)
    trained = runner.find_training(ref)
    if trained is None:
        raise VisionOpsError(f"no training of {ref.name}:{ref.version} with these knobs: run `visionops train` first")
    result = runner.register(ref, trained, runner.evaluate(ref, trained))
    if not result.registered:
        raise VisionOpsError(f"not registered: {result.reason}")
    console.print(f"registered {result.model_name} version {result.version} (production)")


@app.command("models")
def models_cmd(task: TaskOpt = None) -> None:
    """List registered model versions with their decision metric; the production one is marked."""
    from visionops import registry
    from visionops.tasks import get_task

    s = _settings(task=task)
    table = Table("version", "stage", "task", "metric", "dataset", "train run")
    for r in registry.list_versions(s):
        task = get_task(r.tags.get("task", "detect"))
        m = r.metric(task.decision_metric)
        table.add_row(r.version, r.tags.get("stage", ""), task.name,
                      f"{task.decision_metric} {m:.4f}" if m is not None else "-",
                      f"{r.tags.get('dataset.name', '')}:{r.tags.get('dataset.version', '')}",
                      r.tags.get("train.run_id", ""))
    console.print(f"model {s.registered_model_name!r} in {s.tracking_uri}")
    console.print(table)


@app.command("run")
def run_cmd(
    profile: ProfileOpt = "quick",
    source: Annotated[Path | None, typer.Option(
        help="Import this export first (and make it current) instead of using a registered data set.")] = None,
    fmt: FormatOpt = "auto",
    images: Annotated[Path | None, typer.Option(help="Image folder for a COCO/AutoML source.")] = None,
    name: Annotated[str | None, typer.Option(help="Name for the imported data set (default: from the source).")]
    = None,
    dataset: DatasetOpt = None,
    task: TaskOpt = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    patience: KnobOpt = None,
    model: ModelOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed for data generation and training.")] = None,
) -> None:
    """The whole lifecycle: data -> validate -> train -> evaluate -> decide -> register, on your data set
    (detection or classification: the data set's task, or --task)."""
    from visionops.runner import Runner

    if source is not None and dataset is not None:
        raise VisionOpsError("give either --source (import) or --dataset (registered), not both")
    s = _settings(seed=seed)
    runner = Runner(s, profile, _train_knobs(epochs, imgsz, batch, patience, model), on_step=_say, task=task)
    result = runner.run(dataset, source=source, fmt=fmt, images_dir=images, name=name)
    _print_summary(s, result)


def _print_summary(s: Settings, result) -> None:
    ev = result.evaluation
    reg = result.registration
    console.rule("VisionOps lifecycle")
    console.print(f"profile        {result.profile} ({result.duration_s:.0f}s: {result.timings_s})")
    console.print(f"task           {result.dataset.task}")
    console.print(f"data set       {result.dataset.name}:{result.dataset.version} (classes: "
                  f"{', '.join(result.dataset.classes)})")
    console.print(f"model          {result.model_name}")
    console.print(f"test metrics   {json.dumps({k: round(v, 4) for k, v in ev['challenger'].items()})}")
    champ = ev["champion"]
    champ_text = "none yet" if champ is None else f"v{ev['champion_version']} {json.dumps(champ)}"
    console.print(f"champion       {champ_text}")
    console.print(f"decision       {ev['decision'].upper()}: {ev['reason']}")
    if reg.registered:
        console.print(f"registered     {reg.model_name} version {reg.version} (production)")
    else:
        console.print("registered     nothing (the decision was not promote)")
    console.print(f"details        {result.folders['evaluate']}")
    console.print(f"MLflow UI      .venv/bin/mlflow ui --backend-store-uri {s.tracking_uri}  (or: make mlflow-ui)")

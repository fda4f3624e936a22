"""`visionops train|evaluate|register|models|run`: the model lifecycle, step by step or whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionops.cli._app import FormatOpt, ProfileOpt, _dataset, _settings, app, console
from visionops.errors import VisionOpsError
from visionops.settings import Settings


@app.command("train")
def train_cmd(
    profile: ProfileOpt = "quick",
    dataset: Annotated[str | None, typer.Option(help="name[:version] in the catalog (default: latest).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (weights/best.pt, train_result.json).")] = Path(
        "outputs/cli/train"
    ),
    epochs: Annotated[int | None, typer.Option(help="Override the profile's epochs.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Override the profile's image size.")] = None,
    batch: Annotated[int | None, typer.Option(help="Override the profile's batch size.")] = None,
    weights: Annotated[Path | None, typer.Option(help="Start from pretrained .pt weights on disk.")] = None,
) -> None:
    """Train a YOLO detector on a registered data set, tracked in MLflow."""
    from visionops.pipeline.steps import train_step

    s = _settings()
    ref = _dataset(s, dataset)
    knobs = {"epochs": epochs, "imgsz": imgsz, "batch": batch, "weights": str(weights) if weights else None}
    result = train_step(Path(ref.path), out, s, profile=profile, knobs=knobs)
    console.print(f"trained in {result.duration_s:.0f}s: {json.dumps(result.metrics)}")
    console.print(f"MLflow run {result.run_id}; weights {result.weights}")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Option(help="Output folder of `visionops train`.")] = Path("outputs/cli/train"),
    profile: ProfileOpt = "quick",
    dataset: Annotated[str | None, typer.Option(help="name[:version] (default: the one the model trained on).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (decision.json, plots).")] = Path("outputs/cli/evaluate"),
    metric: Annotated[str | None, typer.Option(help="Decision metric (default: the profile's, map50_95).")] = None,
    direction: Annotated[str | None, typer.Option(help="maximize or minimize.")] = None,
    min_gain: Annotated[float | None, typer.Option(help="Smallest improvement that promotes.")] = None,
    floor: Annotated[float | None, typer.Option(help="What the first model must reach.")] = None,
) -> None:
    """Score the model and the champion on the frozen test split and decide (writes decision.json)."""
    from visionops.pipeline.steps import TRAIN_JSON, evaluate_step
    from visionops.profiles import get_profile
    from visionops.training import TrainResult

    s = _settings()
    train_json = model / TRAIN_JSON
    if not train_json.is_file():
        raise VisionOpsError(f"{train_json} not found; run `visionops train --out {model}` first")
    trained = TrainResult.model_validate_json(train_json.read_text())
    ref = _dataset(s, dataset or f"{trained.dataset_name}:{trained.dataset_version}")
    rule = get_profile(profile, metric=metric, direction=direction, min_gain=min_gain, floor=floor).decision
    outcome = evaluate_step(model, Path(ref.path), out, s, rule=rule)
    console.print(f"decision: {outcome.decision.outcome.upper()}: {outcome.decision.reason}")
    console.print(f"written: {outcome.decision_path}")


@app.command("register")
def register_cmd(
    model: Annotated[Path, typer.Option(help="Output folder of `visionops train`.")] = Path("outputs/cli/train"),
    evaluation: Annotated[Path, typer.Option(help="Output folder of `visionops evaluate`.")] = Path(
        "outputs/cli/evaluate"
    ),
    out: Annotated[Path, typer.Option(help="Output folder (registration.json).")] = Path("outputs/cli/register"),
) -> None:
    """Register the model when its decision says promote; exits non-zero and registers nothing otherwise."""
    from visionops.pipeline.steps import register_step

    result = register_step(model, evaluation, out, _settings())
    if not result.registered:
        raise VisionOpsError(f"not registered: {result.reason}")
    console.print(f"registered {result.model_name} version {result.version} (production)")


@app.command("models")
def models_cmd() -> None:
    """List registered model versions with their metrics; the production one is marked."""
    from visionops import registry

    s = _settings()
    table = Table("version", "stage", "map50_95", "dataset", "train run")
    for r in registry.list_versions(s):
        m = r.metric("map50_95")
        table.add_row(r.version, r.tags.get("stage", ""), f"{m:.4f}" if m is not None else "-",
                      f"{r.tags.get('dataset.name', '')}:{r.tags.get('dataset.version', '')}",
                      r.tags.get("train.run_id", ""))
    console.print(f"model {s.model_name!r} in {s.tracking_uri}")
    console.print(table)


@app.command("run")
def run_cmd(
    profile: ProfileOpt = "quick",
    source: Annotated[Path | None, typer.Option(help="Import this data set instead of generating one.")] = None,
    fmt: FormatOpt = "yolo",
    images: Annotated[Path | None, typer.Option(help="Image folder for a COCO/AutoML source.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the profile's epochs.")] = None,
) -> None:
    """The whole local lifecycle: data -> validate -> train -> evaluate -> decide -> register."""
    from visionops.lifecycle import run_lifecycle

    s = _settings()
    result = run_lifecycle(
        s, profile, source=source, fmt=fmt, images_dir=images,  # type: ignore[arg-type]
        knobs={"epochs": epochs},
        on_step=lambda step, msg: console.print(f"[bold cyan]{step:>13}[/] {msg}"),
    )
    _print_summary(s, result)


def _print_summary(s: Settings, result) -> None:
    ev = result.evaluation
    reg = result.registration
    console.rule("VisionOps lifecycle")
    console.print(f"profile        {result.profile} ({result.duration_s:.0f}s: {result.timings_s})")
    console.print(f"data set       {result.dataset.name}:{result.dataset.version}")
    console.print(f"test metrics   {json.dumps({k: round(v, 4) for k, v in ev['challenger'].items()})}")
    champ = ev["champion"]
    champ_text = "none yet" if champ is None else f"v{ev['champion_version']} {json.dumps(champ)}"
    console.print(f"champion       {champ_text}")
    console.print(f"decision       {ev['decision'].upper()}: {ev['reason']}")
    if reg.registered:
        console.print(f"registered     {reg.model_name} version {reg.version} (production)")
    else:
        console.print("registered     nothing (the decision was not promote)")
    console.print(f"details        {result.run_dir / 'summary.json'}")
    console.print(f"MLflow UI      .venv/bin/mlflow ui --backend-store-uri {s.tracking_uri}  (or: make mlflow-ui)")

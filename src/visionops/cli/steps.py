"""The pipeline steps' command lines, which the Azure ML components run on mounted folders:

    python -m visionops.cli.steps validate --data DIR --out DIR [--task T]
    python -m visionops.cli.steps train    --data DIR --out DIR --profile P [knobs] [--validation DIR] [--task T]
    python -m visionops.cli.steps evaluate --model DIR --data DIR --out DIR --profile P [--task T]
    python -m visionops.cli.steps register --model DIR --evaluation DIR --out DIR

Each command only parses its options and calls the step function of `visionops.pipeline.steps`
(the same functions the lifecycle runner calls in-process); they live here, in the CLI layer,
so that the core never imports the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionops.pipeline.steps import data_task, evaluate_step, register_step, train_step, validate_step
from visionops.profiles import get_profile
from visionops.settings import get_settings

app = typer.Typer(add_completion=False, help="VisionOps pipeline steps (folder in, folder out).")
Profile = Annotated[str, typer.Option(help="Run profile: smoke, quick or full.")]
Task = Annotated[
    str | None,
    typer.Option(help="detect or classify; default: the data set's own task (a different one is an error)."),
]


@app.command("validate")
def _validate_cli(
    data: Annotated[Path, typer.Option(help="Data set folder (with its manifest.json).")],
    out: Annotated[Path, typer.Option(help="Output folder for validation.json.")],
    task: Task = None,
) -> None:
    """Validate the data set; fails (after writing the report) when anything is wrong."""
    validate_step(data, out, task=task)


@app.command("train")
def _train_cli(
    data: Annotated[Path, typer.Option(help="Validated data set folder.")],
    out: Annotated[Path, typer.Option(help="Output folder: weights/best.pt and train_result.json.")],
    profile: Profile = "quick",
    epochs: Annotated[int | None, typer.Option(help="Override the profile's epochs.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Override the profile's image size.")] = None,
    batch: Annotated[int | None, typer.Option(help="Override the profile's batch size.")] = None,
    patience: Annotated[int | None, typer.Option(help="Override the profile's early-stopping patience.")] = None,
    model: Annotated[str | None, typer.Option(help="Model yaml (e.g. yolo11s.yaml) or a local .pt to fine-tune.")]
    = None,
    validation: Annotated[
        Path | None, typer.Option(help="Output folder of the validate step; refuse to train unless it passed.")
    ] = None,
    task: Task = None,
) -> None:
    """Train a detector or classifier (the data set's task) on the data set, tracked in MLflow."""
    knobs = {"epochs": epochs, "imgsz": imgsz, "batch": batch, "patience": patience, "model": model}
    train_step(data, out, get_settings(), profile=profile, knobs=knobs, validation=validation, task=task)


@app.command("evaluate")
def _evaluate_cli(
    model: Annotated[Path, typer.Option(help="Output folder of the train step.")],
    data: Annotated[Path, typer.Option(help="The same data set folder the model was trained on.")],
    out: Annotated[Path, typer.Option(help="Output folder: decision.json, evaluation.json, plots.")],
    profile: Profile = "quick",
    task: Task = None,
) -> None:
    """Score challenger and champion on the test split and decide (the task's decision rule)."""
    kind = data_task(data, task)
    evaluate_step(model, data, out, get_settings(), rule=get_profile(profile, kind.name).decision, task=kind.name)


@app.command("register")
def _register_cli(
    model: Annotated[Path, typer.Option(help="Output folder of the train step.")],
    evaluation: Annotated[Path, typer.Option(help="Output folder of the evaluate step.")],
    out: Annotated[Path, typer.Option(help="Output folder for registration.json.")],
) -> None:
    """Register the model when the decision says promote; otherwise record why not."""
    register_step(model, evaluation, out, get_settings())


def main() -> None:
    from visionops import offline
    from visionops.cli import run_app

    run_app(app)
    offline.exit_now(0)  # each pipeline step is its own process: skip the interpreter's teardown


if __name__ == "__main__":
    main()

"""The Azure ML sweep trial's command line: the train step with the values the sweep drew.

    python -m visionops.cli.sweep_trial trial --data DIR --out DIR --profile P [--task T] --set lr0=0.003 --set batch=16

Each `--set` is checked against the search space's knobs (`visionops.sweep.space.KNOBS`): an
unknown knob or a value the knob cannot take fails with the knob's name before any training.
A module of its own (not `visionops.cli.sweep`), because `python -m` must not run a module that
the `visionops.cli` package has already imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

trial_app = typer.Typer(add_completion=False, help="One sweep trial (Azure ML sweep jobs run it).")


@trial_app.callback()
def _trial_root() -> None:
    """`python -m visionops.cli.sweep trial --help` for the options."""


@trial_app.command("trial")
def trial_cmd(
    data: Annotated[Path, typer.Option(help="Data set folder (with its manifest.json).")],
    out: Annotated[Path, typer.Option(help="Output folder: weights/best.pt and train_result.json.")],
    profile: Annotated[str, typer.Option(help="Run profile: smoke, quick or full.")] = "quick",
    task: Annotated[str | None, typer.Option(
        help="detect or classify; default: the data set's own (a different one is an error).")] = None,
    values: Annotated[list[str] | None, typer.Option(
        "--set", help="A drawn value, knob=value (repeat per knob of the search space).")] = None,
) -> None:
    """Train with the drawn values; every epoch's metrics go to the trial's MLflow run (the sweep's
    primary metric among them), which Azure ML's early termination reads."""
    from visionops.errors import ConfigError
    from visionops.pipeline.steps import data_task, train_step
    from visionops.profiles import get_profile
    from visionops.settings import get_settings
    from visionops.sweep.space import parse_value, profile_knobs

    params = {}
    for item in values or []:
        name, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: write knob=value, e.g. --set lr0=0.003")
        params[name.strip()] = parse_value(name.strip(), text.strip())
    kind = data_task(data, task)
    knobs = profile_knobs(params, get_profile(profile, kind.name).train)
    train_step(data, out, get_settings(), profile=profile, knobs=knobs, task=kind.name)


def main() -> None:
    from visionops.cli import run_app

    run_app(trial_app)


if __name__ == "__main__":
    main()

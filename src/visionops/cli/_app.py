"""The typer app, the consoles and the option types shared by the command modules.

Command modules (data, lifecycle, notebooks, serving, pipeline, azure) register on `app`;
`visionops.cli` imports them all and runs the app with the error contract.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from visionops.settings import Settings, get_settings

console = Console(soft_wrap=True)  # never break paths and commands across lines
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="VisionOps: the object-detection lifecycle (data, training, evaluation, registry) from the command line.",
)

ProfileOpt = Annotated[
    str, typer.Option("--profile", "-p", help="Run profile: smoke (CI), quick (laptop), full (GPU).")
]
TaskOpt = Annotated[str | None, typer.Option(
    "--task", "-t", help="detect or classify (default: the data set's own; detect for the synthetic data set).")]
BackendOpt = Annotated[str | None, typer.Option(help="Backend: local or azure (default: VISIONOPS_BACKEND or local).")]
FormatOpt = Annotated[str, typer.Option(
    "--format", "-f", help="auto (detect and say which), yolo, coco, voc or automl.")]
VersionOpt = Annotated[str | None, typer.Option(help="Registered model version (default: the production one).")]


def _settings(backend: str | None = None, **overrides: Any) -> Settings:
    return get_settings(backend=backend, **overrides)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a command fails.")] = False,
) -> None:
    """Run `visionops COMMAND --help` for the options of each command."""


def _dataset(s: Settings, dataset: str | None, profile: str | None = None, task: str | None = None):
    """The data set a command works on: `name[:version]`, else the workspace's current one (of
    `task`, when given), else (nothing current yet) the profile's synthetic data set, generated
    and registered. Says which."""
    from visionops.runner import Runner

    runner = Runner(s, profile, on_step=lambda step, msg: err_console.print(f"[dim]{step}: {msg}[/]"), task=task)
    return runner.dataset(dataset)

"""`visionops pipeline ...`: the Azure ML components, run locally as subprocesses or submitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from visionops.cli._app import BackendOpt, ProfileOpt, TaskOpt, _dataset, _settings, app, console
from visionops.errors import VisionOpsError
from visionops.settings import Settings

pipeline_app = typer.Typer(
    no_args_is_help=True,
    help="The validate -> train -> evaluate -> register pipeline: show, build, run, publish (local or azure).",
)
app.add_typer(pipeline_app, name="pipeline")
KnobOpt = Annotated[int | None, typer.Option(help="Override the profile's value.")]
ModelOpt = Annotated[str | None, typer.Option(
    help="Model yaml Ultralytics ships (e.g. yolo11s.yaml) or a local .pt to fine-tune; never downloaded.")]


def _pipeline_dataset(s: Settings, dataset: str | None, profile: str | None = None, task: str | None = None):
    """A DatasetRef; on azure `name:version` is taken as given (no lookup, its task: `task`, else
    detection), so `build` stays offline."""
    from visionops.data.catalog import DatasetRef
    from visionops.tasks import get_task

    if s.backend == "azure" and dataset and ":" in dataset:
        name, _, version = dataset.partition(":")
        return DatasetRef(name=name, version=version, path=f"azureml:{name}:{version}", created="", counts={},
                          classes=[], backend="azure", task=get_task(task).name)
    return _dataset(s, dataset, profile, task)


@pipeline_app.command("show")
def pipeline_show() -> None:
    """The graph: each node, its component, where its inputs come from and the command it runs."""
    from visionops.pipeline.components import GRAPH, check_graph, load_components, pipeline_version

    specs = load_components()
    table = Table("node", "component", "inputs", "outputs")
    for node in GRAPH:
        spec = specs[node.component]
        table.add_row(node.name, spec.name, ", ".join(f"{k}<-{v}" for k, v in node.inputs.items()),
                      ", ".join(spec.outputs))
    console.print(table)
    for node in GRAPH:
        console.print(f"[bold]{node.name}[/]: {specs[node.component].command}", highlight=False)
    problems = check_graph(specs)
    console.print(f"version {pipeline_version()}; wiring: {'; '.join(problems) if problems else 'sound'}")
    if problems:
        raise VisionOpsError("the pipeline graph is miswired: " + "; ".join(problems))


@pipeline_app.command("build")
def pipeline_build(
    profile: ProfileOpt = "quick",
    dataset: Annotated[str | None, typer.Option(help="name[:version] (default: the current data set).")] = None,
    task: TaskOpt = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    patience: KnobOpt = None,
    model: ModelOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every step (default: VISIONOPS_SEED or 0).")] = None,
    backend: BackendOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="Write the plan (local, JSON) or the pipeline job (azure, YAML).")] = None,
) -> None:
    """Build without running: local renders every command; azure builds and validates the pipeline job
    offline (needs no workspace when --dataset is name:version) and dumps its YAML."""
    from visionops.workspace import get_workspace

    s = _settings(backend, seed=seed)
    ws = get_workspace(s)
    knobs = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz, "batch": batch, "patience": patience,
                               "model": model}.items() if v is not None}
    built = ws.build_pipeline(_pipeline_dataset(s, dataset, profile, task), profile, task=task, **knobs)
    if s.backend == "azure":
        result = built._validate()
        if not result.passed:
            raise VisionOpsError(f"the pipeline job does not validate: {result.error_messages}")
        target = out or s.outputs_dir / "pipeline" / "azure_pipeline_job.yml"  # absolute paths: never commit it
        target.parent.mkdir(parents=True, exist_ok=True)
        built.dump(str(target))
        console.print(f"pipeline job validated; YAML written to {target}")
        return
    target = out or s.outputs_dir / "lifecycle" / "pipeline_plan.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(built.model_dump_json(indent=2))
    for node in built.nodes:
        console.print(f"[bold]{node.name}[/]: {node.command}", highlight=False)
    console.print(f"plan written to {target}")


@pipeline_app.command("run")
def pipeline_run(
    profile: ProfileOpt = "quick",
    dataset: Annotated[str | None, typer.Option(help="name[:version] (default: the current data set).")] = None,
    task: TaskOpt = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    patience: KnobOpt = None,
    model: ModelOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every step (default: VISIONOPS_SEED or 0).")] = None,
    backend: BackendOpt = None,
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Azure: wait for the job (local always waits).")] = True,
    metadata: Annotated[Path | None, typer.Option(
        help="Write the run and the resulting production model (name, version, tags) as JSON here.")] = None,
) -> None:
    """Run the pipeline: locally as subprocesses, or as an Azure ML pipeline job (exit 1 when it fails)."""
    from visionops.workspace import get_workspace

    s = _settings(backend, seed=seed)
    ws = get_workspace(s)
    knobs = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz, "batch": batch, "patience": patience,
                               "model": model}.items() if v is not None}
    pipeline = ws.build_pipeline(_pipeline_dataset(s, dataset, profile, task), profile, task=task, **knobs)
    if s.backend == "local":
        from visionops.pipeline.local_pipeline import run

        info = run(pipeline, s, workspace=ws,
                   on_step=lambda step, msg: console.print(f"[bold cyan]{step:>9}[/] {msg}", highlight=False))
    else:
        info = ws.submit_pipeline(pipeline, wait=False)
        console.print(f"submitted {info.run_id}: {info.url}")
        if wait:
            info = ws.wait_pipeline(info.run_id)
    console.print(f"pipeline {info.run_id}: {info.status} ({info.url})")
    if metadata:
        metadata.parent.mkdir(parents=True, exist_ok=True)
        metadata.write_text(json.dumps(_run_metadata(ws, info), indent=2, default=str))
        console.print(f"metadata written to {metadata}")


def _run_metadata(ws, info) -> dict[str, Any]:
    """The run and the production model it left behind (what the deployment pipeline deploys)."""
    from visionops import registry

    settings = ws.registry_settings() if ws.backend == "azure" else ws.settings
    champion = registry.get_champion(settings) if info is None or info.succeeded else None
    return {
        "pipeline": None if info is None else info.model_dump(),
        "model": None if champion is None else {
            "name": champion.name, "version": champion.version, "uri": champion.uri, "tags": champion.tags,
        },
    }


@pipeline_app.command("metadata")
def pipeline_metadata(
    out: Annotated[Path, typer.Option(help="Where to write the JSON.")],
    run_id: Annotated[str | None, typer.Option(help="Include this pipeline run (waits until it has ended).")] = None,
    backend: BackendOpt = None,
) -> None:
    """Write the production model (name, version, tags) and optionally a pipeline run as JSON (what
    the Azure DevOps deployment pipeline reads); exit 1 when there is no production model."""
    from visionops.workspace import get_workspace

    ws = get_workspace(_settings(backend))
    info = ws.wait_pipeline(run_id) if run_id else None
    data = _run_metadata(ws, info)
    if data["model"] is None:
        raise VisionOpsError("no production model in the registry; the pipeline registered nothing yet")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=str))
    console.print(f"production model {data['model']['name']} v{data['model']['version']}; metadata in {out}")


@pipeline_app.command("publish")
def pipeline_publish(
    backend: BackendOpt = None,
    cron: Annotated[str | None, typer.Option(help="Azure: retraining schedule, e.g. '0 2 * * 1' (UTC).")] = None,
    profile: ProfileOpt = "full",
) -> None:
    """Freeze the pipeline under its content version (azure: registered components, optional schedule)."""
    from visionops.workspace import get_workspace

    s = _settings(backend, profile=profile)
    published = get_workspace(s).publish_pipeline(cron=cron)
    console.print(f"published {published.name} version {published.version} at {published.location}")
    if published.schedule:
        console.print(f"schedule {published.schedule}: {published.cron} UTC")

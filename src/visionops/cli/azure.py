"""`visionops azure ...`: online endpoints step by step, the batch endpoint and the AutoML comparison
(what the Azure DevOps deployment pipeline runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visionops.cli._app import VersionOpt, _settings, app, console
from visionops.errors import VisionOpsError

azure_app = typer.Typer(
    no_args_is_help=True,
    help="Azure ML: set up compute and environments; blue/green deployment in steps (stage, promote); "
         "the batch endpoint (batch-deploy, batch-score); the AutoML comparison (automl-compare).",
)
app.add_typer(azure_app, name="azure")


def _azure_workspace():
    from visionops.workspace import get_workspace

    return get_workspace(_settings("azure"))


@azure_app.command("setup")
def azure_setup() -> None:
    """Create the training cluster when missing and register the training and inference environments."""
    ws = _azure_workspace()
    compute = ws.ensure_compute()
    console.print(f"compute        {compute.name} ({getattr(compute, 'size', '?')})")
    for kind in ("training", "inference"):
        console.print(f"environment    {ws.ensure_environment(kind)}")


@azure_app.command("stage")
def azure_stage(
    version: VersionOpt = None,
    runtime: Annotated[str, typer.Option(help="onnx or pytorch.")] = "onnx",
    out: Annotated[Path, typer.Option(help="Where to record the staged deployment (read by promote).")] = Path(
        "outputs/azure/staged_deployment.json"),
    skip_if_live: Annotated[bool, typer.Option(help="Do nothing when this version already takes the traffic.")] = True,
    task: Annotated[str | None, typer.Option(
        help="detect or classify: the smoke tests check the served model is of this task (default: not checked).")]
    = None,
) -> None:
    """Deploy the production model (or --version) as a new deployment with 0% traffic and smoke-test it."""
    from visionops import registry

    ws = _azure_workspace()
    model = registry.get_version(ws.registry_settings(), version) if version else None
    staged = ws.stage_deployment(model, runtime=runtime, skip_if_live=skip_if_live)
    staged.task = task
    ws.smoke_test(staged.endpoint, staged.deployment, model_version=staged.model_version, task=task)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(staged.model_dump_json(indent=2))
    if staged.already_live:
        console.print(f"{staged.model_name} v{staged.model_version} already serves {staged.endpoint} "
                      f"({staged.deployment}); smoke test passed; nothing staged")
        return
    console.print(f"staged {staged.endpoint}/{staged.deployment}: {staged.model_name} v{staged.model_version}, "
                  f"0% traffic, smoke test passed; live: {staged.previous or 'none'}; record: {out}")


@azure_app.command("promote")
def azure_promote(
    staged: Annotated[Path, typer.Option(help="The record written by `visionops azure stage`.")] = Path(
        "outputs/azure/staged_deployment.json"),
    keep_previous: Annotated[bool, typer.Option(help="Keep the old deployment at 0% for a roll-back.")] = False,
) -> None:
    """Shift all traffic to the staged deployment (after its smoke test and the approval)."""
    from visionops.workspace.azure import StagedDeployment

    if not staged.is_file():
        raise VisionOpsError(f"{staged} not found; run `visionops azure stage` first")
    record = StagedDeployment.model_validate_json(staged.read_text())
    if record.already_live:
        console.print(f"{record.endpoint}: {record.model_name} v{record.model_version} is live already; nothing to do")
        return
    ws = _azure_workspace()
    ws.smoke_test(record.endpoint, record.deployment, model_version=record.model_version, task=record.task)
    traffic = ws.shift_traffic(record.endpoint, record.deployment, retire_previous=not keep_previous)
    console.print(f"{record.endpoint}: traffic {traffic}")


@azure_app.command("endpoint-info")
def azure_endpoint_info(
    out: Annotated[Path, typer.Option(help="JSON file (mode 0600) with the scoring URI and the primary key.")],
) -> None:
    """Write the endpoint's scoring URI and key for a consumer (the web page's app settings); the key
    goes only into that file, never to the console."""
    import os

    ws = _azure_workspace()
    info = ws.endpoint_info()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"name": info.name, "scoring_uri": info.scoring_uri,
                   "key": info.key.get_secret_value() if info.key else None}, fh)
    console.print(f"{info.name}: {info.scoring_uri} (key written to {out})")


@azure_app.command("smoke")
def azure_smoke(
    deployment: Annotated[str | None, typer.Option(help="A deployment (default: whatever takes traffic).")] = None,
    task: Annotated[str | None, typer.Option(
        help="detect or classify: also check the served model is of this task and answers in its shape.")] = None,
) -> None:
    """Score a generated image on the endpoint (or one deployment) and check the answer."""
    ws = _azure_workspace()
    answer = ws.smoke_test(ws.settings.endpoint_name, deployment, task=task)
    console.print(f"smoke test passed: model {answer.get('model')}")


@azure_app.command("batch-deploy")
def azure_batch_deploy(version: VersionOpt = None) -> None:
    """Deploy the production model (or --version) to the batch endpoint and make it the default
    deployment (creates the batch environment, cluster and endpoint when missing)."""
    from visionops import registry

    ws = _azure_workspace()
    model = registry.get_version(ws.registry_settings(), version) if version else None
    info = ws.deploy_batch_endpoint(model)
    console.print(f"batch endpoint {info.endpoint}: deployment {info.deployment} serves {info.model_name} "
                  f"v{info.model_version} on {info.compute} ({info.instance_count} nodes x "
                  f"{info.max_concurrency_per_instance} processes, {info.mini_batch_size} files per mini-batch)")


@azure_app.command("batch-score")
def azure_batch_score(
    images: Annotated[str, typer.Option(
        help="A local folder of images (uploaded once as a data asset) or a cloud folder "
             "(azureml:<name>:<version>, azureml://datastores/..., https://...).")],
    deployment: Annotated[str | None, typer.Option(help="A deployment (default: the endpoint's default).")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job, then fetch its records.")] = True,
    out: Annotated[Path, typer.Option(help="Where the job's predictions.jsonl is downloaded (with --wait).")] = Path(
        "outputs/azure/batch"),
) -> None:
    """Score a folder with the batch endpoint; with --wait, download the records and check that
    every image has one (exit 1 when the job failed or an image is missing)."""
    ws = _azure_workspace()
    source = ws.batch_input(images)
    job = ws.invoke_batch_endpoint(source, deployment=deployment)
    console.print(f"batch job {job} scoring {source}")
    if not wait:
        return
    ws.wait_job(job)
    predictions = ws.batch_predictions(job, out / job)
    records = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    failed = [r for r in records if r.get("error")]
    expected = _local_image_count(images)
    console.print(f"{len(records)} records in {predictions} ({len(failed)} errors)")
    if expected is not None and len(records) != expected:
        raise VisionOpsError(f"batch job {job}: {len(records)} records for {expected} files in {images}; "
                             f"see {predictions} and the job's logs")


def _local_image_count(images: str) -> int | None:
    """How many files a local input folder holds (None for a cloud folder: not counted here)."""
    folder = Path(images)
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else None


@azure_app.command("automl-compare")
def azure_automl_compare(
    job: Annotated[str, typer.Option(help="The AutoML job's name (what submit_automl / notebook 07 printed).")],
    dataset: Annotated[str | None, typer.Option(
        help="Data set name[:version] the job ran on (default: the current one).")] = None,
    metric_type: Annotated[str | None, typer.Option(
        help="Detection: voc (AutoML's mAP@0.5 vs our map50) or coco (mAP@[.5:.95] vs map50_95), as the job was "
             "set; classification: classify (accuracy vs top1). Default: voc / classify by the data set's task.")
    ] = None,
) -> None:
    """Compare the AutoML job's best model with the champion on the frozen test split: its best
    child run's metrics are read from the workspace (no JSON to pass); writes comparison.json."""
    from rich.table import Table

    ws = _azure_workspace()
    ref = ws.resolve_dataset(dataset)
    if ref is None:
        raise VisionOpsError("no data set is current in this project; pass --dataset name:version (the one the "
                             "AutoML job ran on)")
    comparison = ws.compare_automl(job, ref, metric_type=metric_type)
    table = Table("AutoML metric", "VisionOps metric", "AutoML", "VisionOps", "difference", "better")
    for r in comparison.rows:
        table.add_row(r.automl_metric, r.visionops_metric, f"{r.automl:.4f}", f"{r.visionops:.4f}",
                      f"{r.difference:+.4f}", r.better)
    console.print(table)
    console.print(f"winner: {comparison.winner} ({comparison.note}); best child run {comparison.automl_run}")

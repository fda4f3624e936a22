"""`visionops azure ...`: online endpoints step by step (what the Azure DevOps deployment runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visionops.cli._app import VersionOpt, _settings, app, console
from visionops.errors import VisionOpsError

azure_app = typer.Typer(
    no_args_is_help=True,
    help="Azure ML: set up compute and environments; blue/green deployment in steps (stage, promote).",
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
) -> None:
    """Deploy the production model (or --version) as a new deployment with 0% traffic and smoke-test it."""
    from visionops import registry

    ws = _azure_workspace()
    model = registry.get_version(ws.registry_settings(), version) if version else None
    staged = ws.stage_deployment(model, runtime=runtime, skip_if_live=skip_if_live)
    ws.smoke_test(staged.endpoint, staged.deployment, model_version=staged.model_version)
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
    ws.smoke_test(record.endpoint, record.deployment, model_version=record.model_version)
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
) -> None:
    """Score a generated image on the endpoint (or one deployment) and check the answer."""
    ws = _azure_workspace()
    answer = ws.smoke_test(ws.settings.endpoint_name, deployment)
    console.print(f"smoke test passed: model {answer.get('model')}")

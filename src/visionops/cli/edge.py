"""`visionops edge manifest`: the IoT Edge deployment folder for a registered model.

The work is visionops.edge's (the manifest as data and its schema checks, the folder); this
module parses options, reads the registry password from the environment (never an option: it
would land in shell history) and prints where things are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from visionops.cli._app import BackendOpt, _settings, app, console

PASSWORD_ENV = "VISIONOPS_EDGE_REGISTRY_PASSWORD"

edge_app = typer.Typer(no_args_is_help=True, help="Azure IoT Edge: the deployment manifest of a registered model.")
app.add_typer(edge_app, name="edge")


@edge_app.command("manifest")
def manifest_cmd(
    registry: Annotated[str, typer.Option(
        help="Container registry login server the device pulls from, e.g. myacr.azurecr.io.")],
    model: Annotated[str | None, typer.Option(
        help="name:version, or a name (its production version); default: the production model.")] = None,
    image: Annotated[str, typer.Option(help="Repository of the module image in that registry.")] = "visionops/edge",
    tag: Annotated[str | None, typer.Option(help="Image tag (default: <model>-v<version>).")] = None,
    base_image: Annotated[str | None, typer.Option(
        help="The ONNX inference image (environments/docker/inference) the module image builds on "
             "(default: <registry>/visionops/inference:latest, what docker_image_pipeline.yml pushes).")] = None,
    module: Annotated[str, typer.Option(help="IoT Edge module name.")] = "visionops",
    port: Annotated[int, typer.Option(help="Port the scoring server is published on, on the device.")] = 5001,
    collect: Annotated[bool, typer.Option(
        "--collect/--no-collect", help="Record production statistics into a folder on the device.")] = True,
    records_dir: Annotated[str, typer.Option(
        help="Folder on the device that receives the production records (mounted into the module).")]
    = "/var/lib/visionops/production",
    restart_policy: Annotated[str, typer.Option(
        help="never, on-failure, on-unhealthy or always.")] = "always",
    ttl: Annotated[int, typer.Option(
        help="Seconds edgeHub keeps the module's messages while the device is offline.")] = 7200,
    registry_username: Annotated[str | None, typer.Option(
        help=f"Registry user for the device (its password from {PASSWORD_ENV}); omit for anonymous pull.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default: outputs/edge/<model>-<version>).")] = None,
    backend: BackendOpt = None,
) -> None:
    """Write deployment.json (IoT Edge 1.5, schema-checked), the module's Dockerfile with the ONNX model baked
    in, and a README with the build, push and deploy commands."""
    from visionops import registry as model_registry
    from visionops.edge.bundle import edge_model, folder_name, resolve_version, write_bundle
    from visionops.edge.manifest import EdgeOptions, build_manifest, serving_env
    from visionops.errors import ConfigError

    s = _settings(backend)
    reg_settings = s
    if s.backend == "azure":
        from visionops.workspace import get_workspace

        reg_settings = get_workspace(s).registry_settings()
    password = None
    if registry_username is not None:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise ConfigError(f"--registry-username {registry_username!r} needs the password in {PASSWORD_ENV} "
                              "(an ACR token or service principal secret with pull rights)")
    options = EdgeOptions(
        registry=registry, image=image, tag=tag, module=module, host_port=port, collect=collect,
        records_host_dir=records_dir, restart_policy=restart_policy, store_forward_ttl_s=ttl,
        registry_username=registry_username, registry_password=password,
    )
    ref = resolve_version(reg_settings, model)
    edge, onnx, info = edge_model(ref, model_registry.download(reg_settings, ref))
    manifest = build_manifest(edge, options, serving_env(edge, s, options))
    base = base_image or f"{registry.strip()}/visionops/inference:latest"
    target = out or s.outputs_dir / "edge" / folder_name(edge)
    bundle = write_bundle(target, edge, options, manifest, onnx, info, base)
    console.print(f"model          {edge.name} v{edge.version} ({edge.task}, {edge.onnx})")
    console.print(f"module         {module}: {bundle.image} on port {port}")
    console.print(f"manifest       {bundle.manifest} (valid: edgeAgent 1.1 / edgeHub 1.2 schemas)")
    console.print(f"image build    docker build --build-arg BASE_IMAGE={base} -t {bundle.image} {bundle.folder}")
    console.print(f"next steps     {bundle.readme}")


@edge_app.command("validate")
def validate_cmd(
    manifest: Annotated[Path, typer.Argument(help="A deployment.json (e.g. one edited by hand).")],
) -> None:
    """Check a deployment manifest offline as the Azure CLI does (edgeAgent/edgeHub schemas), plus createOptions
    JSON and route sources; lists every bad field with its path."""
    from visionops.edge.manifest import load_manifest, require_valid

    require_valid(load_manifest(manifest), str(manifest))
    console.print(f"{manifest}: valid IoT Edge deployment manifest")

"""`visionops serve|deploy|smoke-test|webapp`: the champion behind score.py, locally or on Azure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visionops.cli._app import VersionOpt, _settings, app, console
from visionops.errors import VisionOpsError

RuntimeOpt = Annotated[
    str | None,
    typer.Option(help="onnx, pytorch or auto (default: VISIONOPS_SERVING_RUNTIME; auto = onnx when exported)."),
]
AuthOpt = Annotated[bool, typer.Option("--auth/--no-auth", help="Key auth (Authorization: Bearer <key>); default on.")]
EndpointNameOpt = Annotated[str, typer.Option("--name", help="Local endpoint name (folder under outputs/endpoints/).")]


def _print_endpoint(info, dep=None) -> None:
    console.print(f"model          {info.model_name} v{info.model_version} ({info.runtime})")
    console.print(f"scoring URI    {info.scoring_uri}")
    if info.health_uri:
        console.print(f"health         {info.health_uri}")
    if dep is not None and dep.key_file:
        console.print(f"key            in {dep.key_file} (0600); send 'Authorization: Bearer <key>'")
    elif not info.auth:
        console.print("key            none (--no-auth: anyone on this machine can call it)")
    if dep is not None and dep.log:
        console.print(f"server log     {dep.log}")


@app.command("serve")
def serve_cmd(
    version: VersionOpt = None,
    runtime: RuntimeOpt = None,
    port: Annotated[int | None, typer.Option(help="Loopback port (default: a free one).")] = None,
    auth: AuthOpt = True,
    name: EndpointNameOpt = "local",
) -> None:
    """Serve a registered model with azmlinfsrv + score.py on loopback, in the foreground (Ctrl-C stops it)."""
    from visionops.serving.local_endpoint import LocalEndpoint, forget_deployment, model_dir_for, record_deployment

    s = _settings()
    ref, folder = model_dir_for(s, version)
    ep = LocalEndpoint(folder, s, name=name, runtime=runtime, auth=auth, port=port, model_name=ref.name,
                       model_version=ref.version, inherit_output=True)
    try:
        info = ep.start()
        dep = record_deployment(ep)  # so `visionops smoke-test` and `visionops webapp` find it
        console.rule(f"serving {info.model_name} v{info.model_version}")
        _print_endpoint(info, dep)
        console.print("stop           Ctrl-C")
        assert ep.proc is not None
        ep.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        ep.stop()
        forget_deployment(s, name)


@app.command("deploy")
def deploy_cmd(
    target: Annotated[str, typer.Option(help="local (azmlinfsrv on loopback) or azure (online endpoint).")] = "local",
    version: VersionOpt = None,
    runtime: RuntimeOpt = None,
    port: Annotated[int | None, typer.Option(help="Local: loopback port (default: a free one).")] = None,
    auth: AuthOpt = True,
    name: Annotated[str | None, typer.Option(help="Endpoint name (local default: local).")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Tear the endpoint down instead.")] = False,
) -> None:
    """Deploy the champion (or --version) behind score.py in the background; --stop tears it down."""
    if target not in ("local", "azure"):
        raise VisionOpsError(f"unknown target {target!r}; use local or azure")
    s = _settings(backend=target)
    if target == "local":
        from visionops.serving.local_endpoint import deploy_local, load_deployment, stop_local

        ep_name = name or "local"
        if stop:
            stopped = stop_local(s, ep_name)
            console.print(f"local endpoint {ep_name!r} " + ("stopped" if stopped else "was not running"))
            return
        info = deploy_local(s, version=version, name=ep_name, runtime=runtime, auth=auth, port=port)
        console.print(f"deployed local endpoint {ep_name!r}")
        _print_endpoint(info, load_deployment(s, ep_name))
        console.print(f"next           visionops smoke-test --name {ep_name}  |  visionops webapp  |  "
                      "visionops deploy --stop")
        return
    from visionops import registry
    from visionops.serving.endpoint import EndpointInfo
    from visionops.workspace import get_workspace

    ws = get_workspace(s)
    ep_name = name or s.endpoint_name
    if stop:
        ws.delete_endpoint(EndpointInfo(name=ep_name, scoring_uri="", model_name=s.registered_model_name,
                                        model_version="", runtime="", backend="azure"))
        console.print(f"azure endpoint {ep_name!r} deleted")
        return
    rs = ws.registry_settings()  # the workspace's MLflow registry, not the local store
    ref = registry.get_version(rs, version) if version else registry.require_champion(rs)
    info = ws.deploy_endpoint(ref, name=ep_name, runtime=runtime or "onnx", auth=auth)
    console.print(f"deployed azure endpoint {ep_name!r}")
    _print_endpoint(info)


@app.command("smoke-test")
def smoke_test_cmd(
    name: EndpointNameOpt = "local",
    dataset: Annotated[Path | None, typer.Option(
        help="Data set folder whose test split holds the known image (default: the champion's); a "
             "classification set's test/<class>/<image> gives the image and its class.")] = None,
    conf: Annotated[float, typer.Option(help="Confidence threshold for the known-image check (detection).")] = 0.25,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """Check a deployed endpoint: health, a known image with its expected detections (or top-1 label), a bad
    request -> 4xx."""
    from visionops.serving.local_endpoint import endpoints_dir, resolve_endpoint
    from visionops.serving.smoke_test import known_image_for_champion, known_image_from_dataset, run_smoke_test

    s = _settings()
    endpoint = resolve_endpoint(s, name)
    known = known_image_from_dataset(dataset) if dataset else known_image_for_champion(s)
    report = run_smoke_test(endpoint, known, conf=conf)
    target = out or endpoints_dir(s) / endpoint.name / "smoke_test.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report.to_dict(), indent=2))
    console.print(report.summary(), highlight=False)
    console.print(f"report         {target}")
    if not report.ok:
        failed = [c.name for c in report.checks if not c.ok]
        raise VisionOpsError(f"smoke test failed: {', '.join(failed)} (see {target})")


@app.command("webapp")
def webapp_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the page.")] = 8000,
    name: EndpointNameOpt = "local",
) -> None:
    """The demo page: upload an image, see boxes and labels, or a classifier's top labels (calls the deployed
    endpoint server-side)."""
    from visionops.serving.local_endpoint import resolve_endpoint
    from visionops.webapp import serve

    s = _settings()
    endpoint = resolve_endpoint(s, name)
    console.print(f"web page on http://{host}:{port}/ calling {endpoint.name} ({endpoint.scoring_uri}); Ctrl-C stops")
    serve(s, host=host, port=port, name=name)  # looks the endpoint up per request: redeploys need no restart

"""`visionops`: the command line over the same functions the notebooks and pipeline steps call.

Every command exits 0 on success and non-zero with a one-line reason on failure; `--debug`
(anywhere on the line) shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table

from visionops.errors import DataValidationError, VisionOpsError
from visionops.settings import Settings, get_settings

console = Console(soft_wrap=True)  # never break paths and commands across lines
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="VisionOps: the object-detection lifecycle (data, training, evaluation, registry) from the command line.",
)
data_app = typer.Typer(
    no_args_is_help=True, help="Generate, import, validate, register, export and describe data sets."
)
app.add_typer(data_app, name="data")

ProfileOpt = Annotated[
    str, typer.Option("--profile", "-p", help="Run profile: smoke (CI), quick (laptop), full (GPU).")
]
BackendOpt = Annotated[str | None, typer.Option(help="Backend: local or azure (default: VISIONOPS_BACKEND or local).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="yolo, coco, voc or automl.")]


def _settings(backend: str | None = None, **overrides: Any) -> Settings:
    return get_settings(backend=backend, **overrides)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a command fails.")] = False,
) -> None:
    """Run `visionops COMMAND --help` for the options of each command."""


# --- data --------------------------------------------------------------------------------------
@data_app.command("generate")
def data_generate(
    profile: ProfileOpt = "quick",
    out: Annotated[Path | None, typer.Option(help="Target folder (default: data/work/<name>-<profile>).")] = None,
    n_train: Annotated[int | None, typer.Option(help="Training images (default: the profile's).")] = None,
    n_val: Annotated[int | None, typer.Option(help="Validation images.")] = None,
    n_test: Annotated[int | None, typer.Option(help="Test images.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Image side in pixels.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (same seed, same bytes, same version).")] = None,
) -> None:
    """Generate the synthetic shapes data set (deterministic by seed) with its manifest."""
    from visionops.data.dataset import generate_synthetic
    from visionops.profiles import get_profile

    s = _settings(seed=seed)
    spec = get_profile(profile, n_train=n_train, n_val=n_val, n_test=n_test, image_size=image_size).data
    spec = spec.model_copy(update={"seed": s.seed})
    target = out or s.data_dir / "work" / f"{s.dataset_name}-{profile}"
    generate_synthetic(spec, target, s.dataset_name)
    console.print(f"generated {spec.n_train}/{spec.n_val}/{spec.n_test} images (train/val/test) in {target}")


@data_app.command("import")
def data_import(
    source: Annotated[Path, typer.Argument(help="YOLO folder, COCO JSON, VOC folder or AutoML JSONL.")],
    fmt: FormatOpt = "yolo",
    images: Annotated[Path | None, typer.Option(help="COCO/AutoML image folder (default: beside the file).")] = None,
    out: Annotated[Path | None, typer.Option(help="Target folder (default: data/work/<name>-import).")] = None,
    name: Annotated[str | None, typer.Option(help="Data set name (default: VISIONOPS_DATASET_NAME).")] = None,
) -> None:
    """Import a data set into the VisionOps layout (train/val/test, data.yaml, manifest.json)."""
    from visionops.data.dataset import import_dataset

    s = _settings()
    if not source.exists():
        raise VisionOpsError(f"{source} does not exist; pass the path of the data set to import")
    dataset_name = name or s.dataset_name
    target = out or s.data_dir / "work" / f"{dataset_name}-import"
    import_dataset(source, target, dataset_name, fmt, images_dir=images)  # type: ignore[arg-type]
    console.print(f"imported {source} ({fmt}) into {target}; next: visionops data validate {target}")


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="Data set folder.")],
    report: Annotated[Path | None, typer.Option(help="Also write the full report as JSON here.")] = None,
) -> None:
    """Check every image and label; lists all problems (file, line, fix) and fails if there are any."""
    from visionops.data.validation import validate

    r = validate(path)
    if report:
        report.write_text(json.dumps(r.to_dict(), indent=2))
    if r.ok:
        console.print(r.summary())
        return
    err_console.print(r.summary(limit=50), highlight=False)
    raise DataValidationError(f"{len(r.problems)} problem(s) in {path}", report=r)


@data_app.command("register")
def data_register(
    path: Annotated[Path, typer.Argument(help="Data set folder (validated first).")],
    name: Annotated[str | None, typer.Option(help="Name (default: VISIONOPS_DATASET_NAME).")] = None,
    backend: BackendOpt = None,
) -> None:
    """Validate, version by content hash and register (same content, same version)."""
    from visionops.workspace import get_workspace

    ref = get_workspace(_settings(backend)).register_dataset(path, name)
    console.print(f"registered {ref.name}:{ref.version} at {ref.path}")


@data_app.command("list")
def data_list(backend: BackendOpt = None) -> None:
    """List registered data sets: name, version, counts, created."""
    from visionops.workspace import get_workspace

    table = Table("name", "version", "train", "val", "test", "created", "path")
    for r in get_workspace(_settings(backend)).list_datasets():
        c = r.counts
        table.add_row(r.name, r.version, *(str(c.get(s, {}).get("images", 0)) for s in ("train", "val", "test")),
                      r.created, r.path)
    console.print(table)


@data_app.command("export")
def data_export(
    path: Annotated[Path, typer.Argument(help="Data set folder.")],
    fmt: FormatOpt = "automl",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <path>/export/<format>).")] = None,
    image_url_prefix: Annotated[str | None, typer.Option(help="AutoML: prefix for image_url (azureml://...).")] = None,
) -> None:
    """Export to COCO JSON, Pascal VOC or Azure ML AutoML-for-Images JSONL + MLTable."""
    from visionops.data import formats

    target = out or Path(path) / "export" / fmt
    if fmt == "coco":
        written = formats.export_coco(path, target)
    elif fmt == "voc":
        written = {"voc": formats.export_voc(path, target)}
    elif fmt == "automl":
        written = formats.export_automl(path, target, image_url_prefix=image_url_prefix)
    else:
        raise VisionOpsError(f"cannot export to {fmt!r}; choose coco, voc or automl")
    for key, p in written.items():
        console.print(f"{key}: {p}")


@data_app.command("stats")
def data_stats(
    path: Annotated[Path, typer.Argument(help="Data set folder.")],
    plots: Annotated[Path | None, typer.Option(help="Write the plots (PNG) into this folder.")] = None,
) -> None:
    """Images and boxes per split and class, box sizes; optionally the plots."""
    from visionops.data import plots as dplots
    from visionops.data import stats

    tables = stats.load_tables(path)
    console.print(stats.split_table(tables).to_string())
    console.print(stats.class_table(tables).to_string())
    console.print(json.dumps(stats.summary(tables), indent=2, default=str))
    if plots:
        plots.mkdir(parents=True, exist_ok=True)
        dplots.plot_class_counts(tables, save=plots / "class_counts.png")
        dplots.plot_box_sizes(tables, save=plots / "box_sizes.png")
        dplots.plot_samples(path, save=plots / "samples.png")
        console.print(f"plots written to {plots}")


# --- model lifecycle -------------------------------------------------------------------------
def _dataset(s: Settings, dataset: str | None):
    from visionops.workspace import get_workspace

    name, _, version = (dataset or s.dataset_name).partition(":")
    return get_workspace(s).get_dataset(name, version or None)


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


# --- notebooks -----------------------------------------------------------------------------------
@app.command("notebooks")
def notebooks_cmd(
    profile: ProfileOpt = "quick",
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only this notebook (number such as 03, or name); repeat for more.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="NAME=VALUE for every notebook, VALUE read as YAML (e.g. keep_endpoint=true); repeatable.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for executed notebooks (default: outputs/notebooks).")
    ] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write an HTML copy of each notebook.")] = True,
    log_output: Annotated[bool, typer.Option("--log-output", help="Stream cell output to the console (CI logs).")
    ] = False,
) -> None:
    """Execute notebooks 00..05 in order with papermill (notebooks/profiles/<profile>.yaml); stops at the
    first failure and names the notebook and the cell."""
    import yaml

    from visionops.notebooks import run_notebooks

    params: dict[str, Any] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise VisionOpsError(f"--param {item!r}: write NAME=VALUE, e.g. --param epochs=5")
        params[name.strip()] = yaml.safe_load(value)
    runs = run_notebooks(
        profile, out_dir=out, only=only, parameters=params, html=html, log_output=log_output,
        on_event=lambda name, msg: console.print(f"[bold cyan]{name:>22}[/] {msg}", highlight=False),
    )
    table = Table("notebook", "seconds", "executed copy")
    for r in runs:
        table.add_row(r.name, f"{r.seconds:.1f}", str(r.html or r.output))
    console.print(table)
    console.print(f"total {sum(r.seconds for r in runs):.0f}s; summaries in {_settings().outputs_dir / 'notebooks'}")


@app.command("demo-summary")
def demo_summary_cmd(
    out: Annotated[Path | None, typer.Option(help="Folder of the executed notebooks (default: outputs/notebooks).")
    ] = None,
) -> None:
    """What the notebooks recorded: the decision, the model version, the endpoint check, where the executed
    notebooks are and how to open the MLflow UI (the end of `make demo`)."""
    from visionops.notebooks import demo_summary

    s = demo_summary(_settings(), out)
    if s["run_status"] is None and s["decision"] is None:
        raise VisionOpsError("no notebook results yet: run `make notebooks` (or `visionops notebooks`) first")
    console.rule(f"VisionOps walkthrough ({s['profile']} profile)")
    console.print(f"notebooks      {s['run_status']}: " + ", ".join(
        f"{n['name'][:2]} {n['status']} {n['seconds']:.0f}s" for n in s["notebooks"]))
    console.print(f"data set       {s['dataset']}")
    metrics = s["test_metrics"] or {}
    console.print(f"test metrics   {json.dumps({k: round(v, 4) for k, v in metrics.items()})}")
    console.print(f"decision       {(s['decision'] or '?').upper()}: {s['reason']}")
    registered = s["registered_version"]
    console.print(f"model          {'registered version ' + registered if registered else 'nothing registered'}; "
                  f"production version {s['champion_version'] or 'none'}")
    check = s["endpoint_check"] or {}
    checks = ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in (check.get("checks") or {}).items())
    latency = s["latency"] or {}
    console.print(f"endpoint       served v{s['deployed_version']}: {'PASSED' if check.get('ok') else 'FAILED'} "
                  f"({checks}); p50 {latency.get('p50_ms', '?')} ms")
    if s["endpoint_running"]:
        console.print(f"               still running at {s['endpoint_running']} (stop: visionops deploy --stop)")
    if s["pipeline"]:
        console.print(f"pipeline       {json.dumps(s['pipeline'])}")
    console.print(f"notebooks at   {s['executed_in']} (.ipynb and .html)")
    console.print(f"MLflow UI      {s['mlflow_ui']['command']}")
    console.print(f"               then open {s['mlflow_ui']['url']}")


@app.command("info")
def info_cmd() -> None:
    """Versions, hardware and the settings in effect (as notebook 00 shows them)."""
    from visionops.environment import describe

    console.print_json(json.dumps(describe(_settings()), default=str))


# --- serving -----------------------------------------------------------------------------------
RuntimeOpt = Annotated[
    str | None,
    typer.Option(help="onnx, pytorch or auto (default: VISIONOPS_SERVING_RUNTIME; auto = onnx when exported)."),
]
VersionOpt = Annotated[str | None, typer.Option(help="Registered model version (default: the production one).")]
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
        ws.delete_endpoint(EndpointInfo(name=ep_name, scoring_uri="", model_name=s.model_name, model_version="",
                                        runtime="", backend="azure"))
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
        help="Data set folder whose test split holds the known image (default: the champion's).")] = None,
    conf: Annotated[float, typer.Option(help="Confidence threshold for the known-image check.")] = 0.25,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """Check a deployed endpoint: health, a known image with expected detections, a bad request -> 4xx."""
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
    """The demo page: upload an image, see boxes and labels (calls the deployed endpoint server-side)."""
    from visionops.serving.local_endpoint import resolve_endpoint
    from visionops.webapp import serve

    s = _settings()
    endpoint = resolve_endpoint(s, name)
    console.print(f"web page on http://{host}:{port}/ calling {endpoint.name} ({endpoint.scoring_uri}); Ctrl-C stops")
    serve(s, host=host, port=port, name=name)  # looks the endpoint up per request: redeploys need no restart


# --- pipeline (the Azure ML components; run locally as subprocesses or submitted to Azure ML) -----
pipeline_app = typer.Typer(
    no_args_is_help=True,
    help="The validate -> train -> evaluate -> register pipeline: show, build, run, publish (local or azure).",
)
app.add_typer(pipeline_app, name="pipeline")
KnobOpt = Annotated[int | None, typer.Option(help="Override the profile's value.")]


def _pipeline_dataset(s: Settings, dataset: str | None):
    """A DatasetRef; on azure `name:version` is taken as given (no lookup), so `build` stays offline."""
    from visionops.data.catalog import DatasetRef

    if s.backend == "azure" and dataset and ":" in dataset:
        name, _, version = dataset.partition(":")
        return DatasetRef(name=name, version=version, path=f"azureml:{name}:{version}", created="", counts={},
                          classes=[], backend="azure")
    return _dataset(s, dataset)


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
    dataset: Annotated[str | None, typer.Option(help="name[:version] (default: the latest registered).")] = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    backend: BackendOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="Write the plan (local, JSON) or the pipeline job (azure, YAML).")] = None,
) -> None:
    """Build without running: local renders every command; azure builds and validates the pipeline job
    offline (needs no workspace when --dataset is name:version) and dumps its YAML."""
    from visionops.workspace import get_workspace

    s = _settings(backend)
    ws = get_workspace(s)
    knobs = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz, "batch": batch}.items() if v is not None}
    built = ws.build_pipeline(_pipeline_dataset(s, dataset), profile, **knobs)
    if s.backend == "azure":
        result = built._validate()
        if not result.passed:
            raise VisionOpsError(f"the pipeline job does not validate: {result.error_messages}")
        target = out or s.outputs_dir / "pipeline" / "azure_pipeline_job.yml"  # absolute paths: never commit it
        target.parent.mkdir(parents=True, exist_ok=True)
        built.dump(str(target))
        console.print(f"pipeline job validated; YAML written to {target}")
        return
    target = out or built.run_dir / "plan.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(built.model_dump_json(indent=2))
    for node in built.nodes:
        console.print(f"[bold]{node.name}[/]: {node.command}", highlight=False)
    console.print(f"plan written to {target}")


@pipeline_app.command("run")
def pipeline_run(
    profile: ProfileOpt = "quick",
    dataset: Annotated[str | None, typer.Option(help="name[:version] (default: the latest registered).")] = None,
    epochs: KnobOpt = None,
    imgsz: KnobOpt = None,
    batch: KnobOpt = None,
    backend: BackendOpt = None,
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Azure: wait for the job (local always waits).")] = True,
    metadata: Annotated[Path | None, typer.Option(
        help="Write the run and the resulting production model (name, version, tags) as JSON here.")] = None,
) -> None:
    """Run the pipeline: locally as subprocesses, or as an Azure ML pipeline job (exit 1 when it fails)."""
    from visionops.workspace import get_workspace

    s = _settings(backend)
    ws = get_workspace(s)
    knobs = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz, "batch": batch}.items() if v is not None}
    pipeline = ws.build_pipeline(_pipeline_dataset(s, dataset), profile, **knobs)
    if s.backend == "local":
        from visionops.pipeline.local_runner import run_plan

        info = run_plan(pipeline, s, on_step=lambda node, msg: console.print(f"[bold cyan]{node:>9}[/] {msg}",
                                                                             highlight=False))
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


# --- azure online endpoints, step by step (what the Azure DevOps deployment pipeline runs) --------
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


# --- entry point ---------------------------------------------------------------------------
def run_app(application: typer.Typer) -> None:
    """Run a typer app with our error contract: one line and exit 1 for user errors, 2 for bugs."""
    debug = "--debug" in sys.argv[1:]
    command = typer.main.get_command(application)
    args = [a for a in sys.argv[1:] if a != "--debug"]  # accepted anywhere on the line
    try:
        command.main(args=args, prog_name=Path(sys.argv[0]).name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except VisionOpsError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except Exception as exc:  # a bug or an unexpected environment problem
        if debug:
            raise
        err_console.print(
            f"[red]error:[/] unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            highlight=False,
        )
        sys.exit(2)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()

"""The Azure ML entities the azure backend sends, built from settings with no workspace at hand.

Kept apart from `AzureWorkspace` (which decides *when* to send them) so that each entity can be
built, validated and inspected offline: what a test asserts is exactly what would go over the
wire. Imported only by the azure backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, command, load_environment
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    AmlCompute,
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Data,
    DataCollector,
    DeploymentCollection,
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    OnlineRequestSettings,
    ProbeSettings,
)

from visionops.data.catalog import DatasetRef
from visionops.errors import ConfigError
from visionops.hashing import Hasher
from visionops.pipeline.components import load_components, step_environment
from visionops.pipeline.steps import model_name_for
from visionops.settings import Settings, checkout_root
from visionops.tasks import get_task

TRAINING_ENV = "training"
INFERENCE_ENV = "inference"  # the ONNX runtime's; serving.runtimes.ENVIRONMENTS maps each runtime
BATCH_ENV = "visionops-batch"
# The batch driver (the process that calls init()/run(mini_batch)) imports azureml-core: Microsoft's
# batch-endpoint guidance says a custom environment must add it (learn.microsoft.com/training/
# modules/deploy-model-batch-endpoint). It replaces the online server (azmlinfsrv) in the ONNX
# inference environment; the rest of that environment's pins are reused as they are.
AZUREML_CORE = "azureml-core==1.61.0.post4"
BATCH_OUTPUT = "predictions.jsonl"  # append_row: one JSON record per image, as `visionops predict` writes
# The layout of a data asset of each task (its `format` tag): visionops.data.kinds reads both
DATA_FORMATS = {"detect": "yolo", "classify": "folder-per-class"}

# GPUs per node of the Azure GPU sizes (learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated);
# a size not listed is trusted as given.
GPU_COUNTS = {
    s.lower(): n
    for s, n in (
        ("Standard_NC4as_T4_v3", 1), ("Standard_NC8as_T4_v3", 1), ("Standard_NC16as_T4_v3", 1),
        ("Standard_NC64as_T4_v3", 4), ("Standard_NC24ads_A100_v4", 1), ("Standard_NC48ads_A100_v4", 2),
        ("Standard_NC96ads_A100_v4", 4), ("Standard_ND96asr_v4", 8), ("Standard_ND96amsr_A100_v4", 8),
        ("Standard_NC40ads_H100_v5", 1), ("Standard_NC80adis_H100_v5", 2), ("Standard_ND96isr_H100_v5", 8),
    )
}
_CPU_FAMILIES = ("standard_d", "standard_e", "standard_f", "standard_b", "standard_a")
DDP_SHM = "16g"  # DDP workers exchange batches through /dev/shm; Azure ML's default of 2g is too small

# GPU sizes Azure has retired; a cluster of these can no longer be created (K80, P100, P40, M60
# retired 2023-08/09; V100 NCv3 retired 2025-09-30). Anchor templates still default to Standard_NC6.
RETIRED_SKUS = {
    s.lower()
    for s in (
        "Standard_NC6", "Standard_NC12", "Standard_NC24", "Standard_NC24r",
        "Standard_NC6_Promo", "Standard_NC12_Promo", "Standard_NC24_Promo", "Standard_NC24r_Promo",
        "Standard_NC6s_v2", "Standard_NC12s_v2", "Standard_NC24s_v2", "Standard_NC24rs_v2",
        "Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3", "Standard_NC24rs_v3",
        "Standard_ND6s", "Standard_ND12s", "Standard_ND24s", "Standard_ND24rs",
        "Standard_NV6", "Standard_NV12", "Standard_NV24",
        "Standard_NV6_Promo", "Standard_NV12_Promo", "Standard_NV24_Promo",
    )
}


def source_root() -> Path:
    """The code snapshot of jobs, pipeline steps and deployments: `src/` (filtered by
    src/.amlignore), taken from the component YAMLs' `code:` so it is the folder Azure ML uploads."""
    return load_components()["train"].code


def content_version(*paths: Path) -> str:
    """12 hex digits of the files' names and bytes: same files, same version, on every machine."""
    h = Hasher()
    for p in paths:
        h.file(Path(p))
    return h.hexdigest()


# --- assets ------------------------------------------------------------------------------------
def environment_asset(kind: str, root: Path | None = None) -> Environment:
    """environments/azureml/<kind>.yml loaded by azure-ai-ml (schema-checked; its conda_file path
    is relative to the YAML), versioned by the content of the YAML and its conda file."""
    path = (root or checkout_root()) / "environments" / "azureml" / f"{kind}.yml"
    if not path.is_file():
        raise ConfigError(f"{path} not found: the azure backend needs the environments/ folder of a source checkout")
    env = load_environment(source=str(path))
    files = [path]
    conda = _conda_path(path)
    if conda is not None:
        files.append(conda)
    env.version = content_version(*files)
    return env


def _conda_path(env_yaml: Path) -> Path | None:
    import yaml

    raw = yaml.safe_load(env_yaml.read_text())
    rel = raw.get("conda_file")
    return (env_yaml.parent / rel).resolve() if isinstance(rel, str) else None


def data_asset(ref: DatasetRef) -> Data:
    """A uri_folder data asset for a validated catalog copy: same name, content-hash version,
    counts and classes as tags (so get/list need no download)."""
    return Data(
        name=ref.name,
        version=ref.version,
        type=AssetTypes.URI_FOLDER,
        path=ref.path,
        description=f"VisionOps {ref.task} data set {ref.name} (with manifest.json), content-hash version",
        tags={
            "project": "visionops",
            "task": ref.task,
            "format": DATA_FORMATS[ref.task],
            "content_hash": ref.version,
            "classes": json.dumps(ref.classes),
            "counts": json.dumps(ref.counts, sort_keys=True),
        },
    )


def dataset_ref(asset: Any) -> DatasetRef:
    """The backend-neutral description of a data asset (from the tags data_asset() wrote)."""
    tags = dict(getattr(asset, "tags", None) or {})
    created = getattr(getattr(asset, "creation_context", None), "created_at", None)
    return DatasetRef(
        name=asset.name,
        version=str(asset.version),
        path=f"azureml:{asset.name}:{asset.version}",
        created=str(created or ""),
        counts=json.loads(tags.get("counts", "{}")),
        classes=json.loads(tags.get("classes", "[]")),
        backend="azure",
        task=get_task(tags.get("task")).name,  # assets registered before tasks existed are detection sets
    )


# --- compute and jobs --------------------------------------------------------------------------
def check_sku(sku: str, setting: str = "VISIONOPS_COMPUTE_SKU") -> str:
    if sku.lower() in RETIRED_SKUS:
        raise ConfigError(
            f"{setting}={sku} is a retired VM size and cannot be created; use a current one such as "
            "Standard_NC4as_T4_v3 (T4), Standard_NC24ads_A100_v4 (A100) or a CPU size like Standard_D4s_v3"
        )
    return sku


def compute_cluster(settings: Settings) -> AmlCompute:
    """The training cluster: scales to zero when idle, so it costs nothing between runs."""
    return AmlCompute(
        name=settings.compute_name,
        size=check_sku(settings.compute_sku),
        min_instances=0,
        max_instances=settings.compute_max_nodes,
        idle_time_before_scale_down=settings.compute_idle_seconds,
        tier="dedicated",
        tags={"project": "visionops"},
    )


def training_job(
    settings: Settings,
    *,
    dataset: DatasetRef,
    profile: str,
    environment: str,
    knobs: dict[str, Any] | None = None,
    root: Path | None = None,
    gpus_per_node: int | None = None,
    task: str | None = None,
) -> Any:
    """A command job running the train component's command on the cluster, for `task` (default:
    the data set's; the step checks it against the data it mounts).

    Built with `command(...)` from the component's own template (not by calling the loaded
    component: azure-ai-ml re-resolves its relative `code:` against the working directory then).
    Optional `$[[...]]` segments whose inputs are not given are dropped before sending.

    `gpus_per_node` (default: the setting) above 1 trains on that many GPUs of one node:
    Ultralytics starts DDP itself when its device is a list ("0,1,2,3"), so the job is a plain
    command on one instance with no `distribution` (with one, Azure ML would start a process per
    GPU, each of which would spawn DDP again). Ultralytics has no multi-node DDP, so
    instance_count stays 1; sweeps are what spread work over nodes (docs/azure.md)."""
    spec = load_components()["train"]
    knobs = {k: v for k, v in (knobs or {}).items() if v is not None}
    unknown = sorted(set(knobs) - set(spec.inputs) | set(knobs) & {"task", "data", "validation"})
    if unknown:
        raise ConfigError(f"train takes no knob(s) {unknown}; it takes "
                          f"{sorted(set(spec.inputs) - {'data', 'task', 'validation'})}")
    kind = get_task(task or dataset.task)
    gpus = gpus_per_node if gpus_per_node is not None else settings.gpus_per_node
    device = training_devices(settings, gpus, batch=knobs.get("batch", _profile_batch(profile)))
    inputs: dict[str, Any] = {
        "data": Input(type=AssetTypes.URI_FOLDER, path=_asset_uri(dataset)),
        "profile": profile,
        "task": kind.name,
        **knobs,
    }
    root = root or spec.code
    return command(
        name=None,
        display_name=f"train {dataset.name}:{dataset.version} ({profile})",
        description="visionops.cli.steps train on an Azure ML compute cluster",
        experiment_name=settings.experiment_name,
        command=spec.command_for(set(inputs)),
        code=str(root),
        inputs=inputs,
        outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
        environment=environment,
        # the model is named after the data set it trains on (<dataset>-detector) unless one is set;
        # several GPUs: the device list reaches the train step as VISIONOPS_DEVICE
        environment_variables=step_environment(
            settings.with_overrides(model_name=model_name_for(settings, dataset.name, kind), device=device),
            code_root=root, local=False),
        compute=settings.compute_name,
        instance_count=1,
        shm_size=DDP_SHM if gpus > 1 else None,
        tags={"project": "visionops", "profile": profile, "dataset": f"{dataset.name}:{dataset.version}",
              "task": kind.name, "decision_metric": kind.decision_metric,
              "gpus_per_node": str(gpus), "sku": settings.compute_sku},
    )


def gpu_count(sku: str) -> int | None:
    """GPUs per node of a VM size: 0 for the CPU families, None when the size is not known here."""
    low = sku.lower()
    if low in GPU_COUNTS:
        return GPU_COUNTS[low]
    return 0 if low.startswith(_CPU_FAMILIES) else None


def training_devices(settings: Settings, gpus: int, *, batch: int | None = None) -> str | None:
    """The device list of a training job on `gpus` GPUs of one node ("0,1,2,3"), or None for one
    GPU (the settings' device stays). Refuses, before anything is sent, a cluster size with fewer
    GPUs and a batch that does not give each GPU at least one image (Ultralytics splits it evenly
    and rejects AutoBatch under DDP)."""
    if gpus < 1:
        raise ConfigError(f"gpus_per_node must be at least 1, got {gpus}")
    if gpus == 1:
        return None
    have = gpu_count(settings.compute_sku)
    if have is not None and have < gpus:
        raise ConfigError(
            f"gpus_per_node={gpus} but VISIONOPS_COMPUTE_SKU={settings.compute_sku} has {have} GPU(s) per node; "
            "choose a size with enough, e.g. Standard_NC64as_T4_v3 (4 x T4), Standard_NC96ads_A100_v4 (4 x A100) "
            "or Standard_ND96isr_H100_v5 (8 x H100), or lower VISIONOPS_GPUS_PER_NODE. Nothing was submitted."
        )
    if batch is not None and (batch < gpus or batch % gpus):
        raise ConfigError(
            f"batch {batch} does not split evenly over {gpus} GPUs (Ultralytics gives each GPU batch / {gpus}); "
            f"use a multiple of {gpus}, e.g. --batch {gpus * max(1, batch // gpus)}"
        )
    return ",".join(str(i) for i in range(gpus))


def _profile_batch(profile: str) -> int | None:
    from visionops.profiles import get_profile

    try:
        return get_profile(profile).train.batch
    except Exception:  # noqa: BLE001 - an unknown profile is the train step's to report, with its choices
        return None


def _asset_uri(dataset: DatasetRef) -> str:
    """`azureml:name:version` for a registered data asset (a DatasetRef from either backend)."""
    return dataset.path if dataset.path.startswith("azureml:") else f"azureml:{dataset.name}:{dataset.version}"


# --- online endpoints --------------------------------------------------------------------------
def online_endpoint(settings: Settings, name: str, *, traffic: dict[str, int] | None = None) -> Any:
    """A managed (default) or Kubernetes online endpoint with key auth."""
    common = {
        "name": name,
        "auth_mode": "key",
        "description": f"VisionOps detector {settings.registered_model_name}",
        "tags": {"project": "visionops", "model": settings.registered_model_name},
    }
    if traffic is not None:
        common["traffic"] = dict(traffic)
    if settings.endpoint_kind == "kubernetes":
        if not settings.kubernetes_compute:
            raise ConfigError(
                "VISIONOPS_ENDPOINT_KIND=kubernetes needs VISIONOPS_KUBERNETES_COMPUTE: the name of the "
                "Kubernetes cluster attached to the workspace (AKS or Arc with the Azure ML extension)"
            )
        return KubernetesOnlineEndpoint(compute=settings.kubernetes_compute, **common)
    return ManagedOnlineEndpoint(**common)


def online_deployment(
    settings: Settings,
    *,
    endpoint_name: str,
    name: str,
    model_name: str,
    model_version: str,
    environment: str,
    runtime: str,
    root: Path | None = None,
) -> Any:
    """A deployment of a registered model version behind score.py.

    The code configuration is the `src/` folder with scoring script visionops/serving/score.py:
    the inference server puts the code folder on sys.path, which makes `import visionops` work
    without installing the package in the image."""
    code = root / "src" if root is not None else source_root()
    if not (code / "visionops" / "serving" / "score.py").is_file():
        raise ConfigError(f"{code / 'visionops/serving/score.py'} not found: deploy from a source checkout")
    common: dict[str, Any] = {
        "name": name,
        "endpoint_name": endpoint_name,
        "model": f"azureml:{model_name}:{model_version}",
        "environment": environment,
        "code_configuration": CodeConfiguration(code=str(code), scoring_script="visionops/serving/score.py"),
        "environment_variables": {
            "VISIONOPS_SERVING_RUNTIME": runtime,
            "VISIONOPS_SERVING_MODEL_NAME": model_name,
            "VISIONOPS_SERVING_MODEL_VERSION": str(model_version),
            "VISIONOPS_MAX_PAYLOAD_BYTES": str(settings.max_payload_bytes),
            "VISIONOPS_MAX_IMAGE_PIXELS": str(settings.max_image_pixels),
            "VISIONOPS_MAX_IMAGES_PER_REQUEST": str(settings.max_images_per_request),
            "YOLO_OFFLINE": "1",
            # production data collection: Azure ML's collector when data_collector (below) is on
            "VISIONOPS_BACKEND": "azure",
            "VISIONOPS_COLLECT": "true" if settings.collect else "false",
        },
        "instance_count": settings.endpoint_instance_count,
        "request_settings": OnlineRequestSettings(request_timeout_ms=60_000, max_concurrent_requests_per_instance=1),
        # model load (ONNX or PyTorch) takes a while on a cold node: do not kill it while it starts
        "readiness_probe": ProbeSettings(initial_delay=30, period=10, timeout=5, failure_threshold=30),
        "liveness_probe": ProbeSettings(initial_delay=30, period=10, timeout=5, failure_threshold=30),
        "tags": {"project": "visionops", "model": f"{model_name}:{model_version}", "runtime": runtime},
    }
    if settings.collect:
        common["data_collector"] = data_collector()
    if settings.endpoint_kind == "kubernetes":
        return KubernetesOnlineDeployment(instance_type=settings.kubernetes_instance_type, **common)
    return ManagedOnlineDeployment(
        instance_type=check_sku(settings.endpoint_instance_type, "VISIONOPS_ENDPOINT_INSTANCE_TYPE"), **common
    )


def data_collector() -> DataCollector:
    """The deployment's data collector: the `model_inputs` / `model_outputs` collections that
    score.py fills through azureml-ai-monitoring (visionops.monitoring.azure_collect), every row
    kept (the rows are per-image statistics, not pixels), files rolled hourly like the local ones."""
    from visionops.monitoring.azure_collect import INPUTS, OUTPUTS

    return DataCollector(
        collections={INPUTS: DeploymentCollection(enabled="true"), OUTPUTS: DeploymentCollection(enabled="true")},
        sampling_rate=1.0,
        rolling_rate="hour",
    )


# --- batch endpoints -----------------------------------------------------------------------------
def batch_environment(root: Path | None = None) -> Environment:
    """The ONNX inference environment for the batch driver: the same image and pins, with
    azureml-core (which the driver needs) instead of the online server. Derived from
    environments/azureml/inference.yml so that the two never drift; versioned by its content."""
    import yaml

    inference = environment_asset(INFERENCE_ENV, root)
    path = (root or checkout_root()) / "environments" / "azureml" / f"{INFERENCE_ENV}.yml"
    conda_path = _conda_path(path)
    if conda_path is None:
        raise ConfigError(f"{path} names no conda_file; the batch environment is built from it")
    conda = yaml.safe_load(conda_path.read_text())
    conda["name"] = BATCH_ENV
    for dep in conda["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            pins = [p for p in dep["pip"] if not str(p).startswith("azureml-inference-server-http")]
            dep["pip"] = [*pins, AZUREML_CORE]
    env = Environment(
        name=BATCH_ENV,
        image=inference.image,
        conda_file=conda,
        description="VisionOps batch scoring with ONNX Runtime (batch_score.py; the inference pins + azureml-core).",
        tags={"project": "visionops", "runtime": "onnx", "kind": "batch"},
    )
    env.version = Hasher().value([inference.image, conda]).hexdigest()
    return env


def batch_compute(settings: Settings) -> AmlCompute:
    """The batch scoring cluster (CPU by default: ONNX Runtime); scales to zero between jobs and up
    to the deployment's instance count while one runs."""
    return AmlCompute(
        name=settings.batch_compute_name,
        size=check_sku(settings.batch_compute_sku, "VISIONOPS_BATCH_COMPUTE_SKU"),
        min_instances=0,
        max_instances=settings.batch_instance_count,
        idle_time_before_scale_down=settings.compute_idle_seconds,
        tier="dedicated",
        tags={"project": "visionops", "use": "batch-scoring"},
    )


def batch_endpoint(settings: Settings, name: str, *, default_deployment: str | None = None) -> BatchEndpoint:
    """A batch endpoint (Azure AD auth, the only kind batch endpoints have); with
    `default_deployment`, invocations that name no deployment go to it."""
    return BatchEndpoint(
        name=name,
        description=f"VisionOps batch scoring of {settings.registered_model_name} (one JSON record per image)",
        tags={"project": "visionops", "model": settings.registered_model_name},
        default_deployment_name=default_deployment,
    )


def batch_deployment_name(model_version: str) -> str:
    """One deployment per model version (`v3`), so a new version is deployed next to the old one."""
    return f"v{model_version}".lower().replace(".", "-")[:32]


def batch_deployment(
    settings: Settings,
    *,
    endpoint_name: str,
    model_name: str,
    model_version: str,
    environment: str,
    root: Path | None = None,
) -> ModelBatchDeployment:
    """The registered version behind visionops/serving/batch_score.py on the batch cluster.

    How it scales: the input folder's files are cut into mini-batches of `batch_mini_batch_size`
    files, spread over `batch_instance_count` nodes x `batch_max_concurrency` processes per node;
    a mini-batch that fails or outlives `batch_timeout_s` is retried `batch_max_retries` times; the
    job fails once more than `batch_error_threshold` files failed (-1: never). Each process scores
    its files as `visionops predict` does and every record is appended to predictions.jsonl."""
    code = root / "src" if root is not None else source_root()
    if not (code / "visionops" / "serving" / "batch_score.py").is_file():
        raise ConfigError(f"{code / 'visionops/serving/batch_score.py'} not found: deploy from a source checkout")
    return ModelBatchDeployment(
        name=batch_deployment_name(model_version),
        endpoint_name=endpoint_name,
        model=f"azureml:{model_name}:{model_version}",
        environment=environment,
        code_configuration=CodeConfiguration(code=str(code), scoring_script="visionops/serving/batch_score.py"),
        compute=settings.batch_compute_name,
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=settings.batch_mini_batch_size,
            instance_count=settings.batch_instance_count,
            max_concurrency_per_instance=settings.batch_max_concurrency,
            output_action="append_row",
            output_file_name=BATCH_OUTPUT,
            retry_settings=BatchRetrySettings(max_retries=settings.batch_max_retries, timeout=settings.batch_timeout_s),
            error_threshold=settings.batch_error_threshold,
            logging_level="info",
            environment_variables={
                "VISIONOPS_SERVING_MODEL_NAME": model_name,
                "VISIONOPS_SERVING_MODEL_VERSION": str(model_version),
                "VISIONOPS_BATCH_SIZE": str(settings.batch_size),
                "VISIONOPS_BATCH_MAX_CONCURRENCY": str(settings.batch_max_concurrency),
                "VISIONOPS_MAX_IMAGE_PIXELS": str(settings.max_image_pixels),
                "YOLO_OFFLINE": "1",
            },
        ),
        tags={"project": "visionops", "model": f"{model_name}:{model_version}", "runtime": "onnx"},
    )

"""One settings object for every entry point: CLI, notebooks, pipeline steps, the scoring server.

Values come, later winning, from defaults, a `.env` file at the project root, `VISIONOPS_*`
environment variables, and explicit keyword overrides (notebook parameters, CLI options).
Defaults give the local backend with everything under `outputs/` and `data/`, so a fresh clone
needs no configuration at all.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Backend = Literal["local", "azure"]
ProfileName = Literal["smoke", "quick", "full"]
TaskName = Literal["detect", "classify"]

_ROOT_MARKER = "pyproject.toml"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder holding VisionOps' pyproject.toml, so that a notebook started in
    `notebooks/` and a CLI started at the root write to the same `outputs/`."""
    if env := os.environ.get("VISIONOPS_ROOT"):
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        marker = folder / _ROOT_MARKER
        if marker.is_file() and 'name = "visionops"' in marker.read_text(encoding="utf-8", errors="ignore"):
            return folder
    return here


def checkout_root() -> Path:
    """The source checkout this package runs from (src layout): where notebooks/, environments/
    and requirements/ are. Not the settings' root, which VISIONOPS_ROOT may move (tests,
    benchmarks); outside a checkout (an installed wheel), the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / _ROOT_MARKER).is_file() else Path.cwd()


class Settings(BaseSettings):
    """Where things live, which backend runs them, and the limits of the scoring server."""

    model_config = SettingsConfigDict(
        env_prefix="VISIONOPS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- where and how ---------------------------------------------------------------------
    backend: Backend = Field("local", description="local (MLflow sqlite, this machine) or azure (Azure ML).")
    profile: ProfileName = Field("quick", description="Default run profile: smoke, quick or full.")
    task: TaskName = Field("detect", description="Default task: detect (boxes) or classify (one label per image).")
    root: Path = Field(default_factory=find_project_root, description="Project root; outputs and data live here.")
    data_dir: Path | None = Field(None, description="Generated and registered data sets (default: <root>/data).")
    outputs_dir: Path | None = Field(None, description="Runs, reports, MLflow store (default: <root>/outputs).")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI (default: sqlite:///<outputs>/mlflow.db; azure: the workspace's)."
    )
    experiment_name: str = Field("visionops", description="MLflow experiment for training and evaluation runs.")
    dataset_name: str = Field("shapes", description="Name under which data sets are registered.")
    model_name: str | None = Field(
        None,
        description="Registry name of the model (default: <data set>-detector or <data set>-classifier: names follow "
        "the data and the task).",
    )
    device: str = Field("auto", description="Training/inference device: auto (GPU when present), cpu, 0, 0,1 ...")
    threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (default: every core; Ultralytics alone would use n-1)."
    )
    seed: int = Field(0, description="Seed for data generation and training.")

    # --- scoring server limits (served requests over a limit get a 4xx JSON error) ----------
    max_payload_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    max_image_pixels: int = Field(4096 * 4096, ge=64, description="Largest decoded image (width x height).")
    max_images_per_request: int = Field(8, ge=1, description="Most images in one request.")
    min_image_side: int = Field(8, ge=1, description="Smallest image side (pixels) the scoring server accepts.")

    # --- serving (score.py, the local endpoint) ---------------------------------------------
    serving_runtime: Literal["auto", "onnx", "pytorch"] = Field(
        "auto", description="Scoring runtime: onnx (ONNX Runtime), pytorch (Ultralytics), auto (onnx when exported)."
    )
    serving_host: str = Field(
        "127.0.0.1", description="Interface the local endpoint listens on (loopback; 0.0.0.0 exposes it)."
    )
    serving_workers: int = Field(1, ge=1, description="Worker processes of the local endpoint (azmlinfsrv/gunicorn).")

    # --- endpoint the web page calls (never sent to the browser) ------------------------------
    endpoint_url: str | None = Field(None, description="Scoring URL the web page calls (local or Azure).")
    endpoint_key: str | None = Field(None, description="Key for the endpoint (Authorization: Bearer <key>).")

    # --- azure backend --------------------------------------------------------------------
    subscription_id: str | None = Field(None, description="Azure subscription id (azure backend).")
    resource_group: str | None = Field(None, description="Azure resource group of the workspace.")
    workspace_name: str | None = Field(None, description="Azure ML workspace name.")
    compute_name: str = Field("gpu-cluster", description="Azure ML compute cluster for training jobs.")
    compute_sku: str = Field("Standard_NC4as_T4_v3", description="VM size when the cluster is created.")
    compute_max_nodes: int = Field(1, ge=1, description="Largest node count of the cluster.")
    endpoint_name: str = Field("visionops-shapes", description="Online endpoint name (azure backend).")
    endpoint_instance_type: str = Field("Standard_DS3_v2", description="VM size of the online deployment.")
    endpoint_instance_count: int = Field(1, ge=1, description="Instances of the online deployment.")
    endpoint_kind: Literal["managed", "kubernetes"] = Field(
        "managed", description="Online endpoint type: managed, or kubernetes (an attached AKS/Arc cluster)."
    )
    kubernetes_compute: str | None = Field(
        None, description="Attached Kubernetes compute for endpoint_kind=kubernetes."
    )
    kubernetes_instance_type: str = Field(
        "defaultinstancetype", description="Instance type on the Kubernetes compute (endpoint_kind=kubernetes)."
    )
    compute_idle_seconds: int = Field(
        900, ge=0, description="Idle seconds before the training cluster scales back to zero nodes."
    )
    gpus_per_node: int = Field(
        1, ge=1, le=16,
        description="GPUs per training node on Azure ML; above 1 Ultralytics runs DDP on one node (device 0,1,..).",
    )
    azure_config_file: Path | None = Field(
        None, description="Workspace config.json (default: <root>/config.json or <root>/.azureml/config.json)."
    )
    azure_client_factory: str | None = Field(
        None, description="module:function returning the MLClient to use (tests/notebooks inject a mock with it)."
    )

    # --- batch scoring (visionops predict; Azure ML batch endpoints) ----------------------------
    batch_size: int = Field(16, ge=1, le=1024, description="Images per ONNX Runtime call in visionops predict.")
    batch_endpoint_name: str = Field("visionops-batch", description="Azure ML batch endpoint name.")
    batch_compute_name: str = Field("cpu-cluster", description="Azure ML compute cluster of the batch deployment.")
    batch_compute_sku: str = Field("Standard_D4s_v3", description="VM size when the batch cluster is created.")
    batch_instance_count: int = Field(2, ge=1, description="Nodes a batch scoring job runs on.")
    batch_max_concurrency: int = Field(
        2, ge=1, description="Scoring processes per node of a batch job (they share the node's cores and memory)."
    )
    batch_mini_batch_size: int = Field(20, ge=1, description="Image files per run() call of the batch scoring script.")
    batch_error_threshold: int = Field(
        -1, ge=-1, description="Failed files a batch job tolerates before it fails (-1: no limit)."
    )
    batch_max_retries: int = Field(3, ge=0, description="Retries of a mini-batch that fails or times out.")
    batch_timeout_s: int = Field(300, ge=1, description="Seconds one mini-batch may take before it is retried.")

    # --- the production loop (visionops.monitoring) ------------------------------------------
    collect: bool = Field(
        True, description="Record each scored image's statistics and prediction (never fails a request)."
    )
    collect_dir: Path | None = Field(
        None, description="Where the scoring path writes records (default: <outputs>/production)."
    )
    collect_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of scored images also saved as files (0: statistics only)."
    )
    collect_sample_max_bytes: int = Field(
        2 * 1024 * 1024, ge=0, description="Largest image (encoded bytes) that sampling saves; bigger ones are skipped."
    )
    collect_max_file_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="A records file rotates when it reaches this size."
    )
    collect_max_files: int = Field(50, ge=1, description="Rotated records files kept (the oldest are deleted).")
    drift_p_value: float = Field(
        0.01, gt=0.0, lt=1.0, description="A two-sample test below this p-value flags a column as drifted."
    )
    drift_psi: float = Field(
        0.2, gt=0.0, description="A population stability index above this flags a column as drifted."
    )
    drift_min_records: int = Field(
        30, ge=2, description="Fewest production records a drift test needs; fewer -> 'not enough data', not drift."
    )

    @field_validator("root", mode="after")
    @classmethod
    def _absolute_root(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if self.data_dir is None:
            self.data_dir = self.root / "data"
        if self.outputs_dir is None:
            self.outputs_dir = self.root / "outputs"
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.outputs_dir = Path(self.outputs_dir).expanduser().resolve()
        return self

    # --- derived locations --------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        """The MLflow URI this process should log to; azure resolves it through the workspace."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.outputs_dir / 'mlflow.db'}"

    @property
    def registered_model_name(self) -> str:
        """The model the registry commands act on when none is named: `model_name` when set, else
        the one trained on the workspace's current data set of this task (`<data set>-detector`,
        `<data set>-classifier`), else on this task's synthetic data set."""
        if self.model_name:
            return self.model_name
        from visionops.tasks import get_task
        from visionops.workspace.current import read_current

        task = get_task(self.task)
        current = read_current(self.catalog_dir, task.name)
        return task.model_name(current[0] if current else task.synthetic_name(self.dataset_name))

    @property
    def production_dir(self) -> Path:
        """Where collection writes records and sampled images."""
        return Path(self.collect_dir).expanduser().resolve() if self.collect_dir else self.outputs_dir / "production"

    @property
    def artifacts_dir(self) -> Path:
        return self.outputs_dir / "mlartifacts"

    @property
    def runs_dir(self) -> Path:
        return self.outputs_dir / "runs"

    @property
    def catalog_dir(self) -> Path:
        return self.data_dir / "catalog"

    @property
    def yolo_config_dir(self) -> Path:
        return self.outputs_dir / ".ultralytics"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some fields replaced (notebook parameters, CLI options); None means keep."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        if not clean:
            return self
        data = self.model_dump()
        if "root" in clean:  # paths derived from the old root follow the new one
            data["data_dir"] = data["outputs_dir"] = None
        data.update(clean)
        return Settings(_env_file=None, **data)


@lru_cache(maxsize=1)
def _cached() -> Settings:
    root = find_project_root()
    return Settings(_env_file=root / ".env")


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `<root>/.env`, with explicit overrides on top."""
    return _cached().with_overrides(**overrides)


def reset_settings_cache() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    _cached.cache_clear()

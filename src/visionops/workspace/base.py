"""What every backend offers: data sets, training, endpoints, pipelines.

Tracking and the model registry are not part of the seam: both backends speak MLflow, only the
tracking URI differs (`tracking_uri()`), so `visionops.registry` and `visionops.tracking` serve both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionops.data.catalog import DatasetRef
from visionops.errors import VisionOpsError
from visionops.pipeline.runs import PipelineRunInfo, PublishedPipeline
from visionops.serving.endpoint import EndpointInfo
from visionops.settings import Settings

if TYPE_CHECKING:
    from visionops.registry import ModelVersionRef


class Workspace(ABC):
    backend: str = "abstract"

    def __init__(self, settings: Settings):
        self.settings = settings

    # --- tracking ----------------------------------------------------------------------------
    def registry_settings(self) -> Settings:
        """Settings whose tracking URI is this backend's: pass them to visionops.registry and
        visionops.tracking, so the same registry code serves both backends."""
        return self.settings.with_overrides(mlflow_tracking_uri=self.tracking_uri())

    @abstractmethod
    def tracking_uri(self) -> str:
        """The MLflow tracking URI runs and the registry use on this backend."""

    # --- data sets ---------------------------------------------------------------------------
    @abstractmethod
    def register_dataset(self, path: Path, name: str | None = None, source: dict[str, Any] | None = None) -> DatasetRef:
        """Validate, version by content hash and register; same content -> same version."""

    @abstractmethod
    def get_dataset(self, name: str | None = None, version: str | None = None) -> DatasetRef:
        """A registered version (latest when version is None)."""

    @abstractmethod
    def list_datasets(self, name: str | None = None) -> list[DatasetRef]:
        """Registered versions, oldest first."""

    # --- training ----------------------------------------------------------------------------
    @abstractmethod
    def submit_training(self, dataset: DatasetRef, profile: str, **knobs: Any) -> str:
        """Start training; returns a job id (local: the finished MLflow run id)."""

    @abstractmethod
    def wait_training(self, job_id: str) -> dict[str, Any]:
        """Block until the job ends; returns its status and metrics; raises when it failed."""

    # --- environments -------------------------------------------------------------------------
    def prepare_environments(self) -> dict[str, str]:
        """Make the environments that jobs and deployments run in exist: {kind: id}. Locally this
        Python environment runs everything, so there is nothing to register ({}); the azure
        backend registers its Azure ML environments by content version."""
        return {}

    # --- the current data set ---------------------------------------------------------------
    def current_dataset(self, task: str | None = None) -> DatasetRef | None:
        """The data set that an import or registration last made current here (of `task` when
        given: each task has its own current data set), if any."""
        from visionops.workspace.current import read_current

        found = read_current(self.settings.catalog_dir, task)
        if found is None:
            return None
        try:
            return self.get_dataset(*found)
        except VisionOpsError:
            return None  # its catalog entry is gone: as if nothing were current

    def make_current(self, dataset: DatasetRef) -> DatasetRef:
        """Make `dataset` the one every step of its task uses when it is not told otherwise."""
        from visionops.workspace.current import write_current

        write_current(self.settings.catalog_dir, dataset.name, dataset.version, getattr(dataset, "task", "detect"))
        return dataset

    def resolve_dataset(self, spec: str | None, task: str | None = None) -> DatasetRef | None:
        """`name[:version]` -> that registered data set (no version: its latest); None -> the
        current one of `task` (None when nothing is current). An unknown name or version is a
        one-line error that lists what is registered."""
        from visionops.errors import DatasetNotFoundError

        if spec is None or not str(spec).strip():
            return self.current_dataset(task)
        name, _, version = str(spec).strip().partition(":")
        try:
            return self.get_dataset(name, version or None)
        except VisionOpsError as exc:
            known = [f"{r.name}:{r.version}" for r in self.list_datasets()]
            raise DatasetNotFoundError(
                f"no data set {spec!r} in this workspace; registered: {', '.join(known) or 'none'} "
                "(import one with `visionops data import SOURCE`, or notebook 01 with source=...)"
            ) from exc

    # --- endpoints -----------------------------------------------------------------------------
    @abstractmethod
    def deploy_endpoint(
        self,
        model: ModelVersionRef | None = None,
        *,
        name: str | None = None,
        runtime: str = "onnx",
        auth: bool = True,
    ) -> EndpointInfo:
        """Serve a registered version (default: the champion) behind score.py; replaces an endpoint
        of the same name. Key auth (Authorization: Bearer <key>) unless auth=False. The returned
        info carries the key as a SecretStr (never in its repr or dumps)."""

    def check_endpoint(self, endpoint: EndpointInfo, dataset_dir: Path, *, conf: float = 0.25) -> dict[str, Any]:
        """The endpoint's smoke test (health, a known image of the data set's test split, a bad
        request answered 4xx): {"ok", "checks", "detail"}. The azure backend smoke-tests every
        deployment before it takes traffic and reports that."""
        from visionops.serving.smoke_test import known_image_from_dataset, run_smoke_test

        smoke = run_smoke_test(endpoint, known_image_from_dataset(dataset_dir), conf=conf)
        return {"ok": smoke.ok, "checks": {c.name: c.ok for c in smoke.checks}, "detail": smoke.summary()}

    @abstractmethod
    def invoke_endpoint(self, endpoint: EndpointInfo, payload: dict[str, Any]) -> dict[str, Any]:
        """POST the JSON payload ({"image": base64} or {"images": [...]}, conf, iou, max_det) and
        return the endpoint's JSON; raises EndpointError (status and error body) on a 4xx/5xx."""

    @abstractmethod
    def delete_endpoint(self, endpoint: EndpointInfo) -> None:
        """Tear the endpoint down (local: stop the server and remove its key); no-op when gone."""

    # --- pipelines -----------------------------------------------------------------------------
    # The validate -> train -> evaluate -> register components (visionops.pipeline.components):
    # local runs their commands as subprocesses, azure submits them as an Azure ML pipeline job.
    @abstractmethod
    def build_pipeline(self, dataset: DatasetRef | None = None, profile: str | None = None, *,
                       task: str | None = None, **knobs: Any) -> Any:
        """The pipeline bound to a data set (default: the latest version of the settings' name) and
        a profile (knobs: epochs, imgsz, batch), not yet run; `task` (default: the data set's own)
        must be the data set's. Local: a PipelinePlan with every
        command rendered; azure: an azure-ai-ml PipelineJob (validates and dumps offline)."""

    @abstractmethod
    def submit_pipeline(self, pipeline: Any, *, wait: bool = True) -> PipelineRunInfo:
        """Run what build_pipeline returned. With wait (always, locally) block until it ends and
        raise when a step failed; otherwise return at once with the run id and URL."""

    @abstractmethod
    def wait_pipeline(self, run_id: str) -> PipelineRunInfo:
        """Block until the run ends; raises (naming the failed step and where its log is) unless
        it completed."""

    @abstractmethod
    def publish_pipeline(self, *, name: str | None = None, cron: str | None = None) -> PublishedPipeline:
        """Freeze the pipeline definition under its content version (azure: registered components;
        local: a definition folder) so that it can be re-run as it was; azure also creates a
        retraining schedule when `cron` is given."""

    def run_pipeline(
        self, dataset: DatasetRef | None = None, profile: str | None = None, **knobs: Any
    ) -> PipelineRunInfo:
        """build_pipeline + submit_pipeline(wait=True): the whole pipeline, start to end."""
        return self.submit_pipeline(self.build_pipeline(dataset, profile, **knobs), wait=True)

    # --- the AutoML-for-Images benchmark --------------------------------------------------------
    def build_automl(self, dataset: DatasetRef, data_dir: Path, options: Any = None, *,
                     image_url_prefix: str | None = None) -> tuple[dict[str, Any], Path]:
        """The AutoML image object detection job on the data set's MLTables (exported from
        `data_dir`, its local folder, into outputs/automl/<name>-<version>/, beside the job YAML):
        (spec, YAML path). `image_url_prefix`: where AutoML reads the images (azure: the data
        asset's datastore URI); `options`: a `visionops.sweep.automl.AutoMLOptions`."""
        from visionops.sweep.automl import automl_folder, automl_job_dict, export_mltables, write_job_yaml

        folder = automl_folder(self.settings, dataset)
        export_mltables(data_dir, folder, image_url_prefix=image_url_prefix)
        doc = automl_job_dict(self.settings, dataset, options)
        return doc, write_job_yaml(doc, folder)

    @abstractmethod
    def submit_automl(self, dataset: DatasetRef, data_dir: Path, options: Any = None) -> Any:
        """Build the AutoML job (`build_automl`), check it with azure-ai-ml's own loader, and submit
        it where AutoML runs: the azure backend submits to the workspace; the local backend has no
        AutoML and returns the checked job unsubmitted. Returns a `visionops.sweep.automl.AutoMLJobInfo`."""

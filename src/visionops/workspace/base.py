"""What every backend offers: data sets, training, endpoints, pipelines.

Tracking and the model registry are not part of the seam: both backends speak MLflow, only the
tracking URI differs (`tracking_uri()`), so `visionops.registry` and `visionops.tracking` serve both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionops.data.catalog import DatasetRef
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
    def build_pipeline(self, dataset: DatasetRef | None = None, profile: str | None = None, **knobs: Any) -> Any:
        """The pipeline bound to a data set (default: the latest version of the settings' name) and
        a profile (knobs: epochs, imgsz, batch), not yet run. Local: a PipelinePlan with every
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

"""The local backend: catalog on disk, MLflow on sqlite, training in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionops.data.catalog import DatasetRef, LocalDatasetCatalog
from visionops.pipeline.runs import PipelineRunInfo, PublishedPipeline
from visionops.serving.endpoint import EndpointClient, EndpointInfo
from visionops.training import TrainResult
from visionops.workspace.base import Workspace


class LocalWorkspace(Workspace):
    backend = "local"

    def __init__(self, settings):
        super().__init__(settings)
        self.catalog = LocalDatasetCatalog(settings.catalog_dir)
        self._jobs: dict[str, TrainResult] = {}

    def tracking_uri(self) -> str:
        return self.settings.tracking_uri

    def register_dataset(self, path: Path, name: str | None = None, source: dict[str, Any] | None = None) -> DatasetRef:
        return self.catalog.register(Path(path), name or self.settings.dataset_name, source)

    def get_dataset(self, name: str | None = None, version: str | None = None) -> DatasetRef:
        return self.catalog.get(name or self.settings.dataset_name, version)

    def list_datasets(self, name: str | None = None) -> list[DatasetRef]:
        return self.catalog.list(name)

    def submit_training(self, dataset: DatasetRef, profile: str, **knobs: Any) -> str:
        """Trains right here with the lifecycle runner (the laptop is the compute), reusing a training
        of the same request (notebook 02's); the job id is the MLflow run id."""
        from visionops.runner import Runner

        result = Runner(self.settings, profile, knobs, workspace=self).train(dataset)
        self._jobs[result.run_id] = result
        return result.run_id

    def wait_training(self, job_id: str) -> dict[str, Any]:
        result = self._jobs[job_id]
        return {"status": "Completed", "run_id": job_id, "metrics": result.metrics, "weights": str(result.weights)}

    def deploy_endpoint(self, model=None, *, name=None, runtime="onnx", auth=True) -> EndpointInfo:
        """azmlinfsrv with score.py on a loopback port, in the background (it outlives this process,
        like an Azure endpoint); outputs/endpoints/<name>/ holds its record, log and 0600 key file."""
        from visionops.serving.local_endpoint import DEFAULT_NAME, deploy_local

        return deploy_local(self.settings, model=model, name=name or DEFAULT_NAME, runtime=runtime, auth=auth)

    def invoke_endpoint(self, endpoint: EndpointInfo, payload: dict[str, Any]) -> dict[str, Any]:
        with EndpointClient(endpoint) as client:
            return client.score(payload)

    def delete_endpoint(self, endpoint: EndpointInfo) -> None:
        from visionops.serving.local_endpoint import stop_local

        stop_local(self.settings, endpoint.name)

    # --- pipelines: the lifecycle runner, each step as its component command -------------------
    def build_pipeline(self, dataset: DatasetRef | None = None, profile: str | None = None, *,
                       task: str | None = None, **knobs: Any):
        """A LocalPipeline bound to the data set (default: the current one of `task`, else the last
        one made current) with every command rendered; `task` must be the data set's."""
        from visionops.pipeline.local_pipeline import build
        from visionops.tasks import check_same_task

        dataset = dataset or self.current_dataset(task) or self.get_dataset()
        check_same_task(task, dataset.task, f"data set {dataset.name}:{dataset.version}")
        return build(dataset, profile or self.settings.profile, knobs)

    def submit_pipeline(self, pipeline, *, wait: bool = True) -> PipelineRunInfo:
        """Runs it here and now (the laptop is the compute), so it always waits."""
        from visionops.pipeline.local_pipeline import run

        return run(pipeline, self.settings, workspace=self)

    def wait_pipeline(self, run_id: str) -> PipelineRunInfo:
        from visionops.errors import TrainingError
        from visionops.pipeline.local_pipeline import read_run

        info = read_run(self.settings, run_id)
        if info.status != "Completed":
            failed = [s.name for s in info.steps if s.status == "Failed"]
            raise TrainingError(f"local pipeline run {run_id} ended {info.status} (failed: {failed}); see {info.url}")
        return info

    def publish_pipeline(self, *, name: str | None = None, cron: str | None = None) -> PublishedPipeline:
        """Freeze the definition under outputs/pipelines/<name>/<version>/; schedules need Azure."""
        from visionops.errors import ConfigError
        from visionops.pipeline.components import PIPELINE_NAME
        from visionops.pipeline.local_pipeline import publish_local

        if cron:
            raise ConfigError(
                "the local backend has no scheduler: publish with backend=azure for a retraining schedule, "
                "or run `visionops pipeline run` from cron or an Azure DevOps schedule"
            )
        return publish_local(self.settings, name or PIPELINE_NAME)

    def submit_automl(self, dataset: DatasetRef, data_dir: Path, options: Any = None) -> Any:
        """No AutoML on this machine: the job is built and checked offline (azure-ai-ml's loader, when
        the azure extra is installed) and returned unsubmitted; the azure backend submits it."""
        from visionops.sweep.automl import AutoMLJobInfo, load_automl_job

        doc, path = self.build_automl(dataset, data_dir, options)
        try:
            import azure.ai.ml  # noqa: F401 - only to know whether the SDK's checks can run
        except ImportError:
            validated, note = False, ("not checked: the azure extra (azure-ai-ml) is not installed; "
                                      "submitting needs the azure backend")
        else:
            load_automl_job(path)  # raises ConfigError naming the file and field when the SDK rejects it
            validated, note = True, ("checked offline with azure-ai-ml's load_job; not submitted: AutoML runs "
                                     "in Azure ML, submitting needs the azure backend")
        return AutoMLJobInfo(backend=self.backend, submitted=False, validated=validated, status="NotSubmitted",
                             spec_path=str(path), spec=doc, note=note)

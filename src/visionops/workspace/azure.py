"""The azure backend: the same Workspace interface on Azure Machine Learning (azure-ai-ml, SDK v2).

    data sets   uri_folder data assets, validated and versioned locally by content hash
                (the same content gives the same version, which is reused, never re-uploaded)
    training    a command job (the train component's command) on a compute cluster
    pipelines   the validate -> train -> evaluate -> register components as a pipeline job;
                published as registered components (+ an optional retraining schedule)
    sweeps      a sweep job over the search space (standalone), or the pipeline with a sweep
                step in place of train (the best trial goes through evaluate and register)
    AutoML      the AutoML-for-Images job, and its best child run's metrics read back through
                MLflow for the comparison with the champion
    batch       batch endpoints: a deployment per model version, invoked on a folder in the cloud
    endpoints   managed (or Kubernetes) online endpoints with key auth; blue/green rollout:
                a new deployment gets 0% traffic, is smoke-tested, then takes all traffic
    registry    MLflow on the workspace's tracking URI: the same visionops.registry code

Everything sent to Azure goes through `self.ml_client`. Pass `ml_client=` (or set
VISIONOPS_AZURE_CLIENT_FACTORY) to hand in another client, e.g. a mock in tests and notebooks.
Imported only when the azure backend is chosen.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from pydantic import BaseModel

from visionops.data.catalog import DatasetRef, LocalDatasetCatalog
from visionops.errors import ConfigError, ModelNotFoundError, TrainingError
from visionops.pipeline.runs import PipelineRunInfo, PublishedPipeline, StepInfo
from visionops.serving.runtimes import choose_runtime, inference_environment
from visionops.settings import Settings
from visionops.workspace.azure_client import make_ml_client
from visionops.workspace.azure_entities import (
    TRAINING_ENV,
    batch_compute,
    batch_deployment,
    batch_endpoint,
    batch_environment,
    compute_cluster,
    data_asset,
    dataset_ref,
    environment_asset,
    online_deployment,
    online_endpoint,
    source_root,
    training_job,
)
from visionops.workspace.base import Workspace

TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding"}
# What one image's prediction holds for each task (the serving contract): the smoke test's shape check
PREDICTION_KEYS = {"detect": ("boxes", "labels", "confidences"), "classify": ("labels", "class_ids", "probabilities")}
BLUE, GREEN = "blue", "green"


class StagedDeployment(BaseModel):
    """A deployment created next to the live one with 0% traffic, waiting for its smoke test."""

    endpoint: str
    deployment: str
    previous: list[str]  # deployments that served traffic when this one was staged
    model_name: str
    model_version: str
    runtime: str
    already_live: bool = False  # the model version was serving already: nothing was created
    task: str | None = None  # what the smoke tests check the served model against (None: not checked)


class BatchDeploymentInfo(BaseModel):
    """A batch endpoint and the deployment its invocations go to by default."""

    endpoint: str
    deployment: str
    model_name: str
    model_version: str
    compute: str
    instance_count: int
    max_concurrency_per_instance: int
    mini_batch_size: int
    output_file: str


class SweepJobInfo(BaseModel):
    """A submitted Azure ML sweep: the standalone sweep job, or the pipeline with a sweep step."""

    kind: str  # "sweep" | "pipeline"
    job_name: str
    status: str
    url: str | None = None
    dataset: str
    task: str
    primary_metric: str
    goal: str
    max_total_trials: int
    max_concurrent_trials: int


class AzureWorkspace(Workspace):
    backend = "azure"

    def __init__(self, settings: Settings, ml_client: Any = None, credential: Any = None):
        """`ml_client`: an MLClient (or a stand-in with the same operations); default: one made
        from settings or config.json (see visionops.workspace.azure_client). `credential`: the
        Azure credential for that client (default: DefaultAzureCredential)."""
        super().__init__(settings)
        self._ml_client = ml_client
        self._credential = credential
        self._tracking_uri: str | None = None
        if ml_client is None and not settings.azure_client_factory:
            from visionops.workspace.azure_client import workspace_ids

            workspace_ids(settings)  # fail now, naming the missing settings, not on first use

    @property
    def ml_client(self) -> Any:
        if self._ml_client is None:
            self._ml_client = make_ml_client(self.settings, self._credential)
        return self._ml_client

    # --- tracking and registry -----------------------------------------------------------------
    def tracking_uri(self) -> str:
        """The workspace's MLflow URI (azureml://...), or VISIONOPS_MLFLOW_TRACKING_URI when set."""
        if self.settings.mlflow_tracking_uri:
            return self.settings.mlflow_tracking_uri
        if self._tracking_uri is None:
            client = self.ml_client
            ws = client.workspaces.get(client.workspace_name)
            if not getattr(ws, "mlflow_tracking_uri", None):
                raise ConfigError(f"workspace {client.workspace_name!r} reports no MLflow tracking URI")
            self._tracking_uri = str(ws.mlflow_tracking_uri)
        return self._tracking_uri

    # --- data sets -----------------------------------------------------------------------------
    def register_dataset(self, path: Path, name: str | None = None, source: dict[str, Any] | None = None) -> DatasetRef:
        """Validate and version locally (the local catalog copy is what gets uploaded), then create
        the uri_folder asset unless that exact version exists already."""
        name = name or self.settings.dataset_name
        local = LocalDatasetCatalog(self.settings.catalog_dir).register(Path(path), name, source)
        try:
            existing = self.ml_client.data.get(name=name, version=local.version)
            return dataset_ref(existing)
        except ResourceNotFoundError:
            pass
        created = self.ml_client.data.create_or_update(data_asset(local))
        return dataset_ref(created)

    def get_dataset(self, name: str | None = None, version: str | None = None) -> DatasetRef:
        name = name or self.settings.dataset_name
        try:
            if version in (None, "latest"):
                asset = self.ml_client.data.get(name=name, label="latest")
            else:
                asset = self.ml_client.data.get(name=name, version=version)
        except ResourceNotFoundError as exc:
            what = f"{name}:{version}" if version else name
            raise ConfigError(
                f"no data asset {what} in workspace {self.ml_client.workspace_name!r}; "
                "register one with `visionops data register --backend azure <folder>`"
            ) from exc
        return dataset_ref(asset)

    def list_datasets(self, name: str | None = None) -> list[DatasetRef]:
        names = [name] if name else sorted({c.name for c in self.ml_client.data.list()})
        refs = [dataset_ref(a) for n in names for a in self.ml_client.data.list(name=n)]
        return sorted(refs, key=lambda r: (r.name, r.created))

    # --- environments and compute --------------------------------------------------------------
    def environment_id(self, kind: str) -> str:
        """`azureml:<name>:<content hash>` of environments/azureml/<kind>.yml (computed offline)."""
        env = environment_asset(kind)
        return f"azureml:{env.name}:{env.version}"

    def ensure_environment(self, kind: str) -> str:
        """Register the environment version unless it exists; returns its `azureml:` id."""
        env = environment_asset(kind)
        try:
            self.ml_client.environments.get(name=env.name, version=env.version)
        except ResourceNotFoundError:
            self.ml_client.environments.create_or_update(env)
        return f"azureml:{env.name}:{env.version}"

    def _current_name(self) -> str:
        """The current data set's name (the team's, once imported), else the settings' dataset_name."""
        from visionops.workspace.current import read_current

        current = read_current(self.settings.catalog_dir, self.settings.task)
        return current[0] if current else self.settings.dataset_name

    def prepare_environments(self) -> dict[str, str]:
        """The training and inference environments, registered unless that content version exists."""
        return {kind: self.ensure_environment(kind) for kind in ("training", "inference")}

    def check_endpoint(self, endpoint: Any, dataset_dir: Path, *, conf: float = 0.25) -> dict[str, Any]:
        """deploy_endpoint smoke-tested the new deployment before shifting traffic (and raised if it
        failed), so an endpoint that reached here passed it."""
        return {"ok": True, "checks": {}, "detail": "smoke-tested by deploy_endpoint before the traffic shift"}

    def ensure_compute(self) -> Any:
        """The training cluster, created (scale-to-zero) when missing."""
        wanted = compute_cluster(self.settings)
        try:
            return self.ml_client.compute.get(wanted.name)
        except ResourceNotFoundError:
            return self.ml_client.compute.begin_create_or_update(wanted).result()

    # --- jobs ----------------------------------------------------------------------------------
    def submit_training(self, dataset: DatasetRef, profile: str, *, gpus_per_node: int | None = None,
                        task: str | None = None, **knobs: Any) -> str:
        """Submit the train step as a command job; returns the job name. `gpus_per_node` (default:
        VISIONOPS_GPUS_PER_NODE) above 1 trains with Ultralytics DDP on that many GPUs of one node;
        `task` (default: the data set's) is checked against the data set's. The job is checked
        (cluster size, batch split, task) before anything is created."""
        job = training_job(self.settings, dataset=dataset, profile=profile, environment=self.environment_id(
            TRAINING_ENV), knobs=knobs, gpus_per_node=gpus_per_node,
            task=self._task(dataset, task))  # checked before anything is created
        self.ensure_environment(TRAINING_ENV)  # the same content-hash id as environment_id's
        self.ensure_compute()
        created = self.ml_client.jobs.create_or_update(job, experiment_name=self.settings.experiment_name)
        return str(created.name)

    def wait_job(self, job_name: str, *, stream: bool = True, poll_s: float = 30.0) -> Any:
        """Block until the job ends (streaming its log, or polling); raise TrainingError with the
        job's studio URL unless it Completed."""
        from azure.ai.ml.exceptions import JobException

        if stream:
            try:
                self.ml_client.jobs.stream(job_name)
            except JobException:
                pass  # the status below says what happened, with the URL
        job = self.ml_client.jobs.get(job_name)
        while job.status not in TERMINAL:
            time.sleep(poll_s)
            job = self.ml_client.jobs.get(job_name)
        if job.status != "Completed":
            raise TrainingError(
                f"Azure ML job {job_name} ended {job.status}; see its logs at {getattr(job, 'studio_url', None)}"
            )
        return job

    def wait_training(self, job_id: str) -> dict[str, Any]:
        job = self.wait_job(job_id)
        return {
            "status": job.status,
            "run_id": job_id,  # Azure ML's MLflow run id is the job name
            "url": getattr(job, "studio_url", None),
            "metrics": self._run_metrics(job_id),
        }

    def _run_metrics(self, run_id: str) -> dict[str, float]:
        import mlflow
        from mlflow.exceptions import MlflowException

        from visionops.tracking import configure_mlflow

        try:
            configure_mlflow(self.registry_settings())
            return dict(mlflow.MlflowClient().get_run(run_id).data.metrics)
        except MlflowException:
            return {}

    # --- pipelines -----------------------------------------------------------------------------
    def build_pipeline(self, dataset: DatasetRef | None = None, profile: str | None = None, *,
                       task: str | None = None, **knobs: Any) -> Any:
        """The pipeline job (not submitted), pinned to the training environment's content version;
        `task` (default: the data set's) becomes the pipeline's `task` input."""
        from visionops.pipeline.azure_pipeline import build_pipeline_job
        from visionops.pipeline.components import check_knobs, step_environment

        check_knobs(knobs)
        dataset = dataset or self.get_dataset()
        data = dataset.path if dataset.path.startswith("azureml:") else f"azureml:{dataset.name}:{dataset.version}"
        return build_pipeline_job(
            data=data,
            profile=profile or self.settings.profile,
            task=self._task(dataset, task),
            compute=self.settings.compute_name,
            environment=self.environment_id(TRAINING_ENV),
            environment_variables=step_environment(self.settings, code_root=source_root(), local=False),
            experiment_name=self.settings.experiment_name,
            **knobs,
        )

    @staticmethod
    def _task(dataset: DatasetRef, task: str | None) -> str:
        """The task a job trains: the one asked for, checked against the data set's when the data
        set was looked up in the workspace (it has counts); else the data set's. A `name:version`
        taken as given (no lookup, `visionops pipeline build`) carries no task of its own, so the
        one asked for stands (each step still checks it against the data it mounts)."""
        from visionops.tasks import check_same_task, get_task

        if task is not None and not dataset.counts:
            return get_task(task).name
        return check_same_task(task, dataset.task, f"data set {dataset.name}:{dataset.version}").name

    def submit_pipeline(self, pipeline: Any, *, wait: bool = True) -> PipelineRunInfo:
        self.ensure_environment(TRAINING_ENV)
        self.ensure_compute()
        created = self.ml_client.jobs.create_or_update(pipeline, experiment_name=self.settings.experiment_name)
        info = self._run_info(created)
        return self.wait_pipeline(info.run_id) if wait else info

    def wait_pipeline(self, run_id: str) -> PipelineRunInfo:
        """Block until the pipeline job ends; raises TrainingError (with the studio URL and the
        failed steps) unless it Completed."""
        try:
            job = self.wait_job(run_id)
        except TrainingError as exc:
            failed = [s.name for s in self._steps(run_id) if s.status not in ("Completed", "Skipped")]
            raise TrainingError(f"{exc} (steps not completed: {', '.join(failed) or 'unknown'})") from exc
        return self._run_info(job, steps=self._steps(run_id))

    def _steps(self, run_id: str) -> list[StepInfo]:
        children = self.ml_client.jobs.list(parent_job_name=run_id)
        return [StepInfo(name=str(getattr(c, "display_name", None) or c.name), status=str(c.status)) for c in children]

    @staticmethod
    def _run_info(job: Any, steps: list[StepInfo] | None = None) -> PipelineRunInfo:
        return PipelineRunInfo(
            backend="azure",
            run_id=str(job.name),
            name=str(getattr(job, "display_name", None) or job.name),
            status=str(job.status),
            url=getattr(job, "studio_url", None),
            outputs={k: str(getattr(v, "path", None) or k) for k, v in (getattr(job, "outputs", None) or {}).items()},
            steps=steps or [],
        )

    def publish_pipeline(
        self, *, name: str | None = None, cron: str | None = None, time_zone: str = "UTC", profile: str | None = None
    ) -> PublishedPipeline:
        """Register the four components and the pipeline component under the pipeline's content
        version; with `cron`, also a schedule that retrains on the latest data asset version."""
        from visionops.pipeline.azure_pipeline import build_pipeline_job, build_schedule, load_azure_components
        from visionops.pipeline.components import PIPELINE_NAME, pipeline_version, step_environment

        name = name or PIPELINE_NAME
        version = pipeline_version()
        environment = self.ensure_environment(TRAINING_ENV)
        registered: dict[str, str] = {}
        for component in load_azure_components(environment=environment).values():
            component.version = version
            created = self.ml_client.components.create_or_update(component)
            registered[component.name] = str(getattr(created, "version", None) or version)
        job = build_pipeline_job(
            data=f"azureml:{self._current_name()}@latest",  # each scheduled run takes the newest data
            profile=profile or self.settings.profile,
            task=self.settings.task,
            compute=self.settings.compute_name,
            environment=environment,
            environment_variables=step_environment(self.settings, code_root=source_root(), local=False),
            experiment_name=self.settings.experiment_name,
        )
        pipeline_component = job.component
        pipeline_component.name = name
        pipeline_component.version = version
        created = self.ml_client.components.create_or_update(pipeline_component)
        schedule_name = None
        if cron:
            self.ensure_compute()
            schedule = build_schedule(job, name=f"{name}-retrain", cron=cron, time_zone=time_zone)
            self.ml_client.schedules.begin_create_or_update(schedule).result()
            schedule_name = schedule.name
        return PublishedPipeline(
            backend="azure",
            name=name,
            version=version,
            components=registered,
            location=str(getattr(created, "id", None) or f"azureml:{name}:{version}"),
            schedule=schedule_name,
            cron=cron,
        )

    # --- endpoints -----------------------------------------------------------------------------
    def _champion(self) -> Any:
        from visionops import registry

        settings = self.registry_settings()
        champ = registry.get_champion(settings)
        if champ is None:
            raise ModelNotFoundError(
                f"model {settings.registered_model_name!r} has no production version in the workspace's registry "
                f"({settings.tracking_uri}); run the training pipeline first"
            )
        return champ

    def model_files(self, model: Any) -> list[str]:
        """The artifact file names of a registered version (`artifacts/best.onnx`, ...), listed in the
        workspace's MLflow registry without downloading anything: enough to tell which runtimes
        can serve it before a deployment is created."""
        from mlflow.exceptions import MlflowException
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        from visionops.tracking import configure_mlflow

        settings = self.registry_settings()
        configure_mlflow(settings)
        try:
            repo = get_artifact_repository(model.uri)

            def walk(path: str, depth: int) -> list[str]:
                out: list[str] = []
                for entry in repo.list_artifacts(path):
                    if entry.is_dir:
                        if depth < 3:
                            out += walk(entry.path, depth + 1)
                    else:
                        out.append(entry.path)
                return out

            return walk("", 0)
        except MlflowException as exc:
            raise ModelNotFoundError(
                f"cannot list the files of model {model.name}:{model.version} in the workspace's registry "
                f"({settings.tracking_uri}): {exc.message}; check the name and version with `visionops models`"
            ) from None

    def _get_endpoint(self, name: str) -> Any | None:
        try:
            return self.ml_client.online_endpoints.get(name=name)
        except ResourceNotFoundError:
            return None

    def stage_deployment(
        self, model: Any = None, *, name: str | None = None, runtime: str = "onnx", skip_if_live: bool = False
    ) -> StagedDeployment:
        """Create the endpoint when missing and a new deployment (blue or green, whichever is not
        live) of `model` (a registry ModelVersionRef; default: the production version) with 0%
        traffic. The live deployment keeps serving. With skip_if_live, a version that already
        takes the traffic is left alone (a retraining that promoted nothing redeploys nothing).

        The runtime picks the environment (onnx -> visionops-inference, lean; pytorch ->
        visionops-inference-pytorch; auto -> onnx when the version has an ONNX export); a version
        without the runtime's weights file is refused before anything is created."""
        model = model or self._champion()
        runtime = choose_runtime(runtime, self.model_files(model), f"{model.name}:{model.version}")
        name = name or self.settings.endpoint_name
        endpoint = self._get_endpoint(name)
        live = [d for d, pct in (getattr(endpoint, "traffic", None) or {}).items() if pct and pct > 0]
        wanted = f"{model.name}:{model.version}"
        if skip_if_live and live and self._deployed_model(name, live[0]) == wanted:
            return StagedDeployment(endpoint=name, deployment=live[0], previous=live, model_name=model.name,
                                    model_version=str(model.version), runtime=runtime, already_live=True)
        environment = self.ensure_environment(inference_environment(runtime))
        if endpoint is None:
            endpoint = self.ml_client.online_endpoints.begin_create_or_update(
                online_endpoint(self.settings, name)
            ).result()
        new = GREEN if BLUE in live else BLUE
        deployment = online_deployment(
            self.settings,
            endpoint_name=name,
            name=new,
            model_name=model.name,
            model_version=str(model.version),
            environment=environment,
            runtime=runtime,
        )
        self.ml_client.online_deployments.begin_create_or_update(deployment).result()
        return StagedDeployment(
            endpoint=name, deployment=new, previous=live, model_name=model.name,
            model_version=str(model.version), runtime=runtime,
        )

    def _deployed_model(self, endpoint: str, deployment: str) -> str | None:
        """The `name:version` a deployment serves (from the tag online_deployment() writes)."""
        try:
            dep = self.ml_client.online_deployments.get(name=deployment, endpoint_name=endpoint)
        except ResourceNotFoundError:
            return None
        return (getattr(dep, "tags", None) or {}).get("model")

    def smoke_test(self, endpoint: str, deployment: str | None = None, *, model_version: str | None = None,
                   task: str | None = None) -> dict:
        """Score one generated image on the deployment (directly, whatever its traffic share) and
        check the answer's shape and model version, and with `task` that the model is of that task
        and answers in its shape (PREDICTION_KEYS); raises EndpointError otherwise."""
        from visionops.serving.endpoint import EndpointError
        from visionops.tasks import get_task

        answer = self.invoke_endpoint(endpoint, _smoke_payload(), deployment=deployment)
        predictions = answer.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != 1:
            raise EndpointError(f"smoke test of {endpoint}/{deployment}: expected one prediction, got {answer!r}"[:500])
        model = answer.get("model") or {}
        served = str(model.get("version", ""))
        if model_version is not None and served != str(model_version):
            raise EndpointError(f"smoke test of {endpoint}/{deployment}: serves version {served!r}, "
                                f"expected {model_version!r}")
        if task is not None:
            wanted = get_task(task).name
            served_task = model.get("task", "detect")  # servers from before tasks existed served detectors
            missing = [k for k in PREDICTION_KEYS[wanted] if k not in predictions[0]]
            if served_task != wanted or missing:
                raise EndpointError(f"smoke test of {endpoint}/{deployment}: expected a {wanted} model answering "
                                    f"with {', '.join(PREDICTION_KEYS[wanted])}; it serves a {served_task} model "
                                    f"whose prediction has {sorted(predictions[0])}; deploy a {wanted} model or "
                                    "pass its task")
        return answer

    def shift_traffic(self, endpoint: str, deployment: str, *, retire_previous: bool = True) -> dict[str, int]:
        """Send all traffic to `deployment`; then delete the deployments that served before
        (each one bills its instances even at 0%), unless retire_previous=False keeps them
        for a quick roll-back."""
        ep = self.ml_client.online_endpoints.get(name=endpoint)
        previous = [d for d in (ep.traffic or {}) if d != deployment]
        ep.traffic = {deployment: 100, **{d: 0 for d in previous}}
        self.ml_client.online_endpoints.begin_create_or_update(ep).result()
        if retire_previous:
            for d in previous:
                self.ml_client.online_deployments.begin_delete(name=d, endpoint_name=endpoint).result()
            ep.traffic = {deployment: 100}
        return dict(ep.traffic)

    def endpoint_info(self, name: str | None = None, *, model_name: str = "", model_version: str = "",
                      runtime: str = "onnx") -> Any:
        """EndpointInfo (scoring URI and key) of a deployed endpoint."""
        from visionops.serving.endpoint import EndpointInfo

        name = name or self.settings.endpoint_name
        ep = self.ml_client.online_endpoints.get(name=name)
        keys = self.ml_client.online_endpoints.get_keys(name=name)
        info = EndpointInfo(
            name=name,
            scoring_uri=str(ep.scoring_uri),
            health_uri=None,  # Azure probes the deployment itself; no anonymous health route
            model_name=model_name,
            model_version=str(model_version),
            runtime=runtime,
            backend="azure",
            auth=True,
        )
        return info.with_key(getattr(keys, "primary_key", None))

    def deploy_endpoint(self, model: Any = None, *, name: str | None = None, runtime: str = "onnx",
                        auth: bool = True) -> Any:
        """Blue/green: stage a 0% deployment, smoke-test it, shift all traffic to it."""
        if not auth:
            raise ConfigError("Azure online endpoints always need auth (key); deploy with auth=True")
        staged = self.stage_deployment(model, name=name, runtime=runtime)
        self.smoke_test(staged.endpoint, staged.deployment, model_version=staged.model_version)
        self.shift_traffic(staged.endpoint, staged.deployment)
        return self.endpoint_info(staged.endpoint, model_name=staged.model_name,
                                  model_version=staged.model_version, runtime=staged.runtime)

    def invoke_endpoint(self, endpoint: Any, payload: dict[str, Any], *, deployment: str | None = None) -> dict:
        """Score `payload` through the workspace (Azure AD auth; no key handling here)."""
        from visionops.serving.endpoint import EndpointError

        name = endpoint if isinstance(endpoint, str) else endpoint.name
        with tempfile.TemporaryDirectory(prefix="visionops-invoke-") as tmp:
            request = Path(tmp) / "request.json"
            request.write_text(json.dumps(payload))
            raw = self.ml_client.online_endpoints.invoke(
                endpoint_name=name, deployment_name=deployment, request_file=str(request)
            )
        answer = json.loads(raw) if isinstance(raw, str | bytes) else raw
        if isinstance(answer, str):  # the SDK returns the body as a JSON string, sometimes twice encoded
            answer = json.loads(answer)
        if not isinstance(answer, dict) or "error" in answer:
            raise EndpointError(f"endpoint {name} answered {str(answer)[:300]}", body=answer)
        return answer

    # --- batch endpoints -----------------------------------------------------------------------
    def ensure_batch_environment(self) -> str:
        """The batch scoring environment (ONNX inference pins + azureml-core), registered unless
        that content version exists; returns its `azureml:` id."""
        env = batch_environment()
        try:
            self.ml_client.environments.get(name=env.name, version=env.version)
        except ResourceNotFoundError:
            self.ml_client.environments.create_or_update(env)
        return f"azureml:{env.name}:{env.version}"

    def deploy_batch_endpoint(self, model: Any = None, *, name: str | None = None) -> BatchDeploymentInfo:
        """Deploy `model` (default: the production version) as a batch deployment running
        visionops/serving/batch_score.py, and make it the endpoint's default.

        The model must have an ONNX export (batch scoring runs ONNX Runtime): a version without one
        is refused before anything is created. Creates, when missing, the batch environment, the
        batch cluster (scale-to-zero) and the endpoint; one deployment per model version."""
        model = model or self._champion()
        choose_runtime("onnx", self.model_files(model), f"{model.name}:{model.version}")
        name = name or self.settings.batch_endpoint_name
        environment = self.ensure_batch_environment()
        self.ensure_batch_compute()
        try:
            self.ml_client.batch_endpoints.get(name=name)
        except ResourceNotFoundError:
            self.ml_client.batch_endpoints.begin_create_or_update(batch_endpoint(self.settings, name)).result()
        deployment = batch_deployment(self.settings, endpoint_name=name, model_name=model.name,
                                      model_version=str(model.version), environment=environment)
        self.ml_client.batch_deployments.begin_create_or_update(deployment).result()
        self.ml_client.batch_endpoints.begin_create_or_update(
            batch_endpoint(self.settings, name, default_deployment=deployment.name)).result()
        s = self.settings
        return BatchDeploymentInfo(
            endpoint=name, deployment=deployment.name, model_name=model.name, model_version=str(model.version),
            compute=s.batch_compute_name, instance_count=s.batch_instance_count,
            max_concurrency_per_instance=s.batch_max_concurrency, mini_batch_size=s.batch_mini_batch_size,
            output_file=deployment.settings.output_file_name,
        )

    def ensure_batch_compute(self) -> Any:
        """The batch scoring cluster, created (scale-to-zero) when missing."""
        wanted = batch_compute(self.settings)
        try:
            return self.ml_client.compute.get(wanted.name)
        except ResourceNotFoundError:
            return self.ml_client.compute.begin_create_or_update(wanted).result()

    def invoke_batch_endpoint(self, images: str, *, name: str | None = None, deployment: str | None = None) -> str:
        """Start a batch scoring job over a folder in the cloud (`azureml://datastores/...`, a
        `uri_folder` data asset `azureml:<name>:<version>`, or an https URL); returns the job name.
        Batch endpoints read only cloud data: upload a local folder first (`batch_input`)."""
        from azure.ai.ml import Input
        from azure.ai.ml.constants import AssetTypes

        if not images.startswith(("azureml:", "https://", "wasbs://", "abfss://")):
            raise ConfigError(
                f"batch endpoints score data in the cloud, not {images!r}; upload the folder first "
                "(`visionops azure batch-score --images <folder>` does, as a data asset) and pass "
                "azureml:<name>:<version>"
            )
        job = self.ml_client.batch_endpoints.invoke(
            endpoint_name=name or self.settings.batch_endpoint_name, deployment_name=deployment,
            inputs={"images": Input(type=AssetTypes.URI_FOLDER, path=images)},
        )
        return str(job.name)

    def delete_endpoint(self, endpoint: Any) -> None:
        """Delete the endpoint and its deployments (billing stops); no-op when it is gone."""
        name = endpoint if isinstance(endpoint, str) else endpoint.name
        try:
            self.ml_client.online_endpoints.begin_delete(name=name).result()
        except ResourceNotFoundError:
            pass


    # --- the AutoML-for-Images benchmark ---------------------------------------------------------
    def submit_automl(self, dataset: DatasetRef, data_dir: Path, options: Any = None) -> Any:
        """The AutoML job on the data set's MLTables, submitted. The JSONL's image URLs point at the
        registered data asset's images in the datastore (AutoML reads them from there); the MLTable
        folders are local and azure-ai-ml uploads them with the job. The job is checked by the SDK's
        loader before the cluster or the job is touched."""
        from visionops.sweep.automl import AutoMLJobInfo, load_automl_job

        try:
            asset = self.ml_client.data.get(name=dataset.name, version=dataset.version)
        except ResourceNotFoundError as exc:
            raise ConfigError(f"no data asset {dataset.name}:{dataset.version} in workspace "
                              f"{self.ml_client.workspace_name!r}; register it first (notebook 01, or "
                              "`visionops data register --backend azure <folder>`)") from exc
        doc, path = self.build_automl(dataset, data_dir, options, image_url_prefix=str(asset.path))
        job = load_automl_job(path)
        if doc["compute"] == f"azureml:{self.settings.compute_name}":
            self.ensure_compute()  # the training cluster (scale-to-zero), created when missing
        created = self.ml_client.jobs.create_or_update(job, experiment_name=doc["experiment_name"])
        return AutoMLJobInfo(backend=self.backend, submitted=True, validated=True, job_name=str(created.name),
                             status=str(getattr(created, "status", None) or "Submitted"),
                             url=getattr(created, "studio_url", None), spec_path=str(path), spec=doc,
                             note="submitted; when it completes, compare its best child run's metrics with "
                                  "the champion (visionops.sweep.automl.compare_files)")
    def automl_best_metrics(self, job_name: str) -> tuple[str, dict[str, float]]:
        """(best child run id, its metrics) of a completed AutoML job, read through MLflow on the
        workspace's tracking URI: the parent run's tag `automl_best_child_run_id` names the best
        child (Azure ML's MLflow run id of a job is the job's name)."""
        import mlflow
        from mlflow.exceptions import MlflowException

        from visionops.sweep.automl import best_child_metrics
        from visionops.tracking import configure_mlflow

        configure_mlflow(self.registry_settings())
        try:
            return best_child_metrics(mlflow.MlflowClient(), job_name, status=self._job_status(job_name))
        except MlflowException as exc:
            raise ConfigError(f"AutoML job {job_name}: cannot read its runs from the workspace's MLflow "
                              f"({self.tracking_uri()}): {exc.message}") from None

    def _job_status(self, job_name: str) -> str | None:
        try:
            return str(self.ml_client.jobs.get(job_name).status)
        except ResourceNotFoundError:
            raise ConfigError(f"no job {job_name!r} in workspace {self.ml_client.workspace_name!r}; "
                              "pass the AutoML job's name (`visionops azure automl-compare --job ...`)") from None

    def compare_automl(self, job_name: str, dataset: DatasetRef, *, metric_type: str | None = None) -> Any:
        """The AutoML job's best model against the champion on the frozen test split: fetches the
        best child run's metrics (no JSON to pass by hand), writes them and the champion's beside
        the job's spec (outputs/automl/<name>-<version>/), and the comparison JSON. Returns the
        `visionops.sweep.automl.Comparison`."""
        from visionops.pipeline.steps import model_name_for
        from visionops.sweep.automl import (
            AUTOML_METRICS_JSON,
            CHAMPION_METRICS_JSON,
            COMPARISON_JSON,
            AutoMLOptions,
            automl_folder,
            champion_metrics,
            compare_files,
            write_metrics,
        )

        folder = automl_folder(self.settings, dataset)
        best, metrics = self.automl_best_metrics(job_name)
        write_metrics(folder / AUTOML_METRICS_JSON, metrics, run_id=best, parent_run_id=job_name)
        settings = self.registry_settings()
        settings = settings.with_overrides(model_name=model_name_for(settings, dataset.name, dataset.task))
        champion = champion_metrics(settings, dataset, folder / CHAMPION_METRICS_JSON)
        if champion is None:
            raise ModelNotFoundError(f"no champion in the workspace's registry to compare AutoML job {job_name} "
                                     "with; train and promote one first (`visionops pipeline run --backend azure`)")
        metric_type = AutoMLOptions(metric_type=metric_type).for_task(dataset.task).metric_type  # the task's default
        return compare_files(folder / AUTOML_METRICS_JSON, folder / CHAMPION_METRICS_JSON, folder / COMPARISON_JSON,
                             metric_type=metric_type, champion_name=champion["model"])

    # --- sweeps --------------------------------------------------------------------------------
    def build_sweep(self, dataset: DatasetRef, *, space: Any = None, profile: str | None = None,
                    task: str | None = None, pipeline: bool = False, max_total_trials: int = 8,
                    max_concurrent_trials: int | None = None, sampling_algorithm: str = "random",
                    timeout_s: int | None = None, trial_timeout_s: int | None = None) -> Any:
        """The Azure ML sweep over `space` (a SearchSpace or a YAML path; default: the task's space),
        not submitted: a standalone `SweepJob`, or with `pipeline=True` the training pipeline with a
        sweep step in place of train (the best trial evaluated against the champion and registered
        on promote). Both are pinned to the training environment's content version and checked
        (limits, sampling, task, data) before anything is sent."""
        from visionops.pipeline.azure_pipeline import build_sweep_pipeline_job
        from visionops.pipeline.components import step_environment
        from visionops.sweep.azure_sweep import build_sweep_job, check_sweep_options
        from visionops.sweep.space import SearchSpace, load_space

        task = self._task(dataset, task)
        space = space if isinstance(space, SearchSpace) else load_space(space, task=task)
        profile = profile or self.settings.profile
        data = dataset.path if dataset.path.startswith("azureml:") else f"azureml:{dataset.name}:{dataset.version}"
        environment = self.environment_id(TRAINING_ENV)
        concurrent = check_sweep_options(space, self.settings, data=data, sampling_algorithm=sampling_algorithm,
                                         max_total_trials=max_total_trials,
                                         max_concurrent_trials=max_concurrent_trials, task=task)
        limits = {"max_total_trials": max_total_trials, "max_concurrent_trials": concurrent,
                  "sampling_algorithm": sampling_algorithm, "timeout_s": timeout_s, "trial_timeout_s": trial_timeout_s}
        if not pipeline:
            return build_sweep_job(space, self.settings, data=data, profile=profile, environment=environment,
                                   **limits)
        return build_sweep_pipeline_job(
            space, data=data, profile=profile, task=task, compute=self.settings.compute_name,
            environment=environment, experiment_name=self.settings.experiment_name,
            environment_variables=step_environment(self.settings, code_root=source_root(), local=False), **limits)

    def submit_sweep(self, dataset: DatasetRef, *, wait: bool = False, **options: Any) -> SweepJobInfo:
        """Build the sweep (`build_sweep`: standalone, or `pipeline=True` for the pipeline with a
        sweep step), make sure the environment and the cluster exist, and submit it; with `wait`,
        block until it ends (TrainingError with the studio URL unless it Completed)."""
        job = self.build_sweep(dataset, **options)
        pipeline = options.get("pipeline", False)
        sweep = job.jobs["train"] if pipeline else job
        self.ensure_environment(TRAINING_ENV)
        self.ensure_compute()
        created = self.ml_client.jobs.create_or_update(job, experiment_name=self.settings.experiment_name)
        status = str(getattr(created, "status", None) or "Submitted")
        if wait:
            status = str(self.wait_job(str(created.name)).status)
        return SweepJobInfo(
            kind="pipeline" if pipeline else "sweep", job_name=str(created.name), status=status,
            url=getattr(created, "studio_url", None), dataset=f"{dataset.name}:{dataset.version}",
            task=self._task(dataset, options.get("task")), primary_metric=sweep.objective.primary_metric,
            goal=str(sweep.objective.goal).lower(), max_total_trials=sweep.limits.max_total_trials,
            max_concurrent_trials=sweep.limits.max_concurrent_trials,
        )

    # --- batch scoring input ---------------------------------------------------------------------
    def batch_input(self, images: str | Path) -> str:
        """What a batch job reads: a cloud folder as given, or a local folder uploaded once as a
        uri_folder data asset `<batch endpoint>-input`, versioned by the content of its files (the
        same images are never uploaded twice). Returns `azureml:<name>:<version>` or the URI."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        from visionops.hashing import Hasher

        text = str(images)
        if text.startswith(("azureml:", "https://", "wasbs://", "abfss://")):
            return text
        folder = Path(images)
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        if not files:
            raise ConfigError(f"{folder}: no such folder, or it holds no files; pass a folder of images or a cloud "
                              "URI (azureml:<name>:<version>, azureml://datastores/..., https://...)")
        name = f"{self.settings.batch_endpoint_name}-input"
        version = Hasher().files(files, folder).hexdigest()
        try:
            self.ml_client.data.get(name=name, version=version)
        except ResourceNotFoundError:
            self.ml_client.data.create_or_update(Data(
                name=name, version=version, type=AssetTypes.URI_FOLDER, path=str(folder),
                description=f"Images to score with batch endpoint {self.settings.batch_endpoint_name} "
                            f"({len(files)} files, content-hash version)",
                tags={"project": "visionops", "use": "batch-scoring", "files": str(len(files))}))
        return f"azureml:{name}:{version}"

    def batch_predictions(self, job_name: str, folder: Path) -> Path:
        """Download a finished batch job's output (`score`: the append_row file of one JSON record
        per image) into `folder`; returns the predictions file."""
        from visionops.workspace.azure_entities import BATCH_OUTPUT

        folder.mkdir(parents=True, exist_ok=True)
        self.ml_client.jobs.download(name=job_name, download_path=str(folder), output_name="score")
        found = sorted(folder.rglob(BATCH_OUTPUT))
        if not found:
            raise ConfigError(f"batch job {job_name}: no {BATCH_OUTPUT} in its output (downloaded to {folder}); "
                              "see the job's logs in the studio (user_logs/std_log.txt)")
        return found[0]


def _smoke_payload() -> dict[str, Any]:
    """One small generated image (a filled square on grey): enough to prove the deployment loads
    its model and answers in our JSON shape, with nothing read from disk or the network."""
    from PIL import Image, ImageDraw

    from visionops.serving.endpoint import encode_image

    image = Image.new("RGB", (96, 96), (127, 127, 127))
    ImageDraw.Draw(image).rectangle((24, 24, 72, 72), fill=(220, 40, 40))
    return {"images": [encode_image(image)]}

"""Offline: the Azure ML batch endpoint (batch_score.py as a batch deployment) and multi-GPU
training jobs, checked with azure-ai-ml's own entities, schema loaders and validation, sent to the
mocked MLClient."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.ai.ml.entities import AmlCompute, BatchEndpoint, ModelBatchDeployment
from azure.core.exceptions import ResourceNotFoundError
from azure_mock import sent

from visionops.errors import ConfigError, ModelNotFoundError
from visionops.serving.batch_score import threads_per_process
from visionops.workspace.azure_entities import (
    AZUREML_CORE,
    batch_environment,
    environment_asset,
    gpu_count,
    training_job,
)

pytestmark = pytest.mark.azure


@pytest.fixture
def batch_client(mock_client):
    """The mocked client with batch endpoint operations that remember what was created."""
    endpoints: dict[str, object] = {}

    def record(op, entity):
        mock_client.sent.append({"op": op, "entity": entity})

    def get(name, **kw):
        if name not in endpoints:
            raise ResourceNotFoundError(f"batch endpoint {name} not found")
        return endpoints[name]

    def create_endpoint(endpoint, **kw):
        record("batch_endpoints.begin_create_or_update", endpoint)
        endpoints[endpoint.name] = endpoint
        return SimpleNamespace(result=lambda: endpoint)

    def create_deployment(deployment, **kw):
        record("batch_deployments.begin_create_or_update", deployment)
        return SimpleNamespace(result=lambda: deployment)

    def invoke(endpoint_name, deployment_name=None, inputs=None, **kw):
        record("batch_endpoints.invoke", SimpleNamespace(endpoint=endpoint_name, deployment=deployment_name,
                                                         inputs=inputs))
        return SimpleNamespace(name="batch-job-1")

    mock_client.batch_endpoints.get.side_effect = get
    mock_client.batch_endpoints.begin_create_or_update.side_effect = create_endpoint
    mock_client.batch_endpoints.invoke.side_effect = invoke
    mock_client.batch_deployments.begin_create_or_update.side_effect = create_deployment
    return mock_client


def test_batch_deployment_runs_batch_score_with_the_scale_out_settings(
    workspace, batch_client, azure_settings, register, repo_root, tmp_path,
):
    model = register()
    info = workspace.deploy_batch_endpoint()

    [dep] = sent(batch_client, "batch_deployments.begin_create_or_update")
    assert isinstance(dep, ModelBatchDeployment)
    assert dep.model == f"azureml:{model.name}:{model.version}" and dep.name == "v1"
    assert dep.code_configuration.scoring_script == "visionops/serving/batch_score.py"
    assert dep.code_configuration.code == str(repo_root / "src")
    assert (repo_root / "src" / dep.code_configuration.scoring_script).is_file()
    assert dep.compute == azure_settings.batch_compute_name == "cpu-cluster"
    s = dep.settings
    assert (s.mini_batch_size, s.instance_count, s.max_concurrency_per_instance) == (20, 2, 2)
    assert (s.error_threshold, s.retry_settings.max_retries, s.retry_settings.timeout) == (-1, 3, 300)
    assert s.output_action == "append_row" and s.output_file_name == "predictions.jsonl"
    assert s.environment_variables["VISIONOPS_SERVING_MODEL_VERSION"] == "1"
    assert s.environment_variables["VISIONOPS_BATCH_MAX_CONCURRENCY"] == "2"
    assert dep.environment == workspace.ensure_batch_environment()
    # what goes over the wire: the SDK's own REST body of the deployment
    rest = dep._to_rest_object(location="westeurope").properties.as_dict()
    assert (rest["miniBatchSize"], rest["maxConcurrencyPerInstance"], rest["resources"]["instanceCount"]) == (20, 2, 2)
    assert (rest["outputAction"], rest["outputFileName"], rest["errorThreshold"]) == ("AppendRow",
                                                                                       "predictions.jsonl", -1)
    assert rest["retrySettings"] == {"maxRetries": 3, "timeout": "PT5M"}
    assert rest["model"]["assetId"] == f"azureml:{model.name}:{model.version}" and rest["compute"] == "cpu-cluster"

    created, defaulted = sent(batch_client, "batch_endpoints.begin_create_or_update")
    assert isinstance(created, BatchEndpoint) and created.name == "visionops-batch"
    assert created.auth_mode == "aad_token"  # the only auth batch endpoints have
    rest = defaulted._to_rest_batch_endpoint(location="westeurope").properties.as_dict()  # the wire body
    assert rest["defaults"] == {"deploymentName": "v1"} and rest["authMode"] == "aadToken"
    assert info.endpoint == "visionops-batch" and info.deployment == "v1" and info.instance_count == 2

    [cluster] = [c for c in sent(batch_client, "compute.begin_create_or_update") if c.name == "cpu-cluster"]
    assert isinstance(cluster, AmlCompute)
    assert (cluster.size, cluster.min_instances, cluster.max_instances) == ("Standard_D4s_v3", 0, 2)


def test_batch_settings_flow_into_the_deployment(azure_settings, batch_client, register, tmp_path):
    from visionops.workspace.azure import AzureWorkspace

    settings = azure_settings.with_overrides(
        batch_instance_count=4, batch_max_concurrency=3, batch_mini_batch_size=50, batch_error_threshold=10,
        batch_max_retries=1, batch_timeout_s=120, batch_endpoint_name="scoring")
    ws = AzureWorkspace(settings, ml_client=batch_client)
    register()
    register()  # version 2 is production now
    info = ws.deploy_batch_endpoint()
    [dep] = sent(batch_client, "batch_deployments.begin_create_or_update")
    s = dep.settings
    assert (s.instance_count, s.max_concurrency_per_instance, s.mini_batch_size, s.error_threshold) == (4, 3, 50, 10)
    assert (s.retry_settings.max_retries, s.retry_settings.timeout) == (1, 120)
    assert dep.name == "v2" and dep.endpoint_name == "scoring" and info.model_version == "2"
    [cluster] = [c for c in sent(batch_client, "compute.begin_create_or_update") if c.name == "cpu-cluster"]
    assert cluster.max_instances == 4  # the cluster can hold every instance of a job


def test_batch_deployment_refuses_a_model_without_onnx_before_creating_anything(workspace, batch_client, register):
    register(onnx=False)
    batch_client.sent.clear()
    with pytest.raises(ModelNotFoundError, match="no ONNX export"):
        workspace.deploy_batch_endpoint()
    assert batch_client.sent == []


def test_batch_environment_is_the_onnx_inference_one_plus_azureml_core(workspace, batch_client):
    env, inference = batch_environment(), environment_asset("inference")
    pip = next(d["pip"] for d in env.conda_file["dependencies"] if isinstance(d, dict))
    assert AZUREML_CORE in pip and not any(p.startswith("azureml-inference-server-http") for p in pip)
    assert not any(p.split("==")[0] in {"torch", "ultralytics", "torchvision"} for p in pip)
    inference_pip = next(d["pip"] for d in inference.conda_file["dependencies"] if isinstance(d, dict))
    assert set(pip) - {AZUREML_CORE} == {p for p in inference_pip if not p.startswith("azureml-inference")}
    assert env.image == inference.image and env.version == batch_environment().version
    assert env._to_dict()["name"] == "visionops-batch"
    workspace.ensure_batch_environment()
    workspace.ensure_batch_environment()
    assert len([e for e in sent(batch_client, "environments.create_or_update") if e.name == "visionops-batch"]) == 1


def test_batch_invocation_takes_a_cloud_folder(workspace, batch_client):
    assert workspace.invoke_batch_endpoint("azureml:photos:3") == "batch-job-1"
    [call] = sent(batch_client, "batch_endpoints.invoke")
    assert call.endpoint == "visionops-batch" and call.inputs["images"].path == "azureml:photos:3"
    assert call.inputs["images"].type == "uri_folder"
    with pytest.raises(ConfigError, match="data asset"):
        workspace.invoke_batch_endpoint("/home/me/photos")


def test_processes_share_the_node_cores():
    assert threads_per_process(2, cores=4) == 2
    assert threads_per_process(3, cores=4) == 1
    assert threads_per_process(8, cores=4) == 1


# --- multi-GPU training ----------------------------------------------------------------------------
def test_four_gpus_run_ultralytics_ddp_on_one_node(azure_settings, mock_client, smoke_folder):
    from visionops.workspace.azure import AzureWorkspace

    settings = azure_settings.with_overrides(compute_sku="Standard_NC64as_T4_v3", gpus_per_node=4)
    ws = AzureWorkspace(settings, ml_client=mock_client)
    ref = ws.register_dataset(smoke_folder)
    ws.submit_training(ref, "full")  # the full profile's batch 64 = 16 per GPU
    [job] = sent(mock_client, "jobs.create_or_update")
    assert job.environment_variables["VISIONOPS_DEVICE"] == "0,1,2,3"
    assert job.resources.instance_count == 1 and job.distribution is None  # Ultralytics spawns DDP itself
    assert job.resources.shm_size == "16g"
    assert job.environment == ws.environment_id("training") and job.compute == "gpu-cluster"
    assert job.tags["gpus_per_node"] == "4" and job.tags["sku"] == "Standard_NC64as_T4_v3"
    assert job._validate().passed
    rest = job._to_dict()
    assert rest["resources"]["instance_count"] == 1 and rest["resources"]["shm_size"] == "16g"
    [cluster] = sent(mock_client, "compute.begin_create_or_update")
    assert cluster.size == "Standard_NC64as_T4_v3" and cluster.name == "gpu-cluster"


def test_gpus_per_node_argument_overrides_the_setting(workspace, mock_client, smoke_folder, azure_settings):
    ref = workspace.register_dataset(smoke_folder)
    ws = workspace
    ws.settings = azure_settings.with_overrides(compute_sku="Standard_NC48ads_A100_v4")
    ws.submit_training(ref, "smoke", gpus_per_node=2)  # smoke: batch 8 = 4 per GPU
    [job] = sent(mock_client, "jobs.create_or_update")
    assert job.environment_variables["VISIONOPS_DEVICE"] == "0,1"


def test_one_gpu_keeps_the_device_setting(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    workspace.submit_training(ref, "smoke")
    [job] = sent(mock_client, "jobs.create_or_update")
    assert job.environment_variables["VISIONOPS_DEVICE"] == "auto"
    assert job.resources.instance_count == 1 and job.resources.shm_size is None


def test_more_gpus_than_the_size_has_are_refused_before_anything_is_sent(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    mock_client.sent.clear()
    with pytest.raises(ConfigError, match=r"Standard_NC4as_T4_v3 has 1 GPU.*Standard_NC64as_T4_v3.*Nothing was"):
        workspace.submit_training(ref, "full", gpus_per_node=4)
    assert mock_client.sent == []


def test_a_batch_that_does_not_split_over_the_gpus_is_refused(azure_settings, smoke_folder):
    from visionops.data.catalog import DatasetRef

    settings = azure_settings.with_overrides(compute_sku="Standard_NC96ads_A100_v4", gpus_per_node=4)
    ds = DatasetRef(name="shapes", version="abc", path="azureml:shapes:abc", created="", counts={}, classes=[],
                    backend="azure")
    with pytest.raises(ConfigError, match=r"batch 6 does not split evenly over 4 GPUs.*--batch 4"):
        training_job(settings, dataset=ds, profile="full", environment="azureml:env:1", knobs={"batch": 6})
    job = training_job(settings, dataset=ds, profile="full", environment="azureml:env:1", knobs={"batch": 32})
    assert job.environment_variables["VISIONOPS_DEVICE"] == "0,1,2,3"


@pytest.mark.parametrize(("sku", "gpus"), [("Standard_NC64as_T4_v3", 4), ("standard_nd96isr_h100_v5", 8),
                                           ("Standard_D4s_v3", 0), ("Standard_NewGpu_v9", None)])
def test_gpu_counts_of_known_sizes(sku, gpus):
    assert gpu_count(sku) == gpus


# --- batch scoring input and output, and the CLI the Azure DevOps batch stage runs ---------------------
def _images(folder, n: int):
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (32, 24), (40 * i, 90, 160)).save(folder / f"img_{i}.png")
    return folder


def test_a_local_folder_is_uploaded_once_as_a_content_versioned_asset(workspace, batch_client, tmp_path):
    folder = _images(tmp_path / "photos", 3)
    uri = workspace.batch_input(folder)
    name, version = uri.removeprefix("azureml:").split(":")
    assert name == "visionops-batch-input" and len(version) >= 12
    [asset] = sent(batch_client, "data.create_or_update")
    assert (asset.name, asset.version, asset.type, str(asset.path)) == (name, version, "uri_folder", str(folder))
    assert asset.tags["files"] == "3"
    assert workspace.batch_input(folder) == uri  # same images: nothing uploaded again
    assert len(sent(batch_client, "data.create_or_update")) == 1
    (folder / "img_0.png").write_bytes((folder / "img_1.png").read_bytes())
    assert workspace.batch_input(folder) != uri  # other content, other version
    assert workspace.batch_input("azureml://datastores/images/paths/x/") == "azureml://datastores/images/paths/x/"
    with pytest.raises(ConfigError, match="no such folder, or it holds no files"):
        workspace.batch_input(tmp_path / "missing")


def _download_writing(batch_client, records: int):
    def download(name, download_path, output_name=None, **kw):
        assert output_name == "score"
        target = Path(download_path) / "named-outputs" / "score"
        target.mkdir(parents=True)
        lines = [{"image": f"img_{i}.png", "labels": []} for i in range(records)]
        (target / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))

    batch_client.jobs.download.side_effect = download
    batch_client.jobs.get.side_effect = lambda name, **kw: SimpleNamespace(name=name, status="Completed",
                                                                          studio_url="https://ml.azure.com/runs/x")


def test_batch_score_uploads_invokes_waits_and_checks_every_image_has_a_record(
    workspace, batch_client, tmp_path, monkeypatch,
):
    from typer.testing import CliRunner

    import visionops.cli.azure as cli_azure
    from visionops.cli import app

    folder = _images(tmp_path / "sample", 3)
    monkeypatch.setattr(cli_azure, "_azure_workspace", lambda: workspace)
    _download_writing(batch_client, records=3)
    out = tmp_path / "batch"
    result = CliRunner().invoke(app, ["azure", "batch-score", "--images", str(folder), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    [call] = sent(batch_client, "batch_endpoints.invoke")
    assert call.inputs["images"].path.startswith("azureml:visionops-batch-input:")
    assert (out / "batch-job-1" / "named-outputs" / "score" / "predictions.jsonl").is_file()
    assert "3 records" in result.output and "(0 errors)" in result.output

    _download_writing(batch_client, records=2)  # an image without a record fails the step
    result = CliRunner().invoke(app, ["azure", "batch-score", "--images", str(folder), "--out", str(tmp_path / "b2")])
    assert result.exit_code != 0 and "2 records for 3 files" in str(result.exception)


def test_batch_predictions_missing_from_the_output_are_named(workspace, batch_client, tmp_path):
    batch_client.jobs.download.side_effect = lambda **kw: None
    with pytest.raises(ConfigError, match="batch job batch-job-9: no predictions.jsonl in its output"):
        workspace.batch_predictions("batch-job-9", tmp_path / "out")


def test_batch_deploy_cli_deploys_the_version_asked_for(workspace, batch_client, register, monkeypatch):
    from typer.testing import CliRunner

    import visionops.cli.azure as cli_azure
    from visionops.cli import app

    register()
    register()
    monkeypatch.setattr(cli_azure, "_azure_workspace", lambda: workspace)
    result = CliRunner().invoke(app, ["azure", "batch-deploy", "--version", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    [dep] = sent(batch_client, "batch_deployments.begin_create_or_update")
    assert dep.name == "v1" and dep.model.endswith(":1")
    assert "deployment v1" in result.output and "2 nodes x 2 processes" in result.output

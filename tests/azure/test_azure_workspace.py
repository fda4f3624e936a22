"""The azure backend sends the right entities: each test drives AzureWorkspace against a mocked
MLClient (MagicMock(spec=MLClient), tests/support/azure_mock.py) and asserts on the exact
azure-ai-ml objects it sent: types, names, versions, paths, instance types, traffic."""

from __future__ import annotations

import json
import urllib.request

import pytest
from azure.ai.ml.entities import (
    AmlCompute,
    Command,
    Data,
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
)
from azure_mock import sent

from visionops.data.manifest import content_hash
from visionops.errors import ConfigError, ModelNotFoundError, TrainingError
from visionops.serving.endpoint import EndpointError

pytestmark = pytest.mark.azure


def test_the_network_is_really_blocked():
    """Control: without the block the tests below could pass by reaching Azure."""
    with pytest.raises(OSError, match="network blocked in tests/azure"):  # urllib wraps it in URLError
        urllib.request.urlopen("https://management.azure.com", timeout=5)


def test_dataset_is_validated_versioned_by_content_and_uploaded_once(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    [data] = sent(mock_client, "data.create_or_update")
    assert isinstance(data, Data)
    assert (data.type, data.name, data.version) == ("uri_folder", "shapes", content_hash(smoke_folder))
    # the validated, immutable catalog copy is what goes up (with its manifest), not the working folder
    assert str(data.path) == str(workspace.settings.catalog_dir / "shapes" / data.version)
    assert json.loads(data.tags["classes"]) == ref.classes and data.tags["content_hash"] == data.version
    assert ref.backend == "azure" and ref.path == f"azureml:shapes:{data.version}"
    assert ref.counts["train"]["images"] == 16

    again = workspace.register_dataset(smoke_folder)  # same content -> same version -> reused
    assert again.version == ref.version and len(sent(mock_client, "data.create_or_update")) == 1
    assert workspace.get_dataset().version == ref.version
    assert [r.version for r in workspace.list_datasets()] == [ref.version]


def test_invalid_dataset_is_refused_before_anything_is_sent(workspace, mock_client, smoke_folder, tmp_path):
    import shutil

    from visionops.errors import DataValidationError

    broken = tmp_path / "broken"
    shutil.copytree(smoke_folder, broken)
    label = next((broken / "labels" / "train").glob("*.txt"))
    label.write_text("7 0.5 0.5 2.0 0.1\n")  # unknown class, box outside the image
    with pytest.raises(DataValidationError):
        workspace.register_dataset(broken)
    assert mock_client.sent == []


def test_environments_are_registered_once_per_content_version(workspace, mock_client):
    env_id = workspace.ensure_environment("training")
    [env] = sent(mock_client, "environments.create_or_update")
    assert isinstance(env, Environment) and env.name == "visionops-training"
    assert env_id == f"azureml:visionops-training:{env.version}" and len(env.version) == 12
    assert env.image.startswith("mcr.microsoft.com/azureml/")
    assert env.conda_file["name"] == "visionops-training"  # the conda file, resolved next to the YAML
    assert workspace.ensure_environment("training") == env_id
    assert len(sent(mock_client, "environments.create_or_update")) == 1
    assert workspace.environment_id("training") == env_id  # computed offline, same as registered


def test_compute_cluster_is_created_when_missing(workspace, mock_client, azure_settings):
    workspace.ensure_compute()
    [cluster] = sent(mock_client, "compute.begin_create_or_update")
    assert isinstance(cluster, AmlCompute)
    assert (cluster.name, cluster.size) == ("gpu-cluster", "Standard_NC4as_T4_v3")
    assert (cluster.min_instances, cluster.max_instances) == (0, 1)  # scales to zero: no idle cost
    assert cluster.idle_time_before_scale_down == azure_settings.compute_idle_seconds
    workspace.ensure_compute()
    assert len(sent(mock_client, "compute.begin_create_or_update")) == 1


@pytest.mark.parametrize("sku", ["Standard_NC6", "standard_nc12", "Standard_NC6s_v3"])
def test_retired_gpu_sizes_are_refused_with_the_setting_to_change(azure_settings, mock_client, sku):
    from visionops.workspace.azure import AzureWorkspace

    ws = AzureWorkspace(azure_settings.with_overrides(compute_sku=sku), ml_client=mock_client)
    with pytest.raises(ConfigError, match=f"VISIONOPS_COMPUTE_SKU={sku} is a retired"):
        ws.ensure_compute()
    assert mock_client.sent == []


def test_training_is_a_command_job_running_the_train_component(workspace, mock_client, smoke_folder, repo_root):
    ref = workspace.register_dataset(smoke_folder)
    job_name = workspace.submit_training(ref, "smoke", epochs=1)
    [job] = sent(mock_client, "jobs.create_or_update")
    assert isinstance(job, Command) and job_name == "mock-job-1"
    assert job.command == (
        "python -m visionops.cli.steps train --data ${{inputs.data}} --task ${{inputs.task}} "
        "--out ${{outputs.model}} --profile ${{inputs.profile}} --epochs ${{inputs.epochs}}"
    )
    assert job.inputs["task"]._data == "detect" and job.tags["decision_metric"] == "map50_95"
    assert job.code == str(repo_root / "src")  # the snapshot: src/, filtered by src/.amlignore
    assert job.inputs["data"].path == f"azureml:shapes:{ref.version}" and job.inputs["data"].type == "uri_folder"
    assert (job.inputs["profile"]._data, job.inputs["epochs"]._data) == ("smoke", 1)
    assert job.compute == "gpu-cluster" and job.environment == workspace.environment_id("training")
    assert job.environment_variables["VISIONOPS_MODEL_NAME"] == "shapes-detector"
    assert job.environment_variables["GIT_COMMIT"] not in ("", "unknown")
    assert "VISIONOPS_ROOT" not in job.environment_variables  # machine paths stay on the machine
    assert job._validate().passed
    assert mock_client.jobs.create_or_update.call_args.kwargs["experiment_name"] == "visionops"

    result = workspace.wait_training(job_name)
    assert result["status"] == "Completed" and result["url"].startswith("https://ml.azure.com/runs/mock-job-1")


def test_a_failed_job_raises_with_its_studio_url(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    job_name = workspace.submit_training(ref, "smoke")
    mock_client.job_status = "Failed"
    with pytest.raises(TrainingError, match=r"ended Failed; see its logs at https://ml\.azure\.com/runs/mock-job-1"):
        workspace.wait_training(job_name)


def test_unknown_training_knob_is_refused(workspace, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    with pytest.raises(ConfigError, match="epochz"):
        workspace.submit_training(ref, "smoke", epochz=3)


def test_blue_green_rollout(workspace, mock_client, azure_settings, repo_root, register):
    first, second = register(), register()
    info = workspace.deploy_endpoint(first)
    [endpoint_sent, first_shift] = [c for c in mock_client.sent if c["op"] == "online_endpoints.begin_create_or_update"]
    endpoint = endpoint_sent["entity"]
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert (endpoint.name, endpoint.auth_mode) == ("visionops-shapes", "key")
    assert endpoint_sent["traffic"] == {}  # created without traffic: the first deployment starts at 0%
    [blue] = sent(mock_client, "online_deployments.begin_create_or_update")
    assert isinstance(blue, ManagedOnlineDeployment)
    assert (blue.name, blue.endpoint_name, blue.model) == ("blue", "visionops-shapes", "azureml:shapes-detector:1")
    assert blue.instance_type == azure_settings.endpoint_instance_type and blue.instance_count == 1
    assert blue.environment == workspace.environment_id("inference")  # the lean ONNX environment
    assert blue.code_configuration.code == str(repo_root / "src")
    assert blue.code_configuration.scoring_script == "visionops/serving/score.py"
    assert (repo_root / "src" / blue.code_configuration.scoring_script).is_file()
    assert blue.environment_variables["VISIONOPS_SERVING_RUNTIME"] == "onnx"
    # order: deployment created, smoke-tested directly on 'blue', only then traffic shifted
    ops = [c["op"] for c in mock_client.sent]
    assert ops.index("online_deployments.begin_create_or_update") < ops.index("online_endpoints.invoke") \
        < len(ops) - 1 - ops[::-1].index("online_endpoints.begin_create_or_update")
    [smoke] = [c for c in mock_client.sent if c["op"] == "online_endpoints.invoke"]
    assert smoke["deployment_name"] == "blue" and len(smoke["entity"]["images"]) == 1
    assert first_shift["traffic"] == {"blue": 100}
    assert info.backend == "azure" and info.model_version == "1" and info.auth and info.runtime == "onnx"
    assert info.key.get_secret_value() == "mock-primary-key" and "mock-primary-key" not in repr(info)
    assert info.scoring_uri.endswith("/score")

    mock_client.sent.clear()
    workspace.deploy_endpoint(second)
    [green] = sent(mock_client, "online_deployments.begin_create_or_update")
    assert (green.name, green.model) == ("green", "azureml:shapes-detector:2")
    shifts = [c["traffic"] for c in mock_client.sent if c["op"] == "online_endpoints.begin_create_or_update"]
    assert shifts == [{"green": 100, "blue": 0}]
    assert sent(mock_client, "online_deployments.begin_delete") == ["blue"]  # retired after the shift


def test_a_failing_smoke_test_leaves_traffic_where_it_was(workspace, mock_client, register):
    first, second = register(), register()
    workspace.deploy_endpoint(first)
    mock_client.sent.clear()
    mock_client.online_endpoints.invoke.side_effect = lambda **kw: json.dumps({"error": {"code": "boom"}})
    with pytest.raises(EndpointError):
        workspace.deploy_endpoint(second)
    assert [c["traffic"] for c in mock_client.sent if c["op"] == "online_endpoints.begin_create_or_update"] == []
    assert mock_client.online_endpoints.get(name="visionops-shapes").traffic == {"blue": 100}


def test_staging_the_live_version_again_does_nothing(workspace, mock_client, register):
    model = register()
    workspace.deploy_endpoint(model)
    mock_client.sent.clear()
    staged = workspace.stage_deployment(model, skip_if_live=True)
    assert staged.already_live and staged.deployment == "blue"
    assert sent(mock_client, "online_deployments.begin_create_or_update") == []


def test_kubernetes_endpoint_option(azure_settings, mock_client, register):
    from visionops.workspace.azure import AzureWorkspace

    model = register()
    without_cluster = AzureWorkspace(azure_settings.with_overrides(endpoint_kind="kubernetes"), ml_client=mock_client)
    with pytest.raises(ConfigError, match="VISIONOPS_KUBERNETES_COMPUTE"):
        without_cluster.deploy_endpoint(model)
    settings = azure_settings.with_overrides(endpoint_kind="kubernetes", kubernetes_compute="aks-visionops")
    AzureWorkspace(settings, ml_client=mock_client).deploy_endpoint(model)
    endpoint = next(c["entity"] for c in mock_client.sent if c["op"] == "online_endpoints.begin_create_or_update")
    assert isinstance(endpoint, KubernetesOnlineEndpoint) and endpoint.compute == "aks-visionops"
    [dep] = sent(mock_client, "online_deployments.begin_create_or_update")
    assert isinstance(dep, KubernetesOnlineDeployment) and dep.instance_type == "defaultinstancetype"


def test_endpoints_need_auth_and_invoke_delete_go_through_the_client(workspace, mock_client, register):
    model = register()
    with pytest.raises(ConfigError, match="always need auth"):
        workspace.deploy_endpoint(model, auth=False)
    info = workspace.deploy_endpoint(model)
    answer = workspace.invoke_endpoint(info, {"images": ["aGVsbG8=", "aGVsbG8="]})
    assert answer["model"]["version"] == "1" and len(answer["predictions"]) == 2
    workspace.delete_endpoint(info)
    assert sent(mock_client, "online_endpoints.begin_delete") == ["visionops-shapes"]
    workspace.delete_endpoint(info)  # gone already: no error


def test_registry_uses_the_workspace_tracking_uri(workspace, mock_client, tmp_path):
    """The same visionops.registry code; only the tracking URI comes from the workspace."""
    from visionops import registry

    store = f"sqlite:///{tmp_path / 'workspace-mlflow.db'}"
    mock_client.tracking_uri = store
    assert workspace.tracking_uri() == store
    mock_client.workspaces.get.assert_called_once_with("mlw-visionops")
    settings = workspace.registry_settings()
    assert settings.tracking_uri == store and settings.backend == "azure"
    assert registry.list_versions(settings) == []
    with pytest.raises(ModelNotFoundError, match="workspace-mlflow.db"):
        workspace.deploy_endpoint()  # no model given: the champion is looked up in that registry


def test_each_runtime_deploys_with_its_own_environment(workspace, mock_client, register):
    """onnx -> visionops-inference (no torch), pytorch -> visionops-inference-pytorch, auto ->
    onnx when the version has an export; each environment registered at its content version."""
    from visionops.workspace.azure_entities import environment_asset

    model = register()
    assert {"artifacts/best.pt", "artifacts/best.onnx"} <= set(workspace.model_files(model))
    expected = {"onnx": "inference", "pytorch": "inference-pytorch", "auto": "inference"}
    for runtime, kind in expected.items():
        mock_client.sent.clear()
        staged = workspace.stage_deployment(model, name=f"ep-{runtime}", runtime=runtime)
        assert staged.runtime == ("onnx" if runtime == "auto" else runtime)
        [dep] = sent(mock_client, "online_deployments.begin_create_or_update")
        asset = environment_asset(kind)
        assert dep.environment == f"azureml:{asset.name}:{asset.version}" == workspace.environment_id(kind)
        assert dep.environment_variables["VISIONOPS_SERVING_RUNTIME"] == staged.runtime
        assert dep.tags["runtime"] == staged.runtime
        registered = [e.name for e in sent(mock_client, "environments.create_or_update")]
        assert registered in ([], [asset.name])  # registered once per content version
    assert workspace.environment_id("inference") != workspace.environment_id("inference-pytorch")


def test_a_model_without_onnx_export_is_refused_before_anything_is_created(workspace, mock_client, register):
    """The ONNX environment has no torch: a .pt-only version could never load there. The error
    says how to export and which runtime to choose, and nothing at all was sent to Azure."""
    model = register(onnx=False)
    mock_client.sent.clear()
    with pytest.raises(ModelNotFoundError) as err:
        workspace.deploy_endpoint(model, runtime="onnx")
    message = str(err.value)
    assert "shapes-detector:1 has no ONNX export" in message and "artifacts/best.pt" in message
    assert "export_onnx" in message and "--runtime pytorch" in message and "Nothing was created" in message
    assert mock_client.sent == []  # no environment, endpoint or deployment was created
    # auto falls back to PyTorch with the PyTorch environment; pytorch explicitly works too
    staged = workspace.stage_deployment(model, runtime="auto")
    [dep] = sent(mock_client, "online_deployments.begin_create_or_update")
    assert staged.runtime == "pytorch" and dep.environment == workspace.environment_id("inference-pytorch")


def test_unknown_runtimes_are_named_before_anything_is_created(workspace, mock_client, register):
    model = register()
    mock_client.sent.clear()
    with pytest.raises(ConfigError, match="unknown serving runtime 'tensorrt'; choose one of"):
        workspace.deploy_endpoint(model, runtime="tensorrt")
    assert mock_client.sent == []


# --- the task: training jobs, data assets and smoke tests ----------------------------------------------
def test_a_classification_training_job_carries_its_task_and_model_name(azure_settings, smoke_folder):
    from visionops.data.catalog import DatasetRef
    from visionops.workspace.azure_entities import data_asset, dataset_ref, training_job

    ds = DatasetRef(name="flowers", version="abc123", path="azureml:flowers:abc123", created="", counts={},
                    classes=["daisy", "rose"], backend="azure", task="classify")
    job = training_job(azure_settings, dataset=ds, profile="smoke", environment="azureml:env:1")
    assert "--task ${{inputs.task}}" in job.command and job.inputs["task"]._data == "classify"
    assert job.environment_variables["VISIONOPS_MODEL_NAME"] == "flowers-classifier"
    assert (job.tags["task"], job.tags["decision_metric"]) == ("classify", "top1")
    assert job._validate().passed
    with pytest.raises(ConfigError, match=r"train takes no knob\(s\) \['task'\]"):
        training_job(azure_settings, dataset=ds, profile="smoke", environment="azureml:env:1", knobs={"task": "x"})
    # the data asset records the task, and the workspace's description of it brings it back
    asset = data_asset(ds.model_copy(update={"path": str(smoke_folder)}))
    assert (asset.tags["task"], asset.tags["format"]) == ("classify", "folder-per-class")
    assert dataset_ref(asset).task == "classify"
    asset.tags.pop("task")
    assert dataset_ref(asset).task == "detect"  # assets registered before tasks existed


def test_a_job_for_another_task_than_the_data_sets_is_refused(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    assert ref.task == "detect"
    mock_client.sent.clear()
    with pytest.raises(ConfigError, match="'detect' data set but task 'classify' was asked for"):
        workspace.submit_training(ref, "smoke", task="classify")
    with pytest.raises(ConfigError, match="'detect' data set but task 'classify' was asked for"):
        workspace.build_pipeline(ref, "smoke", task="classify")
    assert mock_client.sent == []
    assert workspace.build_pipeline(ref, "smoke")._to_dict()["inputs"]["task"] == "detect"


def test_the_smoke_test_checks_the_served_task_and_its_answer_shape(workspace, mock_client, register):
    model = register()
    staged = workspace.stage_deployment(model)
    workspace.smoke_test(staged.endpoint, staged.deployment, task="detect")  # the mock serves a detector
    with pytest.raises(EndpointError, match=r"expected a classify model answering with labels, class_ids, "
                                            r"probabilities; it serves a detect model"):
        workspace.smoke_test(staged.endpoint, staged.deployment, task="classify")

    def classifier(**kw):
        return json.dumps({"model": {"name": "flowers-classifier", "version": "1", "task": "classify"},
                           "predictions": [{"width": 96, "height": 96, "labels": ["rose"], "class_ids": [1],
                                            "probabilities": [0.9]}]})

    mock_client.online_endpoints.invoke.side_effect = classifier
    answer = workspace.smoke_test(staged.endpoint, staged.deployment, task="classify")
    assert answer["predictions"][0]["labels"] == ["rose"]
    with pytest.raises(EndpointError, match="expected a detect model"):
        workspace.smoke_test(staged.endpoint, staged.deployment, task="detect")

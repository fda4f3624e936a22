"""The AutoML-for-Images job, offline: built on the MLTables `export_automl` writes, loaded by
azure-ai-ml's own `load_job` into an ImageObjectDetectionJob (and its REST payload), submitted by
the azure backend to the mocked MLClient (with image URLs in the data asset's datastore), and
returned checked but unsubmitted by the local backend. The Workspace interface carries it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from azure.ai.ml.entities._job.automl.image import ImageObjectDetectionJob

from visionops.errors import ConfigError
from visionops.sweep.automl import (
    JOB_YAML,
    AutoMLJobInfo,
    AutoMLOptions,
    automl_job_dict,
    load_automl_job,
    write_job_yaml,
)

pytestmark = pytest.mark.azure


def test_the_job_loads_into_an_image_object_detection_job(workspace, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    options = AutoMLOptions(models=["yolov5", "fasterrcnn_resnet50_fpn"], max_trials=6, max_concurrent_trials=3,
                            timeout_minutes=90)
    doc, path = workspace.build_automl(ref, smoke_folder, options)
    job = load_automl_job(path)
    assert isinstance(job, ImageObjectDetectionJob)
    assert job.primary_metric.value == "MeanAveragePrecision" and job.target_column_name == "label"
    assert (job.limits.max_trials, job.limits.max_concurrent_trials, job.limits.timeout_minutes) == (6, 3, 90)
    assert job.training_data.type == "mltable" and job.validation_data.type == "mltable"
    assert job.training_data.path == "./train" and job.validation_data.path == "./test"  # the frozen test split
    assert job.search_space[0].model_name.values == ["yolov5", "fasterrcnn_resnet50_fpn"]
    assert job.sweep.early_termination.type == "bandit"
    assert job.training_parameters.validation_metric_type.value.lower() == "voc"
    assert job.compute == workspace.settings.compute_name
    job._to_rest_object()  # the payload the SDK would send serialises
    # each split's MLTable and JSONL exist beside the YAML, one JSONL line per image
    for split in ("train", "test"):
        lines = (path.parent / split / f"{split}_annotations.jsonl").read_text().splitlines()
        assert len(lines) == ref.counts[split]["images"]
        assert (path.parent / split / "MLTable").is_file()


def test_one_model_and_one_trial_is_a_plain_training_not_a_sweep(workspace, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    doc = automl_job_dict(workspace.settings, ref, AutoMLOptions(models=["yolov5"], max_trials=1))
    assert "search_space" not in doc and doc["training_parameters"]["model_name"] == "yolov5"
    doc, path = workspace.build_automl(ref, smoke_folder, AutoMLOptions(models=["yolov5"], max_trials=1,
                                                                       validation_split="val"))
    job = load_automl_job(path)
    assert job.training_parameters.model_name == "yolov5" and job.validation_data.path == "./val"


def test_the_sdk_rejects_a_bad_spec_naming_the_file_and_field(tmp_path):
    bad = {"$schema": "x", "type": "automl", "task": "image_object_detection", "compute": "azureml:c",
           "primary_metric": "accuracy", "target_column_name": "label",
           "training_data": {"type": "mltable", "path": "./train"}, "limits": {"max_trials": 1}}
    path = write_job_yaml(bad, tmp_path)
    with pytest.raises(ConfigError, match=r"(?s)automl_job\.yaml.*primary_metric.*accuracy"):
        load_automl_job(path)


def test_a_missing_mltable_is_named(tmp_path, workspace, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    path = write_job_yaml(automl_job_dict(workspace.settings, ref), tmp_path)
    with pytest.raises(ConfigError, match=r"training_data \./train has no MLTable"):
        load_automl_job(path)


def test_empty_models_or_zero_limits_are_refused(workspace, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    with pytest.raises(ConfigError, match="models is empty"):
        automl_job_dict(workspace.settings, ref, AutoMLOptions(models=[]))
    with pytest.raises(ConfigError, match="max_trials=0"):
        automl_job_dict(workspace.settings, ref, AutoMLOptions(max_trials=0))


def test_the_azure_backend_submits_it_with_datastore_image_urls(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    info = workspace.submit_automl(ref, smoke_folder, AutoMLOptions(max_trials=2))
    assert isinstance(info, AutoMLJobInfo)
    assert info.backend == "azure" and info.submitted and info.validated
    assert info.job_name and info.url.startswith("https://ml.azure.com/runs/")
    sent = [c for c in mock_client.sent if c["op"] == "jobs.create_or_update"]
    assert len(sent) == 1 and isinstance(sent[0]["entity"], ImageObjectDetectionJob)
    assert sent[0]["experiment_name"] == info.spec["experiment_name"]
    assert [c["entity"].name for c in mock_client.sent if c["op"] == "compute.begin_create_or_update"] == [
        workspace.settings.compute_name]
    # AutoML reads the images from the registered asset's storage, not from this machine
    asset = mock_client.data.get(name=ref.name, version=ref.version)
    first = json.loads((Path(info.spec_path).parent / "train" / "train_annotations.jsonl").read_text().splitlines()[0])
    assert first["image_url"].startswith(str(asset.path).rstrip("/") + "/images/train/")
    assert sent[0]["entity"].tags["dataset.version"] == ref.version


def test_the_azure_backend_refuses_an_unregistered_data_set(workspace, mock_client, smoke_folder):
    from visionops.data.dataset import ref_from_folder

    ref = ref_from_folder(smoke_folder, backend="azure")
    with pytest.raises(ConfigError, match=f"no data asset {ref.name}:{ref.version}"):
        workspace.submit_automl(ref, smoke_folder)
    assert not [c for c in mock_client.sent if c["op"] == "jobs.create_or_update"]


def test_the_local_backend_returns_the_checked_job_unsubmitted(tmp_path, smoke_folder):
    from visionops.settings import Settings
    from visionops.workspace.local import LocalWorkspace

    local = LocalWorkspace(Settings(_env_file=None, root=tmp_path))
    ref = local.register_dataset(smoke_folder)
    info = local.submit_automl(ref, Path(ref.path))
    assert info.backend == "local" and not info.submitted and info.validated and info.job_name is None
    assert "azure backend" in info.note
    assert Path(info.spec_path).name == JOB_YAML
    assert yaml.safe_load(Path(info.spec_path).read_text()) == info.spec
    assert isinstance(load_automl_job(Path(info.spec_path)), ImageObjectDetectionJob)


def test_submit_automl_is_part_of_the_workspace_interface():
    from visionops.workspace.base import Workspace

    assert "submit_automl" in Workspace.__abstractmethods__ and hasattr(Workspace, "build_automl")

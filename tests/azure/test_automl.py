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


# --- the AutoML best child run's metrics, fetched from the workspace's MLflow -------------------------
@pytest.fixture
def automl_runs(workspace):
    """An AutoML parent run and its children in the workspace's MLflow (the mocked workspace reports a
    local sqlite store as its tracking URI): the parent's tag names the best child, as Azure ML sets it."""
    import mlflow

    from visionops.tracking import configure_mlflow

    configure_mlflow(workspace.registry_settings())
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(workspace.settings.experiment_name).experiment_id
    parent = client.create_run(experiment).info.run_id
    runs = {}
    for name, metrics in {"weak": {"mean_average_precision": 0.41, "precision": 0.5, "recall": 0.45},
                          "best": {"mean_average_precision": 0.83, "precision": 0.9, "recall": 0.8}}.items():
        run = client.create_run(experiment, tags={"mlflow.parentRunId": parent}).info.run_id
        for key, value in metrics.items():
            client.log_metric(run, key, value)
        runs[name] = run
    return {"client": client, "parent": parent, **runs}


def _champion(workspace, tmp_path, metrics: dict[str, float]):
    """A production version of <data set>-detector whose metric.* tags are its test-split scores."""
    import mlflow

    from visionops import registry
    from visionops.evaluation.decision import DecisionRule, decide
    from visionops.tracking import configure_mlflow

    settings = workspace.registry_settings().with_overrides(model_name="shapes-detector")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "best.pt").write_bytes(b"placeholder: comparing reads tags, never weights")
    configure_mlflow(settings)
    with mlflow.start_run() as run:
        pass
    decision = decide({"map50_95": metrics["map50_95"]}, None, DecisionRule(floor=0.0))
    return registry.register(settings, decision=decision,
                             weights=tmp_path / "w" / "best.pt", train_run_id=run.info.run_id,
                             tags={f"metric.{k}": f"{v:.6f}" for k, v in metrics.items()},
                             info={"classes": ["circle", "rectangle"], "imgsz": 64})


def test_the_best_child_runs_metrics_are_fetched_and_compared(workspace, mock_client, smoke_folder, automl_runs,
                                                              tmp_path):
    from types import SimpleNamespace

    from visionops.sweep.automl import AUTOML_METRICS_JSON, COMPARISON_JSON, automl_folder, last_comparison

    ref = workspace.register_dataset(smoke_folder)
    parent = automl_runs["parent"]
    automl_runs["client"].set_tag(parent, "automl_best_child_run_id", automl_runs["best"])
    mock_client.jobs.get.side_effect = lambda name, **kw: SimpleNamespace(name=name, status="Completed")
    assert workspace.automl_best_metrics(parent) == (
        automl_runs["best"], {"mean_average_precision": 0.83, "precision": 0.9, "recall": 0.8})

    _champion(workspace, tmp_path, {"map50": 0.7, "map50_95": 0.45, "precision": 0.92, "recall": 0.7})
    comparison = workspace.compare_automl(parent, ref)  # no metrics JSON passed by hand
    rows = {r.automl_metric: (r.visionops_metric, r.automl, r.visionops, r.better) for r in comparison.rows}
    assert rows == {"mean_average_precision": ("map50", 0.83, 0.7, "automl"),
                    "precision": ("precision", 0.9, 0.92, "visionops"), "recall": ("recall", 0.8, 0.7, "automl")}
    assert comparison.winner == "automl" and comparison.automl_run == automl_runs["best"]
    assert comparison.champion == "shapes-detector:1"
    folder = automl_folder(workspace.settings, ref)
    fetched = json.loads((folder / AUTOML_METRICS_JSON).read_text())
    assert fetched["run_id"] == automl_runs["best"] and fetched["parent_run_id"] == parent
    assert (folder / COMPARISON_JSON).is_file() and last_comparison(workspace.settings, ref) == comparison
    coco = workspace.compare_automl(parent, ref, metric_type="coco")
    assert [(r.visionops_metric, r.visionops) for r in coco.rows] == [("map50_95", 0.45)]


def test_a_job_without_a_best_child_yet_says_so(workspace, mock_client, automl_runs):
    from types import SimpleNamespace

    mock_client.jobs.get.side_effect = lambda name, **kw: SimpleNamespace(name=name, status="Running")
    with pytest.raises(ConfigError, match=r"no tag automl_best_child_run_id yet \(its status is Running\)"):
        workspace.automl_best_metrics(automl_runs["parent"])


def test_an_unknown_job_or_no_champion_is_named(workspace, mock_client, smoke_folder, automl_runs):
    from types import SimpleNamespace

    from visionops.errors import ModelNotFoundError

    ref = workspace.register_dataset(smoke_folder)
    with pytest.raises(ConfigError, match="no job 'automl-nope'"):
        workspace.automl_best_metrics("automl-nope")
    automl_runs["client"].set_tag(automl_runs["parent"], "automl_best_child_run_id", automl_runs["weak"])
    mock_client.jobs.get.side_effect = lambda name, **kw: SimpleNamespace(name=name, status="Completed")
    with pytest.raises(ModelNotFoundError, match="no champion"):
        workspace.compare_automl(automl_runs["parent"], ref)


def test_visionops_azure_automl_compare_prints_the_table(workspace, mock_client, smoke_folder, automl_runs, tmp_path,
                                                         monkeypatch):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import visionops.cli.azure as cli_azure
    from visionops.cli import app

    ref = workspace.register_dataset(smoke_folder)
    automl_runs["client"].set_tag(automl_runs["parent"], "automl_best_child_run_id", automl_runs["best"])
    mock_client.jobs.get.side_effect = lambda name, **kw: SimpleNamespace(name=name, status="Completed")
    _champion(workspace, tmp_path, {"map50": 0.7, "map50_95": 0.45, "precision": 0.92, "recall": 0.7})
    monkeypatch.setattr(cli_azure, "_azure_workspace", lambda: workspace)
    result = CliRunner().invoke(app, ["azure", "automl-compare", "--job", automl_runs["parent"],
                                      "--dataset", f"{ref.name}:{ref.version}", "--metric-type", "coco"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "mean_average_precision" in result.output and "map50_95" in result.output
    assert "winner: automl" in result.output and automl_runs["best"] in result.output


def test_a_classification_data_set_gets_an_image_classification_job(workspace, tmp_path):
    """The AutoML benchmark follows the data set's task: image_classification, accuracy, AutoML's
    classification models, multi-class JSONL (`label`: the class); a detection metric type is refused."""
    from azure.ai.ml.entities._job.automl.image import ImageClassificationJob

    from visionops.data.classify.synthetic import ClassifySpec
    from visionops.data.dataset import generate_synthetic
    from visionops.sweep.automl import compare

    folder = generate_synthetic(ClassifySpec(per_class_train=4, per_class_val=2, per_class_test=2, image_size=48),
                                tmp_path / "cls", "objects")
    ref = workspace.register_dataset(folder)
    assert ref.task == "classify"
    doc, path = workspace.build_automl(ref, folder, AutoMLOptions(max_trials=2))
    job = load_automl_job(path)
    assert isinstance(job, ImageClassificationJob) and doc["task"] == "image_classification"
    assert job.primary_metric.value.lower() == "accuracy"
    assert job.search_space[0].model_name.values == ["mobilenetv2", "resnet50"]
    job._to_rest_object()
    line = json.loads((path.parent / "test" / "test_annotations.jsonl").read_text().splitlines()[0])
    assert line["label"] in ref.classes and Path(line["image_url"]).parent.name == line["label"]
    with pytest.raises(ConfigError, match="metric_type 'coco' does not fit a classify data set"):
        automl_job_dict(workspace.settings, ref, AutoMLOptions(metric_type="coco"))
    result = compare({"accuracy": 0.9, "precision_score_macro": 0.8, "recall_score_macro": 0.85,
                      "f1_score_macro": 0.82}, {"top1": 0.95, "precision": 0.9, "recall": 0.95, "f1": 0.92},
                     metric_type="classify")
    assert result.winner == "visionops" and [r.visionops_metric for r in result.rows] == ["top1", "precision",
                                                                                        "recall", "f1"]

"""The Azure ML sweep as a pipeline step and its submission, offline: the trial component and the
pipeline with a sweep step in place of train validate with azure-ai-ml's own objects, survive a
dump + load_job round trip, carry the space's objective, limits and Bandit policy; the azure
backend submits the standalone sweep job and the sweep pipeline to the mocked MLClient (checked
before anything is sent), and `visionops sweep --backend azure` reaches it."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from azure.ai.ml import load_job
from azure.ai.ml.entities import CommandComponent, PipelineJob
from azure.ai.ml.entities._builders.sweep import Sweep
from azure.ai.ml.sweep import BanditPolicy, Choice, LogUniform, Randint, SweepJob, Uniform
from azure_mock import sent

from visionops.errors import ConfigError
from visionops.pipeline.azure_pipeline import build_pipeline_job, build_sweep_pipeline_job
from visionops.pipeline.components import GRAPH
from visionops.sweep.azure_sweep import trial_component
from visionops.sweep.space import load_space, parse_space

pytestmark = pytest.mark.azure

ENV = "azureml:visionops-training:0123456789ab"


@pytest.fixture(scope="module")
def space():
    return parse_space({"parameters": {
        "lr0": {"type": "loguniform", "low": 0.0005, "high": 0.02},
        "momentum": {"type": "uniform", "low": 0.8, "high": 0.98},
        "batch": {"type": "choice", "values": [8, 16]},
        "close_mosaic": {"type": "randint", "upper": 4},
        "model": {"type": "choice", "values": ["yolo11n.yaml", "yolo11s.yaml"]},
    }})


@pytest.fixture(scope="module")
def sweep_pipeline(space) -> PipelineJob:
    return build_sweep_pipeline_job(space, data="azureml:shapes:4112fc229996", profile="smoke", compute="gpu-cluster",
                                    max_total_trials=12, max_concurrent_trials=3, timeout_s=7200, trial_timeout_s=1800,
                                    environment=ENV, environment_variables={"VISIONOPS_MODEL_NAME": "m"})


# --- the trial component ------------------------------------------------------------------------------
def test_the_trial_component_takes_one_typed_input_per_knob(space):
    from typer.testing import CliRunner

    from visionops.cli.sweep_trial import trial_app

    component = trial_component(space, environment=ENV)
    assert isinstance(component, CommandComponent)
    assert component._validate().passed, component._validate().error_messages
    types = {k: v.type for k, v in component.inputs.items()}
    assert types == {"data": "uri_folder", "validation": "uri_folder", "profile": "string", "lr0": "number",
                     "momentum": "number", "batch": "integer", "close_mosaic": "integer", "model": "string"}
    assert component.environment == ENV and set(component.outputs) == {"model"}
    for name in space.parameters:
        assert f"--set {name}=${{{{inputs.{name}}}}}" in component.command
    assert "search_space." not in component.command
    # the command runs our trial entry point with options it has
    help_text = CliRunner().invoke(trial_app, ["trial", "--help"]).output
    for option in ("--data", "--out", "--profile", "--set"):
        assert option in component.command and option in help_text


# --- the pipeline with a sweep step -----------------------------------------------------------------
def test_the_sweep_step_replaces_train_with_the_spaces_objective_limits_and_bandit(sweep_pipeline, space):
    job = sweep_pipeline
    assert job._validate().passed, job._validate().error_messages
    assert list(job.jobs) == [n.name for n in GRAPH]
    step = job.jobs["train"]
    assert isinstance(step, Sweep)
    assert step.objective.primary_metric == "map50_95" and step.objective.goal.lower() == "maximize"
    assert (step.limits.max_total_trials, step.limits.max_concurrent_trials) == (12, 3)
    assert (step.limits.timeout, step.limits.trial_timeout) == (7200, 1800)
    assert isinstance(step.early_termination, BanditPolicy)
    assert (step.early_termination.slack_factor, step.early_termination.evaluation_interval,
            step.early_termination.delay_evaluation) == (0.1, 1, 2)
    assert step.compute == "gpu-cluster" and step.sampling_algorithm.lower() == "random"
    kinds = {k: type(v) for k, v in step.search_space.items()}
    assert kinds == {"lr0": LogUniform, "momentum": Uniform, "batch": Choice, "close_mosaic": Randint,
                     "model": Choice}
    assert step.search_space["lr0"].min_value == pytest.approx(math.log(0.0005))
    assert step.trial.environment == ENV and step.trial.environment_variables == {"VISIONOPS_MODEL_NAME": "m"}
    assert job.tags["sweep.metric"] == "map50_95" and job.tags["task"] == "detect"


def test_the_best_trial_feeds_evaluate_and_register(sweep_pipeline):
    dumped = sweep_pipeline._to_dict()
    jobs = dumped["jobs"]
    assert jobs["train"]["type"] == "sweep"
    assert jobs["train"]["inputs"]["validation"]["path"] == "${{parent.jobs.validate.outputs.report}}"
    assert jobs["train"]["inputs"]["data"]["path"] == "${{parent.inputs.data}}"
    assert jobs["evaluate"]["inputs"]["model"]["path"] == "${{parent.jobs.train.outputs.model}}"
    assert jobs["register"]["inputs"]["model"]["path"] == "${{parent.jobs.train.outputs.model}}"
    assert jobs["validate"]["inputs"]["task"]["path"] == "${{parent.inputs.task}}"
    assert jobs["evaluate"]["inputs"]["task"]["path"] == "${{parent.inputs.task}}"
    assert dumped["inputs"]["task"] == "detect" and dumped["inputs"]["profile"] == "smoke"
    sweep_pipeline._to_rest_object()  # the payload create_or_update would send serialises


def test_the_sweep_pipeline_survives_a_dump_and_load_round_trip(sweep_pipeline, tmp_path):
    target = tmp_path / "sweep_pipeline.yml"  # holds this machine's code path: a build artefact
    sweep_pipeline.dump(str(target))
    raw = yaml.safe_load(target.read_text())
    assert raw["jobs"]["train"]["early_termination"]["type"] == "bandit"
    assert raw["jobs"]["train"]["search_space"]["close_mosaic"] == {"type": "randint", "upper": 4}
    loaded = load_job(source=str(target))
    assert isinstance(loaded, PipelineJob) and loaded._validate().passed
    step = loaded.jobs["train"]
    assert isinstance(step, Sweep) and step.objective.primary_metric == "map50_95"
    assert step.limits.max_total_trials == 12 and isinstance(step.early_termination, BanditPolicy)
    assert set(step.search_space) == {"lr0", "momentum", "batch", "close_mosaic", "model"}


def test_a_classification_sweep_pipeline_maximises_top1():
    space = parse_space({"task": "classify", "metric": "top1", "parameters": {
        "lr0": {"type": "loguniform", "low": 0.0005, "high": 0.02},
        "imgsz": {"type": "choice", "values": [96, 128]},
    }})
    job = build_sweep_pipeline_job(space, data="azureml:shapes-cls:1", compute="gpu-cluster", max_total_trials=4,
                                   max_concurrent_trials=2)
    assert job._validate().passed, job._validate().error_messages
    step = job.jobs["train"]
    assert step.objective.primary_metric == "top1" and step.objective.goal.lower() == "maximize"
    assert job._to_dict()["inputs"]["task"] == "classify"


def test_the_plain_pipeline_takes_the_task(tmp_path):
    job = build_pipeline_job(data="azureml:shapes-cls:1", task="classify", compute="gpu-cluster", environment=ENV)
    assert job._validate().passed, job._validate().error_messages
    dumped = job._to_dict()
    assert dumped["inputs"]["task"] == "classify" and job.tags["task"] == "classify"
    for node in ("validate", "train", "evaluate"):
        assert dumped["jobs"][node]["inputs"]["task"]["path"] == "${{parent.inputs.task}}", node
        assert "--task ${{inputs.task}}" in job.jobs[node].component.command, node
    assert "task" not in dumped["jobs"]["register"]["inputs"]
    with pytest.raises(ConfigError, match="unknown task 'segment'"):
        build_pipeline_job(data="azureml:shapes:1", task="segment", compute="gpu-cluster")


# --- submission through the azure backend --------------------------------------------------------------
def test_the_standalone_sweep_job_is_submitted(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    info = workspace.submit_sweep(ref, profile="smoke", max_total_trials=6, max_concurrent_trials=2)
    [job] = sent(mock_client, "jobs.create_or_update")
    assert isinstance(job, SweepJob)
    job._to_rest_object()  # the payload the SDK sends serialises
    # pinned to the environment's content version (the loader strips the azureml: prefix)
    assert job.trial.environment == workspace.environment_id("training").removeprefix("azureml:")
    assert job.inputs["data"].path.endswith(f"shapes:{ref.version}")
    assert job.objective.primary_metric == "map50_95" and isinstance(job.early_termination, BanditPolicy)
    assert set(job.search_space) == set(load_space().parameters)  # the task's default space
    assert info.kind == "sweep" and info.job_name == "mock-job-1" and info.status == "Starting"
    assert (info.primary_metric, info.goal, info.task) == ("map50_95", "maximize", "detect")
    assert (info.max_total_trials, info.max_concurrent_trials) == (6, 2)
    assert info.url.startswith("https://ml.azure.com/runs/mock-job-1")
    assert [c.name for c in sent(mock_client, "compute.begin_create_or_update")] == ["gpu-cluster"]
    assert [e.name for e in sent(mock_client, "environments.create_or_update")] == ["visionops-training"]
    assert mock_client.jobs.create_or_update.call_args.kwargs["experiment_name"] == "visionops"


def test_the_sweep_pipeline_is_submitted_and_waited_for(workspace, mock_client, smoke_folder, space):
    ref = workspace.register_dataset(smoke_folder)
    info = workspace.submit_sweep(ref, space=space, pipeline=True, max_total_trials=4, wait=True)
    [job] = sent(mock_client, "jobs.create_or_update")
    assert isinstance(job, PipelineJob) and job._validate().passed
    assert isinstance(job.jobs["train"], Sweep)
    assert job.jobs["train"].trial.environment == workspace.environment_id("training")
    assert job.jobs["validate"].component.environment == workspace.environment_id("training")
    assert info.kind == "pipeline" and info.status == "Completed"
    # concurrency defaults to the cluster's node count, one trial per node
    assert info.max_concurrent_trials == workspace.settings.compute_max_nodes
    assert job.jobs["train"].limits.max_concurrent_trials == workspace.settings.compute_max_nodes


def test_a_bad_sweep_is_refused_before_anything_is_sent(workspace, mock_client, smoke_folder, space):
    ref = workspace.register_dataset(smoke_folder)
    mock_client.sent.clear()
    with pytest.raises(ConfigError, match="max_concurrent_trials must be 1..max_total_trials"):
        workspace.submit_sweep(ref, space=space, max_total_trials=2, max_concurrent_trials=3)
    with pytest.raises(ConfigError, match="bayesian sampling cannot draw"):
        workspace.submit_sweep(ref, space=space, pipeline=True, sampling_algorithm="bayesian")
    with pytest.raises(ConfigError, match="'detect' data set but task 'classify' was asked for"):
        workspace.submit_sweep(ref, space=space, task="classify")
    assert mock_client.sent == []


def test_visionops_sweep_backend_azure_submits(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from visionops.cli import app

    log = tmp_path / "sent.jsonl"
    monkeypatch.setenv("VISIONOPS_AZURE_CLIENT_FACTORY", "azure_mock:mock_ml_client")
    monkeypatch.setenv("VISIONOPS_AZURE_MOCK_LOG", str(log))
    monkeypatch.setenv("VISIONOPS_ROOT", str(tmp_path))
    monkeypatch.setenv("VISIONOPS_WORKSPACE_NAME", "mlw-visionops")
    result = CliRunner().invoke(app, ["sweep", "--backend", "azure", "--profile", "smoke", "--trials", "5",
                                      "--concurrent", "1", "--pipeline"])
    assert result.exit_code == 0, result.output
    assert "pipeline with a sweep step" in result.output and "5 trials, 1 at once" in result.output
    jobs = [json.loads(line) for line in log.read_text().splitlines()
            if json.loads(line)["op"] == "jobs.create_or_update"]
    assert [j["type"] for j in jobs] == ["PipelineJob"]
    train = jobs[0]["entity"]["jobs"]["train"]
    assert train["type"] == "sweep" and train["limits"]["max_total_trials"] == 5
    refused = CliRunner().invoke(app, ["sweep", "--backend", "azure", "--profile", "smoke", "--epochs", "3"])
    assert refused.exit_code != 0 and "--epochs is a local-sweep option" in str(refused.exception)

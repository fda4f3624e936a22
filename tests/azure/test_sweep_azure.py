"""The Azure ML sweep job, offline: each search-space type maps onto azure.ai.ml.sweep and back,
the job loads with azure-ai-ml's own loader into a SweepJob (and its REST payload), with Bandit
early termination, limits and the primary metric training logs, and its trial command is one our
trial entry point accepts."""

from __future__ import annotations

import math

import pytest
import yaml
from azure.ai.ml import load_job
from azure.ai.ml.sweep import BanditPolicy, Choice, LogUniform, Randint, SweepJob, Uniform

from visionops.errors import ConfigError
from visionops.sweep.azure_sweep import (
    build_sweep_job,
    from_azure,
    space_from_azure,
    sweep_job_dict,
    sweep_job_yaml,
    to_azure,
)
from visionops.sweep.space import ChoiceParam, LogUniformParam, RandintParam, UniformParam, load_space, parse_space
from visionops.training import CLEAN_NAMES

pytestmark = pytest.mark.azure


# --- one test per type, both directions -------------------------------------------------------------
def test_choice_maps_both_ways():
    ours = ChoiceParam(type="choice", values=[96, 128, 160])
    theirs = to_azure(ours)
    assert isinstance(theirs, Choice) and theirs.values == [96, 128, 160]
    assert from_azure("imgsz", Choice(values=["yolo11n.yaml", "yolo11s.yaml"])) == ChoiceParam(
        type="choice", values=["yolo11n.yaml", "yolo11s.yaml"])
    assert from_azure("imgsz", theirs) == ours


def test_uniform_maps_both_ways():
    ours = UniformParam(type="uniform", low=0.8, high=0.98)
    theirs = to_azure(ours)
    assert isinstance(theirs, Uniform) and (theirs.min_value, theirs.max_value) == (0.8, 0.98)
    assert from_azure("momentum", Uniform(min_value=0.1, max_value=0.2)) == UniformParam(
        type="uniform", low=0.1, high=0.2)
    assert from_azure("momentum", theirs) == ours


def test_loguniform_bounds_become_natural_logs_and_come_back():
    ours = LogUniformParam(type="loguniform", low=1e-4, high=1e-1)
    theirs = to_azure(ours)
    assert isinstance(theirs, LogUniform)
    assert theirs.min_value == pytest.approx(math.log(1e-4)) and theirs.max_value == pytest.approx(math.log(1e-1))
    back = from_azure("lr0", LogUniform(min_value=math.log(0.001), max_value=math.log(0.01)))
    assert isinstance(back, LogUniformParam)
    assert back.low == pytest.approx(0.001) and back.high == pytest.approx(0.01)
    again = from_azure("lr0", theirs)
    assert again.low == pytest.approx(1e-4) and again.high == pytest.approx(1e-1)


def test_randint_maps_both_ways_with_the_same_exclusive_upper():
    ours = RandintParam(type="randint", upper=5)
    theirs = to_azure(ours)
    assert isinstance(theirs, Randint) and theirs.upper == 5
    assert from_azure("close_mosaic", Randint(upper=3)) == RandintParam(type="randint", upper=3)
    assert from_azure("close_mosaic", theirs) == ours


def test_an_azure_type_without_a_local_equivalent_is_refused_by_name():
    from azure.ai.ml.sweep import Normal

    with pytest.raises(ConfigError, match="search_space.lr0: Azure ML type 'normal' has no local equivalent"):
        from_azure("lr0", Normal(mu=0.0, sigma=1.0))


def test_the_default_space_survives_the_round_trip():
    space = load_space()
    back = space_from_azure({k: to_azure(p) for k, p in space.parameters.items()}, metric=space.metric,
                            goal=space.goal)
    assert set(back.parameters) == set(space.parameters)
    for name, p in space.parameters.items():
        q = back.parameters[name]
        assert q.type == p.type, name
        if isinstance(p, ChoiceParam):
            assert q.values == p.values
        else:
            assert (q.low, q.high) == pytest.approx((p.low, p.high)), name


# --- the job -----------------------------------------------------------------------------------------
@pytest.fixture
def space():
    return parse_space({"parameters": {
        "lr0": {"type": "loguniform", "low": 0.0005, "high": 0.02},
        "momentum": {"type": "uniform", "low": 0.8, "high": 0.98},
        "batch": {"type": "choice", "values": [8, 16]},
        "close_mosaic": {"type": "randint", "upper": 4},
        "model": {"type": "choice", "values": ["yolo11n.yaml", "yolo11s.yaml"]},
    }})


def test_the_sweep_job_loads_as_a_sweep_job_with_bandit_limits_and_objective(space, azure_settings):
    job = build_sweep_job(space, azure_settings, data="azureml:shapes:4112fc229996", profile="smoke",
                          max_total_trials=12, max_concurrent_trials=3, timeout_s=7200, trial_timeout_s=1800)
    assert isinstance(job, SweepJob)
    assert job.objective.primary_metric == "map50_95" and job.objective.goal.lower() == "maximize"
    assert job.objective.primary_metric in CLEAN_NAMES.values()  # a metric training logs per epoch via MLflow
    assert job.sampling_algorithm.lower() == "random"
    assert (job.limits.max_total_trials, job.limits.max_concurrent_trials) == (12, 3)
    assert (job.limits.timeout, job.limits.trial_timeout) == (7200, 1800)
    policy = job.early_termination
    assert isinstance(policy, BanditPolicy)
    assert (policy.slack_factor, policy.evaluation_interval, policy.delay_evaluation) == (0.1, 1, 2)
    assert job.compute == "gpu-cluster"  # the SDK strips the azureml: prefix on load
    assert job.inputs["data"].path.endswith("shapes:4112fc229996")  # the loader may strip azureml:
    assert isinstance(job.search_space["lr0"], LogUniform) and isinstance(job.search_space["close_mosaic"], Randint)
    assert job.search_space["lr0"].min_value == pytest.approx(math.log(0.0005))
    rest = job._to_rest_object()  # the payload create_or_update would send
    assert rest.properties.search_space["batch"] == ["choice", [[8, 16]]]
    assert rest.properties.search_space["close_mosaic"] == ["randint", [4]]
    assert rest.properties.objective.primary_metric == "map50_95"


def test_concurrency_defaults_to_the_clusters_nodes(space, azure_settings):
    settings = azure_settings.with_overrides(compute_max_nodes=4)
    job = build_sweep_job(space, settings, data="azureml:shapes:1", max_total_trials=8)
    assert job.limits.max_concurrent_trials == 4


def test_the_trial_command_passes_every_drawn_value_to_our_trial_entry_point(space, azure_settings):
    from typer.testing import CliRunner

    from visionops.cli.sweep_trial import trial_app

    job = build_sweep_job(space, azure_settings, data="azureml:shapes:1")
    command = job.trial.command
    assert command.startswith("python -m visionops.cli.sweep_trial trial ")
    for name in space.parameters:
        assert f"--set {name}=${{{{search_space.{name}}}}}" in command
    # the options it uses exist: --help of the same entry point lists them
    help_text = CliRunner().invoke(trial_app, ["trial", "--help"]).output
    for option in ("--data", "--out", "--profile", "--set"):
        assert option in help_text


def test_the_yaml_file_is_what_az_ml_job_create_reads(space, azure_settings, tmp_path):
    path = sweep_job_yaml(space, azure_settings, tmp_path / "sweep.yml", data="azureml:shapes:1", profile="smoke")
    raw = yaml.safe_load(path.read_text())
    assert raw["type"] == "sweep" and raw["early_termination"]["type"] == "bandit"
    assert raw["search_space"]["lr0"]["type"] == "loguniform"
    loaded = load_job(source=str(path))
    assert isinstance(loaded, SweepJob) and set(loaded.search_space) == set(space.parameters)


def test_bayesian_and_grid_sampling_refuse_types_they_cannot_draw(space, azure_settings):
    with pytest.raises(ConfigError, match=r"bayesian sampling cannot draw parameters.lr0 \(loguniform\), "
                                          r"parameters.close_mosaic \(randint\)"):
        sweep_job_dict(space, azure_settings, data="azureml:shapes:1", sampling_algorithm="bayesian")
    grid = parse_space({"parameters": {"batch": {"type": "choice", "values": [8, 16]}}})
    assert build_sweep_job(grid, azure_settings, data="azureml:shapes:1",
                           sampling_algorithm="grid").sampling_algorithm.lower() == "grid"


@pytest.mark.parametrize(("options", "message"), [
    ({"max_total_trials": 0}, "max_total_trials must be 1..1000"),
    ({"max_total_trials": 4, "max_concurrent_trials": 5}, "max_concurrent_trials must be 1..max_total_trials"),
    ({"sampling_algorithm": "sobol"}, "sampling algorithm 'sobol'"),
])
def test_bad_limits_are_refused_before_building(space, azure_settings, options, message):
    with pytest.raises(ConfigError, match=message):
        sweep_job_dict(space, azure_settings, data="azureml:shapes:1", **options)


def test_a_local_folder_is_not_a_data_asset(space, azure_settings, tmp_path):
    with pytest.raises(ConfigError, match="must name a registered data asset"):
        sweep_job_dict(space, azure_settings, data=str(tmp_path))

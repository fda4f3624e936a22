"""The Azure ML sweep job over the same search space the local sweep reads.

Each entry maps onto an `azure.ai.ml.sweep` type and back (`to_azure`, `from_azure`):

    choice(values)        <-> Choice(values)
    uniform(low, high)    <-> Uniform(min_value=low, max_value=high)
    loguniform(low, high) <-> LogUniform(min_value=ln(low), max_value=ln(high))   Azure's bounds are logs
    randint(upper)        <-> Randint(upper)                                       0 .. upper-1 on both sides

The job is the standalone sweep YAML of Azure ML's reference (`type: sweep`, `trial`,
`search_space`, `objective`, `limits`, `early_termination`), written by `sweep_job_yaml` for
`az ml job create -f` and loaded by azure-ai-ml's own `load_job` into a `SweepJob`
(`build_sweep_job`), so the SDK's schema checks every field offline. Each trial runs
`python -m visionops.cli.sweep_trial trial ... --set knob=${{search_space.knob}}`: the train step
with the drawn values, whose per-epoch MLflow metrics include the objective's primary metric
(`map50_95` for detection, `top1` for classification: the space's metric), which Bandit early
termination compares across trials.

The same trial also runs **as a pipeline step** (`trial_component` + `sweep_node`): a command
component whose inputs are the space's knobs, called with the `azure.ai.ml.sweep` objects and
`.sweep(...)`-ed inside the training `@dsl.pipeline` (visionops.pipeline.azure_pipeline
`build_sweep_pipeline_job`), where evaluate and register read the best trial's output. Both
forms share one set of checks (`check_sweep_options`). Imported only with the azure extra installed.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import Input, Output, load_job
from azure.ai.ml.entities import CommandComponent
from azure.ai.ml.sweep import BanditPolicy, Choice, LogUniform, Randint, SweepJob, Uniform

from visionops.errors import ConfigError
from visionops.settings import Settings
from visionops.sweep.space import (
    KNOBS,
    ChoiceParam,
    LogUniformParam,
    Param,
    RandintParam,
    SearchSpace,
    UniformParam,
    parse_space,
)
from visionops.tasks import get_task

SCHEMA = "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json"
TRIAL_ENVIRONMENT = "azureml:visionops-training@latest"
TRIAL_COMPONENT = "visionops_sweep_trial"
CLOUD_DATA = ("azureml:", "azureml://", "https://", "wasbs://", "abfss://")
# What each sampling algorithm can draw from (Azure ML: grid takes choice only; bayesian takes
# choice, uniform and quniform).
SAMPLING_TYPES = {
    "random": {"choice", "uniform", "loguniform", "randint"},
    "grid": {"choice"},
    "bayesian": {"choice", "uniform"},
}


def to_azure(param: Param) -> Any:
    """The azure.ai.ml.sweep object drawing the same values as `param`."""
    if isinstance(param, ChoiceParam):
        return Choice(values=list(param.values))
    if isinstance(param, LogUniformParam):
        return LogUniform(min_value=math.log(param.low), max_value=math.log(param.high))
    if isinstance(param, UniformParam):
        return Uniform(min_value=param.low, max_value=param.high)
    if isinstance(param, RandintParam):
        return Randint(upper=param.upper)
    raise TypeError(f"no Azure ML mapping for {type(param).__name__}")


def from_azure(name: str, dist: Any) -> Param:
    """Our entry for an azure.ai.ml.sweep object (a sweep written for Azure ML, brought home)."""
    kind = getattr(dist, "type", None)
    if isinstance(dist, Choice) or kind == "choice":
        return ChoiceParam(type="choice", values=list(dist.values))
    if isinstance(dist, LogUniform) or kind == "loguniform":
        return LogUniformParam(type="loguniform", low=math.exp(dist.min_value), high=math.exp(dist.max_value))
    if isinstance(dist, Uniform) or kind == "uniform":
        return UniformParam(type="uniform", low=dist.min_value, high=dist.max_value)
    if isinstance(dist, Randint) or kind == "randint":
        return RandintParam(type="randint", upper=dist.upper)
    raise ConfigError(f"search_space.{name}: Azure ML type {kind or type(dist).__name__!r} has no local "
                      "equivalent (Optuna samples bounded ranges only); use choice, uniform, loguniform or randint")


def space_from_azure(search_space: dict[str, Any], *, metric: str = "map50_95", goal: str = "maximize",
                     task: str = "detect") -> SearchSpace:
    """A SearchSpace from an Azure ML sweep's `search_space` (checked like a YAML file)."""
    raw = {"task": task, "metric": metric, "goal": goal.lower(),
           "parameters": {k: from_azure(k, v).model_dump() for k, v in search_space.items()}}
    return parse_space(raw, source="azure search_space")


def _yaml_entry(dist: Any) -> dict[str, Any]:
    """One `search_space` entry as Azure ML's sweep YAML writes it."""
    if isinstance(dist, Choice):
        return {"type": "choice", "values": list(dist.values)}
    if isinstance(dist, Randint):
        return {"type": "randint", "upper": dist.upper}
    return {"type": dist.type, "min_value": dist.min_value, "max_value": dist.max_value}


def trial_command(space: SearchSpace, *, drawn_from: str = "search_space") -> str:
    """The trial's command: the train step with every drawn value passed as `--set knob=value`.
    A standalone sweep job binds the values as `${{search_space.knob}}`; a sweep step in a
    pipeline as its component's inputs, `${{inputs.knob}}` (drawn_from="inputs")."""
    drawn = " ".join(f"--set {k}=${{{{{drawn_from}.{k}}}}}" for k in space.parameters)
    return ("python -m visionops.cli.sweep_trial trial --data ${{inputs.data}} --out ${{outputs.model}} "
            f"--profile ${{{{inputs.profile}}}} {drawn}")


def check_sweep_options(space: SearchSpace, settings: Settings, *, data: str, sampling_algorithm: str,
                        max_total_trials: int, max_concurrent_trials: int | None, task: str | None = None) -> int:
    """Refuse, before any job is built, what Azure ML would reject later (or run wrongly); returns
    the concurrency (default: the cluster's node count, so trials fan out one per node)."""
    if task is not None and get_task(task).name != space.task:
        raise ConfigError(f"the search space is for task {space.task!r} (metric {space.metric}) but the sweep "
                          f"trains task {get_task(task).name!r}; use that task's space (load_space(task=...))")
    if sampling_algorithm not in SAMPLING_TYPES:
        raise ConfigError(f"sampling algorithm {sampling_algorithm!r}: choose one of {', '.join(SAMPLING_TYPES)}")
    refused = [f"parameters.{k} ({p.type})" for k, p in space.parameters.items()
               if p.type not in SAMPLING_TYPES[sampling_algorithm]]
    if refused:
        raise ConfigError(f"Azure ML's {sampling_algorithm} sampling cannot draw {', '.join(refused)}; it takes "
                          f"{', '.join(sorted(SAMPLING_TYPES[sampling_algorithm]))}: use random sampling or "
                          "change those entries")
    concurrent = max_concurrent_trials or settings.compute_max_nodes
    if not 1 <= max_total_trials <= 1000:
        raise ConfigError(f"max_total_trials must be 1..1000 (Azure ML's limit), got {max_total_trials}")
    if not 1 <= concurrent <= max_total_trials:
        raise ConfigError(f"max_concurrent_trials must be 1..max_total_trials ({max_total_trials}), got {concurrent}")
    if not data.startswith(CLOUD_DATA):
        raise ConfigError(f"data {data!r} must name a registered data asset (azureml:name:version) or a cloud URI; "
                          "register it with `visionops data register --backend azure` first")
    return concurrent


def sweep_job_dict(
    space: SearchSpace,
    settings: Settings,
    *,
    data: str,
    profile: str = "quick",
    compute: str | None = None,
    environment: str = TRIAL_ENVIRONMENT,
    max_total_trials: int = 8,
    max_concurrent_trials: int | None = None,
    timeout_s: int | None = None,
    trial_timeout_s: int | None = None,
    sampling_algorithm: str = "random",
    slack_factor: float = 0.1,
    evaluation_interval: int = 1,
    delay_evaluation: int = 2,
    code: Path | None = None,
) -> dict[str, Any]:
    """The standalone sweep job as Azure ML's YAML reference spells it.

    `max_concurrent_trials` defaults to the cluster's node count (`compute_max_nodes`): trials
    fan out one per node. Bandit early termination cancels a trial whose primary metric falls
    more than `slack_factor` below the best at an evaluation (every `evaluation_interval` logged
    epochs, after the first `delay_evaluation`)."""
    from visionops.pipeline.components import load_components, step_environment

    concurrent = check_sweep_options(space, settings, data=data, sampling_algorithm=sampling_algorithm,
                                     max_total_trials=max_total_trials, max_concurrent_trials=max_concurrent_trials)
    code_root = Path(code) if code is not None else load_components()["train"].code
    limits: dict[str, Any] = {"max_total_trials": max_total_trials, "max_concurrent_trials": concurrent}
    if timeout_s is not None:
        limits["timeout"] = int(timeout_s)
    if trial_timeout_s is not None:
        limits["trial_timeout"] = int(trial_timeout_s)
    return {
        "$schema": SCHEMA,
        "type": "sweep",
        "display_name": f"sweep {data.removeprefix('azureml:')} ({profile})",
        "experiment_name": settings.experiment_name,
        "compute": f"azureml:{(compute or settings.compute_name).removeprefix('azureml:')}",
        "tags": {"project": "visionops", "profile": profile, "dataset": data.removeprefix("azureml:"),
                 "task": space.task},
        "trial": {
            "code": str(code_root),
            "command": trial_command(space),
            "environment": environment,
            "environment_variables": step_environment(settings, code_root=code_root, local=False),
        },
        "inputs": {"data": {"type": "uri_folder", "path": data}, "profile": profile},
        "outputs": {"model": {"type": "uri_folder"}},
        "sampling_algorithm": sampling_algorithm,
        "search_space": {k: _yaml_entry(to_azure(p)) for k, p in space.parameters.items()},
        "objective": {"goal": space.goal, "primary_metric": space.metric},
        "limits": limits,
        "early_termination": {"type": "bandit", "slack_factor": slack_factor,
                              "evaluation_interval": evaluation_interval, "delay_evaluation": delay_evaluation},
    }


def sweep_job_yaml(space: SearchSpace, settings: Settings, path: Path, **options: Any) -> Path:
    """Write the sweep job YAML (for `az ml job create -f`); it holds this machine's code path,
    so it is a build artefact (under outputs/), never committed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sweep_job_dict(space, settings, **options), sort_keys=False))
    build_sweep_job(space, settings, **options)  # what was written loads as a SweepJob
    return path


def build_sweep_job(space: SearchSpace, settings: Settings, **options: Any) -> SweepJob:
    """The sweep job loaded by azure-ai-ml's own loader (its schema checks every field);
    `ml_client.jobs.create_or_update(job)` submits it."""
    text = yaml.safe_dump(sweep_job_dict(space, settings, **options), sort_keys=False)
    job = load_job(source=io.StringIO(text))
    if not isinstance(job, SweepJob):
        raise ConfigError(f"the sweep YAML loaded as {type(job).__name__}, not a SweepJob")
    return job


# --- the sweep as a pipeline step --------------------------------------------------------------------
def _input_type(param: Param) -> str:
    """The component input type that carries a drawn value (integer knobs stay whole numbers)."""
    if isinstance(param, RandintParam):
        return "integer"
    if isinstance(param, ChoiceParam):
        values = list(param.values)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "integer"
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "number"
        return "string"
    return "number"


def trial_component(space: SearchSpace, *, environment: str = TRIAL_ENVIRONMENT,
                    code: Path | None = None) -> CommandComponent:
    """The sweep trial as a command component: the train step's data and profile plus one input
    per knob of the space, each passed as `--set knob=value`. A pipeline calls it with the
    `azure.ai.ml.sweep` objects in place of those inputs and sweeps it (`sweep_node`); the trial
    writes the same `model` folder the train component writes.

    `validation` (the validate step's report) is not read by the command: binding it makes Azure ML
    start the trials only after the validate step succeeded, and that step (which fails on a bad data
    set or a data set of another task) is what stops a pipeline before any trial is paid for. The
    trial trains the data set's own task (its manifest), which the validate step checked."""
    from visionops.pipeline.components import load_components

    train = load_components()["train"]
    inputs: dict[str, Input] = {
        "data": Input(type="uri_folder", description="Data set folder (the asset the validate step checked)."),
        "validation": Input(type="uri_folder", optional=True,
                            description="Output of the validate step (orders the trials after it)."),
        "profile": Input(type="string", default="quick", enum=["smoke", "quick", "full"],
                         description="Run profile (data size, schedule)."),
    }
    for name, param in space.parameters.items():
        inputs[name] = Input(type=_input_type(param), description=f"drawn by the sweep: {KNOBS[name].help}")
    return CommandComponent(
        name=TRIAL_COMPONENT,
        display_name="Sweep trial (train with drawn values)",
        description="One sweep trial: the train step with the values the sweep drew, each epoch's metrics "
                    f"(the primary metric {space.metric} among them) logged through MLflow.",
        tags={"project": "visionops", "step": "sweep_trial"},
        code=str(code or train.code),
        environment=environment,
        inputs=inputs,
        outputs={"model": Output(type="uri_folder", description="weights/best.pt and train_result.json")},
        command=trial_command(space, drawn_from="inputs"),
    )


def sweep_node(trial: Any, space: SearchSpace, *, compute: str, max_total_trials: int, max_concurrent_trials: int,
               sampling_algorithm: str = "random", timeout_s: int | None = None, trial_timeout_s: int | None = None,
               slack_factor: float = 0.1, evaluation_interval: int = 1, delay_evaluation: int = 2,
               **inputs: Any) -> Any:
    """A pipeline node: `trial` (a trial_component) called with `inputs` and each knob's
    azure.ai.ml.sweep object, swept with the space's objective, the limits and Bandit early
    termination (the same policy as the standalone job). Its `outputs.model` is the best trial's."""
    node = trial(**inputs, **{k: to_azure(p) for k, p in space.parameters.items()})
    return node.sweep(
        primary_metric=space.metric,
        goal=space.goal,
        sampling_algorithm=sampling_algorithm,
        compute=compute,
        max_total_trials=max_total_trials,
        max_concurrent_trials=max_concurrent_trials,
        timeout=timeout_s,
        trial_timeout=trial_timeout_s,
        early_termination_policy=BanditPolicy(slack_factor=slack_factor, evaluation_interval=evaluation_interval,
                                              delay_evaluation=delay_evaluation),
    )

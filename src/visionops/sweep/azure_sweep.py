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
(`map50_95`), which Bandit early termination compares across trials. Imported only with the
azure extra installed.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import load_job
from azure.ai.ml.sweep import Choice, LogUniform, Randint, SweepJob, Uniform

from visionops.errors import ConfigError
from visionops.settings import Settings
from visionops.sweep.space import (
    ChoiceParam,
    LogUniformParam,
    Param,
    RandintParam,
    SearchSpace,
    UniformParam,
    parse_space,
)

SCHEMA = "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json"
TRIAL_ENVIRONMENT = "azureml:visionops-training@latest"
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


def trial_command(space: SearchSpace) -> str:
    """The trial's command: the train step with every drawn value passed as `--set knob=value`."""
    drawn = " ".join(f"--set {k}=${{{{search_space.{k}}}}}" for k in space.parameters)
    return ("python -m visionops.cli.sweep_trial trial --data ${{inputs.data}} --out ${{outputs.model}} "
            f"--profile ${{{{inputs.profile}}}} {drawn}")


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
    if not data.startswith(("azureml:", "azureml://", "https://", "wasbs://", "abfss://")):
        raise ConfigError(f"data {data!r} must name a registered data asset (azureml:name:version) or a cloud URI; "
                          "register it with `visionops data register --backend azure` first")
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
        "tags": {"project": "visionops", "profile": profile, "dataset": data.removeprefix("azureml:")},
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

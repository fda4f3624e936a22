"""The training pipeline as an Azure ML pipeline job: `@dsl.pipeline` over `load_component(...)`.

The graph and the component YAMLs come from `visionops.pipeline.components`, the same ones the
local runner executes, so a node here and a subprocess there run one command template with one
set of inputs. Building needs no workspace: `build_pipeline_job` returns a PipelineJob that
validates (`_validate()`) and dumps to YAML offline; submitting it is the workspace's job
(`AzureWorkspace.submit_pipeline`). Imported only by the azure backend and the azure tests.
`build_sweep_pipeline_job` is the same graph with a sweep step (visionops.sweep.azure_sweep) in
place of train: evaluate and register then read the best trial's model.

Two SDK pitfalls handled here: a node input its component does not declare is silently dropped
by azure-ai-ml (so `node_input_problems` compares every node with its component), and a dumped
pipeline YAML holds absolute `code:` paths of this machine (so dumps are build artefacts under
outputs/, never committed).
"""

# No `from __future__ import annotations` here: @dsl.pipeline reads the real Input(...) objects
# from the function's annotations, and string annotations are rejected ("Unsupported annotation").
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, dsl, load_component
from azure.ai.ml.entities import CronTrigger, JobSchedule, PipelineJob

from visionops.errors import ConfigError
from visionops.pipeline.components import (
    COMPONENTS_DIR,
    GRAPH,
    PIPELINE_NAME,
    PIPELINE_OUTPUTS,
    load_components,
    require_sound_graph,
)
from visionops.tasks import get_task

SWEEP_PIPELINE_NAME = "visionops_sweep_training"


def load_azure_components(components_dir: Path = COMPONENTS_DIR, environment: str | None = None) -> dict[str, Any]:
    """Every component YAML loaded (and schema-checked) by azure-ai-ml, keyed by step name.

    `environment` (e.g. 'azureml:visionops-training:<content hash>') pins the exact registered
    environment instead of the YAML's `@latest`, so a job never runs on a stale image."""
    specs = load_components(components_dir)
    require_sound_graph(specs)
    loaded = {}
    for step, spec in specs.items():
        component = load_component(source=str(spec.path))
        if environment:
            component.environment = environment
        loaded[step] = component
    return loaded


def build_pipeline_job(
    *,
    data: str,
    profile: str = "quick",
    task: str = "detect",
    epochs: int | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    patience: int | None = None,
    model: str | None = None,
    compute: str,
    environment: str | None = None,
    environment_variables: Mapping[str, str] | None = None,
    experiment_name: str = "visionops",
    components_dir: Path = COMPONENTS_DIR,
) -> PipelineJob:
    """The validate -> train -> evaluate -> register pipeline on `data` (an `azureml:name:version`
    data asset, or any uri_folder path Azure ML accepts) for `task` (detect | classify: each step
    checks it against the data set's own task)."""
    task = get_task(task).name
    components = load_azure_components(components_dir, environment)
    env_vars = dict(environment_variables or {})

    @dsl.pipeline(
        name=PIPELINE_NAME,
        display_name="VisionOps training",
        description="validate -> train -> evaluate (champion/challenger) -> register",
        default_compute=compute,
    )
    def visionops_training(
        data: Input(type="uri_folder"),  # type: ignore[valid-type]
        profile: str = "quick",
        task: str = "detect",
        epochs: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        imgsz: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        batch: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        patience: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        model: Input(type="string", optional=True) = None,  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        params = {"data": data, "profile": profile, "task": task, "epochs": epochs, "imgsz": imgsz,
                  "batch": batch, "patience": patience, "model": model}
        return _wire(components, params, env_vars)

    knobs = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz, "batch": batch, "patience": patience,
                               "model": model}.items() if v is not None}
    job = visionops_training(data=Input(type="uri_folder", path=data), profile=profile, task=task, **knobs)
    return _finish(job, compute=compute, experiment_name=experiment_name,
                   tags={"project": "visionops", "profile": profile, "task": task})


def _wire(components: Mapping[str, Any], params: Mapping[str, Any], env_vars: Mapping[str, str],
          replace: Mapping[str, Callable[[dict[str, Any]], Any]] | None = None) -> dict[str, Any]:
    """The GRAPH's nodes inside a @dsl.pipeline function, each input bound to a pipeline input or
    an earlier node's output; `replace[node]` builds that node from the same bindings instead of
    calling its component (the sweep step in place of train). Returns the pipeline's outputs."""
    nodes: dict[str, Any] = {}
    for node in GRAPH:
        kwargs = {}
        for port, binding in node.inputs.items():
            source, _, name = binding.partition(".")
            # a pipeline input the pipeline does not declare (the sweep variant has no knobs) is unbound
            kwargs[port] = params.get(name) if source == "pipeline" else nodes[source].outputs[name]
        make = (replace or {}).get(node.name)
        step = make(kwargs) if make is not None else components[node.component](**kwargs)
        step.name = node.name
        step.display_name = node.name
        if make is None:
            step.environment_variables = dict(env_vars)
        nodes[node.name] = step
    outputs = {}
    for out, binding in PIPELINE_OUTPUTS.items():
        source, _, name = binding.partition(".")
        outputs[out] = nodes[source].outputs[name]
    return outputs


def _finish(job: PipelineJob, *, compute: str, experiment_name: str, tags: dict[str, str]) -> PipelineJob:
    job.experiment_name = experiment_name
    job.settings.default_compute = compute
    job.settings.continue_on_step_failure = False  # a failed step stops the run: red means red
    job.tags = tags
    return job


def build_sweep_pipeline_job(
    space: Any,
    *,
    data: str,
    profile: str = "quick",
    task: str | None = None,
    compute: str,
    max_total_trials: int,
    max_concurrent_trials: int,
    sampling_algorithm: str = "random",
    timeout_s: int | None = None,
    trial_timeout_s: int | None = None,
    slack_factor: float = 0.1,
    evaluation_interval: int = 1,
    delay_evaluation: int = 2,
    environment: str | None = None,
    environment_variables: Mapping[str, str] | None = None,
    experiment_name: str = "visionops",
    components_dir: Path = COMPONENTS_DIR,
) -> PipelineJob:
    """The training pipeline with a **sweep step** in place of train: validate -> sweep (trials of
    the train step over `space`, a visionops.sweep.space.SearchSpace, fanned out over the cluster's
    nodes, Bandit early termination on the space's metric) -> evaluate -> register, where evaluate
    and register read the best trial's model. Limits are checked by the caller
    (`check_sweep_options`); `task` defaults to the space's."""
    from visionops.sweep.azure_sweep import sweep_node, trial_component

    task = get_task(task or space.task).name
    components = load_azure_components(components_dir, environment)
    trial = trial_component(space, **({"environment": environment} if environment else {}))
    env_vars = dict(environment_variables or {})

    def sweep_step(bound: dict[str, Any]) -> Any:
        # the train node's bindings the trial has too (data, validation, profile, task); the
        # train knobs are the space's to draw, or the profile's
        inputs = {k: v for k, v in bound.items() if k in trial.inputs and k not in space.parameters}
        step = sweep_node(trial, space, compute=compute, max_total_trials=max_total_trials,
                          max_concurrent_trials=max_concurrent_trials, sampling_algorithm=sampling_algorithm,
                          timeout_s=timeout_s, trial_timeout_s=trial_timeout_s, slack_factor=slack_factor,
                          evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation, **inputs)
        step.trial.environment_variables = dict(env_vars)
        return step

    @dsl.pipeline(
        name=SWEEP_PIPELINE_NAME,
        display_name="VisionOps training with a sweep",
        description="validate -> sweep (trials of train) -> evaluate the best trial (champion/challenger) -> register",
        default_compute=compute,
    )
    def visionops_sweep_training(
        data: Input(type="uri_folder"),  # type: ignore[valid-type]
        profile: str = "quick",
        task: str = "detect",
    ) -> dict[str, Any]:
        return _wire(components, {"data": data, "profile": profile, "task": task}, env_vars,
                     replace={"train": sweep_step})

    job = visionops_sweep_training(data=Input(type="uri_folder", path=data), profile=profile, task=task)
    return _finish(job, compute=compute, experiment_name=experiment_name,
                   tags={"project": "visionops", "profile": profile, "task": task, "sweep.metric": space.metric,
                         "sweep.max_total_trials": str(max_total_trials)})


def node_input_problems(job: PipelineJob, components: Mapping[str, Any] | None = None) -> list[str]:
    """Each node input its component does not declare, and each required component input the
    node leaves unbound (azure-ai-ml catches neither when building from YAML)."""
    problems: list[str] = []
    for name, node in job.jobs.items():
        component = node.component if components is None else components[name]
        declared = dict(component.inputs)
        bound = {k for k, v in node.inputs.items() if _is_bound(v)}
        for key in sorted(bound - set(declared)):
            problems.append(f"node {name}: input {key!r} is not an input of {component.name} ({sorted(declared)})")
        for key, port in declared.items():
            if not getattr(port, "optional", False) and getattr(port, "default", None) is None and key not in bound:
                problems.append(f"node {name}: required input {key!r} of {component.name} is not bound")
    return problems


def _is_bound(value: Any) -> bool:
    inner = getattr(value, "_data", value)
    return inner is not None


def build_schedule(
    job: PipelineJob, *, name: str, cron: str, time_zone: str = "UTC", description: str | None = None
) -> JobSchedule:
    """A retraining schedule that submits `job` on a cron expression (e.g. '0 2 * * 1')."""
    fields = cron.split()
    if len(fields) != 5:
        raise ConfigError(f"cron expression {cron!r} must have 5 fields (minute hour day month weekday)")
    return JobSchedule(
        name=name,
        trigger=CronTrigger(expression=cron, time_zone=time_zone),
        create_job=job,
        description=description or f"retrain {PIPELINE_NAME} on the latest data ({cron} {time_zone})",
        tags={"project": "visionops"},
    )

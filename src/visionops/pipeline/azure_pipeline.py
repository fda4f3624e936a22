"""The training pipeline as an Azure ML pipeline job: `@dsl.pipeline` over `load_component(...)`.

The graph and the component YAMLs come from `visionops.pipeline.components`, the same ones the
local runner executes, so a node here and a subprocess there run one command template with one
set of inputs. Building needs no workspace: `build_pipeline_job` returns a PipelineJob that
validates (`_validate()`) and dumps to YAML offline; submitting it is the workspace's job
(`AzureWorkspace.submit_pipeline`). Imported only by the azure backend and the azure tests.

Two SDK pitfalls handled here: a node input its component does not declare is silently dropped
by azure-ai-ml (so `node_input_problems` compares every node with its component), and a dumped
pipeline YAML holds absolute `code:` paths of this machine (so dumps are build artefacts under
outputs/, never committed).
"""

# No `from __future__ import annotations` here: @dsl.pipeline reads the real Input(...) objects
# from the function's annotations, and string annotations are rejected ("Unsupported annotation").
from collections.abc import Mapping
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
    data asset, or any uri_folder path Azure ML accepts)."""
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
        epochs: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        imgsz: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        batch: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        patience: Input(type="integer", optional=True) = None,  # type: ignore[valid-type]
        model: Input(type="string", optional=True) = None,  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        params = {"data": data, "profile": profile, "epochs": epochs, "imgsz": imgsz, "batch": batch,
                  "patience": patience, "model": model}
        nodes: dict[str, Any] = {}
        for node in GRAPH:
            kwargs = {}
            for port, binding in node.inputs.items():
                source, _, name = binding.partition(".")
                kwargs[port] = params[name] if source == "pipeline" else nodes[source].outputs[name]
            step = components[node.component](**kwargs)
            step.name = node.name
            step.display_name = node.name
            step.environment_variables = dict(env_vars)
            nodes[node.name] = step
        outputs = {}
        for out, binding in PIPELINE_OUTPUTS.items():
            source, _, name = binding.partition(".")
            outputs[out] = nodes[source].outputs[name]
        return outputs

    knobs = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz, "batch": batch, "patience": patience,
                               "model": model}.items() if v is not None}
    job = visionops_training(data=Input(type="uri_folder", path=data), profile=profile, **knobs)
    job.experiment_name = experiment_name
    job.settings.default_compute = compute
    job.settings.continue_on_step_failure = False  # a failed step stops the run: red means red
    job.tags = {"project": "visionops", "profile": profile}
    return job


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

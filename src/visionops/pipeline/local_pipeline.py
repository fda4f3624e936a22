"""The training pipeline on the local backend: built, run and published like on Azure ML.

`build` binds the pipeline to a data set, a profile and knobs and renders what each component
command will run (a preview: notebook 05 shows it); `run` hands it to the one lifecycle runner
(`visionops.runner`) with the `Components` executor, so every step runs as its Azure ML component
command in a subprocess (the YAML's `code:` folder as working directory, exactly as an Azure ML
node on a mounted snapshot) while the runner decides the order, the data set, the folders
(`outputs/lifecycle/<dataset>/<step>-<request>/`, the same as `visionops run`) and the record.
A failing step stops the run (nothing after it runs, so nothing is registered) and raises
PipelineStepError naming the step, its exit code and the end of its log.

Each run's record (PipelineRunInfo: status, commands, durations, logs, outputs) is
`outputs/lifecycle/pipeline_runs/<run id>.json`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.data.catalog import DatasetRef
from visionops.errors import ConfigError
from visionops.pipeline.components import (
    COMPONENTS_DIR,
    GRAPH,
    PIPELINE_INPUTS,
    PIPELINE_NAME,
    PIPELINE_OUTPUTS,
    check_knobs,
    load_components,
    pipeline_version,
    require_sound_graph,
)
from visionops.pipeline.runs import PipelineRunInfo, PublishedPipeline

RUNS_DIR = "pipeline_runs"


class PreviewNode(BaseModel):
    name: str
    component: str
    command: str  # the component's command, bound to this pipeline's inputs; folders are <node.output>


class LocalPipeline(BaseModel):
    """A pipeline bound to its inputs, not yet run (what `build` returns)."""

    name: str
    version: str
    dataset: DatasetRef
    profile: str
    knobs: dict[str, Any]
    nodes: list[PreviewNode]


def build(dataset: DatasetRef, profile: str, knobs: dict[str, Any], *,
          components_dir: Path = COMPONENTS_DIR) -> LocalPipeline:
    """Bind the pipeline inputs and render every command (output folders shown as <node.output>)."""
    check_knobs(knobs)
    components = load_components(components_dir)
    require_sound_graph(components)
    data = Path(dataset.path)
    if not data.is_dir():
        raise ConfigError(f"pipeline input data={data} is not a folder; register a data set first")
    values: dict[str, Any] = {"data": data, "profile": profile, "task": dataset.task,
                              **{k: v for k, v in knobs.items() if v is not None}}
    for p in PIPELINE_INPUTS:
        if values.get(p.name) is None and p.default is not None:
            values[p.name] = p.default
    nodes = []
    for node in GRAPH:
        spec = components[node.component]
        inputs: dict[str, Any] = {}
        for port, binding in node.inputs.items():
            source, _, name = binding.partition(".")
            value = values.get(name) if source == "pipeline" else f"<{source}.{name}>"
            if value is not None:
                inputs[port] = value
        outputs = {name: f"<{node.name}.{name}>" for name in spec.outputs}
        nodes.append(PreviewNode(name=node.name, component=spec.name, command=spec.render(inputs, outputs)))
    return LocalPipeline(name=PIPELINE_NAME, version=pipeline_version(components_dir), dataset=dataset,
                         profile=profile, knobs={k: v for k, v in knobs.items() if v is not None}, nodes=nodes)


def run(pipeline: LocalPipeline, settings: Any, *, workspace: Any = None,
        on_step: Callable[[str, str], None] | None = None, timeout_s: float | None = None) -> PipelineRunInfo:
    """Run the pipeline with the lifecycle runner, each step as its component command."""
    from visionops.pipeline.executors import Components
    from visionops.runner import Runner

    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + f"-{pipeline.profile}"
    executor = Components(settings, timeout_s=timeout_s)
    runner = Runner(settings, pipeline.profile, pipeline.knobs, workspace=workspace, on_step=on_step,
                    executor=executor)
    info = PipelineRunInfo(backend="local", run_id=run_id, name=pipeline.name, status="Running",
                           url=str(_record_path(settings, run_id)),
                           inputs={"data": f"{pipeline.dataset.name}:{pipeline.dataset.version}",
                                   "profile": pipeline.profile, **pipeline.knobs})
    try:
        runner.run(pipeline.dataset)
    except Exception:
        info.status = "Failed"
        raise
    else:
        info.status = "Completed"
    finally:
        info.steps = list(executor.steps)
        outputs = {s.name: next(iter(s.outputs.values())) for s in executor.steps if s.outputs}
        info.outputs = {out: outputs[binding.partition(".")[0]] for out, binding in PIPELINE_OUTPUTS.items()
                        if binding.partition(".")[0] in outputs}
        _save(settings, info)
    return info


def _record_path(settings: Any, run_id: str) -> Path:
    from visionops.runner import LIFECYCLE_DIR

    return Path(settings.outputs_dir) / LIFECYCLE_DIR / RUNS_DIR / f"{run_id}.json"


def _save(settings: Any, info: PipelineRunInfo) -> None:
    path = _record_path(settings, info.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(info.model_dump_json(indent=2))


def read_run(settings: Any, run_id: str) -> PipelineRunInfo:
    path = _record_path(settings, run_id)
    if not path.is_file():
        raise ConfigError(f"{path} not found: no local pipeline run {run_id!r}")
    return PipelineRunInfo.model_validate_json(path.read_text())


def publish_local(settings: Any, name: str = PIPELINE_NAME, components_dir: Path = COMPONENTS_DIR) -> PublishedPipeline:
    """Freeze the pipeline definition under outputs/pipelines/<name>/<version>/ (component
    YAMLs, graph): the local counterpart of registering components in a workspace. The same
    definition gives the same version; `plan_pipeline(components_dir=<that folder>)` re-runs it."""
    components = load_components(components_dir)
    require_sound_graph(components)
    version = pipeline_version(components_dir)
    target = Path(settings.outputs_dir) / "pipelines" / name / version
    if not (target / "pipeline.json").is_file():
        staging = target.with_name(f".{version}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for spec in components.values():
            shutil.copy2(spec.path, staging / spec.path.name)
            # keep `code:` pointing at the same folder from the copy's new place
            text = spec.path.read_text(encoding="utf-8")
            rel = os.path.relpath(spec.code, staging)
            (staging / spec.path.name).write_text(re.sub(r"(?m)^code: .*$", f"code: {rel}", text), encoding="utf-8")
        (staging / "pipeline.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "version": version,
                    "inputs": [p.__dict__ for p in PIPELINE_INPUTS],
                    "graph": [{"name": n.name, "component": n.component, "inputs": n.inputs} for n in GRAPH],
                    "outputs": PIPELINE_OUTPUTS,
                    "components": {s.name: s.path.name for s in components.values()},
                },
                indent=2,
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return PublishedPipeline(
        backend="local",
        name=name,
        version=version,
        components={s.name: version for s in components.values()},
        location=str(target / "pipeline.json"),
    )

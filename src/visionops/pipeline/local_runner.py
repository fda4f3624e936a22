"""Run the Azure ML pipeline's component commands on this machine, in order, as subprocesses.

The commands are read from the component YAMLs (`components/*.yml`), their `${{inputs.x}}` and
`${{outputs.y}}` bindings replaced by local folders, and run with the YAML's own `code:` folder
as working directory, exactly as an Azure ML node runs them on a mounted snapshot. Only two
things are translated: `python` becomes this interpreter, and a relative `PYTHONPATH=` prefix is
resolved against the code folder (and put in front of an inherited PYTHONPATH).

Layout of a run (Azure ML keeps the same names per node and output):

    outputs/pipeline_runs/<run id>/
        plan.json                  inputs, rendered commands, output folders
        run.json                   PipelineRunInfo (status of every step)
        <node>/<output>/...        what the step wrote, e.g. train/model/weights/best.pt
        <node>/step.log            its stdout and stderr

A failing step stops the run (nothing after it runs, so nothing is registered) and raises
PipelineStepError naming the step, its exit code and the end of its log.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.errors import ConfigError, VisionOpsError
from visionops.pipeline.components import (
    COMPONENTS_DIR,
    GRAPH,
    PIPELINE_INPUTS,
    PIPELINE_NAME,
    PIPELINE_OUTPUTS,
    load_components,
    pipeline_version,
    require_sound_graph,
    step_environment,
)
from visionops.pipeline.runs import PipelineRunInfo, PublishedPipeline, StepInfo

PLAN_JSON = "plan.json"
RUN_JSON = "run.json"
STEP_LOG = "step.log"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")


class PipelineStepError(VisionOpsError):
    """A pipeline step exited non-zero; the steps after it did not run."""


class PlannedNode(BaseModel):
    name: str
    component: str  # the Azure ML component name
    code: Path  # the component's code folder: the working directory of its command
    inputs: dict[str, Any]
    outputs: dict[str, Path]
    command: str


class PipelinePlan(BaseModel):
    """Everything needed to run the pipeline locally, decided before the first step starts."""

    name: str
    version: str
    run_id: str
    run_dir: Path
    components_dir: Path
    inputs: dict[str, Any]
    nodes: list[PlannedNode]
    outputs: dict[str, Path]


def plan_pipeline(
    data: Path,
    *,
    profile: str = "quick",
    run_dir: Path,
    epochs: int | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    patience: int | None = None,
    model: str | None = None,
    components_dir: Path = COMPONENTS_DIR,
) -> PipelinePlan:
    """Bind the pipeline inputs, give every output a folder under `run_dir`, render each command."""
    components = load_components(components_dir)
    require_sound_graph(components)
    data = Path(data).resolve()
    if not data.is_dir():
        raise ConfigError(f"pipeline input data={data} is not a folder; register a data set first")
    run_dir = Path(run_dir).resolve()
    values: dict[str, Any] = {"data": data, "profile": profile, "epochs": epochs, "imgsz": imgsz, "batch": batch,
                              "patience": patience, "model": model}
    for p in PIPELINE_INPUTS:
        if values.get(p.name) is None and p.default is not None:
            values[p.name] = p.default
    produced: dict[str, dict[str, Path]] = {}
    nodes: list[PlannedNode] = []
    for node in GRAPH:
        spec = components[node.component]
        inputs: dict[str, Any] = {}
        for port, binding in node.inputs.items():
            source, _, name = binding.partition(".")
            value = values.get(name) if source == "pipeline" else produced[source][name]
            if value is not None:
                inputs[port] = value
        outputs = {name: run_dir / node.name / name for name in spec.outputs}
        produced[node.name] = outputs
        nodes.append(
            PlannedNode(
                name=node.name,
                component=spec.name,
                code=spec.code,
                inputs=inputs,
                outputs=outputs,
                command=spec.render(inputs, outputs),
            )
        )
    outputs = {}
    for out, binding in PIPELINE_OUTPUTS.items():
        source, _, name = binding.partition(".")
        outputs[out] = produced[source][name]
    return PipelinePlan(
        name=PIPELINE_NAME,
        version=pipeline_version(components_dir),
        run_id=run_dir.name,
        run_dir=run_dir,
        components_dir=Path(components_dir).resolve(),
        inputs={k: (str(v) if isinstance(v, Path) else v) for k, v in values.items() if v is not None},
        nodes=nodes,
        outputs=outputs,
    )


def command_process(command: str, code: Path, base_env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """argv and environment for a component command: leading `NAME=value` words become
    environment variables, `python` becomes this interpreter; anything else is refused, so a
    command that would behave differently here than on Azure ML fails loudly."""
    words = shlex.split(command)
    env = dict(base_env)
    while words and _ASSIGNMENT.fullmatch(words[0]):
        key, value = words.pop(0).split("=", 1)
        if key == "PYTHONPATH":
            parts = [str((code / p).resolve()) if not os.path.isabs(p) else p for p in value.split(os.pathsep) if p]
            inherited = env.get("PYTHONPATH")
            value = os.pathsep.join(parts + ([inherited] if inherited else []))
        env[key] = value
    if not words or words[0] != "python":
        raise ConfigError(f"component command must run `python ...` (optionally after NAME=value): {command!r}")
    return [sys.executable, *words[1:]], env


def run_plan(
    plan: PipelinePlan,
    settings: Any,
    *,
    on_step: Callable[[str, str], None] | None = None,
    timeout_s: float | None = None,
) -> PipelineRunInfo:
    """Run every node in order; returns the run's info, raises PipelineStepError on a failure."""
    say = on_step or (lambda node, msg: None)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    (plan.run_dir / PLAN_JSON).write_text(plan.model_dump_json(indent=2))
    steps = [StepInfo(name=n.name, status="NotStarted", command=n.command) for n in plan.nodes]
    info = PipelineRunInfo(
        backend="local",
        run_id=plan.run_id,
        name=plan.name,
        status="Running",
        url=str(plan.run_dir),
        inputs=plan.inputs,
        outputs={k: str(v) for k, v in plan.outputs.items()},
        steps=steps,
    )
    for node, step in zip(plan.nodes, steps, strict=True):
        code = node.code
        base_env = {**os.environ, **step_environment(settings, code_root=code, local=True)}
        argv, env = command_process(node.command, code, base_env)
        for folder in node.outputs.values():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        log = plan.run_dir / node.name / STEP_LOG
        step.status, step.log = "Running", str(log)
        say(node.name, node.command)
        started = time.perf_counter()
        with open(log, "w", encoding="utf-8") as fh:
            try:
                rc = subprocess.run(argv, cwd=code, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    timeout=timeout_s, check=False).returncode
            except subprocess.TimeoutExpired:
                rc = -9
                fh.write(f"\n[visionops] step {node.name} killed after {timeout_s}s\n")
        step.duration_s = round(time.perf_counter() - started, 2)
        step.outputs = {k: str(v) for k, v in node.outputs.items()}
        if rc != 0:
            step.status = info.status = "Failed"
            _save(plan, info)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise PipelineStepError(
                f"pipeline step {node.name!r} failed (exit {rc}); later steps did not run. "
                f"Log: {log}\n{tail}"
            )
        step.status = "Completed"
        say(node.name, f"completed in {step.duration_s:.1f}s")
        _save(plan, info)
    info.status = "Completed"
    _save(plan, info)
    return info


def _save(plan: PipelinePlan, info: PipelineRunInfo) -> None:
    (plan.run_dir / RUN_JSON).write_text(info.model_dump_json(indent=2))


def new_run_dir(settings: Any, profile: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return Path(settings.outputs_dir) / "pipeline_runs" / f"{stamp}-{profile}"


def read_run(run_dir: Path) -> PipelineRunInfo:
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise ConfigError(f"{path} not found: no local pipeline run in {run_dir}")
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

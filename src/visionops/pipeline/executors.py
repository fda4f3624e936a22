"""How the lifecycle runner executes a step: in this process, or as its Azure ML component.

The runner (`visionops.runner`) decides *what* runs, in which order, on which data set, in which
folders and whether an earlier result is reused. An executor only decides *how* one step runs:

- `InProcess` calls the step functions of `visionops.pipeline.steps` (notebooks, `visionops run`,
  tests);
- `Components` renders the step's Azure ML command component (`components/*.yml`) with the
  runner's folders bound to its inputs and outputs, and runs that command in a subprocess with
  the YAML's own `code:` folder as working directory, exactly as an Azure ML node runs it on a
  mounted snapshot (`visionops pipeline run` and notebook 05 on the local backend). Its input
  bindings come from the pipeline graph (`components.GRAPH`), the one definition the Azure ML
  pipeline is built from too.

Both return the same typed results, read from the same files, so the runner cannot tell them apart.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from visionops.errors import ConfigError, VisionOpsError
from visionops.evaluation.challenge import EvaluationOutcome
from visionops.evaluation.decision import DecisionRule
from visionops.pipeline import steps
from visionops.pipeline.components import (
    COMPONENTS_DIR,
    GRAPH,
    PIPELINE_KNOBS,
    load_components,
    require_sound_graph,
    step_environment,
)
from visionops.pipeline.runs import StepInfo
from visionops.settings import Settings
from visionops.training import TrainResult

STEP_LOG = "step.log"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")


class PipelineStepError(VisionOpsError):
    """A pipeline step exited non-zero; the steps after it did not run."""


class Executor(Protocol):
    """Runs one step into its output folder and returns the step's typed result."""

    def validate(self, data: Path, out: Path) -> None: ...

    def train(self, data: Path, out: Path, settings: Settings, *, profile: str, knobs: dict[str, Any],
              validation: Path) -> TrainResult: ...

    def evaluate(self, model: Path, data: Path, out: Path, settings: Settings, *, profile: str,
                 rule: DecisionRule) -> EvaluationOutcome: ...

    def register(self, model: Path, evaluation: Path, out: Path, settings: Settings) -> steps.RegistrationResult: ...


class InProcess:
    """The step functions, called in this process."""

    def validate(self, data: Path, out: Path) -> None:
        steps.validate_step(data, out)

    def train(self, data: Path, out: Path, settings: Settings, *, profile: str, knobs: dict[str, Any],
              validation: Path) -> TrainResult:
        return steps.train_step(data, out, settings, profile=profile, knobs=knobs, validation=validation)

    def evaluate(self, model: Path, data: Path, out: Path, settings: Settings, *, profile: str,
                 rule: DecisionRule) -> EvaluationOutcome:
        return steps.evaluate_step(model, data, out, settings, rule=rule)

    def register(self, model: Path, evaluation: Path, out: Path, settings: Settings) -> steps.RegistrationResult:
        return steps.register_step(model, evaluation, out, settings)


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


class Components:
    """Each step as its Azure ML component command, in a subprocess (what Azure ML runs per node).

    The pipeline carries only its declared inputs (data, profile and the knobs in
    `PIPELINE_KNOBS`), so other knobs are refused up front instead of silently dropped; `steps`
    records every step that ran (command, status, duration, log) for the run's record.
    """

    def __init__(self, settings: Settings, *, components_dir: Path = COMPONENTS_DIR, timeout_s: float | None = None):
        self.settings = settings
        self.components = load_components(components_dir)
        require_sound_graph(self.components)
        self.timeout_s = timeout_s
        self.steps: list[StepInfo] = []
        self._outputs: dict[str, dict[str, Path]] = {}  # node -> output name -> folder

    @staticmethod
    def check(knobs: Mapping[str, Any]) -> dict[str, Any]:
        """The knobs the pipeline can carry; anything else (a decision or data knob) is an error."""
        given = {k: v for k, v in knobs.items() if v is not None}
        extra = sorted(k for k in given if k not in PIPELINE_KNOBS)
        if extra:
            raise ConfigError(
                f"the pipeline takes no knob(s) {extra}; it takes {', '.join(PIPELINE_KNOBS)} "
                "(other knobs belong in the profile, or run the steps with `visionops run`)"
            )
        return {k: v for k, v in given.items() if k in PIPELINE_KNOBS}

    def _run(self, node_name: str, pipeline_values: Mapping[str, Any], out: Path, settings: Settings) -> None:
        node = next(n for n in GRAPH if n.name == node_name)
        spec = self.components[node.component]
        inputs: dict[str, Any] = {}
        for port, binding in node.inputs.items():
            source, _, name = binding.partition(".")
            value = pipeline_values.get(name) if source == "pipeline" else self._outputs[source][name]
            if value is not None:
                inputs[port] = value
        [output_name] = list(spec.outputs)  # every VisionOps component writes one folder
        self._outputs[node_name] = {output_name: Path(out)}
        command = spec.render(inputs, {output_name: Path(out)})
        base_env = {**os.environ, **step_environment(settings, code_root=spec.code, local=True)}
        argv, env = command_process(command, spec.code, base_env)
        log = Path(out) / STEP_LOG
        info = StepInfo(name=node_name, status="Running", command=command, log=str(log),
                        outputs={output_name: str(out)})
        self.steps.append(info)
        started = time.perf_counter()
        with open(log, "w", encoding="utf-8") as fh:
            try:
                rc = subprocess.run(argv, cwd=spec.code, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    timeout=self.timeout_s, check=False).returncode
            except subprocess.TimeoutExpired:
                rc = -9
                fh.write(f"\n[visionops] step {node_name} killed after {self.timeout_s}s\n")
        info.duration_s = round(time.perf_counter() - started, 2)
        if rc != 0:
            info.status = "Failed"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise PipelineStepError(
                f"pipeline step {node_name!r} failed (exit {rc}); later steps did not run. Log: {log}\n{tail}"
            )
        info.status = "Completed"

    @staticmethod
    def _data(data: Path) -> dict[str, Any]:
        """The data set input and its task: the pipeline's `task` input is bound from the data set
        (never left at its default, which would refuse a classification data set)."""
        return {"data": data, "task": steps.data_task(data).name}

    def validate(self, data: Path, out: Path) -> None:
        self._run("validate", self._data(data), out, self.settings)

    def train(self, data: Path, out: Path, settings: Settings, *, profile: str, knobs: dict[str, Any],
              validation: Path) -> TrainResult:
        self._outputs.setdefault("validate", {"report": Path(validation)})
        self._run("train", {**self._data(data), "profile": profile, **self.check(knobs)}, out, settings)
        return TrainResult.model_validate_json((Path(out) / steps.TRAIN_JSON).read_text())

    def evaluate(self, model: Path, data: Path, out: Path, settings: Settings, *, profile: str,
                 rule: DecisionRule) -> EvaluationOutcome:
        self._outputs.setdefault("train", {"model": Path(model)})
        self._run("evaluate", {**self._data(data), "profile": profile}, out, settings)
        return EvaluationOutcome.model_validate_json((Path(out) / steps.EVALUATION_JSON).read_text())

    def register(self, model: Path, evaluation: Path, out: Path, settings: Settings) -> steps.RegistrationResult:
        self._outputs.setdefault("train", {"model": Path(model)})
        self._outputs.setdefault("evaluate", {"evaluation": Path(evaluation)})
        self._run("register", {}, out, settings)
        return steps.RegistrationResult.model_validate_json((Path(out) / steps.REGISTRATION_JSON).read_text())

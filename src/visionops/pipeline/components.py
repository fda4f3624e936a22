"""The training pipeline as data: four command-component YAMLs and the graph that wires them.

Both executors read only this module: `azure_pipeline` turns the graph into an Azure ML
`@dsl.pipeline` of `load_component(...)` nodes, `executors.Components` renders the very same `command:`
strings and runs them as subprocesses. So the two paths cannot drift apart: same step code
(`python -m visionops.cli.steps ...`), same inputs, same outputs. Nothing here imports
`azure-*`; the YAMLs are read with PyYAML and their command templates are rendered the way
Azure ML does (`${{inputs.x}}`, `${{outputs.y}}`, optional `$[[...]]` segments).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from visionops.errors import ConfigError
from visionops.hashing import Hasher

COMPONENTS_DIR = Path(__file__).with_name("components")
PIPELINE_NAME = "visionops_training"
TRAINING_ENVIRONMENT = "visionops-training"

_BINDING = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


@dataclass(frozen=True)
class Port:
    """One input or output of a component, as its YAML declares it."""

    name: str
    type: str
    optional: bool = False
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class ComponentSpec:
    """A command component read from its YAML without the Azure SDK."""

    step: str  # the visionops.cli.steps sub-command, also the node name
    name: str  # the Azure ML component name
    path: Path
    code: Path  # absolute: `code:` is relative to the YAML file, as Azure ML resolves it
    environment: str
    command: str
    inputs: dict[str, Port]
    outputs: dict[str, Port]

    @property
    def bindings(self) -> set[tuple[str, str]]:
        """Every `${{inputs.x}}` / `${{outputs.y}}` the command uses, as (kind, name)."""
        return {(m.group(1), m.group(2)) for m in _BINDING.finditer(self.command)}

    def command_for(self, provided: set[str]) -> str:
        """The command with each optional `$[[...]]` segment kept when all inputs it names are
        provided and dropped otherwise (what Azure ML does), bindings left in place."""

        def keep(match: re.Match[str]) -> str:
            names = {n for kind, n in _BINDING.findall(match.group(1)) if kind == "inputs"}
            return match.group(1) if names <= provided else ""

        return " ".join(_OPTIONAL.sub(keep, self.command).split())

    def render(self, inputs: Mapping[str, Any], outputs: Mapping[str, str | Path]) -> str:
        """The shell command with every binding replaced by a shell-quoted value.

        Raises ConfigError naming the input when a required input has no value, or when an
        input or output is not declared by the component (a misspelling)."""
        unknown = sorted(set(inputs) - set(self.inputs)) + sorted(set(outputs) - set(self.outputs))
        if unknown:
            raise ConfigError(
                f"component {self.name} ({self.path.name}) has no port(s) {unknown}; "
                f"inputs: {sorted(self.inputs)}, outputs: {sorted(self.outputs)}"
            )
        values = {k: v for k, v in inputs.items() if v is not None}
        for port in self.inputs.values():
            if port.name not in values and port.default is not None:
                values[port.name] = port.default
        template = self.command_for(set(values))

        def sub(match: re.Match[str]) -> str:
            kind, name = match.group(1), match.group(2)
            if kind == "outputs":
                if name not in outputs:
                    raise ConfigError(f"component {self.name}: output {name!r} has no folder")
                return shlex.quote(str(outputs[name]))
            if name not in values:
                raise ConfigError(f"component {self.name}: required input {name!r} has no value")
            return shlex.quote(str(values[name]))

        return _BINDING.sub(sub, template)


def _port(name: str, raw: dict[str, Any] | None) -> Port:
    raw = raw or {}
    return Port(
        name=name,
        type=str(raw.get("type", "")),
        optional=bool(raw.get("optional", False)),
        default=raw.get("default"),
        description=str(raw.get("description", "")),
    )


def load_component_spec(path: Path) -> ComponentSpec:
    """Read one component YAML (the fields both executors need)."""
    path = Path(path).resolve()
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("name", "command", "code", "environment"):
        if not raw.get(key):
            raise ConfigError(f"{path}: the component has no {key!r}")
    return ComponentSpec(
        step=path.stem,
        name=raw["name"],
        path=path,
        code=(path.parent / raw["code"]).resolve(),
        environment=str(raw["environment"]),
        command=" ".join(str(raw["command"]).split()),
        inputs={k: _port(k, v) for k, v in (raw.get("inputs") or {}).items()},
        outputs={k: _port(k, v) for k, v in (raw.get("outputs") or {}).items()},
    )


def load_components(folder: Path = COMPONENTS_DIR) -> dict[str, ComponentSpec]:
    """Every component in the folder, keyed by step name (validate, train, evaluate, register)."""
    specs = {p.stem: load_component_spec(p) for p in sorted(Path(folder).glob("*.yml"))}
    if not specs:
        raise ConfigError(f"no component YAMLs in {folder}")
    return specs


# --- the graph ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineInput:
    name: str
    type: str  # uri_folder, string, integer
    optional: bool = False
    default: Any = None


@dataclass(frozen=True)
class Node:
    """A pipeline node: a component and where each of its inputs comes from.

    A binding is either `pipeline.<input>` (a pipeline input) or `<node>.<output>` (an output of
    an earlier node)."""

    name: str
    component: str
    inputs: dict[str, str] = field(default_factory=dict)


PIPELINE_INPUTS: tuple[PipelineInput, ...] = (
    PipelineInput("data", "uri_folder"),
    PipelineInput("profile", "string", default="quick"),
    # detect | classify: validate, train and evaluate check it against the data set's own task
    PipelineInput("task", "string", default="detect"),
    PipelineInput("epochs", "integer", optional=True),
    PipelineInput("imgsz", "integer", optional=True),
    PipelineInput("batch", "integer", optional=True),
    PipelineInput("patience", "integer", optional=True),
    PipelineInput("model", "string", optional=True),
)

GRAPH: tuple[Node, ...] = (
    Node("validate", "validate", {"data": "pipeline.data", "task": "pipeline.task"}),
    Node(
        "train",
        "train",
        {
            "data": "pipeline.data",
            "task": "pipeline.task",
            "validation": "validate.report",  # also orders train after validate on Azure ML
            "profile": "pipeline.profile",
            "epochs": "pipeline.epochs",
            "imgsz": "pipeline.imgsz",
            "batch": "pipeline.batch",
            "patience": "pipeline.patience",
            "model": "pipeline.model",
        },
    ),
    Node("evaluate", "evaluate", {"model": "train.model", "data": "pipeline.data", "task": "pipeline.task",
                                  "profile": "pipeline.profile"}),
    Node("register", "register", {"model": "train.model", "evaluation": "evaluate.evaluation"}),
)

PIPELINE_KNOBS = tuple(p.name for p in PIPELINE_INPUTS if p.optional)


def check_knobs(knobs: Mapping[str, Any]) -> None:
    """Refuse a knob the pipeline has no input for (a typo would otherwise vanish on Azure ML)."""
    unknown = sorted(set(knobs) - set(PIPELINE_KNOBS))
    if unknown:
        raise ConfigError(f"the pipeline takes no knob(s) {unknown}; it takes {', '.join(PIPELINE_KNOBS)}")


# What the pipeline returns (name -> node.output): the folders a caller reads afterwards.
PIPELINE_OUTPUTS: dict[str, str] = {
    "validation": "validate.report",
    "model": "train.model",
    "evaluation": "evaluate.evaluation",
    "registration": "register.registration",
}


def check_graph(
    components: Mapping[str, ComponentSpec],
    graph: tuple[Node, ...] = GRAPH,
    pipeline_inputs: tuple[PipelineInput, ...] = PIPELINE_INPUTS,
) -> list[str]:
    """Every wiring mistake, as readable sentences (empty = sound).

    Azure ML's SDK does not notice a node input that its component does not declare (it is
    silently dropped), nor a binding to a missing output; both executors call this first."""
    problems: list[str] = []
    known_inputs = {p.name for p in pipeline_inputs}
    produced: dict[str, set[str]] = {}
    for node in graph:
        spec = components.get(node.component)
        if spec is None:
            problems.append(f"node {node.name}: no component {node.component!r} (have {sorted(components)})")
            continue
        for port, binding in node.inputs.items():
            if port not in spec.inputs:
                problems.append(
                    f"node {node.name}: input {port!r} is not an input of {spec.name} ({sorted(spec.inputs)})"
                )
            source, _, name = binding.partition(".")
            if source == "pipeline":
                if name not in known_inputs:
                    problems.append(f"node {node.name}: {binding} is not a pipeline input ({sorted(known_inputs)})")
            elif name not in produced.get(source, set()):
                problems.append(f"node {node.name}: {binding} is not an output of an earlier node")
        for port in spec.inputs.values():
            if not port.optional and port.default is None and port.name not in node.inputs:
                problems.append(f"node {node.name}: required input {port.name!r} of {spec.name} is not bound")
        for kind, name in spec.bindings:
            declared = spec.inputs if kind == "inputs" else spec.outputs
            if name not in declared:
                problems.append(f"component {spec.name}: command uses {kind}.{name}, which it does not declare")
        produced[node.name] = set(spec.outputs)
    for out, binding in PIPELINE_OUTPUTS.items():
        source, _, name = binding.partition(".")
        if name not in produced.get(source, set()):
            problems.append(f"pipeline output {out}: {binding} is not a node output")
    return problems


def require_sound_graph(components: Mapping[str, ComponentSpec]) -> None:
    problems = check_graph(components)
    if problems:
        raise ConfigError("the pipeline graph is miswired: " + "; ".join(problems))


def pipeline_version(folder: Path = COMPONENTS_DIR) -> str:
    """A content hash of the component YAMLs, the graph and the step code: the version under
    which a pipeline is published (same definition and code, same version, on either backend).
    A published copy (local publish) keeps the version it was published under."""
    frozen = Path(folder) / "pipeline.json"
    if frozen.is_file():
        return str(json.loads(frozen.read_text())["version"])
    package = Path(__file__).resolve().parents[1]
    return (
        Hasher()
        .files(Path(folder).glob("*.yml"), Path(folder))
        .text(repr((PIPELINE_INPUTS, GRAPH, PIPELINE_OUTPUTS)))
        .files(package.rglob("*.py"), package)
        .hexdigest()
    )


# --- what every step process sees ---------------------------------------------------------------
# Settings a step reads that mean the same on any machine; paths and the tracking URI are
# machine-specific and only passed to local step processes (Azure ML sets its own MLflow URI).
PORTABLE_SETTINGS = ("experiment_name", "dataset_name", "model_name", "device", "threads", "seed")


def step_environment(settings: Any, *, code_root: Path, local: bool) -> dict[str, str]:
    """Environment variables for each step: the caller's settings and the commit of the code
    (lineage tags; an Azure ML code snapshot has no .git)."""
    from visionops.tracking import git_commit

    env = {
        f"VISIONOPS_{key.upper()}": str(value)
        for key in PORTABLE_SETTINGS
        if (value := getattr(settings, key)) is not None
    }
    env["GIT_COMMIT"] = git_commit(code_root)
    if local:
        env.update(
            VISIONOPS_BACKEND="local",
            VISIONOPS_ROOT=str(settings.root),
            VISIONOPS_DATA_DIR=str(settings.data_dir),
            VISIONOPS_OUTPUTS_DIR=str(settings.outputs_dir),
            VISIONOPS_MLFLOW_TRACKING_URI=settings.tracking_uri,
        )
    return env


def pipeline_yaml_problems(path: Path) -> list[str]:
    """Node inputs of a pipeline job YAML that its components do not declare.

    azure-ai-ml loads `jobs.<node>.inputs.epochz: 3` without a word and drops it (the node then
    runs with the component's default), so the raw YAML is compared with each component file."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    problems: list[str] = []
    for name, node in (raw.get("jobs") or {}).items():
        ref = node.get("component")
        if not isinstance(ref, str) or ref.startswith("azureml:"):
            continue  # a registered component: nothing on disk to compare with
        spec = load_component_spec(path.parent / ref.removeprefix("file:"))
        for key in sorted(set(node.get("inputs") or {}) - set(spec.inputs)):
            problems.append(f"node {name}: input {key!r} is not an input of {spec.name} ({sorted(spec.inputs)})")
        for key in sorted(set(node.get("outputs") or {}) - set(spec.outputs)):
            problems.append(f"node {name}: output {key!r} is not an output of {spec.name} ({sorted(spec.outputs)})")
    return problems

"""One search space for every sweep: a YAML file read into a pydantic model, checked once.

The local sweep (Optuna, `visionops.sweep.local`) and the Azure ML sweep job
(`visionops.sweep.azure_sweep`) both read this model, so a knob, its range and the metric being
optimised are written down once. A space names Ultralytics training knobs (`KNOBS`) and, for
each, one of four distributions both back ends can draw from:

    choice      values: [...]          any knob
    uniform     low, high              float knobs
    loguniform  low, high (> 0)        float knobs; the values themselves (Azure ML wants their
                                       natural logs: the Azure mapping converts)
    randint     upper                  int knobs; 0 .. upper-1 (Azure ML's Randint, which has no
                                       lower bound)

Other Azure types (normal, q-variants) are left out on purpose: Optuna samples only bounded
ranges and forbids a step on a log scale, so they could not mean the same thing on both sides.

Bad input fails before any training with every problem, each naming the file, line and entry and
saying what to do (an unknown knob gets a did-you-mean).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from visionops.errors import ConfigError
from visionops.profiles import TrainSpec
from visionops.tasks import TASK_NAMES

SPACES_DIR = Path(__file__).with_name("spaces")
TASKS = TASK_NAMES  # one default space per task: spaces/<task>.yaml


@dataclass(frozen=True)
class Knob:
    """A training argument a sweep may vary: its Python type and the values Ultralytics accepts."""

    kind: type  # float, int or str
    low: float | None = None  # inclusive bounds of the knob itself (None: unbounded)
    high: float | None = None
    positive: bool = False  # strictly > 0 (a learning rate)
    help: str = ""

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be this knob's value, or None when it can."""
        if self.kind is str:
            return None if isinstance(value, str) and value.strip() else f"{value!r} is not a non-empty text"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{value!r} is not a number"
        if self.kind is int and not float(value).is_integer():
            return f"{value!r} is not a whole number"
        if self.positive and value <= 0:
            return f"{value!r} must be > 0"
        if self.low is not None and value < self.low:
            return f"{value!r} is below {self.low:g}"
        if self.high is not None and value > self.high:
            return f"{value!r} is above {self.high:g}"
        return None


# The knobs a space may name. TrainSpec fields are set as such; the others are Ultralytics train
# arguments carried in TrainSpec.extra (the profile's own `extra` is kept underneath).
KNOBS: dict[str, Knob] = {
    "lr0": Knob(float, 0.0, 1.0, positive=True, help="initial learning rate"),
    "lrf": Knob(float, 0.0, 1.0, positive=True, help="final learning rate, as a fraction of lr0"),
    "momentum": Knob(float, 0.0, 1.0, help="SGD momentum / Adam beta1"),
    "weight_decay": Knob(float, 0.0, 0.1, help="L2 weight decay"),
    "warmup_epochs": Knob(float, 0.0, None, help="warm-up epochs"),
    "imgsz": Knob(int, 32, None, help="training image size (pixels)"),
    "batch": Knob(int, 1, None, help="batch size"),
    "epochs": Knob(int, 1, None, help="training epochs"),
    "close_mosaic": Knob(int, 0, None, help="epochs at the end trained without mosaic"),
    "mosaic": Knob(float, 0.0, 1.0, help="mosaic augmentation probability"),
    "mixup": Knob(float, 0.0, 1.0, help="mixup augmentation probability"),
    "fliplr": Knob(float, 0.0, 1.0, help="horizontal flip probability"),
    "scale": Knob(float, 0.0, 1.0, help="scale augmentation gain"),
    "hsv_h": Knob(float, 0.0, 1.0, help="hue augmentation"),
    "hsv_s": Knob(float, 0.0, 1.0, help="saturation augmentation"),
    "hsv_v": Knob(float, 0.0, 1.0, help="value (brightness) augmentation"),
    "model": Knob(str, help="model yaml Ultralytics ships, or a local .pt"),
    "optimizer": Knob(str, help="SGD, Adam, AdamW, ... or auto"),
}


class ChoiceParam(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["choice"]
    values: list[float | int | str] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> ChoiceParam:
        if len({repr(v) for v in self.values}) != len(self.values):
            raise ValueError(f"choice values {self.values} repeat a value; list each once")
        return self


class UniformParam(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> UniformParam:
        if self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g} "
                             "(swap them; to fix a knob use a choice with one value)")
        return self


class LogUniformParam(UniformParam):
    type: Literal["loguniform"]  # type: ignore[assignment]

    @model_validator(mode="after")
    def _positive(self) -> LogUniformParam:
        if self.low <= 0:
            raise ValueError(f"loguniform low {self.low:g} must be > 0 (the values, not their logs)")
        return self


class RandintParam(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["randint"]
    upper: int = Field(ge=1, description="values 0 .. upper-1")


Param = Annotated[ChoiceParam | UniformParam | LogUniformParam | RandintParam, Field(discriminator="type")]


def param_bounds(param: Param) -> list[Any]:
    """The values (choice) or the extreme values (ranges) a parameter can take."""
    if isinstance(param, ChoiceParam):
        return list(param.values)
    if isinstance(param, RandintParam):
        return [0, param.upper - 1]
    return [param.low, param.high]


class SearchSpace(BaseModel):
    """What a sweep varies, and what it optimises (a metric training logs per epoch)."""

    model_config = ConfigDict(extra="forbid")
    task: Literal["detect", "classify"] = "detect"
    metric: str = Field("map50_95", description="A metric training of the task logs per epoch through MLflow.")
    goal: Literal["maximize", "minimize"] = "maximize"
    prune_on: str | None = Field(
        None, description="What the local sweep's median pruner compares epoch by epoch (default: `metric`). "
        "A loss (`val_loss`) is lower-is-better whatever the goal. Azure ML's Bandit policy always uses `metric`.")
    parameters: dict[str, Param] = Field(min_length=1)

    @property
    def prune_signal(self) -> str:
        """The per-epoch value the local pruner compares."""
        return self.prune_on or self.metric

    @property
    def prune_goal(self) -> Literal["maximize", "minimize"]:
        """Which way the pruning signal improves: losses go down, the metric goes the space's way."""
        if self.prune_on is None or self.prune_on == self.metric:
            return self.goal
        return "minimize" if self.prune_on.endswith("loss") else "maximize"

    @model_validator(mode="after")
    def _known_knobs(self) -> SearchSpace:
        problems = knob_problems(self)
        if problems:
            raise SpaceProblems(problems)
        return self


class SpaceProblems(ValueError):
    """Every entry of a space that names an unknown knob or values the knob cannot take, with
    its path (('parameters', 'lr0')), so the file reader can say which line."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]):
        super().__init__("; ".join(f"{'.'.join(path)}: {msg}" for path, msg in problems))
        self.problems = problems


def knob_problems(space: SearchSpace) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with the space's metric and knobs (its structure pydantic checked already)."""
    from visionops.training import task_training

    problems: list[tuple[tuple[str, ...], str]] = []
    logged = task_training(space.task).epoch_metrics
    for field in ("metric", "prune_on"):
        name = getattr(space, field)
        if name is not None and name not in logged:
            problems.append(((field,), f"{name!r} is not logged per epoch by {space.task} training"
                             f"{_did_you_mean(name, logged)}; use one of {', '.join(sorted(logged))}"))
    for name, param in space.parameters.items():
        where = ("parameters", name)
        knob = KNOBS.get(name)
        if knob is None:
            problems.append((where, f"unknown knob{_did_you_mean(name, KNOBS)}; knobs: {', '.join(sorted(KNOBS))}"))
            continue
        if isinstance(param, UniformParam) and knob.kind is not float:
            alternative = "choice or randint" if knob.kind is int else "choice"
            problems.append((where, f"{param.type} draws fractions but {name} is {knob.kind.__name__}; "
                                    f"use {alternative}"))
            continue
        if isinstance(param, RandintParam) and knob.kind is not int:
            alternative = "uniform" if knob.kind is float else "choice"
            problems.append((where, f"randint draws whole numbers but {name} is {knob.kind.__name__}; "
                                    f"use {alternative}"))
            continue
        for value in param_bounds(param):
            if (why := knob.problem(value)) is not None:
                hint = "; randint starts at 0: use choice" if isinstance(param, RandintParam) else ""
                problems.append((where, f"{why} ({knob.help}){hint}"))
    return problems


def profile_knobs(params: dict[str, Any], base: TrainSpec) -> dict[str, Any]:
    """Drawn values as profile knobs (`get_profile(name, **knobs)`): TrainSpec fields as they are,
    the other Ultralytics arguments merged into the profile's `extra` (whose own keys stay)."""
    knobs = {k: _typed(k, v) for k, v in params.items() if k in TrainSpec.model_fields}
    extra = {k: _typed(k, v) for k, v in params.items() if k not in TrainSpec.model_fields}
    if extra:
        knobs["extra"] = {**base.extra, **extra}
    return knobs


def parse_value(name: str, text: str) -> Any:
    """A knob's value from the command line (an Azure ML trial gets `--set lr0=0.0031`)."""
    knob = KNOBS.get(name)
    if knob is None:
        raise ConfigError(f"unknown knob {name!r}{_did_you_mean(name, KNOBS)}; knobs: {', '.join(sorted(KNOBS))}")
    try:
        value: Any = text if knob.kind is str else _typed(name, float(text))
    except ValueError:
        raise ConfigError(f"knob {name}: {text!r} is not a number") from None
    if (why := knob.problem(value)) is not None:
        raise ConfigError(f"knob {name}: {why} ({knob.help})")
    return value


def _typed(name: str, value: Any) -> Any:
    """Whole numbers for int knobs (Azure ML may hand `16.0` to a choice of ints)."""
    knob = KNOBS.get(name)
    if knob is not None and knob.kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _did_you_mean(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- reading files --------------------------------------------------------------------------------
def default_space_path(task: str = "detect") -> Path:
    if task not in TASKS:
        raise ConfigError(f"no default search space for task {task!r}; tasks: {', '.join(TASKS)}")
    return SPACES_DIR / f"{task}.yaml"


def load_space(path: Path | str | None = None, *, task: str = "detect") -> SearchSpace:
    """The space in `path` (default: the package's space for `task`), checked; ConfigError
    listing every problem as `file:line: entry: what is wrong` otherwise."""
    path = Path(path) if path is not None else default_space_path(task)
    if not path.is_file():
        raise ConfigError(f"search space {path} not found; pass a YAML file (see {default_space_path(task)})")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else "?"
        raise ConfigError(f"{path}:{line}: not valid YAML ({exc.problem}); fix the syntax") from None
    return parse_space(raw, source=str(path), lines=_key_lines(text))


def parse_space(raw: Any, *, source: str = "<search space>", lines: dict[tuple[str, ...], int] | None = None,
                ) -> SearchSpace:
    """A space from already-parsed YAML/JSON (a notebook's dict), with the same checks."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a search space is a mapping with 'parameters' (see "
                          f"{default_space_path()}), got {type(raw).__name__}")
    try:
        return SearchSpace.model_validate(raw)
    except ValidationError as exc:
        found = [line for err in exc.errors() for line in _describe(err, source, lines or {})]
        raise ConfigError(f"{source}: invalid search space (fix each entry below):\n" + "\n".join(found)) from None


def _describe(err: Any, source: str, lines: dict[tuple[str, ...], int]) -> list[str]:
    """`file:line: entry: message` lines for one pydantic error (ours carry one per entry)."""
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, SpaceProblems):
        entries = original.problems
    else:
        loc = tuple(str(p) for p in err["loc"] if str(p) not in {"choice", "uniform", "loguniform", "randint"})
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            msg = "type must be one of choice, uniform, loguniform, randint"
        elif err["type"] == "too_short" and loc and loc[-1] == "values":
            msg = "empty choice: list at least one value"
        elif err["type"] == "too_short" and loc == ("parameters",):
            msg = "no parameters: name at least one knob to vary"
        entries = [(loc, msg)]
    out = []
    for loc, msg in entries:
        line = _line_of(loc, lines)
        out.append(f"  {source}:{line}: {'.'.join(loc)}: {msg}" if line else f"  {source}: {'.'.join(loc)}: {msg}")
    return out


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for n in range(len(loc), 0, -1):
        if (found := lines.get(loc[:n])) is not None:
            return found
    return None


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key in the YAML, by its path (e.g. ('parameters', 'lr0'))."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    out: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                out[child] = key.start_mark.line + 1
                walk(value, child)

    walk(root, ())
    return out


def space_summary(space: SearchSpace) -> dict[str, str]:
    """One readable line per knob (MLflow params of the parent run, the notebook's table)."""
    out: dict[str, str] = {}
    for name, p in space.parameters.items():
        if isinstance(p, ChoiceParam):
            out[name] = f"choice{p.values}"
        elif isinstance(p, RandintParam):
            out[name] = f"randint(0..{p.upper - 1})"
        else:
            out[name] = f"{p.type}({p.low:g}, {p.high:g})"
    return out


def log_bounds(param: LogUniformParam) -> tuple[float, float]:
    """Natural-log bounds of a loguniform (what Azure ML's LogUniform takes)."""
    return math.log(param.low), math.log(param.high)

"""What differs between computer-vision tasks, behind one small object per task.

VisionOps runs one lifecycle for every task: the runner, the pipeline steps, the CLI and the
notebooks take a `task` (`detect` | `classify`) and ask its `Task` for the parts that differ
(the model's registry noun, the default architecture, the decision metric, the synthetic data
set's name), so no module grows `if task == ...` branches. The data-level half (layout,
validation, counting, hashing) is `visionops.data.kinds`; the metric names and scoring are in
`visionops.training` and `visionops.evaluation`, keyed by the same task name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from visionops.errors import ConfigError

TaskName = Literal["detect", "classify"]


@dataclass(frozen=True)
class Task:
    """The task-specific constants the lifecycle needs (a frozen value: cheap to import and pass)."""

    name: TaskName
    noun: str  # what the registered model is called after its data set: `<dataset>-<noun>`
    default_model: str  # the Ultralytics architecture a profile trains from scratch
    decision_metric: str  # the metric champion/challenger compares by default
    metric_label: str  # how notebooks and reports name the decision metric for people
    synthetic_suffix: str  # appended to settings.dataset_name for this task's synthetic data set

    def model_name(self, dataset_name: str) -> str:
        """`<dataset>-detector` / `<dataset>-classifier`: names follow the data and the task."""
        return f"{dataset_name}-{self.noun}"

    def synthetic_name(self, base: str) -> str:
        """The synthetic data set's name (`shapes` for detection, `shapes-cls` for classification):
        two tasks never share a data set name, so their versions and models never mix."""
        return f"{base}{self.synthetic_suffix}"


TASKS: dict[str, Task] = {
    "detect": Task(
        name="detect", noun="detector", default_model="yolo11n.yaml", decision_metric="map50_95",
        metric_label="mAP50-95", synthetic_suffix="",
    ),
    "classify": Task(
        name="classify", noun="classifier", default_model="yolo11n-cls.yaml", decision_metric="top1",
        metric_label="top-1 accuracy", synthetic_suffix="-cls",
    ),
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def get_task(name: str | Task | None) -> Task:
    """The task called `name` (None: detection); an unknown name is an error that suggests the
    closest known one (`clasify` -> did you mean 'classify'?)."""
    if isinstance(name, Task):
        return name
    key = (name or "detect").strip().lower()
    if key in TASKS:
        return TASKS[key]
    close = difflib.get_close_matches(key, TASK_NAMES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown task {name!r}{hint} (tasks: {', '.join(TASK_NAMES)})")


def check_same_task(asked: str | None, found: str, what: str) -> Task:
    """The task of `what` (a data set, a model), refusing a different one asked for explicitly:
    a classifier is never trained on detection labels or the other way round."""
    task = get_task(found)
    if asked is not None and get_task(asked).name != task.name:
        raise ConfigError(
            f"{what} is a {task.name!r} data set but task {get_task(asked).name!r} was asked for; "
            f"pass task={task.name!r} (or choose a {get_task(asked).name} data set)"
        )
    return task

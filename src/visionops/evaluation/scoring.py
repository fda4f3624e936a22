"""Which score function each task uses, so champion/challenger and every other caller score a
model the same way without branching on the task.

Both functions share one signature, `(weights, dataset, settings, *, split, imgsz, save_dir,
plots) -> EvalResult`: `visionops.evaluation.metrics.score` (detection: mAP, per-class AP) and
`visionops.evaluation.classify_metrics.score_classifier` (classification: top-1/top-5,
per-class precision/recall/F1, confusion matrix, misclassified images). `visionops.tasks` names
the tasks; this table is keyed by the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from visionops.data.catalog import DatasetRef
from visionops.errors import ConfigError
from visionops.evaluation.classify_metrics import score_classifier
from visionops.evaluation.metrics import EvalResult, score
from visionops.settings import Settings


class ScoreFunction(Protocol):
    def __call__(self, weights: Path, dataset: DatasetRef, settings: Settings, *, split: str = "test",
                 imgsz: int | None = None, save_dir: Path | None = None, plots: bool = True) -> EvalResult: ...


@dataclass(frozen=True)
class TaskScoring:
    """How one task scores a model, and which per-class number the evaluation run logs to MLflow
    (as `test_<per_class_metric>_<class>`) for dashboards that compare classes across runs."""

    score: ScoreFunction
    per_class_metric: str  # a ClassScore field the task fills


SCORING: dict[str, TaskScoring] = {
    "detect": TaskScoring(score=score, per_class_metric="ap50_95"),
    "classify": TaskScoring(score=score_classifier, per_class_metric="f1"),
}


def scoring_for(task: str) -> TaskScoring:
    """The scoring of a task name; ConfigError naming the known tasks otherwise."""
    try:
        return SCORING[task]
    except KeyError:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(SCORING)}") from None


def score_dataset(weights: Path, dataset: DatasetRef, settings: Settings, **options) -> EvalResult:
    """Score `weights` on `dataset` with its task's function (options: split, imgsz, save_dir, plots)."""
    return scoring_for(getattr(dataset, "task", "detect")).score(weights, dataset, settings, **options)

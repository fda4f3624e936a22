"""Champion/challenger: score both models on the same frozen test split, decide, record.

The champion's stored metrics are never trusted: they may come from another data set version
or another evaluation code. It is re-scored here on exactly the split the challenger sees.
The decision (with both numbers) goes to a JSON file and to an MLflow evaluation run.

A champion trained on another class list is not re-scored at all (it could not be: its class
ids mean other things on this split): the decision rejects the challenger and says so, naming
both lists (see evaluation/decision.py). Its class list comes from the registry
(`registry.version_classes`), so this check needs no download when the version carries tags.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from visionops import registry
from visionops.data.catalog import DatasetRef
from visionops.evaluation.decision import Decision, DecisionRule, decide
from visionops.evaluation.metrics import EvalResult
from visionops.evaluation.scoring import scoring_for
from visionops.settings import Settings
from visionops.tasks import get_task
from visionops.tracking import clean_metric_name, configure_mlflow, git_commit

DECISION_FILE = "decision.json"


class EvaluationOutcome(BaseModel):
    challenger: EvalResult
    champion: EvalResult | None
    champion_version: str | None
    decision: Decision
    evaluation_run_id: str
    train_run_id: str | None
    decision_path: Path
    model_name: str | None = None

    def summary(self) -> dict:
        extra = {}
        if self.challenger.confusion is not None:  # classification: which class is taken for which
            extra = {"classes": self.challenger.classes, "confusion": self.challenger.confusion,
                     "misclassified": len(self.challenger.misclassified)}
        return {
            "task": self.challenger.task,
            "decision": self.decision.outcome,
            "reason": self.decision.reason,
            "metric": self.decision.metric,
            "challenger": self.challenger.metrics,
            "champion": self.champion.metrics if self.champion else None,
            "champion_version": self.champion_version,
            "model_name": self.model_name,
            "per_class": [c.model_dump(exclude_none=True) for c in self.challenger.per_class],  # the task's fields
            "dataset": f"{self.challenger.dataset_name}:{self.challenger.dataset_version}",
            "split": self.challenger.split,
            "train_run_id": self.train_run_id,
            "evaluation_run_id": self.evaluation_run_id,
            **extra,
        }


def evaluate_challenger(
    weights: Path,
    dataset: DatasetRef,
    settings: Settings,
    rule: DecisionRule,
    *,
    train_run_id: str | None = None,
    split: str = "test",
    out_dir: Path | None = None,
    model_name: str | None = None,
) -> EvaluationOutcome:
    """Score the challenger and the current champion on `dataset[split]` and decide.

    Both are scored by the data set's task's function (`evaluation.scoring`), and the rule's
    metric (`map50_95`, `top1`, ...) must be one that function reports."""
    import mlflow

    task = getattr(dataset, "task", "detect")
    scoring = scoring_for(task)

    tag = train_run_id or Path(weights).parent.parent.name
    out = Path(out_dir or settings.outputs_dir / "evaluations" / tag)
    out.mkdir(parents=True, exist_ok=True)
    challenger = scoring.score(weights, dataset, settings, split=split, save_dir=out / "challenger")
    name = model_name or settings.registered_model_name
    champ_ref = registry.get_champion(settings, name)
    champion: EvalResult | None = None
    champion_version: str | None = None
    champion_classes: list[str] | None = None
    if champ_ref is not None:
        champion_version = champ_ref.version
        champion_classes = registry.version_classes(settings, champ_ref)
        if champion_classes is None or champion_classes == list(dataset.classes):
            # unknown classes (not registered by visionops): the score function checks the weights' names
            champ_weights = registry.model_files(registry.download(settings, champ_ref))["pt"]
            champion = scoring.score(
                champ_weights, dataset, settings, split=split, imgsz=challenger.imgsz, save_dir=out / "champion",
                plots=False,
            )
    decision = decide(
        challenger.metrics,
        champion.metrics if champion else None,
        rule,
        champion_version=champion_version,
        challenger_classes=dataset.classes,  # scoring checked that the challenger predicts exactly these
        champion_classes=champion_classes,
        model_name=name,
        suggested_name=get_task(task).model_name(dataset.name),
    )
    configure_mlflow(settings)
    tags = {
        "visionops.stage": "evaluation",
        "dataset.name": dataset.name,
        "dataset.version": dataset.version,
        "git.commit": git_commit(),
        "decision": decision.outcome,
        "model.name": name,
    }
    if decision.class_list_differs:
        tags["decision.class_list_differs"] = "true"
    if train_run_id:
        tags["train.run_id"] = train_run_id
    with mlflow.start_run(run_name=f"evaluate-{split}", tags=tags) as run:
        mlflow.log_params(
            {
                "split": split,
                "rule.metric": rule.metric,
                "rule.direction": rule.direction,
                "rule.min_gain": rule.min_gain,
                "rule.floor": rule.floor,
                "champion_version": champion_version or "none",
            }
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in challenger.metrics.items()})
        if champion:
            mlflow.log_metrics({f"champion_{k}": v for k, v in champion.metrics.items()})
        for c in challenger.per_class:
            value = getattr(c, scoring.per_class_metric)
            if value is not None:
                mlflow.log_metric(clean_metric_name(f"test_{scoring.per_class_metric}_{c.name}"), value)
        for path in challenger.plots.values():
            mlflow.log_artifact(str(path), artifact_path="plots")
        outcome = EvaluationOutcome(
            challenger=challenger,
            champion=champion,
            champion_version=champion_version,
            decision=decision,
            evaluation_run_id=run.info.run_id,
            train_run_id=train_run_id,
            decision_path=out / DECISION_FILE,
            model_name=name,
        )
        doc = {**decision.model_dump(), **outcome.summary()}
        outcome.decision_path.write_text(json.dumps(doc, indent=2, default=str))
        (out / "evaluation.json").write_text(outcome.model_dump_json(indent=2))
        mlflow.log_artifact(str(outcome.decision_path))
    if train_run_id:  # let the training run show its verdict too
        client = mlflow.MlflowClient()
        client.set_tag(train_run_id, "decision", decision.outcome)
        client.set_tag(train_run_id, "evaluation.run_id", outcome.evaluation_run_id)
        for k, v in challenger.metrics.items():
            client.log_metric(train_run_id, f"test_{k}", v)
    return outcome

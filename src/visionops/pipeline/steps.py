"""The four pipeline steps, with folder inputs and outputs like Azure ML command components.

    validate  --data DIR [--task T]                   --out DIR  -> validation.json
    train     --data DIR --profile P [knobs] [--validation DIR] [--task T] --out DIR
                                                                 -> weights/best.pt, train_result.json
    evaluate  --model DIR --data DIR --profile P [--task T] --out DIR  -> decision.json, evaluation.json, plots
    register  --model DIR --evaluation DIR            --out DIR  -> registration.json

The task (`detect` | `classify`) is the data set's own (its manifest says which); passing one
only guards against running a step of one task on the other's data (a one-line error).

Plain functions with typed results: the lifecycle runner (`visionops.runner`) calls them
in-process for the notebooks, the CLI and the tests, and the Azure ML components run them
through their command-line entry points (`python -m visionops.cli.steps ...`, in the CLI layer:
nothing here imports the CLI). So every path shares one implementation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.data.dataset import ref_from_folder
from visionops.data.validation import ValidationReport, validate
from visionops.errors import DataValidationError
from visionops.evaluation.challenge import EvaluationOutcome, evaluate_challenger
from visionops.evaluation.decision import DecisionRule
from visionops.profiles import get_profile
from visionops.settings import Settings
from visionops.tasks import Task, check_same_task, get_task
from visionops.training import TrainResult, train

VALIDATION_JSON = "validation.json"
TRAIN_JSON = "train_result.json"
EVALUATION_JSON = "evaluation.json"
REGISTRATION_JSON = "registration.json"
STEP_NAMES = ("validate", "train", "evaluate", "register")


def model_name_for(settings: Settings, dataset_name: str, task: str | Task | None = None) -> str:
    """The registry name of the model trained on `dataset_name`: the settings' model_name when
    one is set (VISIONOPS_MODEL_NAME), else `<dataset>-detector` / `<dataset>-classifier`:
    names follow the data and the task."""
    return settings.model_name or get_task(task).model_name(dataset_name)


def data_task(data: Path, asked: str | None = None) -> Task:
    """The task of the data set folder `data` (its manifest, else its layout); `asked`, when
    given, must agree."""
    from visionops.data.kinds import folder_task

    return check_same_task(asked, folder_task(Path(data)), f"data set {data}")


class RegistrationResult(BaseModel):
    registered: bool
    reason: str
    model_name: str
    version: str | None = None
    uri: str | None = None
    tags: dict[str, str] = {}


def _write(out: Path, name: str, payload: BaseModel | dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    text = payload.model_dump_json(indent=2) if isinstance(payload, BaseModel) else json.dumps(payload, indent=2)
    path.write_text(text)
    return path


def validate_step(data: Path, out: Path, *, task: str | None = None) -> ValidationReport:
    """Fail (after writing the full report) when the data set has any problem."""
    data_task(data, task)
    report = validate(Path(data))
    _write(Path(out), VALIDATION_JSON, report.to_dict())
    return report.raise_if_failed()


def require_validated(validation: Path) -> None:
    """The pipeline passes the validate step's output to train, which both orders the two steps on
    Azure ML and lets train refuse a data set whose report is missing or failed."""
    path = Path(validation) / VALIDATION_JSON
    if not path.is_file():
        raise DataValidationError(f"{path} not found: run the validate step first (its --out folder)")
    report = json.loads(path.read_text())
    if not report.get("ok"):
        raise DataValidationError(
            f"{path} says the data set failed validation ({len(report.get('problems', []))} problem(s)); "
            "fix it and validate again"
        )


def train_step(
    data: Path, out: Path, settings: Settings, *, profile: str, knobs: dict[str, Any] | None = None,
    validation: Path | None = None, task: str | None = None,
) -> TrainResult:
    """Train on the data set folder (with its task's profile); with `validation` (the validate
    step's folder) refuse a data set whose report is missing or failed."""
    if validation is not None:
        require_validated(validation)
    kind = data_task(data, task)
    prof = get_profile(profile, kind.name, **(knobs or {}))
    dataset = ref_from_folder(Path(data), backend=settings.backend)
    result = train(dataset, prof.train, settings, profile=profile)
    out = Path(out)
    (out / "weights").mkdir(parents=True, exist_ok=True)
    shutil.copy2(result.weights, out / "weights" / "best.pt")
    result = result.model_copy(update={"weights": out / "weights" / "best.pt"})
    _write(out, TRAIN_JSON, result)
    return result


def evaluate_step(
    model: Path,
    data: Path,
    out: Path,
    settings: Settings,
    *,
    rule: DecisionRule,
    task: str | None = None,
) -> EvaluationOutcome:
    trained = TrainResult.model_validate_json((Path(model) / TRAIN_JSON).read_text())
    kind = data_task(data, task)
    if get_task(trained.task).name != kind.name:
        raise DataValidationError(
            f"the model of MLflow run {trained.run_id} is a {trained.task!r} model but {data} is a {kind.name!r} "
            "data set; evaluate a model on the data set (and task) it was trained on"
        )
    dataset = ref_from_folder(Path(data), backend=settings.backend)
    weights = Path(model) / "weights" / "best.pt"
    return evaluate_challenger(weights, dataset, settings, rule, train_run_id=trained.run_id, out_dir=Path(out),
                               model_name=model_name_for(settings, dataset.name, kind))


def register_step(model: Path, evaluation: Path, out: Path, settings: Settings) -> RegistrationResult:
    """Register only after a promote decision; otherwise record why not and register nothing."""
    from visionops import registry
    from visionops.serving.export import export_onnx
    from visionops.tracking import git_commit

    trained = TrainResult.model_validate_json((Path(model) / TRAIN_JSON).read_text())
    outcome = EvaluationOutcome.model_validate_json((Path(evaluation) / EVALUATION_JSON).read_text())
    settings = settings.with_overrides(model_name=model_name_for(settings, trained.dataset_name, trained.task))
    d = outcome.decision
    if not d.promote:
        result = RegistrationResult(registered=False, reason=d.reason, model_name=settings.model_name)
        _write(Path(out), REGISTRATION_JSON, result)
        return result
    weights = Path(model) / "weights" / "best.pt"
    onnx = export_onnx(weights, settings, imgsz=outcome.challenger.imgsz, dst=Path(out) / "export" / "best.onnx")
    tags = {
        "dataset.name": trained.dataset_name,
        "dataset.version": trained.dataset_version,
        "git.commit": git_commit(),
        "train.run_id": trained.run_id,
        "evaluation.run_id": outcome.evaluation_run_id,
        "decision.reason": d.reason,
        "imgsz": outcome.challenger.imgsz,
        "task": trained.task,
        "epochs": trained.epochs,
        "device": trained.device,
        **{f"metric.{k}": f"{v:.6f}" for k, v in outcome.challenger.metrics.items()},
    }
    info = {
        "task": trained.task,
        "classes": trained.classes,
        "imgsz": outcome.challenger.imgsz,
        "dataset": f"{trained.dataset_name}:{trained.dataset_version}",
        "metrics": outcome.challenger.metrics,
        "train_run_id": trained.run_id,
    }
    ref = registry.register(
        settings,
        decision=d,
        weights=weights,
        train_run_id=trained.run_id,
        tags=tags,
        info=info,
        extra_artifacts={"onnx": onnx},
    )
    result = RegistrationResult(
        registered=True, reason=d.reason, model_name=ref.name, version=ref.version, uri=ref.uri, tags=ref.tags
    )
    _write(Path(out), REGISTRATION_JSON, result)
    return result

"""The four pipeline steps, with folder inputs and outputs like Azure ML command components.

    validate  --data DIR                              --out DIR  -> validation.json
    train     --data DIR --profile P [knobs] [--validation DIR] --out DIR  -> weights/best.pt, train_result.json
    evaluate  --model DIR --data DIR --profile P      --out DIR  -> decision.json, evaluation.json, plots
    register  --model DIR --evaluation DIR            --out DIR  -> registration.json

The Azure ML components run exactly these commands (`python -m visionops.pipeline.steps ...`)
on mounted folders; the local runner runs them as subprocesses or, inside `visionops run`,
calls the same functions in-process. So the notebook path, the CLI and the cloud pipeline
share one implementation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from visionops.data.dataset import ref_from_folder
from visionops.data.validation import ValidationReport, validate
from visionops.errors import DataValidationError
from visionops.evaluation.challenge import EvaluationOutcome, evaluate_challenger
from visionops.evaluation.decision import DecisionRule
from visionops.profiles import get_profile
from visionops.settings import Settings, get_settings
from visionops.training import TrainResult, train

VALIDATION_JSON = "validation.json"
TRAIN_JSON = "train_result.json"
EVALUATION_JSON = "evaluation.json"
REGISTRATION_JSON = "registration.json"
STEP_NAMES = ("validate", "train", "evaluate", "register")


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


def validate_step(data: Path, out: Path) -> ValidationReport:
    """Fail (after writing the full report) when the data set has any problem."""
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
    data: Path, out: Path, settings: Settings, *, profile: str, knobs: dict[str, Any] | None = None
) -> TrainResult:
    prof = get_profile(profile, **(knobs or {}))
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
) -> EvaluationOutcome:
    trained = TrainResult.model_validate_json((Path(model) / TRAIN_JSON).read_text())
    dataset = ref_from_folder(Path(data), backend=settings.backend)
    weights = Path(model) / "weights" / "best.pt"
    return evaluate_challenger(weights, dataset, settings, rule, train_run_id=trained.run_id, out_dir=Path(out))


def register_step(model: Path, evaluation: Path, out: Path, settings: Settings) -> RegistrationResult:
    """Register only after a promote decision; otherwise record why not and register nothing."""
    from visionops import registry
    from visionops.serving.export import export_onnx
    from visionops.tracking import git_commit

    trained = TrainResult.model_validate_json((Path(model) / TRAIN_JSON).read_text())
    outcome = EvaluationOutcome.model_validate_json((Path(evaluation) / EVALUATION_JSON).read_text())
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
        "epochs": trained.epochs,
        "device": trained.device,
        **{f"metric.{k}": f"{v:.6f}" for k, v in outcome.challenger.metrics.items()},
    }
    info = {
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


# --- command line (what the Azure ML components call) ------------------------------------------
app = typer.Typer(add_completion=False, help="VisionOps pipeline steps (folder in, folder out).")
Profile = Annotated[str, typer.Option(help="Run profile: smoke, quick or full.")]


@app.command("validate")
def _validate_cli(
    data: Annotated[Path, typer.Option(help="Data set folder (YOLO layout + manifest.json).")],
    out: Annotated[Path, typer.Option(help="Output folder for validation.json.")],
) -> None:
    """Validate the data set; fails (after writing the report) when anything is wrong."""
    validate_step(data, out)


@app.command("train")
def _train_cli(
    data: Annotated[Path, typer.Option(help="Validated data set folder.")],
    out: Annotated[Path, typer.Option(help="Output folder: weights/best.pt and train_result.json.")],
    profile: Profile = "quick",
    epochs: Annotated[int | None, typer.Option(help="Override the profile's epochs.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Override the profile's image size.")] = None,
    batch: Annotated[int | None, typer.Option(help="Override the profile's batch size.")] = None,
    validation: Annotated[
        Path | None, typer.Option(help="Output folder of the validate step; refuse to train unless it passed.")
    ] = None,
) -> None:
    """Train a detector on the data set, tracked in MLflow."""
    if validation is not None:
        require_validated(validation)
    train_step(data, out, get_settings(), profile=profile, knobs={"epochs": epochs, "imgsz": imgsz, "batch": batch})


@app.command("evaluate")
def _evaluate_cli(
    model: Annotated[Path, typer.Option(help="Output folder of the train step.")],
    data: Annotated[Path, typer.Option(help="The same data set folder the model was trained on.")],
    out: Annotated[Path, typer.Option(help="Output folder: decision.json, evaluation.json, plots.")],
    profile: Profile = "quick",
) -> None:
    """Score challenger and champion on the test split and decide."""
    evaluate_step(model, data, out, get_settings(), rule=get_profile(profile).decision)


@app.command("register")
def _register_cli(
    model: Annotated[Path, typer.Option(help="Output folder of the train step.")],
    evaluation: Annotated[Path, typer.Option(help="Output folder of the evaluate step.")],
    out: Annotated[Path, typer.Option(help="Output folder for registration.json.")],
) -> None:
    """Register the model when the decision says promote; otherwise record why not."""
    register_step(model, evaluation, out, get_settings())


def main() -> None:
    from visionops.cli import run_app

    run_app(app)


if __name__ == "__main__":
    main()

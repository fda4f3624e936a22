"""The whole local lifecycle in one call: data -> validate -> train -> evaluate -> decide -> register.

It is the pipeline's four steps (visionops.pipeline.steps) called in-process, in order, on
folders under outputs/pipeline/<run>/, after the data set was produced and registered. A step
that fails stops the run: nothing after it runs, so nothing is registered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.data.catalog import DatasetRef
from visionops.data.dataset import SourceFormat, generate_synthetic, import_dataset
from visionops.evaluation.challenge import EvaluationOutcome
from visionops.pipeline.steps import (
    RegistrationResult,
    evaluate_step,
    register_step,
    train_step,
    validate_step,
)
from visionops.profiles import get_profile
from visionops.settings import Settings
from visionops.training import TrainResult
from visionops.workspace import get_workspace

LAST_RUN = "last_run.json"


class LifecycleResult(BaseModel):
    profile: str
    run_dir: Path
    dataset: DatasetRef
    train: TrainResult
    evaluation: dict[str, Any]
    registration: RegistrationResult
    duration_s: float
    timings_s: dict[str, float]

    @property
    def decision(self) -> str:
        return self.evaluation["decision"]


def prepare_dataset(
    settings: Settings,
    profile: str,
    *,
    source: Path | None = None,
    fmt: SourceFormat = "yolo",
    images_dir: Path | None = None,
    knobs: dict[str, Any] | None = None,
) -> Path:
    """A working copy of the data set under data/work/: generated for the profile, or imported."""
    name = settings.dataset_name
    if source is None:
        spec = get_profile(profile, **(knobs or {})).data.model_copy(update={"seed": settings.seed})
        return generate_synthetic(spec, settings.data_dir / "work" / f"{name}-{profile}", name)
    return import_dataset(source, settings.data_dir / "work" / f"{name}-import", name, fmt, images_dir=images_dir)


def run_lifecycle(
    settings: Settings,
    profile: str,
    *,
    source: Path | None = None,
    fmt: SourceFormat = "yolo",
    images_dir: Path | None = None,
    knobs: dict[str, Any] | None = None,
    on_step: Callable[[str, str], None] | None = None,
) -> LifecycleResult:
    """Run every stage with `profile` (knobs override it) and return what happened."""
    say = on_step or (lambda step, msg: None)
    prof = get_profile(profile, **(knobs or {}))
    workspace = get_workspace(settings)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        timings[step] = round(time.perf_counter() - t, 2)
        return value

    say("data", "producing the data set")
    folder = timed("data", lambda: prepare_dataset(settings, profile, source=source, fmt=fmt,
                                                    images_dir=images_dir, knobs=knobs))
    say("register-data", f"validating and registering {folder}")
    dataset = timed("register_data", lambda: workspace.register_dataset(folder, settings.dataset_name))
    say("register-data", f"data set {dataset.name}:{dataset.version}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = settings.outputs_dir / "pipeline" / f"{stamp}-{profile}"
    data_dir = Path(dataset.path)
    timed("validate", lambda: validate_step(data_dir, run_dir / "validate"))
    train_knobs = {k: v for k, v in (knobs or {}).items() if k in type(prof.train).model_fields}
    say("train", f"training {prof.train.model} for {prof.train.epochs} epochs at {prof.train.imgsz}px")
    trained: TrainResult = timed(
        "train", lambda: train_step(data_dir, run_dir / "train", settings, profile=profile, knobs=train_knobs)
    )
    say("evaluate", "scoring challenger and champion on the test split")
    outcome: EvaluationOutcome = timed(
        "evaluate",
        lambda: evaluate_step(run_dir / "train", data_dir, run_dir / "evaluate", settings, rule=prof.decision),
    )
    say("decide", outcome.decision.reason)
    registration: RegistrationResult = timed(
        "register", lambda: register_step(run_dir / "train", run_dir / "evaluate", run_dir / "register", settings)
    )
    result = LifecycleResult(
        profile=profile,
        run_dir=run_dir,
        dataset=dataset,
        train=trained,
        evaluation=outcome.summary(),
        registration=registration,
        duration_s=round(time.perf_counter() - started, 2),
        timings_s=timings,
    )
    text = result.model_dump_json(indent=2)
    (run_dir / "summary.json").write_text(text)
    (settings.outputs_dir / LAST_RUN).write_text(text)
    return result


def last_run(settings: Settings) -> dict[str, Any] | None:
    path = settings.outputs_dir / LAST_RUN
    return json.loads(path.read_text()) if path.is_file() else None

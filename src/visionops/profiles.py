"""Run profiles: the one place where data size, training schedule and decision rule are defined.

`smoke` is for tests and CI (the whole lifecycle in about a minute), `quick` is the laptop demo
(a model that visibly works in a few CPU minutes), `full` is for a GPU or Azure ML. Each task
(`detect`, `classify`: `visionops.tasks`) has its own three, with the same names, so a notebook
or command switches task with one parameter and keeps its profile. Notebooks, the CLI and the
pipeline steps all resolve their knobs here, so a parameter is defined once; the papermill files
in notebooks/profiles/ only name the profile.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from visionops.data.classify.synthetic import ClassifySpec
from visionops.data.synthetic import SyntheticSpec
from visionops.errors import ConfigError
from visionops.evaluation.decision import DecisionRule
from visionops.tasks import get_task


class TrainSpec(BaseModel):
    """Ultralytics training arguments we choose on purpose; everything else is Ultralytics' default."""

    model: str = Field("yolo11n.yaml", description="Architecture yaml (from scratch) shipped with Ultralytics.")
    weights: str | None = Field(None, description="Optional path to pretrained .pt weights on disk.")
    epochs: int = Field(50, ge=1)
    imgsz: int = Field(160, ge=32)
    batch: int = Field(16, ge=1)
    optimizer: str = Field("auto")
    lr0: float | None = Field(None, gt=0)
    warmup_epochs: float | None = Field(None, ge=0)
    close_mosaic: int | None = Field(None, ge=0)
    patience: int = Field(100, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict, description="Any other Ultralytics train argument.")

    def ultralytics_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "epochs": self.epochs,
            "imgsz": self.imgsz,
            "batch": self.batch,
            "optimizer": self.optimizer,
            "patience": self.patience,
        }
        for k in ("lr0", "warmup_epochs", "close_mosaic"):
            if (v := getattr(self, k)) is not None:
                args[k] = v
        args.update(self.extra)
        return args


class SweepBudget(BaseModel):
    """What a hyperparameter sweep may spend with this profile (`visionops sweep`, notebook 06)."""

    trials: int = Field(8, ge=1, description="Trials a sweep adds when not told how many.")
    trial_epochs: int | None = Field(None, ge=1, description="Epochs of each trial (None: the profile's epochs).")


class Profile(BaseModel):
    name: str
    description: str
    task: str = "detect"
    data: SyntheticSpec | ClassifySpec
    train: TrainSpec
    decision: DecisionRule
    sweep: SweepBudget = Field(default_factory=SweepBudget)

    def override(self, **knobs: Any) -> Profile:
        """Apply notebook parameters / CLI options by field name (None means keep the profile's)."""
        knobs = {k: v for k, v in knobs.items() if v is not None}
        sections = {"data": self.data, "train": self.train, "decision": self.decision, "sweep": self.sweep}
        updates: dict[str, dict[str, Any]] = {k: {} for k in sections}
        for key, value in knobs.items():
            owner = [s for s, model in sections.items() if key in type(model).model_fields]
            if not owner:
                known = sorted({f for m in sections.values() for f in type(m).model_fields})
                raise ConfigError(f"unknown profile knob {key!r}; known knobs: {', '.join(known)}")
            updates[owner[0]][key] = value
        return self.model_copy(
            update={
                s: type(model).model_validate({**model.model_dump(), **updates[s]})
                for s, model in sections.items()
                if updates[s]
            }
        )


DETECT_PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="Tests and CI: a few tiny images and epochs; proves the wiring, not the model.",
        data=SyntheticSpec(n_train=16, n_val=8, n_test=8, image_size=96, max_objects=3),
        train=TrainSpec(epochs=2, imgsz=96, batch=8, optimizer="AdamW", lr0=0.003, warmup_epochs=0, close_mosaic=0),
        # floor 0: a two-epoch model scores ~0, and the smoke run must still exercise registration
        decision=DecisionRule(floor=0.0),
        sweep=SweepBudget(trials=3),
    ),
    "quick": Profile(
        name="quick",
        description="Laptop demo on CPU: a detector that visibly works in about five minutes of training.",
        data=SyntheticSpec(n_train=128, n_val=32, n_test=64, image_size=160),
        # AdamW with a short warm-up learns these shapes ~2x faster than Ultralytics' "auto" SGD
        # schedule at this size (measured: test mAP50-95 0.75 vs 0.58 after 60 epochs).
        train=TrainSpec(
            epochs=60, imgsz=160, batch=16, optimizer="AdamW", lr0=0.003, warmup_epochs=1, close_mosaic=10
        ),
        decision=DecisionRule(floor=0.5, min_gain=0.005),
        # a few short trials keep `make demo` near its budget; `visionops sweep --trials N` for more
        sweep=SweepBudget(trials=4, trial_epochs=15),
    ),
    "full": Profile(
        name="full",
        description="GPU or Azure ML: more data, more epochs, bigger images.",
        data=SyntheticSpec(n_train=2048, n_val=256, n_test=256, image_size=320, max_objects=6),
        train=TrainSpec(epochs=100, imgsz=320, batch=64, patience=30),
        decision=DecisionRule(floor=0.6, min_gain=0.005),
        sweep=SweepBudget(trials=20),
    ),
}


CLASSIFY = get_task("classify")
CLASSIFY_PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        task="classify",
        description="Tests and CI: a few tiny images per class and two epochs; proves the wiring, not the model.",
        data=ClassifySpec(per_class_train=8, per_class_val=3, per_class_test=3, image_size=64),
        train=TrainSpec(model=CLASSIFY.default_model, epochs=2, imgsz=64, batch=16, optimizer="AdamW", lr0=0.002,
                        warmup_epochs=0),
        decision=DecisionRule(metric=CLASSIFY.decision_metric, floor=0.0),
        sweep=SweepBudget(trials=3),
    ),
    "quick": Profile(
        name="quick",
        task="classify",
        description="Laptop demo on CPU: a classifier that visibly works in a few minutes of training.",
        data=ClassifySpec(per_class_train=60, per_class_val=15, per_class_test=20, image_size=96),
        # measured on 2 CPU cores: test top-1 1.0 after 12 epochs at 64 px (6 epochs: 0.86);
        # at 96 px the same took ~2x the time for the same score (benchmarks/bench_classify.py)
        train=TrainSpec(model=CLASSIFY.default_model, epochs=12, imgsz=64, batch=16, optimizer="AdamW", lr0=0.002,
                        warmup_epochs=1),
        decision=DecisionRule(metric=CLASSIFY.decision_metric, floor=0.8, min_gain=0.005),
        sweep=SweepBudget(trials=4, trial_epochs=6),
    ),
    "full": Profile(
        name="full",
        task="classify",
        description="GPU or Azure ML: more images per class, more epochs, bigger images.",
        data=ClassifySpec(per_class_train=500, per_class_val=100, per_class_test=100, image_size=224),
        train=TrainSpec(model=CLASSIFY.default_model, epochs=60, imgsz=224, batch=64, patience=20),
        decision=DecisionRule(metric=CLASSIFY.decision_metric, floor=0.9, min_gain=0.002),
        sweep=SweepBudget(trials=20),
    ),
}
PROFILES_BY_TASK: dict[str, dict[str, Profile]] = {"detect": DETECT_PROFILES, "classify": CLASSIFY_PROFILES}
PROFILES = DETECT_PROFILES  # the detection profiles, as before tasks existed


def get_profile(name: str, task: str | None = None, **knobs: Any) -> Profile:
    """A task's profile by name (task None: detection) with optional knob overrides
    (e.g. epochs=3, n_train=32, floor=0.2)."""
    profiles = PROFILES_BY_TASK[get_task(task).name]
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(profiles)}")
    return profiles[name].override(**knobs)

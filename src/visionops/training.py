"""Train an Ultralytics YOLO detector or classifier on a registered data set, tracked in MLflow.

We call Ultralytics' own trainer unchanged and only add: the offline switches, every CPU core,
one MLflow run with clean metric names per epoch next to Ultralytics' names (detection:
`map50_95`, `map50`, `precision`, `recall`, losses; classification: `top1`, `top5`,
`train_loss`, `val_loss`), lineage tags, and the artifacts a reviewer needs. What differs per
task (those names, Ultralytics' `data=` argument) is one `TaskTraining` entry per task. The same
function runs in a notebook, in `visionops train`, and as the Azure ML pipeline's train step.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops import offline
from visionops.data.catalog import DatasetRef
from visionops.data.kinds import kind_for
from visionops.data.layout import DATA_YAML
from visionops.errors import ConfigError, TrainingError
from visionops.profiles import TrainSpec
from visionops.settings import Settings
from visionops.tracking import clean_metric_name, configure_mlflow, finite_metrics, git_commit

# Ultralytics' metric keys -> the names we compare, sweep and query on (Azure's MLflow store
# cannot filter on names with special characters). One table per task (TASK_TRAINING below).
CLEAN_NAMES = {  # detection's; the name existing callers (sweeps) import
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "map50",
    "metrics/mAP50-95(B)": "map50_95",
    "train/box_loss": "train_box_loss",
    "train/cls_loss": "train_cls_loss",
    "train/dfl_loss": "train_dfl_loss",
    "val/box_loss": "val_box_loss",
    "val/cls_loss": "val_cls_loss",
    "val/dfl_loss": "val_dfl_loss",
}
CLASSIFY_CLEAN_NAMES = {
    "metrics/accuracy_top1": "top1",
    "metrics/accuracy_top5": "top5",
    "train/loss": "train_loss",
    "val/loss": "val_loss",
}
# Detection logs its loss in three parts; their sums are logged too, so both tasks have a
# `train_loss` and a `val_loss` per epoch (what a sweep can prune on from the first epoch, when a
# model trained from scratch still scores mAP 0).
LOSS_TOTALS = {
    "train_loss": ("train_box_loss", "train_cls_loss", "train_dfl_loss"),
    "val_loss": ("val_box_loss", "val_cls_loss", "val_dfl_loss"),
}
ARTIFACT_GLOBS = ("results.csv", "args.yaml", "*.png", "*.jpg")


@dataclass(frozen=True)
class TaskTraining:
    """What training does differently per task (`visionops.tasks` names the tasks): Ultralytics'
    metric keys -> our clean names, and the part of a registered data set Ultralytics needs
    before it may start (without it, Ultralytics would try to download a data set of that name,
    or carve its own splits out of a folder of class folders)."""

    clean_names: Mapping[str, str]
    required: str  # relative to the data set root: a file (detection) or a folder (classification)
    register_hint: str

    @property
    def epoch_metrics(self) -> set[str]:
        """Every clean name training of this task logs per epoch: the table's, plus the loss
        totals whose parts it logs (`clean_metrics` adds them)."""
        names = set(self.clean_names.values())
        return names | {total for total, parts in LOSS_TOTALS.items() if set(parts) <= names}

    def data_argument(self, dataset: DatasetRef) -> Path:
        """Ultralytics' `data=` for `dataset` (data.yaml / the folder), checked to exist."""
        root = Path(dataset.path)
        if not (root / self.required).exists():
            raise TrainingError(f"{root / self.required} not found: {self.register_hint}")
        return kind_for(getattr(dataset, "task", "detect")).ultralytics_data(root)


TASK_TRAINING: dict[str, TaskTraining] = {
    "detect": TaskTraining(
        clean_names=CLEAN_NAMES, required=DATA_YAML,
        register_hint="register the data set first (`visionops data register`)",
    ),
    "classify": TaskTraining(
        clean_names=CLASSIFY_CLEAN_NAMES, required="train",
        register_hint="a classification data set holds train|val|test/<class>/<images>; "
        "register it first (`visionops data register`)",
    ),
}


def task_training(task: str) -> TaskTraining:
    """The training table of a task name; ConfigError naming the known tasks otherwise."""
    try:
        return TASK_TRAINING[task]
    except KeyError:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASK_TRAINING)}") from None


class TrainResult(BaseModel):
    run_id: str
    experiment_id: str
    weights: Path
    save_dir: Path
    metrics: dict[str, float]
    epochs: int
    duration_s: float
    device: str
    threads: int
    dataset_name: str
    dataset_version: str
    classes: list[str]
    task: str = "detect"  # what the model does (visionops.tasks): names its registry entry and its metrics


def clean_metrics(raw: dict[str, Any], names: Mapping[str, str] = CLEAN_NAMES) -> dict[str, float]:
    """Ultralytics' names (sanitised for MLflow) plus our clean aliases (`names`: the task's table)."""
    out = finite_metrics(raw)
    for k, v in raw.items():
        if k in names and clean_metric_name(k) in out:
            out[names[k]] = out[clean_metric_name(k)]
        elif k.startswith("lr/"):
            out.setdefault(k.replace("/", "_"), float(v))
    for total, parts in LOSS_TOTALS.items():
        if total not in out and all(part in out for part in parts):
            out[total] = sum(out[part] for part in parts)
    return out


def resolve_device(setting: str) -> str:
    """'auto' -> first GPU when torch sees one, else the CPU."""
    if setting != "auto":
        return setting
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def check_model_source(spec: TrainSpec) -> str:
    """What Ultralytics will load: local .pt weights (fine-tuning) or an architecture yaml it ships.

    Checked before any data work or MLflow run, so a typo fails in a second with the fix, not
    after a data import, and nothing is ever downloaded (Ultralytics would fetch a missing .pt).
    `model` may itself name a local .pt file (fine-tuning), as `weights` does.
    """
    weights = spec.weights or (spec.model if spec.model.endswith(".pt") else None)
    if weights:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise TrainingError(
                f"pretrained weights {p} not found; pass a path to a .pt file on disk "
                "(nothing is downloaded), or a model yaml such as 'yolo11n.yaml' to train from scratch"
            )
        return str(p)
    if spec.model.endswith((".yaml", ".yml")):
        if Path(spec.model).expanduser().is_file():
            return str(Path(spec.model).expanduser())
        if not _shipped_model_yaml(spec.model):
            raise TrainingError(
                f"model {spec.model!r} is neither a file on disk nor a model yaml Ultralytics ships; use e.g. "
                "'yolo11n.yaml' (from scratch) or a local .pt path (fine-tuning)"
            )
        return spec.model
    raise TrainingError(
        f"model {spec.model!r} must be a model yaml (e.g. 'yolo11n.yaml') or a local .pt file"
    )


def _shipped_model_yaml(name: str) -> bool:
    """Whether Ultralytics ships `name` (yolo11s.yaml is yolo11.yaml at scale s), looked up in its
    cfg/models folder without importing it (importing Ultralytics patches PIL, see offline)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return False
    models = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"
    unscaled = re.sub(r"(\d+|v\d+)([nslmxt])(?=(-[a-z0-9]+)?\.ya?ml$)", r"\1", Path(name).name)
    return any(models.rglob(Path(name).name)) or any(models.rglob(unscaled))


def _epoch_logger(tracking_uri: str, run_id: str, names: Mapping[str, str] = CLEAN_NAMES):
    """Callbacks that log each epoch's metrics at step = epoch number (1-based), one batch per epoch.

    Ultralytics fires on_fit_epoch_end once more after training, for the final validation of
    best.pt; that call follows no new training epoch, so it is skipped here (we log the final
    numbers as `final_*` ourselves) instead of appearing as a phantom extra epoch.

    Multi-GPU (DDP): Ultralytics pickles these callbacks into each GPU's process, so they hold
    only the tracking URI and run id (an MLflow client holds a database engine, which cannot be
    pickled) and open their client where they run; only rank 0 (or a single process) logs, the
    other ranks would log the same epoch again.
    """
    state: dict[str, Any] = {"trained": 0, "logged": 0, "client": None}

    def on_train_epoch_end(trainer) -> None:
        state["trained"] += 1

    def on_fit_epoch_end(trainer) -> None:
        if state["logged"] >= state["trained"] or _ddp_rank() > 0:
            return
        state["logged"] += 1
        raw: dict[str, Any] = {}
        raw.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
        raw.update(trainer.metrics)
        raw.update(trainer.lr)
        metrics = clean_metrics(raw, names)
        ts = int(time.time() * 1000)
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        if state["client"] is None:
            state["client"] = MlflowClient(tracking_uri)
        state["client"].log_batch(run_id, metrics=[Metric(k, v, ts, state["logged"]) for k, v in metrics.items()])

    return {"on_train_epoch_end": on_train_epoch_end, "on_fit_epoch_end": on_fit_epoch_end}


def _ddp_rank() -> int:
    """This process's rank in a multi-GPU run (torch.distributed sets RANK), -1 outside one."""
    try:
        return int(os.environ.get("RANK", "-1"))
    except ValueError:
        return -1


def final_metrics(returned: Any, trainer: Any, save_dir: Path) -> tuple[dict[str, Any], int]:
    """Ultralytics' final metrics (its own names) and the number of epochs trained.

    On one device the trainer holds both (its last validation is of best.pt). Under multi-GPU
    DDP the training ran in child processes: this process's trainer never validated (metrics
    None, epoch 0) and `model.train()` returns best.pt's `train_metrics` dict, or None when the
    checkpoint has none; then the epochs are the rows of results.csv, and its last row gives the
    metrics when nothing else does."""
    metrics = getattr(trainer, "metrics", None)
    if isinstance(metrics, dict) and metrics and not getattr(trainer, "ddp", False):
        return dict(metrics), int(trainer.epoch) + 1
    rows = _results_rows(save_dir / "results.csv")
    if isinstance(returned, dict) and returned:
        raw = dict(returned)
    elif hasattr(returned, "results_dict"):  # a Metrics object after all
        raw = dict(returned.results_dict)
    elif rows:
        raw = rows[-1]
    else:
        raise TrainingError(
            f"training finished but left no metrics: neither Ultralytics' return value nor {save_dir / 'results.csv'} "
            "has any; see the log above"
        )
    return raw, len(rows) or int(getattr(trainer, "epoch", 0)) + 1


def _results_rows(path: Path) -> list[dict[str, str]]:
    """results.csv as one dict per epoch (Ultralytics pads its column names with spaces)."""
    import csv

    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k.strip(): v.strip() for k, v in row.items() if k} for row in csv.DictReader(f)]


def train(
    dataset: DatasetRef,
    spec: TrainSpec,
    settings: Settings,
    *,
    profile: str = "custom",
    run_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
    callbacks: Mapping[str, Callable[[Any], None]] | None = None,
) -> TrainResult:
    """Train on `dataset` with `spec`; one MLflow run holds params, per-epoch metrics, artifacts.

    `callbacks` (Ultralytics event -> function of the trainer) run after our epoch logger: a
    sweep's pruner reads each epoch's metrics there and may set `trainer.stop` to end early."""
    task = task_training(getattr(dataset, "task", "detect"))
    data = task.data_argument(dataset)
    source = check_model_source(spec)
    threads = offline.configure(settings.yolo_config_dir, settings.threads)
    device = resolve_device(settings.device)

    import mlflow
    import ultralytics
    from ultralytics import YOLO

    exp_id = configure_mlflow(settings)
    args = spec.ultralytics_args()
    tags = {
        "visionops.stage": "training",
        "visionops.profile": profile,
        "visionops.backend": settings.backend,
        "dataset.name": dataset.name,
        "dataset.version": dataset.version,
        "git.commit": git_commit(),
        "ultralytics.version": ultralytics.__version__,
        **(extra_tags or {}),
    }
    with mlflow.start_run(run_name=run_name or f"train-{profile}", tags=tags) as run:
        run_id = run.info.run_id
        mlflow.log_params(
            {
                **{k: v for k, v in args.items()},
                "model": spec.model,
                "weights": spec.weights or "none (from scratch)",
                "device": device,
                "threads": threads,
                "seed": settings.seed,
                "dataset": f"{dataset.name}:{dataset.version}",
                "train_images": dataset.counts.get("train", {}).get("images", 0),
            }
        )
        model = YOLO(source)
        for event, fn in _epoch_logger(mlflow.get_tracking_uri(), run_id, task.clean_names).items():
            model.add_callback(event, fn)
        for event, fn in (callbacks or {}).items():
            model.add_callback(event, fn)
        save_root = settings.runs_dir / "train"
        started = time.perf_counter()
        try:
            call = {
                "workers": 0 if device == "cpu" else 8,
                "deterministic": True,
                "plots": True,
                "verbose": True,
                **args,  # a profile's `extra` may override the defaults above (e.g. plots=False)
                "data": str(data),
                "project": str(save_root),
                "name": run_id,
                "exist_ok": True,
                "device": device,
                "seed": settings.seed,
            }
            returned = model.train(**call)  # a dict or None under multi-GPU DDP: see final_metrics
        except Exception as exc:  # Ultralytics raises plain exceptions; say which run failed
            raise TrainingError(f"training failed in MLflow run {run_id}: {type(exc).__name__}: {exc}") from exc
        duration = time.perf_counter() - started
        trainer = model.trainer
        save_dir = Path(trainer.save_dir)
        best = save_dir / "weights" / "best.pt"
        if not best.is_file():
            raise TrainingError(f"training finished but wrote no {best}; see the log above")
        raw_final, epochs = final_metrics(returned, trainer, save_dir)
        final = clean_metrics(raw_final, task.clean_names)
        final = {k: v for k, v in final.items() if k in task.epoch_metrics}
        mlflow.log_metrics({f"final_{k}": v for k, v in final.items()})
        mlflow.log_metric("train_duration_s", duration)
        mlflow.log_artifact(str(best), artifact_path="weights")
        for pattern in ARTIFACT_GLOBS:
            for f in sorted(save_dir.glob(pattern)):
                mlflow.log_artifact(str(f), artifact_path="train")
        result = TrainResult(
            run_id=run_id,
            experiment_id=exp_id,
            weights=best,
            save_dir=save_dir,
            metrics=final,
            epochs=epochs,
            duration_s=duration,
            device=device,
            threads=threads,
            dataset_name=dataset.name,
            dataset_version=dataset.version,
            classes=list(dataset.classes),
            task=getattr(dataset, "task", "detect"),
        )
        mlflow.log_dict(json.loads(result.model_dump_json()), "train/result.json")
    return result

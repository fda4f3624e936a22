"""Train an Ultralytics YOLO detector on a registered data set, tracked in MLflow.

We call Ultralytics' own trainer unchanged and only add: the offline switches, every CPU core,
one MLflow run with clean metric names per epoch (`map50_95`, `map50`, `precision`, `recall`,
losses) next to Ultralytics' names, lineage tags, and the artifacts a reviewer needs. The same
function runs in a notebook, in `visionops train`, and as the Azure ML pipeline's train step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops import offline
from visionops.data.catalog import DatasetRef
from visionops.errors import TrainingError
from visionops.profiles import TrainSpec
from visionops.settings import Settings
from visionops.tracking import clean_metric_name, configure_mlflow, finite_metrics, git_commit

# Ultralytics' metric keys -> the names we compare, sweep and query on (Azure's MLflow store
# cannot filter on names with special characters).
CLEAN_NAMES = {
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
ARTIFACT_GLOBS = ("results.csv", "args.yaml", "*.png", "*.jpg")


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


def clean_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Ultralytics' names (sanitised for MLflow) plus our clean aliases."""
    out = finite_metrics(raw)
    for k, v in raw.items():
        if k in CLEAN_NAMES and clean_metric_name(k) in out:
            out[CLEAN_NAMES[k]] = out[clean_metric_name(k)]
        elif k.startswith("lr/"):
            out.setdefault(k.replace("/", "_"), float(v))
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


def _epoch_logger(mlflow_client, run_id: str):
    """Callbacks that log each epoch's metrics at step = epoch number (1-based).

    Ultralytics fires on_fit_epoch_end once more after training, for the final validation of
    best.pt; that call follows no new training epoch, so it is skipped here (we log the final
    numbers as `final_*` ourselves) instead of appearing as a phantom extra epoch.
    """
    state = {"trained": 0, "logged": 0}

    def on_train_epoch_end(trainer) -> None:
        state["trained"] += 1

    def on_fit_epoch_end(trainer) -> None:
        if state["logged"] >= state["trained"]:
            return
        state["logged"] += 1
        raw: dict[str, Any] = {}
        raw.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
        raw.update(trainer.metrics)
        raw.update(trainer.lr)
        metrics = clean_metrics(raw)
        ts = int(time.time() * 1000)
        from mlflow.entities import Metric

        mlflow_client.log_batch(run_id, metrics=[Metric(k, v, ts, state["logged"]) for k, v in metrics.items()])

    return {"on_train_epoch_end": on_train_epoch_end, "on_fit_epoch_end": on_fit_epoch_end}


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
    data_yaml = Path(dataset.path) / "data.yaml"
    if not data_yaml.is_file():
        raise TrainingError(f"{data_yaml} not found: register the data set first (`visionops data register`)")
    source = check_model_source(spec)
    offline.configure(settings.yolo_config_dir, settings.threads)
    threads = offline.set_threads(settings.threads)
    device = resolve_device(settings.device)

    import mlflow
    import ultralytics
    from ultralytics import YOLO

    exp_id = configure_mlflow(settings)
    client = mlflow.MlflowClient()
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
        for event, fn in _epoch_logger(client, run_id).items():
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
                "data": str(data_yaml),
                "project": str(save_root),
                "name": run_id,
                "exist_ok": True,
                "device": device,
                "seed": settings.seed,
            }
            model.train(**call)
        except Exception as exc:  # Ultralytics raises plain exceptions; say which run failed
            raise TrainingError(f"training failed in MLflow run {run_id}: {type(exc).__name__}: {exc}") from exc
        duration = time.perf_counter() - started
        trainer = model.trainer
        save_dir = Path(trainer.save_dir)
        best = save_dir / "weights" / "best.pt"
        if not best.is_file():
            raise TrainingError(f"training finished but wrote no {best}; see the log above")
        final = clean_metrics({**trainer.metrics})
        mlflow.log_metrics({f"final_{k}": v for k, v in final.items() if k in CLEAN_NAMES.values()})
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
            metrics={k: v for k, v in final.items() if k in CLEAN_NAMES.values()},
            epochs=int(trainer.epoch) + 1,
            duration_s=duration,
            device=device,
            threads=threads,
            dataset_name=dataset.name,
            dataset_version=dataset.version,
            classes=list(dataset.classes),
        )
        mlflow.log_dict(json.loads(result.model_dump_json()), "train/result.json")
    return result

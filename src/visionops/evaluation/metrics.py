"""Score a model on one split of a registered data set with Ultralytics' validator.

The test split of a registered version never changes, so a score here is comparable with any
other model's score on the same version: the basis of the champion/challenger decision.

What `map50_95` is: COCO's mAP over IoU 0.50:0.95 as Ultralytics' validator computes it, from
every detection above conf 0.001 after multi-label NMS (a box may be kept once per class, which
the served model never does), with AP integrated over the 101-point interpolated curve by the
trapezoid rule (COCOeval takes 101 steps). tests/serving/test_metrics_reference.py checks it
against pycocotools within 0.02, both on the validator's own detections and on the model's
served (one class per box) predictions; on a 16-image split the two effects measured about
+0.018 and 0.001, and they shrink as the split grows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel

from visionops import offline
from visionops.data.catalog import DatasetRef
from visionops.errors import ModelNotFoundError
from visionops.settings import Settings
from visionops.training import resolve_device

# Ultralytics' plot files -> stable names for notebooks, MLflow and the JSON summary.
PLOT_FILES = {
    "pr_curve": ("BoxPR_curve.png", "PR_curve.png"),
    "f1_curve": ("BoxF1_curve.png", "F1_curve.png"),
    "confusion_matrix": ("confusion_matrix.png",),
    "confusion_matrix_normalized": ("confusion_matrix_normalized.png",),
    "labels_batch0": ("val_batch0_labels.jpg",),
    "predictions_batch0": ("val_batch0_pred.jpg",),
}


class ClassScore(BaseModel):
    name: str
    instances: int
    precision: float
    recall: float
    ap50: float
    ap50_95: float


class EvalResult(BaseModel):
    weights: Path
    dataset_name: str
    dataset_version: str
    split: str
    imgsz: int
    metrics: dict[str, float]
    per_class: list[ClassScore]
    plots: dict[str, Path]
    save_dir: Path
    speed_ms: dict[str, float]


def score(
    weights: Path,
    dataset: DatasetRef,
    settings: Settings,
    *,
    split: str = "test",
    imgsz: int | None = None,
    save_dir: Path | None = None,
    plots: bool = True,
) -> EvalResult:
    """mAP50-95, mAP50, precision, recall and per-class AP of `weights` on `dataset[split]`."""
    weights = Path(weights)
    if not weights.is_file():
        raise ModelNotFoundError(f"weights {weights} not found; train a model first (`visionops train`)")
    offline.configure(settings.yolo_config_dir, settings.threads)
    from ultralytics import YOLO

    model = YOLO(str(weights))
    model_names = [model.names[i] for i in sorted(model.names)]
    if model_names != list(dataset.classes):
        raise ModelNotFoundError(
            f"model {weights} predicts classes {model_names} but data set {dataset.name}:{dataset.version} "
            f"has {dataset.classes}; score it on a data set with the same classes"
        )
    if imgsz is None:
        imgsz = int(getattr(model, "overrides", {}).get("imgsz") or 640)
    out = Path(save_dir or settings.outputs_dir / "evaluations" / f"{weights.parent.parent.name}-{split}")
    if out.exists():
        shutil.rmtree(out)
    device = resolve_device(settings.device)
    m = model.val(
        data=str(Path(dataset.path) / "data.yaml"),
        split=split,
        imgsz=imgsz,
        batch=16,
        device=device,
        plots=plots,
        project=str(out.parent),
        name=out.name,
        exist_ok=True,
        verbose=False,
        workers=0,
    )
    box = m.box
    metrics = {
        "map50_95": float(box.map),
        "map50": float(box.map50),
        "precision": float(box.mp),
        "recall": float(box.mr),
    }
    counts = getattr(m, "nt_per_class", None)
    per_class: list[ClassScore] = []
    for i, cls in enumerate(m.ap_class_index):
        p, r, ap50, ap = box.class_result(i)
        per_class.append(
            ClassScore(
                name=model_names[int(cls)],
                instances=int(counts[int(cls)]) if counts is not None else 0,
                precision=float(p),
                recall=float(r),
                ap50=float(ap50),
                ap50_95=float(ap),
            )
        )
    save = Path(m.save_dir)
    found: dict[str, Path] = {}
    for key, candidates in PLOT_FILES.items():
        for c in candidates:
            if (save / c).is_file():
                found[key] = save / c
                break
    return EvalResult(
        weights=weights,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        split=split,
        imgsz=imgsz,
        metrics=metrics,
        per_class=per_class,
        plots=found,
        save_dir=save,
        speed_ms={k: float(v) for k, v in (m.speed or {}).items()},
    )

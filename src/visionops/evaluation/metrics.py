"""Score a model on one split of a registered data set with Ultralytics' validator.

The test split of a registered version never changes, so a score here is comparable with any
other model's score on the same version: the basis of the champion/challenger decision.

What `map50_95` is: COCO's mAP over IoU 0.50:0.95 as Ultralytics' validator computes it, from
every detection above conf 0.001, with AP integrated over the 101-point interpolated curve by the
trapezoid rule (COCOeval takes 101 steps). One change to Ultralytics' validator: its NMS keeps
one class per box, as the served model (serving/detect.py) and `model.predict` do. Ultralytics'
own validation NMS is multi-label (a box may be kept once per each class above the threshold),
which scored the same model 0.018 to 0.046 mAP50-95 above its served predictions on a 16-image
split, depending on the training run: the gate would have compared models on detections no
client ever receives. tests/serving/test_metrics_reference.py checks the number against
pycocotools within 0.02, both on the validator's own detections and on the served predictions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel, Field

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
    """One class's scores on a split. Each task fills what it measures and leaves the rest None:
    detection fills `ap50`/`ap50_95` (`instances` = labelled objects), classification fills `f1`
    (`instances` = the split's images of the class, scikit-learn's "support"). One type keeps
    every consumer (challenge summary, notebook 03, reports) task-agnostic."""

    name: str
    instances: int
    precision: float
    recall: float
    ap50: float | None = None
    ap50_95: float | None = None
    f1: float | None = None


class Misclassified(BaseModel):
    """A test image the classifier got wrong: what notebook 03 draws, worst (most confident) first."""

    path: Path
    true: str
    predicted: str
    probability: float  # the model's probability for `predicted`
    true_probability: float  # ... and for the true class


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
    task: str = "detect"
    # classification only (detection leaves them empty): the class order of `confusion`, the
    # confusion matrix (rows = true class, columns = predicted; image counts) and the mistakes
    classes: list[str] = Field(default_factory=list)
    confusion: list[list[int]] | None = None
    misclassified: list[Misclassified] = Field(default_factory=list)


def check_weights(weights: Path) -> Path:
    weights = Path(weights)
    if not weights.is_file():
        raise ModelNotFoundError(f"weights {weights} not found; train a model first (`visionops train`)")
    return weights


def fresh_output_dir(settings: Settings, weights: Path, split: str, save_dir: Path | None) -> Path:
    """Where one scoring writes its plots: emptied first, so no file of an earlier run is taken for this one's."""
    out = Path(save_dir or settings.outputs_dir / "evaluations" / f"{weights.parent.parent.name}-{split}")
    if out.exists():
        shutil.rmtree(out)
    return out


def found_plots(save: Path) -> dict[str, Path]:
    """Ultralytics' plot files in `save`, under our stable names (PLOT_FILES); missing ones left out."""
    found: dict[str, Path] = {}
    for key, candidates in PLOT_FILES.items():
        for c in candidates:
            if (save / c).is_file():
                found[key] = save / c
                break
    return found


def model_class_names(model, weights: Path, dataset: DatasetRef) -> list[str]:
    """The model's class names in index order, refusing a data set with another class list: a
    class id means a name, so scores across different lists (or orders) would be meaningless."""
    model_names = [model.names[i] for i in sorted(model.names)]
    if model_names != list(dataset.classes):
        raise ModelNotFoundError(
            f"model {weights} predicts classes {model_names} but data set {dataset.name}:{dataset.version} "
            f"has {dataset.classes}; score it on a data set with the same classes"
        )
    return model_names


def served_nms_validator() -> type:
    """Ultralytics' DetectionValidator with the served model's NMS: one class per box (see the
    module docstring). Built on call: importing Ultralytics at module import would patch PIL."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import nms

    class ServedNMSValidator(DetectionValidator):
        def postprocess(self, preds):  # Ultralytics' own, with multi_label=False
            outputs = nms.non_max_suppression(
                preds, self.args.conf, self.args.iou, nc=0 if self.args.task == "detect" else self.nc,
                multi_label=False, agnostic=self.args.single_cls or self.args.agnostic_nms,
                max_det=self.args.max_det, end2end=self.end2end, rotated=self.args.task == "obb",
            )
            return [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5], "extra": x[:, 6:]} for x in outputs]

    return ServedNMSValidator


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
    weights = check_weights(weights)
    offline.configure(settings.yolo_config_dir, settings.threads)
    from ultralytics import YOLO

    model = YOLO(str(weights))
    model_names = model_class_names(model, weights, dataset)
    if imgsz is None:
        imgsz = int(getattr(model, "overrides", {}).get("imgsz") or 640)
    out = fresh_output_dir(settings, weights, split, save_dir)
    device = resolve_device(settings.device)
    m = model.val(
        validator=served_nms_validator(),
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
    return EvalResult(
        weights=weights,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        split=split,
        imgsz=imgsz,
        metrics=metrics,
        per_class=per_class,
        plots=found_plots(save),
        save_dir=save,
        speed_ms={k: float(v) for k, v in (m.speed or {}).items()},
    )

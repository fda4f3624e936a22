"""Score an image classifier on one split of a registered classification data set.

Ultralytics' own validator does the work (its data loader, its `classify_transforms`, its
top-1/top-5 and confusion-matrix plots), so a score here is the number `yolo val` prints. A
small subclass only keeps what the validator throws away: each image's probabilities, in the
loader's order (it never shuffles), so we can list the misclassified images and compute
per-class precision, recall and F1 from the confusion matrix (plain numpy: scikit-learn is not
a dependency).

True labels are taken BY NAME: an image's class is the first folder under the split
(`<root>/<split>/<class>/...`), looked up in the model's class names, whatever index
Ultralytics' per-split ImageFolder gave it (a split lacking a class would shift those indices:
shared/research/real_data.md section 2). A folder the model does not know is an error that
names it, as is a model trained on another class list (see metrics.model_class_names).

Conventions: `confusion[i][j]` counts images of true class i predicted as j (rows = truth,
scikit-learn's order); precision of a class never predicted, and F1 when both precision and
recall are 0, are 0 (scikit-learn's `zero_division=0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionops import offline
from visionops.data.catalog import DatasetRef
from visionops.errors import DataValidationError, ModelNotFoundError
from visionops.evaluation.metrics import (
    ClassScore,
    EvalResult,
    Misclassified,
    check_weights,
    found_plots,
    fresh_output_dir,
    model_class_names,
)
from visionops.settings import Settings
from visionops.training import resolve_device

DEFAULT_IMGSZ = 224  # Ultralytics' classification default, when the weights do not say
TOP_K = 5


# --- pure metrics (unit-tested on known predictions) -------------------------------------------
def confusion_matrix(true: Sequence[int], predicted: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: rows are the truth, columns the prediction."""
    t = np.asarray(true, dtype=int)
    p = np.asarray(predicted, dtype=int)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    for what, arr in (("true", t), ("predicted", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"{what} class ids must lie in 0..{n_classes - 1}, got {sorted(set(arr.tolist()))}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (t, p), 1)
    return matrix


def class_scores(confusion: np.ndarray, names: Sequence[str]) -> list[ClassScore]:
    """Precision, recall, F1 and support of every class from a confusion matrix (rows = truth)."""
    cm = np.asarray(confusion, dtype=float)
    if cm.shape != (len(names), len(names)):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {len(names)} class names")
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return [
        ClassScore(name=name, instances=int(support[i]), precision=float(precision[i]),
                   recall=float(recall[i]), f1=float(f1[i]))
        for i, name in enumerate(names)
    ]


def top_k_accuracy(probabilities: np.ndarray, true: Sequence[int], k: int) -> float:
    """Share of images whose true class is among the `k` most probable (k capped at the class count)."""
    probs = np.asarray(probabilities, dtype=float)
    t = np.asarray(true, dtype=int)
    if probs.ndim != 2 or probs.shape[0] != t.size:
        raise ValueError(f"probabilities of shape {probs.shape} for {t.size} true labels")
    if t.size == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == t[:, None]).any(axis=1).mean())


def summary_metrics(probabilities: np.ndarray, true: Sequence[int], scores: Sequence[ClassScore]) -> dict[str, float]:
    """The clean metric names of a classifier's evaluation: top1, top5 and the macro (unweighted
    class mean) precision, recall and F1, as detection's `precision`/`recall` are class means."""
    n = len(scores) or 1
    return {
        "top1": top_k_accuracy(probabilities, true, 1),
        "top5": top_k_accuracy(probabilities, true, TOP_K),
        "precision": sum(c.precision for c in scores) / n,
        "recall": sum(c.recall for c in scores) / n,
        "f1": sum(c.f1 or 0.0 for c in scores) / n,
    }


def misclassified(paths: Sequence[Path], probabilities: np.ndarray, true: Sequence[int],
                  names: Sequence[str]) -> list[Misclassified]:
    """Every image whose most probable class is not its true one, the most confident mistakes first."""
    probs = np.asarray(probabilities, dtype=float)
    predicted = probs.argmax(axis=1) if probs.size else np.zeros(0, dtype=int)
    wrong = [
        Misclassified(path=Path(paths[i]), true=names[t], predicted=names[int(predicted[i])],
                      probability=float(probs[i, predicted[i]]), true_probability=float(probs[i, t]))
        for i, t in enumerate(np.asarray(true, dtype=int)) if int(predicted[i]) != t
    ]
    return sorted(wrong, key=lambda m: (-m.probability, str(m.path)))


def check_split_classes(split_root: Path, names: Sequence[str]) -> None:
    """Refuse a split with class folders the model does not know: Ultralytics would silently skip
    their images, and the score would describe fewer images (and classes) than the split has."""
    from visionops.data.classify.layout import class_dirs

    unknown = sorted(d.name for d in class_dirs(split_root.parent, split_root.name) if d.name not in set(names))
    if unknown:
        raise DataValidationError(
            f"{split_root} has class folders {unknown} that the model does not predict "
            f"(it knows {list(names)}); remove them or register a data set with the model's classes"
        )


def labels_by_name(paths: Sequence[Path], split_root: Path, names: Sequence[str]) -> list[int]:
    """Each image's class index from its folder name (`<split_root>/<class>/...`), in `names`' order."""
    index = {n: i for i, n in enumerate(names)}
    out: list[int] = []
    unknown: set[str] = set()
    for path in paths:
        folder = Path(path).relative_to(split_root).parts[0]
        if folder not in index:
            unknown.add(folder)
            continue
        out.append(index[folder])
    if unknown:
        raise DataValidationError(
            f"{split_root} has class folders {sorted(unknown)} that the model does not predict "
            f"(it knows {list(names)}); remove them or register a data set with the model's classes"
        )
    return out


# --- scoring with Ultralytics' validator ---------------------------------------------------------
def _capturing_validator(sink: dict[str, Any]) -> type:
    """Ultralytics' ClassificationValidator that also hands each image's probabilities and the
    loader's samples to `sink` (the validator instance itself is not returned by `model.val`)."""
    import torch
    from ultralytics.data.build import build_dataloader
    from ultralytics.models.yolo.classify import ClassificationValidator

    class CapturingValidator(ClassificationValidator):
        def get_dataloader(self, dataset_path: Path | str, batch_size: int) -> Any:
            """Ultralytics' loader in the data set's order: its own shuffles (8.4: `build_dataloader`
            defaults to shuffle=True), and the order is how a probability finds its image."""
            dataset = self.build_dataset(dataset_path)
            if not dataset.samples:
                raise FileNotFoundError(f"No images from the model's classes found in {dataset_path}")
            return build_dataloader(dataset, batch_size, self.args.workers, shuffle=False, rank=-1,
                                    device=self.device)

        def init_metrics(self, model: Any) -> None:
            super().init_metrics(model)
            self.probabilities: list[torch.Tensor] = []
            self.handed: list[torch.Tensor] = []  # not `targets`: Ultralytics uses that name

        def update_metrics(self, preds: torch.Tensor, batch: dict[str, Any]) -> None:
            super().update_metrics(preds, batch)
            self.probabilities.append(preds.detach().float().cpu())
            self.handed.append(batch["cls"].detach().cpu().reshape(-1))

        def finalize_metrics(self) -> None:
            super().finalize_metrics()
            dataset = self.dataloader.dataset
            sink["probabilities"] = (torch.cat(self.probabilities).numpy() if self.probabilities
                                     else np.zeros((0, self.nc)))
            sink["targets"] = torch.cat(self.handed).numpy().astype(int) if self.handed else np.zeros(0, int)
            sink["paths"] = [Path(s[0]) for s in dataset.samples]
            sink["sample_targets"] = [int(s[1]) for s in dataset.samples]
            sink["root"] = Path(dataset.root)

    return CapturingValidator


def score_classifier(
    weights: Path,
    dataset: DatasetRef,
    settings: Settings,
    *,
    split: str = "test",
    imgsz: int | None = None,
    save_dir: Path | None = None,
    plots: bool = True,
) -> EvalResult:
    """top-1, top-5, macro and per-class precision/recall/F1, the confusion matrix and the
    misclassified images of the classifier `weights` on `dataset[split]`."""
    weights = check_weights(weights)
    split_root = Path(dataset.path) / split
    if not split_root.is_dir():
        raise DataValidationError(
            f"{split_root} not found: a classification data set needs {split}/<class>/<images> "
            "(register it with `visionops data register`)"
        )
    offline.configure(settings.yolo_config_dir, settings.threads)
    from ultralytics import YOLO

    model = YOLO(str(weights))
    if model.task != "classify":
        raise ModelNotFoundError(
            f"{weights} is a {model.task!r} model but {dataset.name}:{dataset.version} is a classification "
            "data set; score a classifier (trained from e.g. yolo11n-cls.yaml) on it"
        )
    names = model_class_names(model, weights, dataset)
    check_split_classes(split_root, names)
    if imgsz is None:
        imgsz = int(getattr(model, "overrides", {}).get("imgsz") or DEFAULT_IMGSZ)
    out = fresh_output_dir(settings, weights, split, save_dir)
    sink: dict[str, Any] = {}
    m = model.val(
        validator=_capturing_validator(sink),
        data=str(dataset.path),
        split=split,
        imgsz=imgsz,
        batch=16,
        device=resolve_device(settings.device),
        plots=plots,
        project=str(out.parent),
        name=out.name,
        exist_ok=True,
        verbose=False,
        workers=0,
    )
    paths: list[Path] = sink["paths"]
    probabilities: np.ndarray = sink["probabilities"]
    # the loader's order is how a probability finds its image: the classes the loader handed over
    # with the probabilities must be the listed images' own, one by one
    if len(paths) != len(probabilities) or list(sink["targets"]) != sink["sample_targets"]:
        raise RuntimeError(f"Ultralytics scored {len(probabilities)} images of {split_root} in another order than "
                           f"it listed {len(paths)}; the per-image results cannot be matched to their files")
    true = labels_by_name(paths, sink["root"], names)
    cm = confusion_matrix(true, probabilities.argmax(axis=1), len(names))
    per_class = class_scores(cm, names)
    return EvalResult(
        weights=weights,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        split=split,
        imgsz=imgsz,
        metrics=summary_metrics(probabilities, true, per_class),
        per_class=per_class,
        plots=found_plots(Path(m.save_dir)),
        save_dir=Path(m.save_dir),
        speed_ms={k: float(v) for k, v in (m.speed or {}).items()},
        task="classify",
        classes=names,
        confusion=cm.tolist(),
        misclassified=misclassified(paths, probabilities, true, names),
    )

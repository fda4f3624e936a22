"""Human in the loop, the way out: the production images the model was unsure about, as a labeling
batch (the images, the model's boxes as pre-labels, and why each image was picked).

An image is picked when (scored by how unsure the model was, most unsure first):
- `no_prediction`: a detector found nothing (score 1);
- `low_confidence`: its best box, or a classifier's top-1 probability, is below `threshold`
  (score 1 - confidence), or at least half its boxes are (score: that share / 2);
- `unusual_image`: brightness, contrast or sharpness outside the baseline's 1st..99th percentile,
  the images the drift report's shift is made of, even when the model was confident (score 0.25);
  an image that is unsure *and* unusual gets both reasons and the sum of the scores, so a shift's
  hard images come before the everyday ones.

Only records with a sampled image (`VISIONOPS_COLLECT_SAMPLE_RATE` > 0) can be picked; the others
are counted, so a batch never silently holds fewer images than the window had candidates.

The batch folder is what Azure ML Data Labeling ("Import labels", COCO) and CVAT read:
`images/`, `annotations.json` (COCO; detection: one annotation per predicted box in pixels with its
`score`; classification: an image-level `category_id` per image) and `batch.json` (which records,
and why). `visionops data import <batch> --into NAME` brings the labeled batch back
(visionops.data.merge), refusing images that are not in `batch.json`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from visionops.errors import VisionOpsError
from visionops.monitoring.records import ProductionRecord

BATCH_JSON = "batch.json"
ANNOTATIONS = "annotations.json"
IMAGES = "images"
UNUSUAL_COLUMNS = ("brightness", "contrast", "sharpness")
UNUSUAL_SCORE = 0.25


@dataclass(frozen=True)
class Pick:
    record: ProductionRecord
    reason: str
    score: float


@dataclass(frozen=True)
class BatchSummary:
    folder: Path
    picked: int
    considered: int  # records of the window
    candidates: int  # records that qualified, with or without a sample
    missing_samples: int  # qualified, but no saved image (sampling off, or the file is gone)
    reasons: dict[str, int]


def image_bounds(baseline: Sequence[ProductionRecord], low: float = 1.0, high: float = 99.0
                 ) -> dict[str, tuple[float, float]]:
    """Per image column, the baseline's [low, high] percentiles: outside them an image is unusual."""
    bounds = {}
    for column in UNUSUAL_COLUMNS:
        values = [getattr(r.image, column) for r in baseline]
        if values:
            bounds[column] = (float(np.percentile(values, low)), float(np.percentile(values, high)))
    return bounds


def why_picked(record: ProductionRecord, threshold: float,
               bounds: dict[str, tuple[float, float]] | None = None) -> tuple[str, float] | None:
    """(reason, score) when the record belongs in a labeling batch, else None. An image both
    unsure and unusual is worth most (the model is unsure *because* the world moved): its reasons
    are joined with `+` and the unusual bonus is added to its uncertainty."""
    p = record.prediction
    unsure: tuple[str, float] | None = None
    if p.task == "detect" and p.count == 0:
        unsure = ("no_prediction", 1.0)
    elif p.max_conf is not None and p.max_conf < threshold:
        unsure = ("low_confidence", round(1.0 - p.max_conf, 4))
    else:
        low = sum(c < threshold for c in p.confidences) / len(p.confidences) if p.confidences else 0.0
        if low >= 0.5:
            unsure = ("low_confidence", round(low / 2, 4))
    unusual = next((f"unusual_image:{column}" for column, (lo, hi) in (bounds or {}).items()
                    if not lo <= getattr(record.image, column) <= hi), None)
    if unsure and unusual:
        return f"{unsure[0]}+{unusual}", round(unsure[1] + UNUSUAL_SCORE, 4)
    if unsure:
        return unsure
    return (unusual, UNUSUAL_SCORE) if unusual else None


def select(records: Sequence[ProductionRecord], production_dir: Path, *, threshold: float = 0.5,
           limit: int = 100, bounds: dict[str, tuple[float, float]] | None = None) -> tuple[list[Pick], int, int]:
    """The `limit` most uncertain records with a saved image; also (candidates, missing samples)."""
    picks, candidates, missing = [], 0, 0
    for r in records:
        found = why_picked(r, threshold, bounds)
        if found is None:
            continue
        candidates += 1
        if not r.sample or not (Path(production_dir) / r.sample).is_file():
            missing += 1
            continue
        picks.append(Pick(r, *found))
    picks.sort(key=lambda p: (-p.score, p.record.time))
    return picks[:limit], candidates, missing


def batch_file_name(record: ProductionRecord, sample: str, taken: set[str] | None = None) -> str:
    """A stable file name for a picked image, `<correlation id>-<index>.<ext>` (characters a file
    system or blob store may refuse become `_`), made unique against `taken` with `-2`, `-3`...: a
    client may reuse its request id, and two images must never share a name in one batch."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{record.correlation_id}-{record.index}")
    suffix = Path(sample).suffix.lower() or ".jpg"
    name, n = f"{stem}{suffix}", 1
    while taken is not None and name in taken:
        n += 1
        name = f"{stem}-{n}{suffix}"
    return name


def coco_prelabels(picks: Sequence[Pick], names: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """COCO with the model's predictions as pre-labels (`names`: each pick's file name in the batch):
    boxes (xywh, pixels) with `score` for a detector, an image-level `category_id` for a classifier.
    Category ids are 1-based."""
    known = list(classes)
    for pick in picks:  # a label the class list lacks (a model trained on another list) is kept
        for label in pick.record.prediction.labels:
            if label not in known:
                known.append(label)
    category = {name: i + 1 for i, name in enumerate(known)}
    images, annotations = [], []
    for image_id, (pick, name) in enumerate(zip(picks, names, strict=True), start=1):
        r, raw = pick.record, pick.record.raw or {}
        images.append({"id": image_id, "file_name": name,
                       "width": r.image.width, "height": r.image.height})
        if r.prediction.task == "classify":
            if r.prediction.labels:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": category[r.prediction.labels[0]],
                                    "score": r.prediction.confidences[0] if r.prediction.confidences else None})
            continue
        for box, label, conf in zip(raw.get("boxes", []), raw.get("labels", []), raw.get("confidences", []),
                                    strict=False):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category[label],
                                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                                "area": round((x1 - x0) * (y1 - y0), 2), "iscrowd": 0, "score": conf})
    return {"info": {"description": "VisionOps labeling batch: model predictions as pre-labels",
                     "date_created": datetime.now(UTC).isoformat(timespec="seconds")},
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n, "supercategory": "none"} for n, i in category.items()]}


def export_batch(records: Sequence[ProductionRecord], production_dir: Path, out: Path, *, model: str,
                 classes: Sequence[str], threshold: float = 0.5, limit: int = 100,
                 bounds: dict[str, tuple[float, float]] | None = None) -> BatchSummary:
    """Write the labeling batch for `records` (one model's window) into `out` (must be new or empty)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise VisionOpsError(f"{out} is not empty; pass a new folder for the labeling batch")
    if limit < 1:
        raise VisionOpsError(f"--limit must be at least 1, got {limit}")
    picks, candidates, missing = select(records, production_dir, threshold=threshold, limit=limit, bounds=bounds)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    entries = []
    for pick in picks:
        r = pick.record
        assert r.sample is not None  # select() keeps only sampled records
        name = batch_file_name(r, r.sample, set(names))
        names.append(name)
        shutil.copy2(Path(production_dir) / r.sample, out / IMAGES / name)
        entries.append({"file_name": name, "reason": pick.reason, "score": pick.score,
                        "correlation_id": r.correlation_id, "index": r.index, "time": r.time.isoformat(),
                        "sample": r.sample, "model": f"{r.model.name}:{r.model.version}",
                        "prediction": r.prediction.model_dump(mode="json")})
    (out / ANNOTATIONS).write_text(json.dumps(coco_prelabels(picks, names, classes), indent=1))
    reasons: dict[str, int] = {}
    for pick in picks:
        reasons[pick.reason] = reasons.get(pick.reason, 0) + 1
    (out / BATCH_JSON).write_text(json.dumps({
        "model": model, "created": datetime.now(UTC).isoformat(timespec="seconds"), "threshold": threshold,
        "limit": limit, "considered": len(records), "candidates": candidates, "missing_samples": missing,
        "unusual_bounds": bounds or {}, "images": entries,
    }, indent=1))
    return BatchSummary(folder=out, picked=len(picks), considered=len(records), candidates=candidates,
                        missing_samples=missing, reasons=reasons)


def read_batch(folder: Path) -> dict[str, Any]:
    """batch.json of a labeling batch; a clear error when the folder is not one."""
    path = Path(folder) / BATCH_JSON
    if not path.is_file():
        raise VisionOpsError(f"{folder} has no {BATCH_JSON}: it is not a labeling batch written by "
                             "`visionops label export` (the labeled export must keep that file beside its COCO JSON)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise VisionOpsError(f"{path} line {exc.lineno}: {exc.msg}") from None


def label_export(settings: Any, *, model: str | None = None, records: Path | None = None,
                 since: datetime | None = None, until: datetime | None = None, out: Path | None = None,
                 threshold: float = 0.5, limit: int = 100) -> BatchSummary:
    """The labeling batch of one model version's production window (default: the production
    model, settings.production_dir, everything collected): its records, its baseline's image
    bounds and its data set's class list. `visionops label export` and notebook 08 call this."""
    from visionops.data.layout import read_class_names
    from visionops.monitoring.baseline import ensure_baseline, version_dataset
    from visionops.monitoring.collect import read_records
    from visionops.monitoring.drift import of_model
    from visionops.monitoring.monitor import model_ref

    folder = Path(records) if records is not None else settings.production_dir
    try:
        found, _skipped = read_records(folder, since, until)
    except FileNotFoundError as exc:
        raise VisionOpsError(str(exc)) from None
    if folder.name == "records" and not (folder / "samples").is_dir():  # given the records/ sub-folder:
        folder = folder.parent  # sample paths are relative to the collection folder above it
    ref = model_ref(settings, model)
    window, _other = of_model(found, ref.name, ref.version)
    baseline, _built = ensure_baseline(settings, ref)
    target = Path(out) if out is not None else settings.outputs_dir / "labeling" / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%SZ")
    return export_batch(window, folder, target, model=f"{ref.name}:{ref.version}",
                        classes=read_class_names(version_dataset(settings, ref)), threshold=threshold,
                        limit=limit, bounds=image_bounds(baseline))


def label_import(settings: Any, source: Path, into: str, out: Path | None = None,
                 say: Any = None, runner: Any = None) -> tuple[Any, Any]:
    """A labeled batch merged into data set `into` (name[:version]; no version: the current one when
    it is of that name, else its latest), registered as a new version and made current, so the
    next training uses it and the gate decides (visionops.data.merge). Returns (DatasetRef,
    MergeReport). `visionops data import <batch> --into NAME` and notebook 08 call this; a caller
    that already holds a Runner passes it (its workspace is the one the data set is registered in)."""
    from visionops.data.catalog import write_local_manifest
    from visionops.data.merge import merge_labeled_batch
    from visionops.runner import Runner

    name, _, version = str(into).strip().partition(":")
    if not name:
        raise VisionOpsError(f"--into {into!r}: name the data set to merge into (name or name:version)")
    runner = runner or Runner(settings, on_step=say)
    current = runner.workspace.current_dataset()
    spec = into if version or current is None or current.name != name else f"{name}:{current.version}"
    base = runner.dataset(spec)
    target = Path(out) if out is not None else settings.data_dir / "work" / f"{base.name}-labeled"
    report = merge_labeled_batch(Path(source), runner.local_path(base), target, base=f"{base.name}:{base.version}")
    write_local_manifest(target, base.name, report.source())
    return runner.register_folder(target, base.name, source=report.source()), report

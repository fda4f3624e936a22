"""Human in the loop, the way back: a labeled batch (visionops.monitoring.labeling, labeled in Azure
ML Data Labeling, CVAT or any COCO tool) merged into a detection data set as a new working copy.

Rules, each one so that the gate's comparison stays fair and nothing is lost silently:
- every image of the labeled COCO must be one the batch exported (batch.json): anything else is
  refused by name, since an image from elsewhere has no place in this loop;
- every category used must be one of the data set's classes (a new class changes the model's head
  and the champion comparison: add it to the data set deliberately, not through a labeling batch);
- the boxes are read by the COCO importer's own reader (visionops.data.formats.coco): pixel or
  normalised bboxes (Azure ML Data Labeling's default) are told apart the same way, and every bad
  box is an error naming the annotation;
- an image already in the data set (same bytes, any split) is not added again: it is reported as a
  duplicate and its existing labels stay, also when the labeler drew different ones (listed as
  conflicts): the data set's labels were reviewed before, an image of the test split must not
  change under the gate, and a relabel is a deliberate edit of the data set, not a side effect;
- new images go to train or val, never to the frozen test split (the gate compares challenger and
  champion on the same test images), chosen by the image's content hash: reruns give the same
  split, and the same image can never land in two splits;
- what was written is read back: the merged copy holds the base data set plus exactly the new
  images and their boxes, or nothing is written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from visionops.data.formats._common import Problems
from visionops.data.formats.coco import _records, category_map, looks_normalised
from visionops.data.layout import (
    DATA_YAML,
    MANIFEST,
    Box,
    Item,
    image_dir,
    iter_items,
    label_path_for,
    read_class_names,
    read_labels,
    write_labels,
)
from visionops.data.validation import validate
from visionops.errors import VisionOpsError
from visionops.hashing import file_digest

VAL_PERCENT = 20  # share of new images that go to val (by content hash), the rest to train
_SHOW = 10


@dataclass
class MergeReport:
    """What the merge carried: new images per split, their boxes, and what was left out and why."""

    out: Path
    base: str  # name:version merged into
    batch: Path
    added: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    boxes: int = 0
    background: int = 0  # labeled images with no object: kept as background examples
    duplicates: list[str] = field(default_factory=list)  # already in the data set (or twice in the batch)
    conflicts: list[str] = field(default_factory=list)  # duplicates whose new labels differ (existing kept)
    unlabeled: list[str] = field(default_factory=list)  # batch images the labeled COCO does not list
    normalised: bool = False  # the labeled COCO's bboxes were fractions of the image size

    def source(self) -> dict[str, Any]:
        """Where the new version came from, for its manifest."""
        return {"kind": "labeled-batch", "base": self.base, "batch": str(self.batch), "added": self.added,
                "boxes": self.boxes, "background": self.background, "duplicates": self.duplicates,
                "conflicts": self.conflicts, "unlabeled": self.unlabeled, "normalised_bboxes": self.normalised}


def _named(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOW])
    return shown + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def _locate(source: Path) -> tuple[Path, Path]:
    """(batch folder, COCO file) of a labeled export given as the folder or its COCO file."""
    from visionops.monitoring.labeling import ANNOTATIONS

    source = Path(source)
    if source.is_dir():
        coco = source / ANNOTATIONS
        if not coco.is_file():
            raise VisionOpsError(f"{source} has no {ANNOTATIONS}; pass the labeled batch folder or its COCO JSON")
        return source, coco
    if source.is_file():
        return source.parent, source
    raise VisionOpsError(f"{source} does not exist; pass the labeled batch folder or its COCO JSON")


def _base_name(file_name: str) -> str:
    """The image's own name: labeling tools export paths (datastore URLs, sub-folders, backslashes)."""
    return PurePosixPath(str(file_name).replace("\\", "/")).name


def check_labeled_batch(source: Path, classes: list[str]) -> tuple[Path, Path, dict[str, Any]]:
    """(batch folder, COCO file, COCO document with file names reduced to the batch's own names);
    an error naming every image that is not in the batch, missing on disk, or a class not in `classes`."""
    from visionops.monitoring.labeling import IMAGES, read_batch

    batch_dir, coco = _locate(source)
    batch = read_batch(batch_dir)
    exported = {e["file_name"] for e in batch.get("images", [])}
    try:
        doc = json.loads(coco.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise VisionOpsError(f"{coco} line {exc.lineno}: {exc.msg}; export the labels as COCO JSON again") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                      "categories")):
        raise VisionOpsError(f"{coco}: not a COCO file (needs the lists 'images', 'annotations' and 'categories')")
    entries = [i for i in doc["images"] if isinstance(i, dict)]
    foreign = [str(i.get("file_name")) for i in entries if _base_name(i.get("file_name", "")) not in exported]
    if foreign:
        raise VisionOpsError(f"{coco}: {len(foreign)} image(s) are not in this labeling batch "
                             f"({batch_dir / 'batch.json'}): {_named(foreign)}; label only the batch's images, "
                             "or export a new batch")
    for image in entries:
        image["file_name"] = _base_name(image["file_name"])
    absent = [i["file_name"] for i in entries if not (batch_dir / IMAGES / i["file_name"]).is_file()]
    if absent:
        raise VisionOpsError(f"{batch_dir / IMAGES}: {len(absent)} labeled image(s) are missing: {_named(absent)}; "
                             "keep the batch's images/ folder beside its annotations")
    used = {a.get("category_id") for a in doc["annotations"] if isinstance(a, dict)}
    names = {c.get("id"): str(c.get("name")) for c in doc["categories"] if isinstance(c, dict)}
    unknown = sorted({names.get(c, f"category id {c}") for c in used} - set(classes))
    if unknown:
        raise VisionOpsError(f"{coco}: label(s) {unknown} are not classes of the data set ({classes}); relabel them "
                             "with its classes, or add the class to the data set (a new class needs a new model)")
    return batch_dir, coco, doc


def _same_boxes(a: list[Box], b: list[Box], tol: float = 0.01) -> bool:
    """Same classes and boxes (corners within `tol` of the image size), in any order."""
    if len(a) != len(b):
        return False
    order = lambda x: (x.cls, x.cx, x.cy)  # noqa: E731
    return all(p.cls == q.cls and max(abs(u - v) for u, v in zip(p.corners(), q.corners(), strict=True)) <= tol
               for p, q in zip(sorted(a, key=order), sorted(b, key=order), strict=True))


def _check_out(out: Path, protected: list[Path]) -> None:
    """`out` may be new, empty or an earlier working copy (it is replaced), never a source."""
    for p in protected:
        p = p.resolve()
        if out == p or p in out.parents or out in p.parents:
            raise VisionOpsError(f"--out {out} overlaps {p}; write the merged data set to a separate folder")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / DATA_YAML).is_file())):
        raise VisionOpsError(f"--out {out} exists and is not a data set folder; pass a new or empty folder")


def merge_labeled_batch(source: Path, dataset_dir: Path, out: Path, *, base: str,
                        val_percent: int = VAL_PERCENT) -> MergeReport:
    """Write into `out` the data set at `dataset_dir` plus the labeled batch's new images (train/val by
    content hash, never test), validated and checked against what was read; `out` is replaced only
    when everything held."""
    from visionops.data.kinds import data_kind
    from visionops.monitoring.labeling import IMAGES

    dataset_dir, out = Path(dataset_dir).resolve(), Path(out).resolve()
    task = data_kind(dataset_dir).task
    if task != "detect":
        raise VisionOpsError(f"{base} is a {task} data set: merging a labeling batch is built for detection; "
                             "add the labeled images with `visionops data import` (folders or csv) instead")
    classes = read_class_names(dataset_dir)
    batch_dir, coco, doc = check_labeled_batch(source, classes)
    _check_out(out, [dataset_dir, batch_dir])
    report = MergeReport(out=out, base=base, batch=batch_dir, normalised=looks_normalised(doc))
    problems = Problems(coco)
    cats = category_map(doc, coco, problems)
    problems.raise_if_any("the labeled batch")
    class_of = {cid: classes.index(name) for cid, name in cats.items() if name in classes}
    records = _records(doc, coco, batch_dir / IMAGES, class_of, None, problems, normalised=report.normalised)
    problems.raise_if_any("the labeled batch")
    listed = {r.image.name for r in records}
    report.unlabeled = sorted(p.name for p in (batch_dir / IMAGES).iterdir() if p.is_file() and p.name not in listed)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-merge-", dir=out.parent))
    try:
        shutil.rmtree(staging)
        shutil.copytree(dataset_dir, staging, ignore=shutil.ignore_patterns("*.cache", MANIFEST))
        existing = {file_digest(item.image): item for item in iter_items(staging)}
        names = {item.image.name for item in iter_items(staging)}
        base_boxes = sum(len(read_labels(item.label)) for item in existing.values())
        base_images = len(existing)
        for rec in records:
            digest = file_digest(rec.image)
            if digest in existing:
                report.duplicates.append(rec.image.name)
                if not _same_boxes(read_labels(existing[digest].label), rec.boxes):
                    report.conflicts.append(rec.image.name)
                continue
            split = "val" if int(digest[:8], 16) % 100 < val_percent else "train"
            name = rec.image.name
            if name in names:  # another image already has this name: keep both, tell them apart
                name = f"{rec.image.stem}-{digest[:8]}{rec.image.suffix}"
            names.add(name)
            target = image_dir(staging, split) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rec.image, target)
            write_labels(label_path_for(staging, split, target), rec.boxes)
            existing[digest] = Item(split, target, label_path_for(staging, split, target))
            report.added[split] += 1
            report.boxes += len(rec.boxes)
            report.background += not rec.boxes
        _conserve(staging, base_images + sum(report.added.values()), base_boxes + report.boxes, coco)
        validate(staging).raise_if_failed()
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _conserve(root: Path, images: int, boxes: int, coco: Path) -> None:
    """The merged copy must hold the base data set plus exactly the new images and boxes."""
    items = list(iter_items(root))
    found = sum(len(read_labels(i.label)) for i in items)
    if (len(items), found) != (images, boxes):
        raise VisionOpsError(f"merging {coco} would write {len(items)} images with {found} boxes, expected {images} "
                             f"with {boxes}; nothing was written (a VisionOps bug: please report it)")

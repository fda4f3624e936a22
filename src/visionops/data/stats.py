"""Numbers about a data set for notebooks, reports and the manifest's reader: what is in each
split, how balanced the classes are and how large the boxes are.

Everything is derived from two tables read once from disk (`load_tables`): one row per image
(with its class for a classification data set) and one row per box (none for classification).
Per-class counts are boxes for detection and images for classification
(`DatasetTables.per_class_value`). The other functions are pure over those tables and also accept
a data set root for convenience (reading it each time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from visionops.data.kinds import data_kind, kind_for
from visionops.data.layout import SPLITS, read_labels

IMAGE_COLUMNS = ["split", "image", "width", "height", "boxes", "label"]  # label: the class (classification)
BOX_COLUMNS = [
    "split", "image", "class_id", "class", "cx", "cy", "w", "h",
    "width_px", "height_px", "rel_area", "aspect",
]


@dataclass(frozen=True)
class DatasetTables:
    """The data set as two tables; `images.image` and `boxes.image` are paths relative to root."""

    root: Path
    classes: list[str]
    images: pd.DataFrame
    boxes: pd.DataFrame
    task: str = "detect"

    @property
    def per_class_value(self) -> str:
        """What a class is counted in: "boxes" (detection) or "images" (classification)."""
        return "boxes" if kind_for(self.task).has_boxes else "images"


def load_tables(root: Path) -> DatasetTables:
    """Read every image's size (header only) and every box once. Expects a validated data set."""
    root = Path(root)
    kind = data_kind(root)
    classes = kind.names(root)
    image_rows, box_rows = [], []
    for item in kind.samples(root):
        with Image.open(item.image) as im:
            width, height = im.size
        rel = item.image.relative_to(root).as_posix()
        boxes = read_labels(item.label_file) if item.label_file is not None else []
        image_rows.append((item.split, rel, width, height, len(boxes), item.label))
        for b in boxes:
            name = classes[b.cls] if 0 <= b.cls < len(classes) else str(b.cls)
            box_rows.append((
                item.split, rel, b.cls, name, b.cx, b.cy, b.w, b.h,
                b.w * width, b.h * height, b.w * b.h, (b.w * width) / (b.h * height) if b.h > 0 else float("nan"),
            ))
    return DatasetTables(
        root=root,
        classes=classes,
        images=pd.DataFrame(image_rows, columns=IMAGE_COLUMNS),
        boxes=pd.DataFrame(box_rows, columns=BOX_COLUMNS),
        task=kind.task,
    )


def as_tables(data: Path | str | DatasetTables) -> DatasetTables:
    """Tables as given, or read from a data set root."""
    return data if isinstance(data, DatasetTables) else load_tables(Path(data))


def split_table(data: Path | DatasetTables) -> pd.DataFrame:
    """Per split (index in train/val/test order): images, boxes, empty_images, boxes_per_image."""
    t = as_tables(data)
    rows = []
    for split in SPLITS:
        imgs = t.images[t.images.split == split]
        n_boxes = int(imgs.boxes.sum())
        rows.append({
            "split": split,
            "images": len(imgs),
            "boxes": n_boxes,
            "empty_images": int((imgs.boxes == 0).sum()),
            "boxes_per_image": n_boxes / len(imgs) if len(imgs) else 0.0,
        })
    return pd.DataFrame(rows).set_index("split")


def class_table(data: Path | DatasetTables) -> pd.DataFrame:
    """One row per (split, class) in class order: boxes, and images holding at least one such box
    (classification: images of that class, boxes 0).

    Classes without boxes are listed with zeros: a class missing from a split is what to notice.
    """
    t = as_tables(data)
    b = t.boxes
    rows = []
    for split in SPLITS:
        in_split = b[b.split == split]
        labelled = t.images[t.images.split == split].label
        for cid, name in enumerate(t.classes):
            of_class = in_split[in_split.class_id == cid]
            rows.append({
                "split": split,
                "class": name,
                "boxes": len(of_class),
                "images": int(of_class.image.nunique()) + int((labelled == name).sum()),
            })
    return pd.DataFrame(rows, columns=["split", "class", "boxes", "images"])


def class_matrix(data: Path | DatasetTables, value: str | None = None) -> pd.DataFrame:
    """class_table pivoted: classes as rows (class order), splits as columns, plus a total.
    `value` defaults to boxes (detection) or images (classification)."""
    t = as_tables(data)
    value = value or t.per_class_value
    long = class_table(t)
    wide = long.pivot(index="class", columns="split", values=value).reindex(index=t.classes, columns=list(SPLITS))
    wide["total"] = wide.sum(axis=1)
    return wide.astype(int)


def box_sizes(data: Path | DatasetTables) -> pd.DataFrame:
    """One row per box: split, class, width/height in pixels, relative area (of the image), aspect."""
    t = as_tables(data)
    return t.boxes[["split", "class", "width_px", "height_px", "rel_area", "aspect"]].reset_index(drop=True)


def _describe(series: pd.Series) -> dict[str, float]:
    if series.empty:
        return {}
    q = series.quantile([0.05, 0.5, 0.95])
    return {
        "min": float(series.min()),
        "p05": float(q.loc[0.05]),
        "median": float(q.loc[0.5]),
        "p95": float(q.loc[0.95]),
        "max": float(series.max()),
    }


def summary(data: Path | DatasetTables) -> dict[str, Any]:
    """JSON-ready summary: classes, per split images/boxes/empty and boxes per class, box size ranges."""
    t = as_tables(data)
    splits = split_table(t)
    classes = class_table(t)
    out: dict[str, Any] = {
        "task": t.task,
        "classes": list(t.classes),
        "images": int(splits.images.sum()),
        "boxes": int(splits.boxes.sum()),
        "splits": {},
        "image_sizes": sorted({f"{w}x{h}" for w, h in zip(t.images.width, t.images.height, strict=True)}),
        "box_width_px": _describe(t.boxes.width_px),
        "box_height_px": _describe(t.boxes.height_px),
        "box_rel_area": _describe(t.boxes.rel_area),
    }
    for split, row in splits.iterrows():
        per_class = classes[classes.split == split]
        out["splits"][split] = {
            "images": int(row.images),
            "boxes": int(row.boxes),
            "empty_images": int(row.empty_images),
            "per_class": {str(c): int(n) for c, n in zip(per_class["class"], per_class[t.per_class_value],
                                                            strict=True)},
        }
    return out

"""Content-hash versions and the manifest.json that travels with every data set.

The version is a hash of what a model can learn from (class names, every image's and label's
relative path and bytes), never of when or where the data was made, so registering the same
content twice gives the same version on any machine and on Azure ML.

`content_hash`, `count` and `build_manifest` serve both tasks: the layout's task
(`visionops.data.kinds`) decides how; `detect_content_hash`/`detect_count` are detection's own.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from visionops.data.layout import MANIFEST, SPLITS, iter_items, read_class_names, read_labels
from visionops.hashing import Hasher

VERSION_LENGTH = 12  # hex digits: enough to never collide in one catalog, short enough to read


class SplitCounts(BaseModel):
    """Counts of one split; classification: `per_class` = images per class and `boxes` = 0."""

    images: int = 0
    boxes: int = 0
    per_class: dict[str, int] = Field(default_factory=dict)
    empty_images: int = 0


class Manifest(BaseModel):
    """What a data set is: its version, classes, counts and where it came from."""

    name: str
    version: str
    classes: list[str]
    splits: dict[str, SplitCounts]
    source: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format: str = "yolo"
    task: str = "detect"  # "detect" | "classify" (visionops.data.kinds); older manifests are detection

    @property
    def total_images(self) -> int:
        return sum(s.images for s in self.splits.values())

    @property
    def total_boxes(self) -> int:
        return sum(s.boxes for s in self.splits.values())


def content_hash(root: Path) -> str:
    """The content-hash version of the data set at `root`, whichever its task."""
    from visionops.data.kinds import data_kind

    return data_kind(root).content_hash(Path(root))


def count(root: Path) -> dict[str, SplitCounts]:
    """Per split counts of the data set at `root`, whichever its task (expects a validated data set)."""
    from visionops.data.kinds import data_kind

    return data_kind(root).count(Path(root))


def detect_content_hash(root: Path) -> str:
    """Hash of class names plus every image/label path and content (manifest excluded)."""
    root = Path(root)
    h = Hasher().text(json.dumps(read_class_names(root)))
    for item in iter_items(root):
        for p in (item.image, item.label):
            if p.exists():
                h.file(p, p.relative_to(root).as_posix())
    return h.hexdigest(VERSION_LENGTH)


def detect_count(root: Path) -> dict[str, SplitCounts]:
    """Images, boxes and boxes per class for each split (expects a validated data set)."""
    root = Path(root)
    names = read_class_names(root)
    out: dict[str, SplitCounts] = {}
    for split in SPLITS:
        per_class: Counter[str] = Counter()
        images = boxes = empty = 0
        for item in iter_items(root, (split,)):
            images += 1
            labels = read_labels(item.label)
            boxes += len(labels)
            empty += not labels
            per_class.update(names[b.cls] if 0 <= b.cls < len(names) else str(b.cls) for b in labels)
        out[split] = SplitCounts(
            images=images, boxes=boxes, empty_images=empty, per_class={n: per_class.get(n, 0) for n in names}
        )
    return out


def build_manifest(
    root: Path, name: str, source: dict[str, Any] | None = None, task: str | None = None
) -> Manifest:
    """The manifest of the data set at `root`; `task` defaults to the folder's (`kinds.folder_task`)."""
    from visionops.data.kinds import data_kind, kind_for

    root = Path(root)
    kind = kind_for(task) if task else data_kind(root)
    return Manifest(
        name=name,
        version=kind.content_hash(root),
        classes=kind.names(root),
        splits=kind.count(root),
        source=source or {},
        format=kind.layout_format,
        task=kind.task,
    )


def write_manifest(root: Path, manifest: Manifest) -> Path:
    path = Path(root) / MANIFEST
    path.write_text(manifest.model_dump_json(indent=2))
    return path


def read_manifest(root: Path) -> Manifest:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: create it with `visionops data register` or build_manifest()")
    return Manifest.model_validate_json(path.read_text())

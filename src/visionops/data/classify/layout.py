"""The on-disk contract of a classification data set and the functions that read it.

    <root>/train/<class>/<image>
    <root>/val/<class>/<image>
    <root>/test/<class>/<image>
    <root>/manifest.json            version (content hash), counts, source; no data.yaml

Classes are the *sorted* folder names under `train/` because that is how Ultralytics numbers
them (`check_cls_dataset`); every split must hold every class, else Ultralytics' per-split
ImageFolder numbers the classes differently and scores val against the wrong ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from visionops.data.layout import IMAGE_SUFFIXES, SPLITS
from visionops.hashing import Hasher

# Names a source may give its validation split (Ultralytics accepts val, validation, valid).
SPLIT_ALIASES: dict[str, str] = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Sample:
    """One image of a classification split with its class (the folder it sits in)."""

    split: str
    label: str
    image: Path


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def class_dirs(root: Path, split: str) -> list[Path]:
    """The class folders of a split, sorted by name (Ultralytics' order); hidden folders ignored."""
    folder = Path(root) / split
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def class_names(root: Path) -> list[str]:
    """Sorted folder names under train/: the class list Ultralytics trains with."""
    return [p.name for p in class_dirs(root, "train")]


def looks_like_class_folders(folder: Path) -> bool:
    """True when `folder` holds sub-folders with images directly in them (a class per folder),
    and the sub-folders are not a detection split's `images/` + `labels/`."""
    subs = [p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []
    if not subs or {p.name for p in subs} <= {"images", "labels"}:
        return False
    return any(any(is_image(f) for f in sub.iterdir()) for sub in subs)


def iter_samples(root: Path, splits: tuple[str, ...] = SPLITS) -> Iterator[Sample]:
    """Every image of the given splits, split by split, class by class, file names sorted."""
    for split in splits:
        for cdir in class_dirs(root, split):
            for p in sorted(cdir.iterdir(), key=lambda q: q.name):
                if is_image(p):
                    yield Sample(split, cdir.name, p)


def content_hash(root: Path, length: int) -> str:
    """Hash of the class names plus every image's relative path and bytes (manifest excluded)."""
    root = Path(root)
    h = Hasher().text(json.dumps(class_names(root), ensure_ascii=False))
    for s in iter_samples(root):
        h.file(s.image, s.image.relative_to(root).as_posix())
    return h.hexdigest(length)

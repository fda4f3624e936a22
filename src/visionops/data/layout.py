"""The on-disk contract of a data set (design §3): YOLO layout plus data.yaml and manifest.json.

    <root>/images/{train,val,test}/<stem>.<ext>
    <root>/labels/{train,val,test}/<stem>.txt      one `class cx cy w h` line per box, normalised
    <root>/data.yaml                                names + split folders, no absolute `path:`
    <root>/manifest.json                            version (content hash), counts, source

data.yaml deliberately has no `path:` key: Ultralytics then resolves the splits relative to the
yaml file, so a data set can be moved, copied into the catalog or mounted by Azure ML unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DATA_YAML = "data.yaml"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Box:
    """One labelled box in YOLO form: class id and centre/size normalised to [0, 1]."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float

    def to_line(self) -> str:
        return f"{self.cls} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"

    def corners(self) -> tuple[float, float, float, float]:
        """Normalised (x0, y0, x1, y1)."""
        return (self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2)

    @classmethod
    def from_corners(cls, c: int, x0: float, y0: float, x1: float, y1: float) -> Box:
        return cls(c, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class Item:
    """One image of a split with its label file (which may not exist)."""

    split: str
    image: Path
    label: Path


def image_dir(root: Path, split: str) -> Path:
    return Path(root) / "images" / split


def label_dir(root: Path, split: str) -> Path:
    return Path(root) / "labels" / split


def label_path_for(root: Path, split: str, image: Path) -> Path:
    return label_dir(root, split) / f"{Path(image).stem}.txt"


def iter_images(root: Path, split: str) -> Iterator[Path]:
    folder = image_dir(root, split)
    if not folder.is_dir():
        return
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            yield p


def iter_items(root: Path, splits: tuple[str, ...] = SPLITS) -> Iterator[Item]:
    for split in splits:
        for img in iter_images(root, split):
            yield Item(split, img, label_path_for(root, split, img))


def parse_label_line(line: str) -> Box:
    """Parse `cls cx cy w h`; raises ValueError with the reason (the validator adds file and line)."""
    parts = line.split()
    if len(parts) != 5:
        raise ValueError(f"expected 5 values 'class cx cy w h', got {len(parts)}")
    try:
        c = int(parts[0])
    except ValueError:
        raise ValueError(f"class id {parts[0]!r} is not an integer") from None
    try:
        cx, cy, w, h = (float(v) for v in parts[1:])
    except ValueError:
        raise ValueError("coordinates are not numbers") from None
    return Box(c, cx, cy, w, h)


def read_labels(path: Path) -> list[Box]:
    """Boxes of a well-formed label file (validate first for friendly errors); missing -> []."""
    if not Path(path).exists():
        return []
    return [parse_label_line(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def write_labels(path: Path, boxes: list[Box]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(b.to_line() + "\n" for b in boxes))


def write_data_yaml(root: Path, names: list[str]) -> Path:
    doc = {
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "nc": len(names),
        "names": {i: n for i, n in enumerate(names)},
    }
    path = Path(root) / DATA_YAML
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def read_class_names(root: Path) -> list[str]:
    """Class names from data.yaml (list or {id: name} mapping)."""
    path = Path(root) / DATA_YAML
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: every data set needs a data.yaml with its class names")
    doc = yaml.safe_load(path.read_text()) or {}
    names = doc.get("names")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise ValueError(f"{path}: 'names' must be a list or a mapping of class id to name")

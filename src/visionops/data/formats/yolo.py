"""Import a YOLO data set: our own layout or any folder Ultralytics can train on.

Paths are resolved the way Ultralytics resolves them (`path:` or the yaml's folder; split
entries may be folders, lists of folders or .txt lists of images; a label is the image path
with its last `/images/` replaced by `/labels/` and the suffix by `.txt`), so whatever trains
with `yolo train data=...` imports here. Two deliberate differences: relative lines of a .txt
list are resolved against the .txt's folder (Ultralytics does that only for `./` lines), and
boxes that overshoot the image by more than a pixel are an error rather than silently clipped.
A relative `path:` is looked up next to the yaml first, then in the working directory
(Ultralytics tries the working directory, then its datasets folder).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from visionops.data.formats._common import (
    PIXEL_TOLERANCE,
    UNSUPPORTED_IMAGE_SUFFIXES,
    Problems,
    Record,
    assign_splits,
    check_destination,
    check_split_ratios,
    image_problem,
    image_size,
    iter_lines,
    write_dataset,
)
from visionops.data.layout import DATA_YAML, IMAGE_SUFFIXES, SPLITS, Box, image_dir
from visionops.errors import VisionOpsError

_EPS = 1e-6  # the validator's slack for boxes that touch the border
_LABEL_FIX = "write one box per line as 'class cx cy w h' (or 'class x1 y1 x2 y2 ...' for a polygon), normalised 0..1"


def find_data_yaml(src: Path) -> Path:
    """The yaml describing the data set: src itself, src/data.yaml, or the only *.yaml in src."""
    src = Path(src)
    if src.is_file():
        return src
    if not src.is_dir():
        raise VisionOpsError(f"{src} does not exist; pass a YOLO data set folder or its data.yaml")
    if (src / DATA_YAML).is_file():
        return src / DATA_YAML
    candidates = sorted(src.glob("*.yaml")) + sorted(src.glob("*.yml"))
    if len(candidates) == 1:
        return candidates[0]
    raise VisionOpsError(
        f"{src} has no {DATA_YAML}"
        + (f" and several yaml files ({', '.join(p.name for p in candidates)})" if candidates else "")
        + f"; pass the data set's yaml file itself, or write {src / DATA_YAML} with 'names:' and train/val folders"
    )


def class_names(doc: dict, yaml_path: Path) -> list[str]:
    """names as a list or {id: name} mapping, or `nc` alone (Ultralytics then names them class_<i>)."""
    names = doc.get("names")
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise VisionOpsError(f"{yaml_path}: 'names' keys must be class ids 0..n-1") from None
        if ids != list(range(len(ids))):
            raise VisionOpsError(f"{yaml_path}: 'names' ids {ids} must be 0..{len(ids) - 1} without gaps")
        return [str(names[k] if k in names else names[str(k)]) for k in ids]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    if isinstance(doc.get("nc"), int) and doc["nc"] > 0:
        return [f"class_{i}" for i in range(doc["nc"])]
    raise VisionOpsError(f"{yaml_path}: needs 'names:' (a list, or a mapping of class id to name) or 'nc:'")


def dataset_base(doc: dict, yaml_path: Path) -> Path:
    """`path:` resolved against the yaml's folder then the working directory; else the yaml's folder."""
    value = doc.get("path")
    if not value:
        return yaml_path.parent.resolve()
    p = Path(str(value)).expanduser()
    for candidate in ((p,) if p.is_absolute() else (yaml_path.parent / p, Path.cwd() / p)):
        if candidate.is_dir():
            return candidate.resolve()
    raise VisionOpsError(
        f"{yaml_path}: 'path: {value}' is not a folder (looked relative to the yaml and to {Path.cwd()}); "
        "fix 'path:' or remove it so splits resolve relative to the yaml"
    )


def label_for(image: Path) -> Path:
    """Ultralytics' rule: last '/images/' -> '/labels/', suffix -> '.txt'."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(os.fspath(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def _split_entries(doc: dict, base: Path) -> dict[str, list[str]]:
    """Split name -> entries as written; our layout without train/val keys falls back to images/<split>."""
    out: dict[str, list[str]] = {}
    for split in SPLITS:
        value = doc.get(split)
        if value:
            out[split] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if not out:
        out = {s: [f"images/{s}"] for s in SPLITS if image_dir(base, s).is_dir()}
    return out


def _resolve_entry(base: Path, entry: str) -> Path:
    x = (base / entry).resolve()
    if not x.exists() and entry.startswith("../"):  # Ultralytics' fallback for yamls that sit beside the data
        x = (base / entry[3:]).resolve()
    return x


def _images_of(entry: Path, yaml_path: Path, problems: Problems) -> list[Path]:
    """Images of one split entry: a folder (recursive) or a .txt list of image paths."""
    if entry.is_dir():
        found = []
        for p in sorted(entry.rglob("*")):
            if not p.is_file():
                continue
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(p)
            elif p.suffix.lower() in UNSUPPORTED_IMAGE_SUFFIXES:
                problems.add(
                    "unsupported_image", p, f"{p.suffix} images are not supported by the data set layout",
                    f"convert it to one of {', '.join(IMAGE_SUFFIXES)} or remove it",
                )
        return found
    if entry.is_file():
        out = []
        for no, line in iter_lines(entry):
            p = Path(line)
            p = p if p.is_absolute() else (entry.parent / p)
            out.append(p.resolve())
            if not p.is_file():
                problems.add(
                    "missing_image", entry, f"lists {line}, which does not exist ({p})",
                    "fix the path (relative paths are resolved against this list's folder) or remove the line", no,
                )
        return [p for p in out if p.is_file()]
    problems.add(
        "missing_split", yaml_path, f"split folder or list {entry} does not exist",
        "fix the entry in the yaml (relative to 'path:' or to the yaml's folder)",
    )
    return []


class _LineError(ValueError):
    """A label line that cannot be used; `code` is the validator's problem code."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code


def _parse_line(line: str, n_classes: int) -> tuple[int, tuple[float, float, float, float]]:
    """(class, normalised corners) of a box or polygon line; _LineError with code and reason."""
    parts = line.split()
    if len(parts) < 5 or (len(parts) > 5 and len(parts) % 2 == 0):
        raise _LineError(
            "malformed_line", f"expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(parts)} values"
        )
    try:
        cls = int(parts[0])
    except ValueError:
        raise _LineError("malformed_line", f"class id {parts[0]!r} is not an integer") from None
    try:
        values = [float(v) for v in parts[1:]]
    except ValueError:
        raise _LineError("malformed_line", "coordinates are not numbers") from None
    if not 0 <= cls < n_classes:
        raise _LineError(
            "class_out_of_range", f"class id {cls} is not one of the {n_classes} classes (0..{n_classes - 1})"
        )
    if len(values) == 4:
        cx, cy, w, h = values
        return cls, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    xs, ys = values[0::2], values[1::2]  # polygon (segmentation label): its bounding box, as Ultralytics does
    return cls, (min(xs), min(ys), max(xs), max(ys))


def read_yolo_labels(
    label: Path, n_classes: int, width: int, height: int, problems: Problems
) -> list[Box]:
    """Boxes of one label file (missing file = no objects, as in Ultralytics); problems collected."""
    if not label.is_file():
        return []
    boxes: list[Box] = []
    tol_x, tol_y = PIXEL_TOLERANCE / width, PIXEL_TOLERANCE / height
    for no, line in iter_lines(label):
        try:
            cls, (x0, y0, x1, y1) = _parse_line(line, n_classes)
        except _LineError as exc:
            problems.add(exc.code, label, f"{exc}: {line!r}", _LABEL_FIX, no)
            continue
        if not (x1 > x0 and y1 > y0):
            problems.add("zero_area_box", label, f"box has zero or negative size: {line!r}",
                         "remove the line or give the box a positive width and height", no)
            continue
        if x0 < -tol_x or y0 < -tol_y or x1 > 1 + tol_x or y1 > 1 + tol_y:
            problems.add(
                "box_outside_image", label,
                f"box corners {x0:.3f},{y0:.3f} to {x1:.3f},{y1:.3f} reach outside the image (must be in 0..1)",
                "clip the box to the image, or check that coordinates are normalised by the image size", no,
            )
            continue
        if len(line.split()) == 5 and min(x0, y0) >= -_EPS and max(x1, y1) <= 1 + _EPS:
            _, cx, cy, w, h = (float(v) for v in line.split())
            boxes.append(Box(cls, cx, cy, w, h))  # as written: our own layout imports byte-identical
        else:
            boxes.append(Box.from_corners(cls, max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1)))
    return boxes


def import_yolo(
    src: Path,
    dst: Path,
    *,
    split_ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Copy a YOLO data set into our layout at dst, carving missing val/test splits out of train.

    `src` is a data set folder (with data.yaml, or exactly one yaml) or the yaml file. Images
    without a label file are kept as images without objects (Ultralytics' rule). The source is
    only read. Raises DataValidationError listing every problem (file and line), else returns dst.
    """
    check_split_ratios(split_ratios)
    yaml_path = find_data_yaml(Path(src)).resolve()
    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise VisionOpsError(f"{yaml_path} is not valid YAML ({exc}); fix the syntax") from None
    if not isinstance(doc, dict):
        raise VisionOpsError(f"{yaml_path} must be a mapping with 'names:' and train/val entries")
    names = class_names(doc, yaml_path)
    base = dataset_base(doc, yaml_path)
    entries = {s: [_resolve_entry(base, v) for v in values] for s, values in _split_entries(doc, base).items()}
    if "train" not in entries:
        raise VisionOpsError(
            f"{yaml_path} names no 'train' images and {base / 'images' / 'train'} does not exist; "
            "add 'train: <folder or list>' to the yaml"
        )
    read_from = [p for paths in entries.values() for p in paths]
    dst = check_destination(dst, read_from + [label_for(p / "x.jpg").parent for p in read_from], overwrite)
    problems = Problems(yaml_path)
    records: list[Record] = []
    seen: dict[Path, str] = {}
    for split, paths in entries.items():
        for entry in paths:
            for img in _images_of(entry, yaml_path, problems):
                if img in seen:
                    problems.add(
                        "duplicate_image", img, f"listed in split '{seen[img]}' and again in '{split}'",
                        "keep each image in one split only",
                    )
                    continue
                seen[img] = split
                if reason := image_problem(img):
                    problems.add("corrupt_image", img, reason, "replace the file with a readable JPEG/PNG or remove it")
                    continue
                w, h = image_size(img)
                boxes = read_yolo_labels(label_for(img), len(names), w, h, problems)
                records.append(Record(img, boxes, split))
    if not records and not problems:
        problems.add("empty_dataset", yaml_path, "no images found in any split", "check the split entries")
    problems.raise_if_any("a YOLO data set")
    records = assign_splits(records, split_ratios, seed)
    source = {"format": "yolo", "path": str(yaml_path), "seed": seed, "split_ratios": list(split_ratios)}
    return write_dataset(records, names, dst, source=source, overwrite=overwrite)

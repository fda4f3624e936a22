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
from dataclasses import dataclass
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
from visionops.data.formats.report import ImportReport
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
    """`path:` resolved against the yaml's folder then the working directory; else the yaml's folder.

    Lexically absolute, never symlink-resolved: labels are looked up beside the path as given.
    """
    value = doc.get("path")
    if not value:
        return _absolute(yaml_path.parent)
    p = Path(str(value)).expanduser()
    for candidate in ((p,) if p.is_absolute() else (yaml_path.parent / p, Path.cwd() / p)):
        if candidate.is_dir():
            return _absolute(candidate)
    raise VisionOpsError(
        f"{yaml_path}: 'path: {value}' is not a folder (looked relative to the yaml and to {Path.cwd()}); "
        "fix 'path:' or remove it so splits resolve relative to the yaml"
    )


def _absolute(p: Path) -> Path:
    """Absolute and normalised ('..' removed) without following symlinks (unlike Path.resolve)."""
    return Path(os.path.normpath(os.path.abspath(p)))


def label_for(image: Path) -> Path:
    """Ultralytics' rule: last '/images/' -> '/labels/', suffix -> '.txt'."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(os.fspath(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def label_candidates(image: Path) -> list[Path]:
    """Where an image's label file may be, in order: Ultralytics' rule on the path as given, beside
    the image (CVAT YOLO 1.1; also rescues an ancestor folder named 'images'), then both on the
    symlink-resolved path (what Ultralytics itself does for a symlinked split folder)."""
    real = Path(os.path.realpath(image))
    out: list[Path] = []
    for c in (label_for(image), image.with_suffix(".txt"), label_for(real), real.with_suffix(".txt")):
        if c not in out:
            out.append(c)
    return out


def _split_entries(doc: dict, base: Path) -> dict[str, list[str]]:
    """Split name -> entries as written; our layout without train/val keys falls back to images/<split>."""
    out: dict[str, list[str]] = {}
    for split in SPLITS:
        value = doc.get(split) or (doc.get("validation") if split == "val" else None)
        if value:
            out[split] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if not out:
        out = {s: [f"images/{s}"] for s in SPLITS if image_dir(base, s).is_dir()}
    return out


def _resolve_entry(base: Path, entry: str) -> Path:
    x = _absolute(base / entry)
    if not x.exists() and entry.startswith("../"):  # Ultralytics' fallback for yamls that sit beside the data
        x = _absolute(base / entry[3:])
    return x


def _listed_image(txt: Path, line: str) -> Path:
    """An image path of a .txt list: absolute, else relative to the list's folder, else (darknet's
    `data/obj_train_data/x.jpg` convention, CVAT YOLO 1.1) with its first folder dropped."""
    p = Path(line)
    if p.is_absolute():
        return p
    first = _absolute(txt.parent / p)
    if not first.is_file() and len(p.parts) > 1:
        alt = _absolute(txt.parent / Path(*p.parts[1:]))
        if alt.is_file():
            return alt
    return first


def _walk_images(folder: Path, problems: Problems) -> list[Path]:
    """Images under a folder, recursively, following symlinked sub-folders (pathlib's rglob does not)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(p)
            elif p.suffix.lower() in UNSUPPORTED_IMAGE_SUFFIXES:
                problems.add(
                    "unsupported_image", p, f"{p.suffix} images are not supported by the data set layout",
                    f"convert it to one of {', '.join(IMAGE_SUFFIXES)} or remove it",
                )
    return sorted(found)


def _images_of(entry: Path, yaml_path: Path, problems: Problems) -> list[Path]:
    """Images of one split entry: a folder (recursive) or a .txt list of image paths."""
    if entry.is_dir():
        return _walk_images(entry, problems)
    if entry.is_file():
        out = []
        for no, line in iter_lines(entry):
            p = _listed_image(entry, line)
            if not p.is_file():
                problems.add(
                    "missing_image", entry, f"lists {line}, which does not exist ({p})",
                    "fix the path (relative paths are resolved against this list's folder) or remove the line", no,
                )
                continue
            out.append(p)
        return out
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
    label: Path | None, n_classes: int, width: int, height: int, problems: Problems
) -> list[Box]:
    """Boxes of one label file (missing file = no objects, as in Ultralytics); problems collected."""
    if label is None or not label.is_file():
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


@dataclass
class YoloSource:
    """A YOLO source, whatever described it: class names and split entries, absolute, as given."""

    config: Path  # the file (or folder) that describes it; problems about splits name it
    kind: str  # what was recognised, for the import report
    names: list[str]
    entries: dict[str, list[Path]]
    base: Path


def _read_yaml(yaml_path: Path) -> dict:
    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{yaml_path}:{mark.line + 1}" if mark is not None else str(yaml_path)
        what = getattr(exc, "problem", None) or exc
        raise VisionOpsError(f"{where}: is not valid YAML ({what}); fix the syntax") from None
    if not isinstance(doc, dict):
        raise VisionOpsError(f"{yaml_path} must be a mapping with 'names:' and train/val entries")
    return doc


def _from_yaml(yaml_path: Path) -> YoloSource:
    doc = _read_yaml(yaml_path)
    names = class_names(doc, yaml_path)
    if isinstance(doc.get("nc"), int) and isinstance(doc.get("names"), list | dict) and doc["nc"] != len(names):
        raise VisionOpsError(
            f"{yaml_path}: 'nc: {doc['nc']}' but 'names' lists {len(names)} classes; make them agree (or drop 'nc')"
        )
    base = dataset_base(doc, yaml_path)
    entries = {s: [_resolve_entry(base, v) for v in values] for s, values in _split_entries(doc, base).items()}
    kind = f"Ultralytics YOLO yaml ({yaml_path.name})"
    if "roboflow" in doc:
        kind = f"Roboflow YOLO export (Ultralytics YOLO yaml {yaml_path.name} with a roboflow: block)"
    return YoloSource(yaml_path, kind, names, entries, base)


def _from_darknet(obj_data: Path) -> YoloSource:
    """CVAT 'YOLO 1.1' (darknet): obj.data (`names = obj.names`, `train = train.txt`, `valid = ...`)."""
    folder = obj_data.parent
    keys: dict[str, str] = {}
    for no, line in iter_lines(obj_data):
        if "=" not in line:
            raise VisionOpsError(f"{obj_data}:{no}: expected 'key = value', got {line!r}; fix the line")
        k, v = (x.strip() for x in line.split("=", 1))
        keys[k.lower()] = v

    def local(value: str) -> Path:  # darknet paths are relative to a parent 'data/' folder: accept both
        p = _absolute(folder / value)
        if not p.exists() and len(Path(value).parts) > 1:
            p = _absolute(folder / Path(*Path(value).parts[1:]))
        return p

    names_file = local(keys.get("names", "obj.names"))
    if not names_file.is_file():
        raise VisionOpsError(
            f"{obj_data}: names file {names_file} does not exist; export with obj.names or fix 'names ='"
        )
    names = [line for _, line in iter_lines(names_file)]
    if not names:
        raise VisionOpsError(f"{names_file} lists no class names; write one class name per line")
    entries: dict[str, list[Path]] = {}
    for key, split in (("train", "train"), ("valid", "val"), ("test", "test")):
        if keys.get(key):
            entries[split] = [local(keys[key])]
    return YoloSource(obj_data, "CVAT YOLO 1.1 export (obj.data, obj.names, train.txt)", names, entries, folder)


def _from_label_studio(classes_txt: Path) -> YoloSource:
    """Label Studio 'YOLO with images': classes.txt, images/, labels/, no splits."""
    folder = classes_txt.parent
    names = [line for _, line in iter_lines(classes_txt)]
    if not names:
        raise VisionOpsError(f"{classes_txt} lists no class names; write one class name per line")
    return YoloSource(classes_txt, "Label Studio YOLO export (classes.txt, images/, labels/)", names,
                      {"train": [_absolute(folder / "images")]}, folder)


def describe_yolo_source(src: Path) -> YoloSource:
    """Names and split entries of a YOLO source: a yaml (any name), or a folder with one yaml,
    CVAT YOLO 1.1's obj.data, or Label Studio's classes.txt + images/."""
    src = _absolute(Path(src))
    if src.is_file():
        if src.name == "obj.data":
            return _from_darknet(src)
        if src.name == "classes.txt":
            return _from_label_studio(src)
        return _from_yaml(src)
    if src.is_dir() and not (src / DATA_YAML).is_file() and not list(src.glob("*.yaml")) + list(src.glob("*.yml")):
        if (src / "obj.data").is_file():
            return _from_darknet(src / "obj.data")
        if (src / "classes.txt").is_file() and (src / "images").is_dir():
            return _from_label_studio(src / "classes.txt")
    return _from_yaml(_absolute(find_data_yaml(src)))


def _label_folders_near(source: YoloSource, used: set[Path]) -> list[Path]:
    """Folders named 'labels' near the data set holding .txt files no image claimed: where lost
    labels usually are."""
    places = {source.config.parent / "labels", source.base / "labels"}
    for paths in source.entries.values():
        for entry in paths:
            for e in (entry, Path(os.path.realpath(entry))):
                places |= {e.parent / "labels", e.parent.parent / "labels" / e.name}
    return sorted(p for p in places if p.is_dir() and any(t not in used for t in p.rglob("*.txt")))


def _symlink_note(entries: list[Path]) -> str:
    """'images/ is a symlink to ../images; ' for the first split entry (or ancestor) that is a symlink."""
    for entry in entries:
        for p in (entry, *entry.parents):
            if p.is_symlink():
                return f"{p} is a symlink to {os.readlink(p)}; "
    return ""


def _check_labels_found(
    source: YoloSource, split: str, images: int, found: int, unlabeled: bool, used: set[Path],
    problems: Problems, report: ImportReport,
) -> None:
    """A split whose images found no label file at all: labels lost (error) or meant as background."""
    if images == 0 or found > 0:
        return
    entries = source.entries[split]
    looked = sorted({str(label_for(e / "x.jpg").parent) if e.is_dir() else f"beside the images listed in {e}"
                     for e in entries})
    elsewhere = _label_folders_near(source, used)
    where = f"labels looked for at {', '.join(looked)}"
    if elsewhere:
        problems.add(
            "labels_not_found", source.config,
            f"split '{split}': {_symlink_note(entries)}{where}; 0 of {images:,} found; "
            f"label files found at {', '.join(map(str, elsewhere))}",
            "put the labels where the image paths say (the last /images/ of an image path replaced by "
            "/labels/, or beside the image), or point the split at images whose labels sit there",
        )
    elif not unlabeled:
        problems.add(
            "no_labels", source.config,
            f"split '{split}': {images:,} images and not one label file ({where}; no labels folder nearby)",
            "add the label files, or pass --unlabeled (unlabeled=True) if these images are meant as "
            "background (no objects)",
        )
    else:
        report.notes.append(f"split '{split}': {images} images without label files imported as background "
                            "(--unlabeled)")


def _orphan_labels(source: YoloSource, used: set[Path], problems: Problems) -> None:
    """Label files in a split's labels folder that no image claimed: annotations that would be lost."""
    for split, paths in source.entries.items():
        for entry in paths:
            if not entry.is_dir():
                continue
            ldir = label_for(entry / "x.jpg").parent
            if ldir == entry or not ldir.is_dir():
                continue
            for label in sorted(ldir.rglob("*.txt")):
                if label not in used and label.stat().st_size and label.read_text(encoding="utf-8").strip():
                    problems.add(
                        "orphan_label", label,
                        f"split '{split}': has boxes but no image (looked for {label.stem}.* under {entry})",
                        "add the image, or delete the label file if the image was removed on purpose",
                    )


def import_yolo(
    src: Path,
    dst: Path,
    *,
    split_ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    overwrite: bool = False,
    unlabeled: bool = False,
) -> Path:
    """Copy a YOLO data set into our layout at dst, carving missing val/test splits out of train.

    `src` is a data set folder (with data.yaml, exactly one yaml of any name, CVAT's obj.data or
    Label Studio's classes.txt) or that file. Labels are looked up beside the image path as given
    first (see `label_candidates`). Some images without a label file are kept as background
    (Ultralytics' rule); a split where no image has one fails, naming where labels were looked
    for and any labels folder found nearby, unless `unlabeled` says the images are background.
    Label files that no image claims also fail. The source is only read. Raises
    DataValidationError listing every problem (file and line), else returns dst.
    """
    check_split_ratios(split_ratios)
    source = describe_yolo_source(Path(src))
    if "train" not in source.entries:
        raise VisionOpsError(
            f"{source.config} names no 'train' images and {source.base / 'images' / 'train'} does not exist; "
            "add 'train: <folder or list>' to the yaml"
        )
    read_from = [p for paths in source.entries.values() for p in paths]
    dst = check_destination(dst, read_from + [label_for(p / "x.jpg").parent for p in read_from], overwrite)
    problems = Problems(source.config)
    report = ImportReport(format="yolo", source=str(source.config), detected=source.kind)
    records: list[Record] = []
    seen: dict[Path, str] = {}
    used: dict[Path, Path] = {}
    moved = 0
    for split, paths in source.entries.items():
        counts = report.split(split)
        for entry in paths:
            for img in _images_of(entry, source.config, problems):
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
                candidates = label_candidates(img)
                label = next((c for c in candidates if c.is_file()), None)
                if label is not None and label in used:
                    problems.add(
                        "shared_label_file", img, f"shares the label file {label} with {used[label]}",
                        "give each image its own stem (a.jpg and a.png both read a.txt)",
                    )
                    continue
                if label is not None:
                    used[label] = img
                    moved += label != candidates[0]
                w, h = image_size(img)
                boxes = read_yolo_labels(label, len(source.names), w, h, problems) if label else []
                counts.add_image(len(boxes), has_label_file=label is not None)
                records.append(Record(img, boxes, split))
    for split in source.entries:
        counts = report.split(split)
        _check_labels_found(source, split, counts.images, counts.label_files, unlabeled, set(used), problems, report)
    _orphan_labels(source, set(used), problems)
    if moved:
        report.notes.append(f"{moved} label file(s) found beside the image or its symlink target, not at "
                            "Ultralytics' images/ -> labels/ location")
    if not records and not problems:
        problems.add("empty_dataset", source.config, "no images found in any split", "check the split entries")
    problems.raise_if_any("a YOLO data set")
    records = assign_splits(records, split_ratios, seed, report)
    meta = {"format": "yolo", "path": str(source.config), "seed": seed, "split_ratios": list(split_ratios)}
    return write_dataset(records, source.names, dst, source=meta, overwrite=overwrite, report=report)

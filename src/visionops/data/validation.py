"""Check a data set in the on-disk layout and report every problem before anything is registered.

A reviewer should be able to fix a broken data set from one report, so the checks never stop
at the first problem: each names the file (and line) and says what to do.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image, UnidentifiedImageError

from visionops.data.layout import (
    DATA_YAML,
    IMAGE_SUFFIXES,
    SPLITS,
    image_dir,
    iter_images,
    label_dir,
    parse_label_line,
    read_class_names,
)
from visionops.errors import DataValidationError
from visionops.hashing import file_digest

_EPS = 1e-6  # float slack for boxes that touch the border
MIN_BOX_PX = 2.0  # a side below this after denormalising cannot be a real object: a units mistake
BACKGROUND_WARN_SHARE = 0.5  # above this share of images without boxes, training mostly learns "nothing"
# Splits that must hold boxes: a model cannot learn from a train split without objects, and a val
# split without objects scores every model mAP 0, so the gate would reject (or accept) blindly.
SPLITS_NEEDING_BOXES: tuple[str, ...] = ("train", "val")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data set: where, what, and how to fix it."""

    code: str
    path: str
    message: str
    fix: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message} -> {self.fix}"


@dataclass
class ValidationReport:
    """Errors (`problems`, they block registration) and `warnings` (printed, never blocking)."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    images_checked: int = 0
    labels_checked: int = 0
    warnings: list[Problem] = field(default_factory=list)
    boxes: dict[str, int] = field(default_factory=dict)
    background: dict[str, int] = field(default_factory=dict)
    classes_without_train_instances: list[str] = field(default_factory=list)
    task: str = "detect"  # which layout was checked; classification reports images per class, not boxes
    per_class: dict[str, int] = field(default_factory=dict)  # classify: readable images per class (all splits)

    @property
    def ok(self) -> bool:
        return not self.problems

    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    def warning_codes(self) -> set[str]:
        return {p.code for p in self.warnings}

    def summary(self, limit: int = 20) -> str:
        if self.ok and self.task == "classify":
            lines = [f"{self.root}: OK ({self.images_checked} images in {len(self.per_class)} classes)"]
        elif self.ok:
            lines = [
                f"{self.root}: OK ({self.images_checked} images, {self.labels_checked} label files, "
                f"{sum(self.boxes.values())} boxes)"
            ]
        else:
            lines = [f"{self.root}: {len(self.problems)} problem(s) found; nothing was registered."]
            lines += [f"  - {p}" for p in self.problems[:limit]]
            if len(self.problems) > limit:
                lines.append(f"  ... and {len(self.problems) - limit} more (see the full report)")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  - {p}" for p in self.warnings[:limit]]
        return "\n".join(lines)

    def raise_if_failed(self) -> ValidationReport:
        if not self.ok:
            first = self.problems[0]
            raise DataValidationError(
                f"data set {self.root} has {len(self.problems)} problem(s), first: {first}", report=self
            )
        return self

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "images_checked": self.images_checked,
            "labels_checked": self.labels_checked,
            "problems": [p.__dict__ for p in self.problems],
            "warnings": [p.__dict__ for p in self.warnings],
            "boxes": dict(self.boxes),
            "background": dict(self.background),
            "classes_without_train_instances": list(self.classes_without_train_instances),
            "task": self.task,
            "per_class": dict(self.per_class),
        }


def _rel(root: Path, p: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _check_image(path: Path) -> str | None:
    """None when the image decodes fully; else the reason. verify() alone misses truncated files."""
    return _decode(path)[0]


def _decode(path: Path) -> tuple[str | None, tuple[int, int] | None]:
    """(reason or None, (width, height) or None): one full decode serves both checks and box sizes."""
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
            if im.width < 2 or im.height < 2:
                return f"image is {im.width}x{im.height} pixels, too small to hold an object", None
            return None, im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"cannot be decoded as an image ({type(exc).__name__}: {exc})", None


def _yaml_names(root: Path) -> tuple[list[str], Problem | None]:
    """Class names of data.yaml, or a named problem (syntax errors with their line) instead."""
    try:
        names = read_class_names(root)
        if not names:
            raise ValueError("no class names")
        return names, None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return [], Problem(
            "bad_data_yaml", DATA_YAML, f"is not valid YAML ({what})",
            "fix the YAML syntax (indentation, a missing ':' or an unclosed quote or bracket)", line,
        )
    except (FileNotFoundError, ValueError, OSError, TypeError) as exc:
        fix = f"write a {DATA_YAML} with 'names:' listing the classes"
        return [], Problem("bad_data_yaml", DATA_YAML, str(exc), fix)


def _check_label_file(
    root: Path, path: Path, names: list[str], size: tuple[int, int] | None = None, boxes: list | None = None
) -> list[Problem]:
    """Every line of one label file; the class-range check needs data.yaml's names (skipped without),
    the pixel-size check the image's size. Good boxes are appended to `boxes` for the counts."""
    n_classes = len(names)
    rel = _rel(root, path)
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem("unreadable_label", rel, f"cannot be read ({exc})", "rewrite it as UTF-8 text")]
    for no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            box = parse_label_line(raw)
        except ValueError as exc:
            problems.append(
                Problem(
                    "malformed_line", rel, f"{exc}: {raw.strip()!r}",
                    "write one box per line as 'class cx cy w h' with coordinates normalised to 0..1", no,
                )
            )
            continue
        if names and not 0 <= box.cls < n_classes:
            problems.append(
                Problem(
                    "class_out_of_range", rel,
                    f"class id {box.cls} is not one of the {n_classes} classes in {DATA_YAML} (0..{n_classes - 1})",
                    f"use an id from {DATA_YAML} ({', '.join(f'{i}={n}' for i, n in enumerate(names))}) "
                    "or add the class there",
                    no,
                )
            )
        if box.w <= 0 or box.h <= 0:
            problems.append(
                Problem(
                    "zero_area_box", rel, f"box has zero or negative size (w={box.w:g}, h={box.h:g})",
                    "remove the line or give the box a positive width and height", no,
                )
            )
            continue
        x0, y0, x1, y1 = box.corners()
        coords_ok = all(-_EPS <= v <= 1 + _EPS for v in (box.cx, box.cy, box.w, box.h))
        if not coords_ok or x0 < -_EPS or y0 < -_EPS or x1 > 1 + _EPS or y1 > 1 + _EPS:
            problems.append(
                Problem(
                    "box_outside_image", rel,
                    f"box reaches outside the image (corners {x0:.3f},{y0:.3f} to {x1:.3f},{y1:.3f}; must be in 0..1)",
                    "clip the box to the image, or check that coordinates are normalised by the image size", no,
                )
            )
            continue
        if size is not None and (box.w * size[0] < MIN_BOX_PX or box.h * size[1] < MIN_BOX_PX):
            problems.append(
                Problem(
                    "tiny_box", rel,
                    f"box is {box.w * size[0]:.2f}x{box.h * size[1]:.2f} px in the {size[0]}x{size[1]} image "
                    f"(under {MIN_BOX_PX:g} px): the coordinates look normalised twice (pixels divided by the "
                    "image size once too often)",
                    "re-export the labels with coordinates divided by the image size exactly once, "
                    "or delete the line if the object really is that small", no,
                )
            )
            continue
        if boxes is not None:
            boxes.append(box)
    return problems


def validate(root: Path, splits: tuple[str, ...] = SPLITS) -> ValidationReport:
    """Every problem of the data set at `root`; `report.raise_if_failed()` turns them into an error.

    The layout's task (`visionops.data.kinds.folder_task`) picks the checks: detection's here,
    classification's in `visionops.data.classify.validation`.
    """
    from visionops.data.kinds import data_kind

    return data_kind(root).validate(Path(root), splits)


def validate_detect(root: Path, splits: tuple[str, ...] = SPLITS) -> ValidationReport:
    """Every problem of a detection data set (images/, labels/, data.yaml) at `root`."""
    root = Path(root).resolve()
    report = ValidationReport(root)
    add = report.problems.append
    if not root.is_dir():
        add(Problem("missing_dataset", str(root), "folder does not exist", "generate or import a data set first"))
        return report
    names, yaml_problem = _yaml_names(root)
    if yaml_problem is not None:
        add(yaml_problem)
    per_class_train: Counter[int] = Counter()
    seen_content: dict[str, tuple[str, str]] = {}
    by_split_dupes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for split in splits:
        images = list(iter_images(root, split))
        if not images:
            add(
                Problem(
                    "empty_split", _rel(root, image_dir(root, split)),
                    f"split '{split}' has no images", f"put at least one image (and its label file) in images/{split}",
                )
            )
        stems: dict[str, Path] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for img in images:
            if img.stem in stems:
                add(
                    Problem(
                        "duplicate_stem", _rel(root, img),
                        f"shares the label file {img.stem}.txt with {_rel(root, stems[img.stem])}",
                        "rename one of the images (and give it its own label file)",
                    )
                )
            stems.setdefault(img.stem, img)
            report.images_checked += 1
            rel = _rel(root, img)
            reason, size = _decode(img)
            if reason:
                add(Problem("corrupt_image", rel, reason, "replace the file with a readable JPEG/PNG or delete it"))
            else:
                sizes.setdefault(img.stem, size)
                digest = file_digest(img)
                if digest in seen_content and seen_content[digest][0] != split:
                    by_split_dupes[(digest, seen_content[digest][1])].append(rel)
                else:
                    seen_content.setdefault(digest, (split, rel))
            label = label_dir(root, split) / f"{img.stem}.txt"
            if not label.exists():
                add(
                    Problem(
                        "missing_label", rel, f"no label file {_rel(root, label)}",
                        "add the label file; for an image with no objects create an empty .txt",
                    )
                )
        ldir = label_dir(root, split)
        with_boxes: set[str] = set()
        report.boxes[split] = 0
        if ldir.is_dir():
            for label in sorted(ldir.glob("*.txt")):
                report.labels_checked += 1
                if label.stem not in stems:
                    add(
                        Problem(
                            "orphan_label", _rel(root, label),
                            f"label has no image images/{split}/{label.stem}.* "
                            f"(looked for {', '.join(IMAGE_SUFFIXES)})",
                            "add the image or delete the label file",
                        )
                    )
                else:
                    good: list = []
                    report.problems.extend(_check_label_file(root, label, names, sizes.get(label.stem), good))
                    report.boxes[split] += len(good)
                    if good:
                        with_boxes.add(label.stem)
                    if split == "train":
                        per_class_train.update(b.cls for b in good)
        report.background[split] = len(stems) - len(with_boxes & set(stems))
    for (_, first), others in sorted(by_split_dupes.items(), key=lambda kv: kv[0][1]):
        for other in others:
            add(
                Problem(
                    "duplicate_across_splits", other, f"same image content as {first} in another split",
                    "keep each image in one split only, or the test score measures memory, not skill",
                )
            )
    if report.images_checked:
        _check_usefulness(report, names, per_class_train, splits)
    return report


def _check_usefulness(report: ValidationReport, names: list[str], per_class_train: Counter[int],
                      splits: tuple[str, ...]) -> None:
    """A data set that parses can still teach nothing: no boxes, a class never seen in train,
    mostly background. These are what silently turned imports into mAP-0 runs before."""
    add = report.problems.append
    total = sum(report.boxes.values())
    if total == 0:
        add(Problem(
            "no_boxes", "labels", f"the data set has {report.images_checked} images but not one box",
            "check that the label files were found and are not empty (an import that lost its labels "
            "looks like this); a model cannot learn from background alone",
        ))
    else:
        for split in SPLITS_NEEDING_BOXES:
            images = report.background.get(split, 0)
            if split in splits and report.boxes.get(split, 0) == 0 and images:
                add(Problem(
                    "no_boxes_in_split", f"labels/{split}",
                    f"split '{split}' has {images} images but not one box",
                    f"add labelled images to {split} (or re-split the data so every split holds objects)",
                ))
    if "train" in splits and names and report.boxes.get("train", 0):
        report.classes_without_train_instances = [n for i, n in enumerate(names) if not per_class_train.get(i)]
        if report.classes_without_train_instances:
            report.warnings.append(Problem(
                "class_without_train_instances", DATA_YAML,
                f"class(es) {', '.join(report.classes_without_train_instances)} have no box in train: "
                "the model cannot learn them",
                "label some training images with these classes, or remove them from names",
            ))
    background = sum(report.background.values())
    if total and background > BACKGROUND_WARN_SHARE * report.images_checked:
        report.warnings.append(Problem(
            "mostly_background", "labels",
            f"{background} of {report.images_checked} images ({background / report.images_checked:.0%}) have no box",
            "check that labels were not lost; keep background images to a minority of the data set",
        ))

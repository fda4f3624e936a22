"""Check a classification data set (`<root>/{train,val,test}/<class>/<image>`) and report every problem.

Like detection's validator it never stops at the first problem: a reviewer fixes a broken data set
from one report. The classification-specific traps it guards against:

- a class missing from val or test (or only in val/test): Ultralytics builds one ImageFolder per
  split, so the split's class indices shift and it is scored against the wrong classes;
- an empty class folder (crashed older Ultralytics versions; teaches nothing in any case);
- nested sub-folders inside a class folder: torchvision's ImageFolder walks them and silently trains
  their images as the parent class, while our counts and version only see the class folder's own
  images; whether `dog/puppies/` means "dog" or a class of its own is the owner's call, so it is an
  error naming them (imports refuse them too rather than flatten);
- the same image (bytes) in two splits (the test score would measure memory) or in two classes;
- heavy class imbalance, which is legitimate data but worth a warning with the counts.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from visionops.data.classify.layout import SPLIT_ALIASES, class_dirs, class_names
from visionops.data.layout import DATA_YAML, IMAGE_SUFFIXES, MANIFEST, SPLITS
from visionops.data.validation import Problem, ValidationReport, _decode, _rel
from visionops.hashing import file_digest

IMBALANCE_WARN_RATIO = 10.0  # largest/smallest class in train at or above this: warn (not an error)
MIN_CLASSES = 2  # one class is not a classification problem: every prediction would be right


def _check_split_folder(root: Path, split: str, report: ValidationReport) -> dict[str, list[Path]]:
    """Problems of one split folder; returns {class: decodable images} for the cross-split checks."""
    add = report.problems.append
    folder = root / split
    found: dict[str, list[Path]] = {}
    if not folder.is_dir():
        aliases = [a for a, s in SPLIT_ALIASES.items() if s == split and a != split and (root / a).is_dir()]
        fix = (f"rename {aliases[0]}/ to {split}/ (or import the folder with `visionops data import`)" if aliases
               else f"add {split}/<class>/<images> for every class (an import carves missing splits)")
        add(Problem("empty_split", split, f"split '{split}' is missing", fix))
        return found
    for stray in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        add(Problem("image_outside_class", _rel(root, stray),
                    "file lies directly in the split folder, not in a class folder",
                    f"move it into {split}/<class>/ or delete it"))
    for cdir in class_dirs(root, split):
        images: list[Path] = []
        for p in sorted(cdir.iterdir(), key=lambda q: q.name):
            rel = _rel(root, p)
            if p.name.startswith("."):
                continue
            if p.is_dir():
                add(Problem("nested_folder", rel,
                            f"sub-folder inside class folder '{cdir.name}': Ultralytics would silently train its "
                            f"images as '{cdir.name}', but they are not counted or versioned",
                            f"move its images up into {_rel(root, cdir)}/, or make it a class folder of its own"))
                continue
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                add(Problem("not_an_image", rel, f"suffix {p.suffix or '(none)'!r} is not one of "
                            f"{', '.join(IMAGE_SUFFIXES)}", "delete it or convert it to JPEG/PNG"))
                continue
            report.images_checked += 1
            reason, _ = _decode(p)
            if reason:
                add(Problem("corrupt_image", rel, reason, "replace the file with a readable JPEG/PNG or delete it"))
                continue
            images.append(p)
        if not images and not any(p.is_dir() for p in cdir.iterdir()):
            add(Problem("empty_class", _rel(root, cdir), f"class folder '{cdir.name}' in {split} holds no image",
                        f"add images of '{cdir.name}' or delete the folder (in every split)"))
        found[cdir.name] = images
    if not found:
        add(Problem("empty_split", split, f"split '{split}' has no class folders",
                    f"put each class's images in {split}/<class>/"))
    return found


def _check_classes(per_split: dict[str, dict[str, list[Path]]], report: ValidationReport) -> None:
    """Every class of train in every split, no class outside train, at least two classes."""
    add = report.problems.append
    train = [c for c, imgs in per_split.get("train", {}).items() if imgs]
    if per_split.get("train") and len(per_split["train"]) < MIN_CLASSES:
        add(Problem("too_few_classes", "train", f"only {len(per_split['train'])} class folder(s) in train",
                    f"a classifier needs at least {MIN_CLASSES} classes: add a folder per class"))
    for split in SPLITS:
        if split == "train" or split not in per_split or not per_split[split]:
            continue
        have = {c for c, imgs in per_split[split].items() if imgs}
        for cls in train:
            if cls not in have:
                add(Problem("class_missing_from_split", f"{split}/{cls}",
                            f"class '{cls}' has images in train but none in {split}: Ultralytics would number "
                            f"{split}'s classes differently and score it against the wrong ones",
                            f"add images of '{cls}' to {split}/{cls}/ (or re-import to carve the splits)"))
        for cls in sorted(set(per_split[split]) - set(per_split.get("train", {}))):
            add(Problem("class_not_in_train", f"{split}/{cls}",
                        f"class '{cls}' is in {split} but has no folder in train: the model cannot learn it",
                        f"add train/{cls}/ with images, or remove {split}/{cls}/"))


def _check_duplicates(root: Path, per_split: dict[str, dict[str, list[Path]]], report: ValidationReport) -> None:
    """Same bytes in two splits (a test score of memory) or in two classes (contradictory labels)."""
    seen: dict[str, list[tuple[str, str, Path]]] = defaultdict(list)
    for split, classes in per_split.items():
        for cls, images in classes.items():
            for p in images:
                seen[file_digest(p)].append((split, cls, p))
    for copies in seen.values():
        first_split, first_cls, first = copies[0]
        for split, cls, p in copies[1:]:
            if split != first_split:
                report.problems.append(Problem(
                    "duplicate_across_splits", _rel(root, p), f"same image content as {_rel(root, first)} "
                    "in another split", "keep each image in one split only, or the test score measures memory"))
            elif cls != first_cls:
                report.problems.append(Problem(
                    "duplicate_across_classes", _rel(root, p), f"same image content as {_rel(root, first)} "
                    f"labelled '{first_cls}'", "keep the image in the one class it shows"))


def _check_balance(per_split: dict[str, dict[str, list[Path]]], report: ValidationReport) -> None:
    counts = {c: len(imgs) for c, imgs in per_split.get("train", {}).items() if imgs}
    if len(counts) < 2:
        return
    largest, smallest = max(counts, key=counts.get), min(counts, key=counts.get)  # type: ignore[arg-type]
    ratio = counts[largest] / counts[smallest]
    if ratio >= IMBALANCE_WARN_RATIO:
        listed = ", ".join(f"{c}={n}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        report.warnings.append(Problem(
            "class_imbalance", "train",
            f"classes are heavily imbalanced in train: '{largest}' has {counts[largest]} images, '{smallest}' "
            f"{counts[smallest]} ({ratio:.1f}x, warning at {IMBALANCE_WARN_RATIO:g}x; all: {listed})",
            "add images of the small classes, or watch their per-class recall in evaluation",
        ))


def validate_classify(root: Path, splits: tuple[str, ...] = SPLITS) -> ValidationReport:
    """Every problem of the classification data set at `root` (errors) plus warnings."""
    root = Path(root).resolve()
    report = ValidationReport(root, task="classify")
    if not root.is_dir():
        report.problems.append(Problem("missing_dataset", str(root), "folder does not exist",
                                       "generate or import a data set first"))
        return report
    if (root / DATA_YAML).is_file():
        report.warnings.append(Problem("ignored_data_yaml", DATA_YAML,
                                       f"a classification data set needs no {DATA_YAML}; it is ignored",
                                       f"delete it, or fix {MANIFEST} if this is a detection data set"))
    per_split = {split: _check_split_folder(root, split, report) for split in splits}
    report.boxes = {split: 0 for split in splits}
    report.background = {split: 0 for split in splits}
    _check_classes(per_split, report)
    _check_duplicates(root, per_split, report)
    _check_balance(per_split, report)
    names = class_names(root)
    for classes in per_split.values():
        for cls, images in classes.items():
            report.per_class[cls] = report.per_class.get(cls, 0) + len(images)
    if "train" in splits:
        report.classes_without_train_instances = [c for c in names if not per_split["train"].get(c)]
    return report

"""Plant known faults into a copy of a data set, to show (notebook 01) and test what validation catches.

Each fault is one kind of mistake people make when they assemble detection data by hand: a file
that is not an image, an image without its label file, a class id that data.yaml does not know,
a box that reaches outside the image, a line with a missing value, a box without area, a label
without an image, the same picture in two splits. Every fault maps to the validation code that
must report it, so `validate(copy).codes()` equals the codes of what was planted.

The source is only read; everything happens in the copy. A classification data set gets its
own faults (`visionops.data.classify.faults`); `plant_faults` picks by the data set's task.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from visionops.data.layout import (
    DATA_YAML,
    MANIFEST,
    image_dir,
    iter_images,
    label_dir,
    label_path_for,
    read_class_names,
)

# validation code -> what the fault does (in the order they are planted)
FAULTS: dict[str, str] = {
    "corrupt_image": "overwrite an image with bytes that are not an image",
    "missing_label": "delete the label file of an image",
    "class_out_of_range": "give a box a class id that data.yaml does not define",
    "box_outside_image": "add a box that reaches past the right edge of the image",
    "malformed_line": "add a label line with only three of its five values",
    "zero_area_box": "add a box with zero width",
    "orphan_label": "add a label file whose image does not exist",
    "duplicate_across_splits": "copy a training image (and its label) into the test split",
}

# faults that need an image (and its label) of their own in the train split
_PER_IMAGE = ("corrupt_image", "missing_label", "class_out_of_range", "box_outside_image",
              "malformed_line", "zero_area_box", "duplicate_across_splits")


@dataclass(frozen=True)
class PlantedFault:
    """One planted fault: the validation code it must trigger, the file (relative to the copy's
    root) where validation reports it, and what was done."""

    code: str
    path: str
    what: str


def fresh_copy(src: Path, dst: Path, kinds: tuple[str, ...] | None,
               faults: dict[str, str]) -> tuple[Path, Path, tuple[str, ...]]:
    """(src, dst, kinds) resolved: the kinds checked against `faults` (None: all of them) and `dst`
    replaced by a copy of `src` without caches, manifest or exports (what either task plants into)."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    kinds = tuple(faults) if kinds is None else tuple(kinds)
    unknown = sorted(set(kinds) - set(faults))
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {list(faults)}")
    if dst == src or src in dst.parents:
        raise ValueError(f"the copy {dst} must not be the source or inside it")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.cache", MANIFEST, "export"))
    return src, dst, kinds


def plant_faults(src: Path, dst: Path, kinds: tuple[str, ...] | None = None) -> list[PlantedFault]:
    """Copy the data set at `src` to `dst` (replacing it) and plant one fault of each kind.

    `kinds` defaults to every fault in FAULTS. Each fault uses a different training image, so no
    fault hides another; raises ValueError when the train split has too few images for them.
    A classification data set gets the classification faults instead (same contract).
    """
    from visionops.data.kinds import folder_task

    if folder_task(Path(src)) == "classify":
        from visionops.data.classify import faults as classify_faults

        return classify_faults.plant_faults(src, dst, kinds)
    src, dst, kinds = fresh_copy(src, dst, kinds, FAULTS)
    names = read_class_names(dst)
    images = list(iter_images(dst, "train"))
    needed = sum(k in _PER_IMAGE for k in kinds)
    if len(images) < needed:
        raise ValueError(f"{src} has {len(images)} training images; planting {needed} faults needs {needed}")
    pick = iter(images)
    planted: list[PlantedFault] = []

    def rel(p: Path) -> str:
        return p.relative_to(dst).as_posix()

    def append_line(label: Path, line: str) -> None:
        text = label.read_text() if label.exists() else ""
        label.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")

    for kind in kinds:
        what = FAULTS[kind]
        if kind == "orphan_label":
            orphan = label_dir(dst, "val") / "orphan_without_image.txt"
            orphan.parent.mkdir(parents=True, exist_ok=True)
            orphan.write_text("0 0.500000 0.500000 0.200000 0.200000\n")
            planted.append(PlantedFault(kind, rel(orphan), what))
            continue
        image = next(pick)
        label = label_path_for(dst, "train", image)
        if kind == "corrupt_image":
            image.write_bytes(b"this is not an image, it only has an image's name\n" * 4)
            planted.append(PlantedFault(kind, rel(image), what))
        elif kind == "missing_label":
            label.unlink(missing_ok=True)
            planted.append(PlantedFault(kind, rel(image), what))
        elif kind == "class_out_of_range":
            append_line(label, f"{len(names) + 5} 0.500000 0.500000 0.200000 0.200000")
            planted.append(PlantedFault(kind, rel(label), what))
        elif kind == "box_outside_image":
            append_line(label, "0 0.950000 0.500000 0.300000 0.300000")
            planted.append(PlantedFault(kind, rel(label), what))
        elif kind == "malformed_line":
            append_line(label, "1 0.500000 0.500000")
            planted.append(PlantedFault(kind, rel(label), what))
        elif kind == "zero_area_box":
            append_line(label, "0 0.500000 0.500000 0.000000 0.200000")
            planted.append(PlantedFault(kind, rel(label), what))
        elif kind == "duplicate_across_splits":
            copy = image_dir(dst, "test") / f"copied_{image.name}"
            shutil.copy2(image, copy)
            if label.exists():
                shutil.copy2(label, label_path_for(dst, "test", copy))
            planted.append(PlantedFault(kind, rel(copy), what))
    if not (dst / DATA_YAML).is_file():  # pragma: no cover - copytree keeps it
        raise ValueError(f"{src} has no {DATA_YAML}")
    return planted

"""Plant known faults into a copy of a classification data set (notebook 01 with task=classify).

The classification twin of `visionops.data.faults`: each fault is a mistake people make when
they gather a folder per class by hand (a file that is not an image, a text file named .jpg, a
stray file beside the class folders, a sub-folder inside a class folder, an empty class folder,
a class left out of a split, a class that only the test split has, the same picture in two
splits). Every fault maps to the validation code (`data/classify/validation.py`) that must
report it, so `validate(copy).codes()` equals the codes of what was planted.

The source is only read; everything happens in the copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from visionops.data.classify.layout import class_names, iter_samples

# validation code -> what the fault does (in the order they are planted)
FAULTS: dict[str, str] = {
    "corrupt_image": "overwrite an image with bytes that are not an image (a text file named .jpg)",
    "not_an_image": "add a notes.txt inside a class folder",
    "image_outside_class": "put an image directly in train/, in no class folder",
    "nested_folder": "add a sub-folder with an image inside a class folder",
    "empty_class": "add a class folder to train with no image in it",
    "class_missing_from_split": "delete the val folder of the last class",
    "class_not_in_train": "add a test folder of a class that train does not have",
    "duplicate_across_splits": "copy a training image into the test split, same class",
}


def plant_faults(src: Path, dst: Path, kinds: tuple[str, ...] | None = None) -> list:
    """Copy the classification data set at `src` to `dst` (replacing it) and plant one fault of
    each kind (default: every fault in FAULTS); each fault uses its own training image."""
    from visionops.data.faults import PlantedFault, fresh_copy

    src, dst, kinds = fresh_copy(src, dst, kinds, FAULTS)
    names = class_names(dst)
    if len(names) < 2:
        raise ValueError(f"{src} has {len(names)} class(es); planting faults needs a classification data set")
    first = names[0]
    # images of the first class only: the last class's val folder is deleted, so nothing planted
    # there could hide the fault that deletion makes
    train = [s.image for s in iter_samples(dst, ("train",)) if s.label == first]
    needed = 4  # corrupt_image, image_outside_class, nested_folder, duplicate_across_splits
    if len(train) < needed:
        raise ValueError(f"{src} has {len(train)} training images of '{first}'; planting needs {needed}")
    pick = iter(train)
    planted: list[PlantedFault] = []

    def rel(p: Path) -> str:
        return p.relative_to(dst).as_posix()

    for kind in kinds:
        what = FAULTS[kind]
        if kind == "corrupt_image":
            image = next(pick)
            image.write_bytes(b"this is not an image, it only has an image's name\n" * 4)
            planted.append(PlantedFault(kind, rel(image), what))
        elif kind == "not_an_image":
            notes = dst / "train" / first / "notes.txt"
            notes.write_text("photographed on the night shift\n")
            planted.append(PlantedFault(kind, rel(notes), what))
        elif kind == "image_outside_class":
            image = next(pick)
            stray = dst / "train" / f"stray_{image.name}"
            image.rename(stray)
            planted.append(PlantedFault(kind, rel(stray), what))
        elif kind == "nested_folder":
            image = next(pick)
            nested = dst / "train" / first / "more"
            nested.mkdir()
            image.rename(nested / image.name)
            planted.append(PlantedFault(kind, rel(nested), what))
        elif kind == "empty_class":
            empty = dst / "train" / "zz_empty_class"
            empty.mkdir()
            planted.append(PlantedFault(kind, rel(empty), what))
        elif kind == "class_missing_from_split":
            gone = dst / "val" / names[-1]
            shutil.rmtree(gone)
            planted.append(PlantedFault(kind, f"val/{names[-1]}", what))
        elif kind == "class_not_in_train":
            unseen = dst / "test" / "zz_unseen_class"
            unseen.mkdir()
            Image.new("RGB", (48, 40), (12, 200, 180)).save(unseen / "unseen_0000.png")  # new bytes: no duplicate
            planted.append(PlantedFault(kind, rel(unseen), what))
        elif kind == "duplicate_across_splits":
            image = next(pick)
            copy = dst / "test" / first / f"copied_{image.name}"
            shutil.copy2(image, copy)
            planted.append(PlantedFault(kind, rel(copy), what))
    return planted

"""Classification data that VisionOps did not make, built by the tests (never downloaded).

It differs from the synthetic objects in what a team's data differs: unicode class names,
non-square photos of mixed sizes and formats, no split folders, a CSV or an Azure ML JSONL
export instead of folders, stray files beside the images. `build_bad_corpus` writes the
broken inputs the validator and importers must name (one data set per case).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ["café", "猫", "straße"]  # unicode class names, sorted as Ultralytics sorts them
SIZES = [(160, 96), (96, 150), (200, 120), (128, 128), (90, 140)]  # (width, height): non-square, mixed
PER_CLASS = 9  # enough for stratified carving to put every class in every split


def photo(path: Path, cls: int, index: int, *, seed: int = 7) -> Path:
    """A small, unique image of class `cls` (its own colour and shape) saved at `path` (format by suffix)."""
    rng = random.Random(f"{seed}:{cls}:{index}:{path.name}")
    w, h = SIZES[(index + cls) % len(SIZES)]
    img = Image.new("RGB", (w, h), tuple(rng.randint(90, 170) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):  # texture that makes every file's bytes unique
        x, y = rng.randint(0, w - 1), rng.randint(0, h - 1)
        draw.point((x, y), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    r = min(w, h) // 3
    box = (w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r)
    colour = [(210, 40, 40), (40, 60, 210), (40, 170, 60), (200, 200, 40)][cls % 4]
    [draw.ellipse, draw.rectangle, draw.pieslice][cls % 3](box, fill=colour, **({"start": 0, "end": 270}
                                                                                if cls % 3 == 2 else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _suffix(i: int) -> str:
    return [".jpg", ".png", ".JPG", ".jpeg"][i % 4]


def build_class_folders(root: Path, *, classes: list[str] = CLASSES, per_class: int = PER_CLASS) -> Path:
    """`<root>/<class>/*` with no split folders, mixed sizes and formats, plus stray files to skip."""
    root = Path(root)
    for c, name in enumerate(classes):
        for i in range(per_class):
            photo(root / name / f"IMG_{c}{i:03d}{_suffix(i)}", c, i)
    (root / "README.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text("exported by the camera team\n")
    (root / classes[0] / ".DS_Store").write_bytes(b"\0\1")
    (root / classes[1] / "notes.txt").write_text("not an image\n")
    return root


def build_split_folders(root: Path, *, classes: list[str] = CLASSES) -> Path:
    """Roboflow-style `train/ valid/ test/` with a folder per class (6/2/2 images per class)."""
    root = Path(root)
    for split, n in (("train", 6), ("valid", 2), ("test", 2)):
        for c, name in enumerate(classes):
            for i in range(n):
                photo(root / split / name / f"{split}_{c}_{i}.jpg", c, i + 100 * len(split))
    return root


def build_csv_export(root: Path, *, header: bool = True) -> Path:
    """Images in `<root>/pics/<batch>/` and `<root>/labels.csv` of `path,label` (relative to the CSV)."""
    root = Path(root)
    rows = ["path,label"] if header else []
    for c, name in enumerate(CLASSES):
        for i in range(PER_CLASS):
            rel = f"pics/batch{i % 2}/{c}_{i}.jpg"
            photo(root / rel, c, i)
            rows.append(f"{rel},{name}")
    csv = root / "labels.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return csv


def build_jsonl_export(root: Path, *, multi_label: bool = False) -> Path:
    """An Azure ML Data Labeling multi-class export: `train_annotations.jsonl` and
    `validation_annotations.jsonl` with `azureml://` image URLs, images under `<root>/images/`."""
    root = Path(root)
    prefix = "azureml://subscriptions/s/resourcegroups/rg/workspaces/ws/datastores/workspaceblobstore/paths/"
    lines: dict[str, list[str]] = {"train": [], "validation": []}
    for c, name in enumerate(CLASSES):
        for i in range(PER_CLASS):
            split = "validation" if i >= 7 else "train"
            rel = f"labeling/cls/{c}_{i}.jpg"
            img = photo(root / "images" / rel, c, i)
            with Image.open(img) as im:
                w, h = im.size
            label: str | list[str] = [name, CLASSES[(c + 1) % 3]] if multi_label else name
            lines[split].append(json.dumps({"image_url": prefix + rel, "label": label, "image_details": {
                "format": "jpg", "width": f"{w}px", "height": f"{h}px"}}, ensure_ascii=False))
    for split, rows in lines.items():
        (root / f"{split}_annotations.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "train_annotations.jsonl"


def _layout(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """A data set in our layout: counts[split][class] images each."""
    for split, per_class in counts.items():
        for c, (name, n) in enumerate(per_class.items()):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                photo(root / split / name / f"{split}_{i}.jpg", c, i + 1000 * len(split))
    return root


def _good(a: int = 4, b: int = 4) -> dict[str, dict[str, int]]:
    return {"train": {"ant": a, "bee": b}, "val": {"ant": 2, "bee": 2}, "test": {"ant": 2, "bee": 2}}


def build_bad_corpus(root: Path) -> dict[str, Path]:
    """One data set (our layout) per bad input; the key is the problem code the validator must report
    (`class_imbalance` is a warning, `unicode_ok` must pass)."""
    root = Path(root)
    out: dict[str, Path] = {}

    case = _layout(root / "text_as_jpg", _good())
    (case / "train" / "ant" / "readme.jpg").write_text("this is text, not a JPEG\n")
    out["corrupt_image"] = case

    case = _layout(root / "empty_class", _good())
    for split in ("train", "val", "test"):
        (case / split / "cat").mkdir()
    out["empty_class"] = case

    case = _layout(root / "nested", _good())
    photo(case / "train" / "bee" / "drones" / "d_0.jpg", 1, 77)
    out["nested_folder"] = case

    counts = _good()
    counts["train"]["cow"] = 3
    out["class_missing_from_split"] = _layout(root / "only_in_train", counts)  # cow only in train

    counts = _good()
    counts["val"]["cow"] = 2
    out["class_not_in_train"] = _layout(root / "only_in_val", counts)

    case = _layout(root / "duplicates", _good())
    (case / "test" / "ant" / "copy.jpg").write_bytes((case / "train" / "ant" / "train_0.jpg").read_bytes())
    out["duplicate_across_splits"] = case

    out["class_imbalance"] = _layout(root / "imbalanced", _good(30, 2))

    unicode_counts = {s: {"café": n, "猫": n} for s, n in (("train", 4), ("val", 2), ("test", 2))}
    out["unicode_ok"] = _layout(root / "unicode", unicode_counts)
    return out

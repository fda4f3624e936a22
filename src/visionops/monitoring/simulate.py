"""Simulated production traffic for the production loop (notebook 08, tests): images from the same
generator as the synthetic data set but never in it (another seed), optionally shifted the way
cameras drift (darker), with the true boxes kept so a simulated labeler can answer for a person.

Real projects replace this module with their endpoint's real traffic and a real labeling tool;
everything downstream (collection, `visionops monitor`, `label export`, `data import --into`) is
the same code either way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from visionops.data.layout import Box
from visionops.data.synthetic import SyntheticSpec, render_image

TRAFFIC_SEED = 7919  # far from the data set's own seeds: no production image is a training image


@dataclass(frozen=True)
class Shot:
    """One simulated camera frame and what is really in it."""

    image: Image.Image
    boxes: list[Box]
    classes: list[str]


def darken(image: Image.Image, factor: float) -> Image.Image:
    """The same scene with less light (factor < 1): every pixel scaled, as an underexposed camera."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) * factor
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def traffic(spec: SyntheticSpec, n: int, *, seed: int = 0, brightness: float = 1.0) -> list[Shot]:
    """`n` frames like the data set's (same classes, sizes, clutter), from another seed; scaled
    by `brightness` (1.0: the data set's own light)."""
    frames = spec.model_copy(update={"seed": TRAFFIC_SEED + seed})
    shots = []
    for i in range(n):
        img, boxes = render_image(frames, "test", i)
        shots.append(Shot(darken(img, brightness) if brightness != 1.0 else img, boxes, list(spec.classes)))
    return shots


def label_with_truth(batch_dir: Path, truth: dict[str, Shot]) -> int:
    """Play the labeler: replace the pre-labels of every batch image with its true boxes (COCO,
    pixels), keyed by the image's file stem (`<correlation id>-<index>`, see labeling.batch_file_name).
    Returns the number of boxes written; an image with no known truth is an error naming it."""
    from visionops.errors import VisionOpsError
    from visionops.monitoring.labeling import ANNOTATIONS

    path = Path(batch_dir) / ANNOTATIONS
    doc = json.loads(path.read_text())
    category = {c["name"]: c["id"] for c in doc["categories"]}
    annotations = []
    for image in doc["images"]:
        shot = truth.get(Path(image["file_name"]).stem)
        if shot is None:
            raise VisionOpsError(f"{path}: no true labels for {image['file_name']}")
        w, h = image["width"], image["height"]
        for box in shot.boxes:
            name = shot.classes[box.cls]
            if name not in category:
                category[name] = max(category.values(), default=0) + 1
                doc["categories"].append({"id": category[name], "name": name, "supercategory": "none"})
            x0, y0, x1, y1 = box.corners()
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category[name],
                                "bbox": [round(x0 * w, 2), round(y0 * h, 2), round((x1 - x0) * w, 2),
                                         round((y1 - y0) * h, 2)],
                                "area": round((x1 - x0) * w * (y1 - y0) * h, 2), "iscrowd": 0})
    doc["annotations"] = annotations
    path.write_text(json.dumps(doc, indent=1))
    return len(annotations)

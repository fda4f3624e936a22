"""Simulated production traffic for the production loop (notebook 08, tests): the data set's own
train/val images (never its test split, which is the drift baseline) sent as a camera would send
them, optionally shifted the way cameras drift (darker), with their true boxes kept so a simulated
labeler can answer for a person. It works on any detection data set, a team's import included.

Real projects replace this module with their endpoint's real traffic and a real labeling tool;
everything downstream (collection, `visionops monitor`, `label export`, `data import --into`) is
the same code either way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from visionops.data.layout import Box, iter_items, read_class_names, read_labels
from visionops.errors import VisionOpsError


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


def traffic(dataset_dir: Path, n: int, *, brightness: float = 1.0, seed: int = 0,
            splits: tuple[str, ...] = ("val", "train")) -> list[Shot]:
    """`n` frames drawn (with a seeded shuffle, cycling when `n` exceeds them) from the data set's
    `splits`, each scaled by `brightness` (1.0: as the data set has it)."""
    items = list(iter_items(Path(dataset_dir), splits))
    if not items:
        raise VisionOpsError(f"{dataset_dir} has no images in {', '.join(splits)} to simulate traffic with")
    classes = read_class_names(Path(dataset_dir))
    order = np.random.default_rng(seed).permutation(len(items))
    shots = []
    for i in range(n):
        item = items[int(order[i % len(items)])]
        with Image.open(item.image) as img:
            frame = ImageOps.exif_transpose(img).convert("RGB")
        shots.append(Shot(darken(frame, brightness) if brightness != 1.0 else frame, read_labels(item.label),
                          classes))
    return shots


def label_with_truth(batch_dir: Path, truth: dict[str, Shot]) -> int:
    """Play the labeler: replace the pre-labels of every batch image with its true boxes (COCO,
    pixels), keyed by the image's file stem (`<correlation id>-<index>`, see labeling.batch_file_name).
    Returns the number of boxes written; an image with no known truth is an error naming it."""
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


def production_scorer(settings: Any, model: Any, folder: Path, *, sample_rate: float = 1.0,
                      runtime: str = "onnx") -> Any:
    """The endpoint's own request path (`serving.score.Scorer`) for a registered model version,
    with local collection into `folder` (every image sampled by default, so any can be labeled):
    what a deployed endpoint runs per request, without a server in between."""
    from visionops import registry
    from visionops.monitoring.collect import LocalCollector
    from visionops.serving.predictor import load_predictor
    from visionops.serving.protocol import Limits
    from visionops.serving.score import Scorer

    model_dir = registry.download(settings, model)
    predictor = load_predictor(model_dir, runtime, threads=settings.threads, name=model.name,
                               version=str(model.version))
    collector = LocalCollector(Path(folder), sample_rate=sample_rate,
                               sample_max_bytes=settings.collect_sample_max_bytes,
                               max_file_bytes=settings.collect_max_file_bytes, max_files=settings.collect_max_files)
    return Scorer(predictor, Limits.from_settings(settings), collector=collector)


def send(scorer: Any, shots: list[Shot], *, conf: float = 0.25) -> dict[str, Shot]:
    """One request per frame (PNG, as a camera client would encode it); returns the truth of each
    frame by `<correlation id>-0`, the name its sample gets in a labeling batch. Waits until the
    collector has written every record."""
    import base64
    import io

    truth = {}
    for shot in shots:
        buf = io.BytesIO()
        shot.image.save(buf, format="PNG")
        status, answer = scorer.score({"images": [base64.b64encode(buf.getvalue()).decode()], "conf": conf})
        if status != 200:
            raise VisionOpsError(f"the scorer refused a simulated frame: {answer}")
        truth[f"{answer['correlation_id']}-0"] = shot
    if not scorer.collector.flush(timeout=60):
        raise VisionOpsError("the collector did not write every record within 60 s")
    return truth

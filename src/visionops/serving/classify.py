"""Classification's task-specific serving parts: Ultralytics' `classify_transforms` without torch,
and the top-k labels with probabilities of the response.

Pre-processing is what Ultralytics applies to an image at classification predict and validation
time (`classify_transforms(imgsz)`, crop_fraction 1): resize the short side to `imgsz` with
torchvision's sizing and Pillow's bilinear filter (what torchvision's `Resize` runs on a PIL
image), center-crop `imgsz x imgsz` with torchvision's rounding, RGB scaled to [0, 1], no
mean/std. Both runtimes use exactly this blob, so ONNX Runtime and PyTorch see the same pixels;
a test checks it against Ultralytics' own transform. No OpenCV and no torch: the ONNX serving
environment has neither.

The exported model's `output0 [1, nc]` is already a softmax, so its row is the probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from visionops.serving.detect import Frame

DEFAULT_TOP_K = 5


@dataclass
class Classification:
    """The top-k classes of one image, best first, with their probabilities (softmax, 0..1)."""

    width: int
    height: int
    labels: list[str] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label(self) -> str | None:
        """The top-1 label (None only for a model without classes)."""
        return self.labels[0] if self.labels else None

    def to_dict(self, ndigits: int = 4) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "labels": list(self.labels),
            "class_ids": [int(c) for c in self.class_ids],
            "probabilities": [round(float(p), ndigits) for p in self.probabilities],
        }


def short_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(new width, new height) with the short side = size, as torchvision's Resize(int) computes it
    (the long side truncated, not rounded)."""
    if width <= height:
        return size, max(int(size * height / width), 1)
    return max(int(size * width / height), 1), size


def center_crop_box(width: int, height: int, size: int) -> tuple[int, int]:
    """(left, top) of torchvision's CenterCrop(size) on a width x height image."""
    return int(round((width - size) / 2.0)), int(round((height - size) / 2.0))


def classify_preprocess(arr: np.ndarray, size: int) -> tuple[np.ndarray, Frame]:
    """An RGB image -> a (1, 3, size, size) float32 blob in 0..1, and where the crop sits in the
    image (gain = the resize scale, pad = minus the crop offset: `Frame.to_image` maps crop pixels
    back to image pixels, as for detection)."""
    h, w = arr.shape[:2]
    new_w, new_h = short_side_size(w, h, size)
    im = Image.fromarray(np.ascontiguousarray(arr))
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = center_crop_box(new_w, new_h, size)
    cropped = np.asarray(im.crop((left, top, left + size, top + size)))
    blob = np.ascontiguousarray(cropped.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    return blob, Frame(width=w, height=h, gain=(new_w / w, new_h / h), pad=(-left, -top))


def effective_top_k(top_k: int | None, num_classes: int) -> int:
    """The request's top_k, or the default (5) capped at the number of classes."""
    if top_k is None:
        return max(1, min(DEFAULT_TOP_K, num_classes))
    return max(1, min(int(top_k), num_classes))


def top_k(probabilities: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """(class ids, probabilities) of the k most probable classes, best first; ties keep class order."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")[:k]
    return [int(i) for i in order], [float(p[i]) for i in order]

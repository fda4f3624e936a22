"""A synthetic object-detection data set that needs no download and trains in minutes on a CPU.

Shapes (circles, rectangles, triangles, crosses) of varied size, colour and count on textured,
noisy backgrounds, with some overlap and some truncation at the border, so the detector has
to learn something real (occlusion, clipped boxes, clutter) while still converging on a laptop.
Every image is drawn from its own seeded generator `(seed, split, index)`: the same spec and
seed give byte-identical files, hence the same content-hash version.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pydantic import BaseModel, Field, model_validator

from visionops.data.layout import SPLITS, Box, image_dir, label_dir, write_data_yaml, write_labels

DEFAULT_CLASSES: tuple[str, ...] = ("circle", "rectangle", "triangle", "cross")
_SUPERSAMPLE = 2  # draw at 2x and downscale: anti-aliased edges like a real camera's


class SyntheticSpec(BaseModel):
    """What to generate; part of the data set's manifest so a version says how it was made."""

    task: ClassVar[str] = "detect"
    count_fields: ClassVar[tuple[str, str, str]] = ("n_train", "n_val", "n_test")  # images per split

    n_train: int = Field(64, ge=1)
    n_val: int = Field(16, ge=1)
    n_test: int = Field(16, ge=1)
    image_size: int = Field(160, ge=32, le=2048)
    min_objects: int = Field(1, ge=0)
    max_objects: int = Field(4, ge=1)
    min_size: float = Field(0.14, gt=0, lt=1, description="Smallest shape side as a fraction of the image.")
    max_size: float = Field(0.42, gt=0, le=1, description="Largest shape side as a fraction of the image.")
    truncate_prob: float = Field(0.12, ge=0, le=1, description="Chance a shape is cut by the border.")
    max_overlap_iou: float = Field(0.2, ge=0, le=1, description="Largest IoU between two boxes.")
    noise: float = Field(10.0, ge=0, description="Std-dev of the pixel noise (0-255 scale).")
    classes: list[str] = Field(default_factory=lambda: list(DEFAULT_CLASSES))
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> SyntheticSpec:
        if self.min_objects > self.max_objects:
            raise ValueError("min_objects must not exceed max_objects")
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")
        unknown = set(self.classes) - set(DEFAULT_CLASSES)
        if unknown:
            raise ValueError(f"unknown shape classes {sorted(unknown)}; choose from {list(DEFAULT_CLASSES)}")
        if not self.classes:
            raise ValueError("classes must name at least one shape")
        return self

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark-to-mid gradient + low-frequency blotches + a few faint lines + pixel noise."""
    c0, c1 = rng.uniform(10, 110, 3), rng.uniform(10, 110, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = np.clip((np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    coarse = rng.uniform(-25, 25, (6, 6, 3)).astype(np.float32)
    blotch = np.asarray(
        Image.fromarray(((coarse + 25) * 5.1).astype(np.uint8)).resize((size, size), Image.BICUBIC), dtype=np.float32
    )
    img = img + (blotch / 5.1 - 25)
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(0, 4))):  # clutter that is not an object
        pts = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        draw.line(pts, fill=tuple(int(v) for v in rng.uniform(40, 130, 3)), width=int(rng.integers(1, 3)))
    return np.asarray(canvas, dtype=np.float32)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated, bright colour that stands out from the darker background."""
    hue = rng.uniform(0, 1)
    rgb = np.array([abs(((hue * 6 + k) % 6) - 3) - 1 for k in (0, 4, 2)]).clip(0, 1)
    rgb = 0.35 + 0.65 * rgb  # never pure black channels
    return tuple(int(v) for v in rgb * rng.uniform(170, 255))


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, x0: float, y0: float, w: float, h: float, fill) -> None:
    s = _SUPERSAMPLE
    x0, y0, w, h = x0 * s, y0 * s, w * s, h * s
    x1, y1 = x0 + w, y0 + h
    if kind == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif kind == "rectangle":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif kind == "triangle":
        draw.polygon([(x0 + w / 2, y0), (x0, y1), (x1, y1)], fill=fill)
    elif kind == "cross":
        tw, th = w / 3, h / 3
        draw.rectangle([x0 + tw, y0, x1 - tw, y1], fill=fill)
        draw.rectangle([x0, y0 + th, x1, y1 - th], fill=fill)
    else:  # pragma: no cover - guarded by SyntheticSpec
        raise ValueError(kind)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def render_image(spec: SyntheticSpec, split: str, index: int) -> tuple[Image.Image, list[Box]]:
    """One image and its boxes; pure given (spec, split, index)."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), index])
    size = spec.image_size
    bg = _background(rng, size)
    big = Image.fromarray(bg.astype(np.uint8)).resize((size * _SUPERSAMPLE,) * 2, Image.BILINEAR)
    draw = ImageDraw.Draw(big)
    placed: list[tuple[float, float, float, float]] = []
    boxes: list[Box] = []
    n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    for _ in range(n):
        for _attempt in range(30):
            c = int(rng.integers(len(spec.classes)))
            kind = spec.classes[c]
            w = rng.uniform(spec.min_size, spec.max_size) * size
            h = w if kind == "circle" else w * rng.uniform(0.6, 1.6)
            h = min(h, spec.max_size * size * 1.2)
            if rng.uniform() < spec.truncate_prob:  # let up to 45% of the shape leave the frame
                x0 = rng.uniform(-0.45 * w, size - 0.55 * w)
                y0 = rng.uniform(-0.45 * h, size - 0.55 * h)
            else:
                x0 = rng.uniform(0, size - w)
                y0 = rng.uniform(0, size - h)
            box = (max(0.0, x0), max(0.0, y0), min(float(size), x0 + w), min(float(size), y0 + h))
            if (box[2] - box[0]) < 4 or (box[3] - box[1]) < 4:
                continue
            if all(_iou(box, p) <= spec.max_overlap_iou for p in placed):
                break
        else:
            continue
        placed.append(box)
        _draw_shape(draw, kind, x0, y0, w, h, _colour(rng))
        boxes.append(Box.from_corners(c, *(v / size for v in box)))
    img = big.resize((size, size), Image.LANCZOS).filter(ImageFilter.GaussianBlur(radius=0.3))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, spec.noise, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), boxes


def generate(spec: SyntheticSpec, root: Path, overwrite: bool = True) -> Path:
    """Write the data set in the on-disk layout (images, labels, data.yaml); returns its root.

    The manifest (with the content-hash version) is written by `visionops.data.manifest`.
    """
    root = Path(root)
    if root.exists() and overwrite:
        for sub in ("images", "labels"):
            shutil.rmtree(root / sub, ignore_errors=True)
        (root / "manifest.json").unlink(missing_ok=True)  # it would name the old version
    for split in SPLITS:
        idir, ldir = image_dir(root, split), label_dir(root, split)
        idir.mkdir(parents=True, exist_ok=True)
        ldir.mkdir(parents=True, exist_ok=True)
        for i in range(spec.count(split)):
            img, boxes = render_image(spec, split, i)
            stem = f"{split}_{i:05d}"
            img.save(idir / f"{stem}.jpg", quality=92)
            write_labels(ldir / f"{stem}.txt", boxes)
    write_data_yaml(root, list(spec.classes))
    return root

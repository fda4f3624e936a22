"""A synthetic image-classification data set: no download, learnable on a CPU in minutes.

Each image shows one object of its class (a shape in the class's own colour, rotated, of varied
size and position within the centre square that Ultralytics' centre crop keeps) on a textured,
noisy background, plus a few smaller, greyish distractor shapes
of any kind. Classes differ in shape *and* hue, so a small model separates them quickly, while the
distractors, textures and varied sizes keep it from being a one-pixel lookup. Images are not
always square (the long side is `image_size`). Every image is drawn from its own seeded generator
`(seed, split, class, index)`: the same spec gives byte-identical files, hence the same version.
"""

from __future__ import annotations

import colorsys
import math
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pydantic import BaseModel, Field, model_validator

from visionops.data.layout import MANIFEST, SPLITS

# Every kind the generator can draw, with its hue (0..1): shapes and colours both tell classes apart.
KIND_HUES: dict[str, float] = {
    "circle": 0.0,  # red
    "square": 0.62,  # blue
    "triangle": 0.33,  # green
    "star": 0.15,  # yellow
    "cross": 0.83,  # magenta
    "ring": 0.5,  # cyan
    "diamond": 0.07,  # orange
    "hexagon": 0.74,  # violet
}
DEFAULT_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star")
_SUPERSAMPLE = 2  # draw at 2x and downscale: anti-aliased edges like a real camera's


class ClassifySpec(BaseModel):
    """What to generate; recorded in the manifest so a version says how it was made."""

    task: ClassVar[str] = "classify"
    count_fields: ClassVar[tuple[str, str, str]] = ("per_class_train", "per_class_val", "per_class_test")

    classes: list[str] = Field(default_factory=lambda: list(DEFAULT_CLASSES))
    per_class_train: int = Field(60, ge=1)
    per_class_val: int = Field(15, ge=1)
    per_class_test: int = Field(20, ge=1)
    image_size: int = Field(112, ge=32, le=2048, description="Long side of each image in pixels.")
    max_aspect: float = Field(1.33, ge=1, le=3, description="Largest long/short side ratio (1: all square).")
    min_size: float = Field(0.4, gt=0, le=1, description="Smallest object side as a fraction of the short side.")
    max_size: float = Field(0.75, gt=0, le=1, description="Largest object side as a fraction of the short side.")
    max_distractors: int = Field(3, ge=0, le=10, description="Up to this many small greyish shapes per image.")
    noise: float = Field(8.0, ge=0, description="Std-dev of the pixel noise (0-255 scale).")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ClassifySpec:
        if len(self.classes) < 2:
            raise ValueError("classes must name at least two kinds (one class is not a classification)")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes {self.classes} repeat a name")
        unknown = [c for c in self.classes if c not in KIND_HUES]
        if unknown:
            raise ValueError(f"unknown object kinds {unknown}; choose from {list(KIND_HUES)}")
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")
        return self

    def count(self, split: str) -> int:
        """Images per class in `split`."""
        return {"train": self.per_class_train, "val": self.per_class_val, "test": self.per_class_test}[split]


def _texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Gradient + low-frequency blotches + a few faint lines; dull colours the objects stand out from."""
    c0, c1 = rng.uniform(20, 120, 3), rng.uniform(20, 120, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    t = (np.cos(angle) * xx / max(width - 1, 1) + np.sin(angle) * yy / max(height - 1, 1) + 1) / 2
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    coarse = rng.uniform(0, 255, (5, 5, 3)).astype(np.uint8)
    blotch = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    img = img + (blotch - 127.5) * 0.18
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(0, 4))):
        pts = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(2)]
        draw.line(pts, fill=tuple(int(v) for v in rng.uniform(50, 140, 3)), width=int(rng.integers(1, 3)))
    return np.asarray(canvas, dtype=np.float32)


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _polygon(kind: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    """Outline points of a polygonal kind, radius r around (cx, cy), rotated by rot radians."""
    if kind == "square":
        pts = [(math.pi / 4 + k * math.pi / 2, r) for k in range(4)]
    elif kind == "diamond":
        pts = [(0.0, r), (math.pi / 2, r * 0.62), (math.pi, r), (3 * math.pi / 2, r * 0.62)]
    elif kind == "triangle":
        pts = [(-math.pi / 2 + k * 2 * math.pi / 3, r) for k in range(3)]
    elif kind == "hexagon":
        pts = [(k * math.pi / 3, r) for k in range(6)]
    elif kind == "star":
        pts = [(-math.pi / 2 + k * math.pi / 5, r if k % 2 == 0 else r * 0.42) for k in range(10)]
    elif kind == "cross":
        a, b = r * 0.32, r
        corners = [(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b), (-a, -b), (-a, -a), (-b, -a), (-b, a),
                   (-a, a), (-a, b)]
        pts = [(math.atan2(y, x), math.hypot(x, y)) for x, y in corners]
    else:  # pragma: no cover - guarded by ClassifySpec
        raise ValueError(kind)
    return [(cx + d * math.cos(a + rot), cy + d * math.sin(a + rot)) for a, d in pts]


def _draw(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, rot: float, fill) -> None:
    s = _SUPERSAMPLE
    cx, cy, r = cx * s, cy * s, r * s
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(2, int(r * 0.35)))
    else:
        draw.polygon(_polygon(kind, cx, cy, r, rot), fill=fill)


def render_image(spec: ClassifySpec, split: str, class_index: int, index: int) -> Image.Image:
    """One image of class `spec.classes[class_index]`; pure given (spec, split, class, index)."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), class_index, index])
    long_side = spec.image_size
    short_side = max(32, int(round(long_side / rng.uniform(1.0, spec.max_aspect))))
    width, height = (long_side, short_side) if rng.uniform() < 0.5 else (short_side, long_side)
    bg = Image.fromarray(_texture(rng, width, height).astype(np.uint8))
    big = bg.resize((width * _SUPERSAMPLE, height * _SUPERSAMPLE), Image.BILINEAR)
    draw = ImageDraw.Draw(big)
    short = min(width, height)
    kinds = list(KIND_HUES)
    for _ in range(int(rng.integers(0, spec.max_distractors + 1))):  # small, greyish, any kind
        r = rng.uniform(0.05, 0.11) * short
        grey = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.25), rng.uniform(0.35, 0.7))
        _draw(draw, kinds[int(rng.integers(len(kinds)))], rng.uniform(r, width - r), rng.uniform(r, height - r), r,
              rng.uniform(0, 2 * math.pi), grey)
    kind = spec.classes[class_index]
    r = rng.uniform(spec.min_size, spec.max_size) * short / 2
    # The object lies inside the central short x short square: Ultralytics' classification
    # transforms centre-crop the short side, so an object near a long side's end would be cut off
    # at val/test time and the label would describe something the model never sees.
    x_lo, y_lo = (width - short) / 2, (height - short) / 2
    cx, cy = rng.uniform(x_lo + r, x_lo + short - r), rng.uniform(y_lo + r, y_lo + short - r)
    colour = _hsv(KIND_HUES[kind] + rng.uniform(-0.025, 0.025), rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))
    _draw(draw, kind, cx, cy, r, rng.uniform(0, 2 * math.pi), colour)
    img = big.resize((width, height), Image.LANCZOS).filter(ImageFilter.GaussianBlur(radius=0.3))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, spec.noise, (height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def generate(spec: ClassifySpec, dst: Path, overwrite: bool = True) -> Path:
    """Write `<dst>/{train,val,test}/<class>/<split>_<class>_<i>.jpg`; returns dst.

    The manifest (content-hash version) is written by `visionops.data.dataset.generate_synthetic`.
    """
    root = Path(dst)
    if root.exists() and overwrite:
        for split in SPLITS:
            shutil.rmtree(root / split, ignore_errors=True)
        (root / MANIFEST).unlink(missing_ok=True)  # it would name the old version
    for split in SPLITS:
        for c, name in enumerate(spec.classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(spec.count(split)):
                render_image(spec, split, c, i).save(folder / f"{split}_{name}_{i:04d}.jpg", quality=92)
    return root

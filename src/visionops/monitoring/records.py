"""One production record per scored image: the contract between collection (the scoring path
writes them), the drift report (reads a window of them against the registration baseline) and
the labeling export (picks images from them).

Per-image numbers, not pixels: Azure ML's monitoring signals are tabular, and the drift tests
compare columns (research/next_capabilities.md §6). The same `image_stats` runs on production
images and on the test split at registration, so both sides of a comparison are one function.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
# statistics are computed on a copy whose long side is at most this: the cost stays flat with
# image size (a 4000 px photo costs what a 640 px one does) and brightness/contrast barely move
STATS_SIDE = 128
LOW_CONFIDENCE = 0.5  # a box or top-1 probability below this counts as "low confidence"


class ImageStats(BaseModel):
    """What the model was shown, as numbers a two-sample test can compare."""

    width: int
    height: int
    aspect: float = Field(description="width / height")
    brightness: float = Field(description="mean luma, 0..255")
    contrast: float = Field(description="standard deviation of luma, 0..255")
    sharpness: float = Field(description="variance of the 4-neighbour Laplacian of luma (blur -> small)")


class PredictionSummary(BaseModel):
    """The prediction as the drift report compares it, the same columns for both tasks where
    they mean the same thing: `count` is boxes (detect) or 1 (classify); `confidences` are the
    boxes' confidences or the top-1 probability; `labels` the boxes' classes or the top-1 label."""

    task: Literal["detect", "classify"]
    count: int
    labels: list[str]
    confidences: list[float]
    max_conf: float | None = None
    mean_conf: float | None = None
    low_conf_frac: float | None = Field(None, description=f"share of confidences below {LOW_CONFIDENCE}")


class ModelRef(BaseModel):
    name: str
    version: str
    task: Literal["detect", "classify"]
    runtime: str | None = None


class ProductionRecord(BaseModel):
    """One line of the collection JSONL."""

    schema_version: int = SCHEMA_VERSION
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="one per request")
    index: int = Field(0, description="the image's position in its request")
    model: ModelRef
    image: ImageStats
    prediction: PredictionSummary
    raw: dict[str, Any] | None = Field(None, description="the response's prediction for this image, as sent")
    sample: str | None = Field(
        None, description="path of the saved image (relative to the collection folder), when sampled"
    )


def image_stats(img: Image.Image) -> ImageStats:
    """Size, brightness, contrast and sharpness of one image (any mode), on a reduced copy."""
    width, height = img.size
    small = img
    if max(width, height) > STATS_SIDE:
        # nearest-neighbour subsampling: 0.05 ms on a 640x480 photo where a box filter (reduce)
        # takes 0.35 ms and converting the full image to luma another 0.25 ms. The writer thread
        # shares the endpoint's cores, so this is the cost a request sees (benchmarks/bench_collect).
        # Aliasing is harmless here: production and baseline images go through the same function.
        scale = STATS_SIDE / max(width, height)
        small = img.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.NEAREST)
    if small.mode != "L":
        small = small.convert("L")
    luma = np.asarray(small, dtype=np.float32)
    lap = (luma[1:-1, 1:-1] * 4 - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
           if min(luma.shape) >= 3 else np.zeros(1, np.float32))
    return ImageStats(
        width=width, height=height, aspect=round(width / max(height, 1), 4),
        brightness=round(float(luma.mean()), 3), contrast=round(float(luma.std()), 3),
        sharpness=round(float(lap.var()), 3),
    )


def summarize(task: str, prediction: dict[str, Any]) -> PredictionSummary:
    """The comparable columns of one image's prediction as the endpoint returns it
    (`Detections.to_dict()` or `Classification.to_dict()`)."""
    if task == "classify":
        labels = list(prediction.get("labels") or [])[:1]
        confs = [float(p) for p in (prediction.get("probabilities") or [])][:1]
    else:
        labels = list(prediction.get("labels") or [])
        confs = [float(c) for c in (prediction.get("confidences") or [])]
    return PredictionSummary(
        task="classify" if task == "classify" else "detect",
        count=len(labels) if task != "classify" else 1,
        labels=labels, confidences=confs,
        max_conf=max(confs) if confs else None,
        mean_conf=round(sum(confs) / len(confs), 4) if confs else None,
        low_conf_frac=round(sum(c < LOW_CONFIDENCE for c in confs) / len(confs), 4) if confs else None,
    )

"""The production record's per-image numbers: what the drift report compares, so they must move
with the property they name and stay put otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from visionops.monitoring.records import ModelRef, ProductionRecord, image_stats, summarize


def _photo(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=(height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((width, height), Image.Resampling.NEAREST)
    return img


def test_size_and_aspect_are_the_original_image_not_the_reduced_copy():
    stats = image_stats(_photo(1000, 400))
    assert (stats.width, stats.height, stats.aspect) == (1000, 400, 2.5)


def test_darker_image_has_lower_brightness_and_the_same_size():
    img = _photo()
    dark = Image.eval(img, lambda v: v // 3)
    assert image_stats(dark).brightness < image_stats(img).brightness / 2


def test_lower_contrast_and_blur_move_their_own_columns():
    img = _photo()
    flat = Image.blend(img, Image.new("RGB", img.size, (128, 128, 128)), 0.8)
    blurred = img.filter(ImageFilter.GaussianBlur(6))
    assert image_stats(flat).contrast < image_stats(img).contrast / 2
    assert image_stats(blurred).sharpness < image_stats(img).sharpness / 2


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_any_image_mode_is_measured(mode):
    img = _photo(200, 120).convert("L").convert(mode) if mode == "I;16" else _photo(200, 120).convert(mode)
    stats = image_stats(img)
    assert stats.width == 200 and 0 <= stats.brightness <= 65535


def test_tiny_image_does_not_fail():
    assert image_stats(Image.new("RGB", (2, 1))).sharpness == 0.0


def test_cost_is_flat_with_image_size():
    """The statistics run on a reduced copy: a 4000 px photo is measured like a small one."""
    big = _photo(4000, 3000)
    small = big.resize((400, 300))
    a, b = image_stats(big), image_stats(small)
    assert abs(a.brightness - b.brightness) < 2.0


def test_detection_summary():
    s = summarize("detect", {"labels": ["cat", "dog", "cat"], "confidences": [0.9, 0.3, 0.6]})
    assert (s.count, s.max_conf, s.mean_conf, s.low_conf_frac) == (3, 0.9, 0.6, round(1 / 3, 4))


def test_detection_summary_with_no_boxes_has_no_confidence_columns():
    s = summarize("detect", {"labels": [], "confidences": []})
    assert s.count == 0 and s.max_conf is None and s.low_conf_frac is None


def test_classification_summary_keeps_top1():
    s = summarize("classify", {"labels": ["tulip", "rose"], "probabilities": [0.42, 0.31]})
    assert (s.count, s.labels, s.confidences, s.low_conf_frac) == (1, ["tulip"], [0.42], 1.0)


def test_record_round_trips_through_json():
    rec = ProductionRecord(model=ModelRef(name="m", version="3", task="detect"), image=image_stats(_photo()),
                           prediction=summarize("detect", {"labels": ["a"], "confidences": [0.7]}))
    back = ProductionRecord.model_validate_json(rec.model_dump_json())
    assert back == rec and len(back.correlation_id) == 32

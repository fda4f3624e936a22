"""The synthetic classification set: deterministic, one object per image, every class in every
split, non-square images, and a spec that refuses what it cannot draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from visionops.data.classify.layout import iter_samples
from visionops.data.classify.synthetic import KIND_HUES, ClassifySpec, generate, render_image
from visionops.data.manifest import content_hash
from visionops.data.validation import validate

SPEC = ClassifySpec(per_class_train=4, per_class_val=2, per_class_test=2, image_size=64, seed=5)


def test_generate_writes_the_folder_per_class_layout(tmp_path: Path) -> None:
    root = generate(SPEC, tmp_path / "a")
    samples = list(iter_samples(root))
    assert len(samples) == 4 * (4 + 2 + 2)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        for cls in SPEC.classes:
            assert len(list((root / split / cls).glob("*.jpg"))) == n
    sizes = {Image.open(s.image).size for s in samples}
    assert all(max(size) == 64 for size in sizes)
    assert any(w != h for w, h in sizes)  # non-square images are part of the set
    report = validate(root)
    assert report.ok, report.summary()


def test_same_spec_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = content_hash(generate(SPEC, tmp_path / "a"))
    assert content_hash(generate(SPEC, tmp_path / "b")) == a
    assert content_hash(generate(SPEC.model_copy(update={"seed": 6}), tmp_path / "c")) != a


def test_the_object_is_the_class_colour() -> None:
    """The class is visible: the image's bright, saturated pixels carry the class's hue."""
    for c, kind in enumerate(SPEC.classes):
        img = np.asarray(render_image(SPEC, "train", c, 0).convert("HSV"), dtype=np.float32) / 255
        vivid = img[(img[..., 1] > 0.6) & (img[..., 2] > 0.6)]
        assert len(vivid) > 0.05 * img.shape[0] * img.shape[1]  # the object covers a real share
        angle = vivid[:, 0] * 2 * np.pi  # hue is circular: red sits at both 0 and 1
        hue = (np.arctan2(np.sin(angle).mean(), np.cos(angle).mean()) / (2 * np.pi)) % 1
        gap = abs(hue - KIND_HUES[kind])
        assert min(gap, 1 - gap) < 0.06, (kind, hue)


def test_the_object_survives_the_centre_crop() -> None:
    """Ultralytics centre-crops the short side for val/test: the object must lie inside that square."""
    spec = SPEC.model_copy(update={"max_aspect": 1.6, "noise": 0.0})
    for c in range(len(spec.classes)):
        for i in range(6):
            img = np.asarray(render_image(spec, "test", c, i).convert("HSV"), dtype=np.float32) / 255
            h, w = img.shape[:2]
            short = min(w, h)
            ys, xs = np.nonzero((img[..., 1] > 0.6) & (img[..., 2] > 0.6))
            x0, y0 = (w - short) / 2, (h - short) / 2
            assert xs.min() >= x0 - 2 and xs.max() <= x0 + short + 1, (c, i, w, h)
            assert ys.min() >= y0 - 2 and ys.max() <= y0 + short + 1, (c, i, w, h)


def test_regenerating_replaces_the_old_set(tmp_path: Path) -> None:
    root = generate(SPEC, tmp_path / "a")
    (root / "manifest.json").write_text("{}")
    generate(SPEC.model_copy(update={"per_class_train": 2}), root)
    assert not (root / "manifest.json").exists()
    assert len(list((root / "train" / "circle").iterdir())) == 2


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"classes": ["circle"]}, "at least two"),
        ({"classes": ["circle", "circle"]}, "repeat"),
        ({"classes": ["circle", "dragon"]}, "unknown object kinds"),
        ({"min_size": 0.8, "max_size": 0.5}, "min_size"),
    ],
)
def test_spec_refuses_what_it_cannot_draw(update: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ClassifySpec(**{**SPEC.model_dump(), **update})

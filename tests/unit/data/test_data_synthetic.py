"""The synthetic generator: deterministic by seed, the counts asked for, valid boxes, a clean data set."""

from __future__ import annotations

from pathlib import Path

from visionops.data.layout import SPLITS, iter_images, iter_items, label_dir, read_class_names, read_labels
from visionops.data.manifest import content_hash
from visionops.data.synthetic import SyntheticSpec, generate
from visionops.data.validation import validate


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_version(dataset: Path, spec: SyntheticSpec, tmp_path: Path) -> None:
    again = generate(spec, tmp_path / "again")
    assert _files(again) == _files(dataset)
    assert content_hash(again) == content_hash(dataset)


def test_different_seed_gives_different_data_and_version(
    dataset: Path, spec: SyntheticSpec, tmp_path: Path
) -> None:
    other = generate(spec.model_copy(update={"seed": spec.seed + 1}), tmp_path / "other")
    assert content_hash(other) != content_hash(dataset)
    a, b = _files(dataset), _files(other)
    assert a.keys() == b.keys()  # same names, different pictures
    assert all(a[k] != b[k] for k in a if k.startswith("images/"))


def test_counts_per_split(dataset: Path, spec: SyntheticSpec) -> None:
    for split in SPLITS:
        images = list(iter_images(dataset, split))
        assert len(images) == spec.count(split)
        assert sorted(p.stem for p in label_dir(dataset, split).glob("*.txt")) == [p.stem for p in images]
    assert read_class_names(dataset) == list(spec.classes)


def test_boxes_are_normalised_and_inside_the_image(dataset: Path, spec: SyntheticSpec) -> None:
    boxes = [b for item in iter_items(dataset) for b in read_labels(item.label)]
    assert len(boxes) >= spec.n_train  # at least one object per image on average
    for b in boxes:
        assert 0 <= b.cls < len(spec.classes)
        assert b.w > 0 and b.h > 0
        x0, y0, x1, y1 = b.corners()
        assert -1e-6 <= x0 < x1 <= 1 + 1e-6
        assert -1e-6 <= y0 < y1 <= 1 + 1e-6


def test_generated_data_set_validates_clean(dataset: Path, spec: SyntheticSpec) -> None:
    report = validate(dataset)
    assert report.ok, report.summary()
    total = spec.n_train + spec.n_val + spec.n_test
    assert report.images_checked == total
    assert report.labels_checked == total

"""A small synthetic data set shared by the data tests (generated once per session, read-only)
plus helpers to compare data sets across format round trips."""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from visionops.data.layout import iter_items, read_class_names, read_labels
from visionops.data.synthetic import SyntheticSpec, generate

sys.path.insert(0, str(Path(__file__).parent))  # data_exports: builders of real-world export layouts

SPEC = SyntheticSpec(n_train=12, n_val=4, n_test=4, image_size=96, seed=7)


@pytest.fixture(scope="session")
def spec() -> SyntheticSpec:
    return SPEC


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated data set. Tests must not modify it: use `dataset_copy` for that."""
    return generate(SPEC, tmp_path_factory.mktemp("synthetic") / "shapes")


@pytest.fixture
def dataset_copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "copy"))


def pixel_boxes(root: Path) -> dict[tuple[str, str], list[tuple[str, tuple[float, float, float, float]]]]:
    """{(split, image file name): [(class name, pixel corners), ...]} in label-file order."""
    names = read_class_names(root)
    out = {}
    for item in iter_items(root):
        with Image.open(item.image) as im:
            w, h = im.size
        out[(item.split, item.image.name)] = [
            (names[b.cls], (b.corners()[0] * w, b.corners()[1] * h, b.corners()[2] * w, b.corners()[3] * h))
            for b in read_labels(item.label)
        ]
    return out


def image_digests(root: Path) -> dict[tuple[str, str], str]:
    return {(i.split, i.image.name): hashlib.sha256(i.image.read_bytes()).hexdigest() for i in iter_items(root)}


def tree_snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root: to prove a source was left untouched."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def assert_same_dataset() -> Callable[[Path, Path, float], None]:
    """Same images (bytes, split, name), same class names, same boxes in order within `tol_px`."""

    def check(expected: Path, actual: Path, tol_px: float = 1.0) -> None:
        assert read_class_names(actual) == read_class_names(expected)
        assert image_digests(actual) == image_digests(expected)
        want, got = pixel_boxes(expected), pixel_boxes(actual)
        assert want.keys() == got.keys()
        for key, boxes in want.items():
            assert [c for c, _ in got[key]] == [c for c, _ in boxes], key
            for (_, a), (_, b) in zip(boxes, got[key], strict=True):
                assert max(abs(u - v) for u, v in zip(a, b, strict=True)) <= tol_px, (key, a, b)

    return check


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, str]]:
    return tree_snapshot


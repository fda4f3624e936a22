"""Stats agree with the manifest; plots render to non-empty PNGs, deterministically sampled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from PIL import Image

from visionops.data import plots, stats
from visionops.data.layout import SPLITS
from visionops.data.manifest import build_manifest


@pytest.fixture(scope="module")
def tables(dataset: Path) -> stats.DatasetTables:
    return stats.load_tables(dataset)


def test_counts_equal_the_manifest(dataset: Path, tables: stats.DatasetTables) -> None:
    manifest = build_manifest(dataset, "shapes")
    splits = stats.split_table(tables)
    classes = stats.class_table(tables)
    for split in SPLITS:
        want = manifest.splits[split]
        row = splits.loc[split]
        assert (row.images, row.boxes, row.empty_images) == (want.images, want.boxes, want.empty_images)
        got = classes[classes.split == split].set_index("class").boxes.to_dict()
        assert got == want.per_class
    matrix = stats.class_matrix(tables)
    assert list(matrix.index) == manifest.classes
    assert matrix["total"].sum() == manifest.total_boxes
    assert (stats.class_matrix(tables, "images")[list(SPLITS)] <= splits.images).all().all()


def test_summary_is_json_and_matches(dataset: Path, tables: stats.DatasetTables) -> None:
    manifest = build_manifest(dataset, "shapes")
    summary = json.loads(json.dumps(stats.summary(tables)))
    assert summary["classes"] == manifest.classes
    assert (summary["images"], summary["boxes"]) == (manifest.total_images, manifest.total_boxes)
    for split in SPLITS:
        assert summary["splits"][split] == manifest.splits[split].model_dump()
    assert summary["image_sizes"] == ["96x96"]
    width = summary["box_width_px"]
    assert 0 < width["min"] <= width["median"] <= width["max"] <= 96
    assert stats.summary(dataset) == stats.summary(tables)  # a root works as well as loaded tables


def test_box_sizes_are_in_pixels_and_relative(tables: stats.DatasetTables) -> None:
    sizes = stats.box_sizes(tables)
    assert len(sizes) == len(tables.boxes) == tables.images.boxes.sum()
    assert list(sizes.columns) == ["split", "class", "width_px", "height_px", "rel_area", "aspect"]
    b = tables.boxes
    assert (sizes.width_px == b.w * 96).all() and (sizes.height_px == b.h * 96).all()
    assert ((sizes.rel_area > 0) & (sizes.rel_area <= 1)).all()
    assert sizes.rel_area.tolist() == pytest.approx((sizes.width_px * sizes.height_px / 96**2).tolist())
    assert set(sizes["class"]) <= set(tables.classes) and set(sizes.split) == set(SPLITS)


def _png_ok(path: Path) -> None:
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 100


def test_plots_save_non_empty_pngs(tables: stats.DatasetTables, tmp_path: Path) -> None:
    counts = plots.plot_class_counts(tables, save=tmp_path / "counts.png")
    sizes = plots.plot_box_sizes(tables, save=tmp_path / "sizes.png")
    samples = plots.plot_samples(tables, n=4, cols=2, seed=1, save=tmp_path / "samples.png", dpi=60)
    for fig, name in ((counts, "counts"), (sizes, "sizes"), (samples, "samples")):
        assert isinstance(fig, Figure)
        _png_ok(tmp_path / f"{name}.png")
    bars = [p for p in counts.axes[0].patches]
    assert sorted(int(p.get_height()) for p in bars) == sorted(stats.class_table(tables).boxes)
    shown = [ax for ax in samples.axes if ax.images]
    assert len(shown) == 4
    n_boxes = sum(len(ax.patches) for ax in shown)
    picked = plots.sample_items(tables.root, 4, 1)
    assert [ax.get_title() for ax in shown] == [f"{i.split}/{i.image.name}" for i in picked]
    assert n_boxes == int(tables.images.set_index("image").loc[
        [i.image.relative_to(tables.root).as_posix() for i in picked], "boxes"].sum())


def test_samples_are_deterministic_by_seed(dataset: Path) -> None:
    a = plots.sample_items(dataset, 5, seed=11)
    assert a == plots.sample_items(dataset, 5, seed=11)
    assert a != plots.sample_items(dataset, 5, seed=12)
    assert {i.split for i in plots.sample_items(dataset, 3, seed=0, split="val")} == {"val"}
    assert len(plots.sample_items(dataset, 100, seed=0)) == 20

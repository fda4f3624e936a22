"""Notebook 01's numbers and figures for a classification set: class distribution per split in
images, and a sample grid titled with each image's class."""

from __future__ import annotations

from pathlib import Path

import pytest
from foreign_classify import build_split_folders

from visionops.data import plots, stats
from visionops.data.classify.importers import import_folders


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> stats.DatasetTables:
    root = tmp_path_factory.mktemp("stats")
    return stats.load_tables(import_folders(build_split_folders(root / "src"), root / "ds"))


def test_tables_count_images_per_class_and_split(tables: stats.DatasetTables) -> None:
    assert tables.task == "classify" and tables.per_class_value == "images" and tables.boxes.empty
    assert set(tables.images.label) == set(tables.classes)
    split = stats.split_table(tables)
    assert split.images.to_dict() == {"train": 18, "val": 6, "test": 6} and split.boxes.sum() == 0
    matrix = stats.class_matrix(tables)
    assert matrix.loc["猫"].to_dict() == {"train": 6, "val": 2, "test": 2, "total": 10}
    summary = stats.summary(tables)
    assert summary["task"] == "classify" and summary["splits"]["val"]["per_class"] == {c: 2 for c in tables.classes}


def test_class_counts_and_samples_figures(tables: stats.DatasetTables, tmp_path: Path) -> None:
    fig = plots.plot_class_counts(tables, save=tmp_path / "counts.png")
    heights = sorted(int(p.get_height()) for p in fig.axes[0].patches)
    assert heights == sorted(stats.class_table(tables).images) and (tmp_path / "counts.png").stat().st_size > 0
    assert "Images per class" in fig.axes[0].get_title()
    grid = plots.plot_samples(tables, n=4, seed=1)
    shown = [ax for ax in grid.axes if ax.images]
    picked = plots.sample_items(tables.root, 4, 1)
    assert [ax.get_title() for ax in shown] == [f"{i.label}\n{i.split}/{i.image.name}" for i in picked]
    assert all(not ax.patches for ax in shown)  # no boxes drawn on a classification image
    sizes = plots.plot_box_sizes(tables)
    assert "no boxes" in sizes.axes[0].texts[0].get_text()

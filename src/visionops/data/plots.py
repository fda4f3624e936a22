"""Figures a reviewer looks at before training: class balance per split, box sizes, and sample
images with their boxes or class names (the quickest way to catch labels that are shifted or swapped).

Figures are built with `matplotlib.figure.Figure`, not pyplot: no GUI backend and no global
figure list, so they work headless (CI, Azure ML jobs) and in threads. In a notebook, display
the returned figure (`display(fig)`, or as the cell's last expression). Text uses matplotlib's
bundled DejaVu Sans; nothing is downloaded.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from visionops.data.kinds import LabelledImage, data_kind
from visionops.data.layout import SPLITS, read_labels
from visionops.data.stats import DatasetTables, as_tables, class_table

_FONT = "DejaVu Sans"
_SPLIT_COLOURS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}


def _class_colour(cls: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["tab10"](cls % 10)


def _save(fig: Figure, save: Path | str | None, dpi: int) -> Figure:
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=dpi, format="png")
    return fig


def plot_class_counts(
    data: Path | DatasetTables, *, value: str | None = None, save: Path | str | None = None, dpi: int = 100
) -> Figure:
    """Grouped bars: boxes (or images, value='images') per class, one bar per split; by default boxes
    for detection and images for classification (its class distribution per split)."""
    t = as_tables(data)
    value = value or t.per_class_value
    table = class_table(t)
    n_cls = len(t.classes)
    fig = Figure(figsize=(max(5.0, 1.2 * n_cls + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(SPLITS)
    x = np.arange(n_cls)
    for i, split in enumerate(SPLITS):
        counts = table[table.split == split].set_index("class").reindex(t.classes)[value].to_numpy()
        bars = ax.bar(x + (i - (len(SPLITS) - 1) / 2) * width, counts, width, label=split,
                      color=_SPLIT_COLOURS[split])
        ax.bar_label(bars, fontsize=7, fontfamily=_FONT)
    ax.set_xticks(x, t.classes, fontfamily=_FONT, rotation=30 if n_cls > 6 else 0)
    ax.set_ylabel(f"{value} per class", fontfamily=_FONT)
    ax.set_title(f"{value.capitalize()} per class and split", fontfamily=_FONT)
    ax.legend(prop={"family": _FONT})
    return _save(fig, save, dpi)


def plot_box_sizes(data: Path | DatasetTables, *, save: Path | str | None = None, dpi: int = 100) -> Figure:
    """Left: box width vs height in pixels, coloured by class. Right: relative box area per split."""
    t = as_tables(data)
    b = t.boxes
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_sc, ax_hist = fig.subplots(1, 2)
    for cid, name in enumerate(t.classes):
        sel = b[b.class_id == cid]
        ax_sc.scatter(sel.width_px, sel.height_px, s=12, alpha=0.7, color=_class_colour(cid), label=name)
    ax_sc.set_xlabel("box width (px)", fontfamily=_FONT)
    ax_sc.set_ylabel("box height (px)", fontfamily=_FONT)
    ax_sc.set_title("Box sizes", fontfamily=_FONT)
    if len(t.classes):
        ax_sc.legend(prop={"family": _FONT, "size": 8})
    bins = np.linspace(0.0, max(float(b.rel_area.max()) if len(b) else 1.0, 1e-3), 21)
    for split in SPLITS:
        sel = b[b.split == split].rel_area
        if len(sel):  # share of the split's boxes, so splits of different size compare
            ax_hist.hist(sel, bins=bins, weights=np.full(len(sel), 1 / len(sel)), histtype="step", linewidth=1.8,
                         label=split, color=_SPLIT_COLOURS[split])
    ax_hist.set_xlabel("box area / image area", fontfamily=_FONT)
    ax_hist.set_ylabel("share of the split's boxes", fontfamily=_FONT)
    ax_hist.set_title("Relative box area", fontfamily=_FONT)
    if len(b):
        ax_hist.legend(prop={"family": _FONT, "size": 8})
    else:
        ax_sc.text(0.5, 0.5, f"no boxes ({t.task} data set)", ha="center", va="center",
                   transform=ax_sc.transAxes, fontfamily=_FONT)
    return _save(fig, save, dpi)


def sample_items(root: Path, n: int, seed: int, split: str | None = None) -> list[LabelledImage]:
    """A deterministic sample (same seed -> same images) in data set order, either task."""
    items = data_kind(Path(root)).samples(Path(root), (split,) if split else SPLITS)
    picked = random.Random(seed).sample(range(len(items)), min(n, len(items)))
    return [items[i] for i in sorted(picked)]


def plot_samples(
    data: Path | DatasetTables,
    *,
    n: int = 9,
    seed: int = 0,
    split: str | None = None,
    cols: int = 3,
    save: Path | str | None = None,
    dpi: int = 100,
) -> Figure:
    """A grid of sample images with their boxes and class names drawn (classification: the class
    name above each image)."""
    t = as_tables(data)
    items = sample_items(t.root, n, seed, split)
    cols = max(1, min(cols, len(items) or 1))
    rows = max(1, -(-len(items) // cols))
    fig = Figure(figsize=(3 * cols, 3 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, item in zip(axes, items, strict=False):
        with Image.open(item.image) as im:
            rgb = np.asarray(im.convert("RGB"))
        height, width = rgb.shape[:2]
        ax.imshow(rgb)
        for b in read_labels(item.label_file) if item.label_file is not None else []:
            x0, y0, x1, y1 = b.corners()
            colour = _class_colour(b.cls)
            ax.add_patch(Rectangle((x0 * width, y0 * height), (x1 - x0) * width, (y1 - y0) * height,
                                   fill=False, edgecolor=colour, linewidth=1.5))
            name = t.classes[b.cls] if 0 <= b.cls < len(t.classes) else str(b.cls)
            ax.text(x0 * width, y0 * height, name, fontsize=7, fontfamily=_FONT, color="white", va="bottom",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 1, "alpha": 0.8})
        title = f"{item.split}/{item.image.name}"
        ax.set_title(title if item.label is None else f"{item.label}\n{title}", fontsize=8, fontfamily=_FONT)
    if not items:
        axes[0].text(0.5, 0.5, "no images", ha="center", va="center", fontfamily=_FONT)
    return _save(fig, save, dpi)

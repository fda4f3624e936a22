"""Builders of small real-world export layouts for the import tests (never downloaded).

Images are PIL images of mixed non-square sizes; classes are fasteners, not the synthetic shapes,
so a test cannot pass by accident on the generator's own names.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

CLASSES = ["bolt", "nut", "washer"]
SIZES = [(64, 48), (80, 40), (48, 72), (100, 60)]


def image(path: Path, i: int) -> tuple[int, int]:
    """Write the i-th image (size from SIZES, a colour of its own); returns (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = SIZES[i % len(SIZES)]
    Image.new("RGB", size, ((37 * i) % 256, (91 * i) % 256, (53 * i + 40) % 256)).save(path)
    return size


def yolo_line(i: int) -> str:
    """A box per image, class cycling through CLASSES, well above 2 px in every SIZES entry."""
    return f"{i % len(CLASSES)} 0.5 0.5 {0.3 + 0.05 * (i % 3):.2f} 0.4\n"


def yolo_split(images: Path, labels: Path | None, n: int, start: int = 0, ext: str = ".jpg") -> None:
    """n images in `images` with label files in `labels` (None: no label files at all)."""
    for i in range(start, start + n):
        image(images / f"img_{i:03d}{ext}", i)
        if labels is not None:
            labels.mkdir(parents=True, exist_ok=True)
            (labels / f"img_{i:03d}.txt").write_text(yolo_line(i))

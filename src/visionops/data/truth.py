"""The labelled boxes of one image of a data set in our layout, in that image's pixels.

The notebooks draw them next to predictions and the endpoint smoke test checks a model against
them; both read them here, so "ground truth" is converted one way (normalised YOLO rows ->
corner pixels, class ids -> names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from visionops.data.layout import label_path_for, read_class_names, read_labels


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    width: int
    height: int
    labels: list[str]
    boxes: list[list[float]]  # [x0, y0, x1, y1] in pixels, in label-file order


def labelled_image(dataset: Path, split: str, image: Path) -> LabelledImage:
    """The image's size and its labelled boxes (an unknown class id keeps its number as label)."""
    names = read_class_names(Path(dataset))
    with Image.open(image) as im:
        width, height = im.size
    labels, boxes = [], []
    for b in read_labels(label_path_for(Path(dataset), split, Path(image))):
        x0, y0, x1, y1 = b.corners()
        boxes.append([x0 * width, y0 * height, x1 * width, y1 * height])
        labels.append(names[b.cls] if 0 <= b.cls < len(names) else str(b.cls))
    return LabelledImage(path=Path(image), width=width, height=height, labels=labels, boxes=boxes)

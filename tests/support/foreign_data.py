"""A small detection export that differs from VisionOps' synthetic shapes in everything a team's
data differs: other class names (three of them), non-square photos of mixed sizes, and a
Roboflow-style layout (`train|valid|test/{images,labels}` with a `data.yaml` of `../` paths).

Built by the tests (never downloaded), deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ["bolt", "nut", "washer"]
SIZES = [(160, 96), (96, 160), (200, 120), (128, 128), (144, 112)]  # (width, height)
SPLITS = {"train": 18, "valid": 6, "test": 6}


def build_foreign_export(root: Path, *, seed: int = 7) -> Path:
    """Write the export under `root` and return the folder holding its data.yaml."""
    rng = random.Random(seed)
    root = Path(root)
    for split, n in SPLITS.items():
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            w, h = SIZES[(i + len(split)) % len(SIZES)]
            img = Image.new("RGB", (w, h), (rng.randint(150, 220),) * 3)
            draw = ImageDraw.Draw(img)
            rows = []
            for k in range(1 + i % 2):
                cls = (i + k) % len(CLASSES)
                bw, bh = rng.randint(w // 5, w // 3), rng.randint(h // 5, h // 3)
                x0 = rng.randint(0, w - bw - 1) if k == 0 else max(0, w - bw - 2)
                y0 = rng.randint(0, h - bh - 1)
                box = (x0, y0, x0 + bw, y0 + bh)
                colour = [(200, 40, 40), (40, 40, 200), (40, 160, 40)][cls]
                if cls == 0:
                    draw.rectangle(box, fill=colour)
                elif cls == 1:
                    draw.ellipse(box, fill=colour)
                else:
                    draw.ellipse(box, outline=colour, width=max(2, bw // 5))
                rows.append(f"{cls} {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
            name = f"{split}_{i:03d}_jpg.rf.{rng.randrange(16**8):08x}"
            img.save(root / split / "images" / f"{name}.jpg", quality=92)
            (root / split / "labels" / f"{name}.txt").write_text("\n".join(rows) + "\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
        f"nc: {len(CLASSES)}\nnames: {CLASSES}\n\n"
        "roboflow:\n  workspace: acme\n  project: fasteners\n  version: 3\n  license: CC BY 4.0\n"
    )
    return root

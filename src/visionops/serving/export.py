"""Export trained weights to ONNX with Ultralytics, offline: a detector or a classifier alike (the
task comes from the checkpoint, and Ultralytics writes it into the ONNX metadata, where serving
reads it back; a classifier's `output0 [1, nc]` is its softmax).

onnx, onnxruntime and onnxslim are installed up front: Ultralytics would otherwise try to
pip-install them at export time (and fail offline).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from visionops import offline
from visionops.errors import ModelNotFoundError
from visionops.settings import Settings


def export_onnx(weights: Path, settings: Settings, *, imgsz: int | None = None, dst: Path | None = None) -> Path:
    """Write `<weights>.onnx` (static shape, opset chosen by Ultralytics, slimmed); returns its path."""
    weights = Path(weights)
    if not weights.is_file():
        raise ModelNotFoundError(f"weights {weights} not found; nothing to export")
    offline.configure(settings.yolo_config_dir, settings.threads)
    from ultralytics import YOLO

    model = YOLO(str(weights))
    size = imgsz or int(model.overrides.get("imgsz") or 640)
    out = Path(model.export(format="onnx", imgsz=size, dynamic=False, simplify=True, device="cpu", verbose=False))
    if dst is not None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), dst)
        out = Path(dst)
    return out

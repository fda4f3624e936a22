"""Detection's task-specific serving parts: the letterbox the exported model expects, the mapping
of boxes back to image pixels, and Ultralytics' NMS post-processing reproduced in numpy.

Both runtimes use exactly this pre-processing (the PyTorch runtime feeds the blob to Ultralytics
as a tensor), so ONNX Runtime and PyTorch see the same pixels and agree on non-square images.
Ultralytics' own predict would letterbox with minimal padding (`rect`) instead, which scores
non-square images differently. NMS in numpy keeps torch out of the ONNX server process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

PAD_VALUE = 114  # Ultralytics' letterbox grey
MAX_WH = 7680  # Ultralytics' class offset for batched NMS
MAX_NMS = 30000  # candidate cap before NMS, as Ultralytics

DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
DEFAULT_MAX_DET = 300


@dataclass
class Detections:
    """The detections in one image, in that image's pixel coordinates (x0, y0, x1, y1)."""

    width: int
    height: int
    boxes: list[list[float]] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.boxes)

    def to_dict(self, ndigits: int = 2) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "boxes": [[round(float(v), ndigits) for v in b] for b in self.boxes],
            "class_ids": [int(c) for c in self.class_ids],
            "labels": list(self.labels),
            "confidences": [round(float(c), 4) for c in self.confidences],
        }



def resize_bilinear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize with OpenCV's INTER_LINEAR sampling (no antialiasing; pixel values within 1
    grey level of cv2.resize, as a test checks), done by Pillow's affine transform so that the
    ONNX serving environment needs no OpenCV (159 MB of a 428 MB image, see docs/benchmarks.md)."""
    h, w = img.shape[:2]
    im = Image.fromarray(np.ascontiguousarray(img))
    coeffs = (w / width, 0.0, 0.0, 0.0, h / height, 0.0)
    return np.asarray(im.transform((width, height), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR))


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to size x size as Ultralytics' LetterBox
    (auto=False, center=True): the same new size, rounding and padding, the same grey, and its
    INTER_LINEAR sampling (see `resize_bilinear`).

    Returns the padded image, the (x, y) gains and the (left, top) padding, for mapping back.
    """
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    if (w, h) != (new_w, new_h):
        img = resize_bilinear(img, new_w, new_h)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    out = np.full((new_h + top + bottom, new_w + left + right, 3), PAD_VALUE, dtype=np.uint8)
    out[top:top + new_h, left:left + new_w] = img
    return out, (new_w / w, new_h / h), (left, top)


@dataclass(frozen=True)
class Frame:
    """Where a letterboxed input sits in the original image: enough to map boxes back."""

    width: int
    height: int
    gain: tuple[float, float]
    pad: tuple[int, int]

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """xyxy boxes in letterboxed-input pixels -> original-image pixels, clipped to the image."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        (gx, gy), (left, top) = self.gain, self.pad
        out[:, [0, 2]] = ((out[:, [0, 2]] - left) / gx).clip(0, self.width)
        out[:, [1, 3]] = ((out[:, [1, 3]] - top) / gy).clip(0, self.height)
        return out


def preprocess(arr: np.ndarray, size: int) -> tuple[np.ndarray, Frame]:
    """The one pre-processing of both runtimes: an RGB image -> a (1, 3, size, size) float32 blob
    in 0..1, square-letterboxed as the exported model expects, and the frame to map boxes back.

    Both runtimes use exactly this (the PyTorch runtime feeds the blob to Ultralytics as a tensor),
    so ONNX Runtime and PyTorch see the same pixels. Ultralytics' own predict would letterbox with
    minimal padding (`rect`) instead, which scores non-square images differently.
    """
    h, w = arr.shape[:2]
    padded, gain, pad = letterbox(arr, size)
    blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    return blob, Frame(width=w, height=h, gain=gain, pad=pad)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS (indices kept, best first), as torchvision.ops.nms."""
    order = scores.argsort()[::-1]
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0).clip(0) * (y1 - y0).clip(0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = (np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest])).clip(0)
        ih = (np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest])).clip(0)
        inter = iw * ih
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    output: np.ndarray, conf: float, iou: float, max_det: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw YOLO output for one image -> (boxes xyxy in input pixels, scores, class ids).

    Handles the classic head (4 + nc rows of candidates: xywh then class scores, NMS needed)
    and the end-to-end head of YOLO26/YOLOv10 (N x 6 rows: xyxy, score, class; no NMS).
    """
    out = output[0] if output.ndim == 3 else output
    if out.shape[-1] == 6 and out.shape[0] != 6:  # end-to-end: (N, 6)
        keep = out[:, 4] > conf
        out = out[keep][:max_det]
        return out[:, :4].astype(np.float32), out[:, 4].astype(np.float32), out[:, 5].astype(np.int64)
    preds = out.T  # (N, 4 + nc)
    scores_all = preds[:, 4:]
    cls = scores_all.argmax(1)
    scores = scores_all[np.arange(len(cls)), cls]
    keep = scores > conf
    preds, scores, cls = preds[keep], scores[keep], cls[keep]
    if not len(scores):
        empty = np.zeros((0, 4), np.float32)
        return empty, np.zeros(0, np.float32), np.zeros(0, np.int64)
    if len(scores) > MAX_NMS:
        top = scores.argsort()[::-1][:MAX_NMS]
        preds, scores, cls = preds[top], scores[top], cls[top]
    cx, cy, w, h = preds[:, 0], preds[:, 1], preds[:, 2], preds[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kept = nms(boxes + (cls * MAX_WH)[:, None], scores, iou)[:max_det]
    return boxes[kept].astype(np.float32), scores[kept].astype(np.float32), cls[kept].astype(np.int64)

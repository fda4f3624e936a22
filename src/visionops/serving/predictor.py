"""In-process detection with a registered model: one `Predictor` API, two runtimes.

`score.py` (the endpoint), the benchmarks and the tests all call this class, so what is measured
in-process is exactly what the endpoint runs. Two runtimes:

- `onnx`: ONNX Runtime on the exported `best.onnx`, with NMS post-processing in numpy that
  reproduces Ultralytics' (class-offset NMS, same candidate cap). Skipping Ultralytics' ONNX
  wrapper keeps torch out of the server process (faster start, less memory) and saves its
  per-call tensor conversions (see docs/benchmarks.md).
- `pytorch`: Ultralytics' own model on `best.pt`, the reference the ONNX path is tested against.

Both runtimes share one pre-processing (`preprocess`: the square letterbox the exported model
expects) and one mapping back to image pixels (`Frame.to_image`), so they score the same pixels
and agree on non-square images too.

Nothing here downloads anything: the weights come from the model folder, and
`visionops.offline` has switched Ultralytics' network touches off.
"""

from __future__ import annotations

import ast
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from visionops.errors import ConfigError, ModelNotFoundError

Runtime = Literal["onnx", "pytorch"]
RUNTIMES: tuple[str, ...] = ("onnx", "pytorch")
MODEL_INFO = "model_info.json"
PAD_VALUE = 114  # Ultralytics' letterbox grey
MAX_WH = 7680  # Ultralytics' class offset for batched NMS
MAX_NMS = 30000  # candidate cap before NMS, as Ultralytics

DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
DEFAULT_MAX_DET = 300


@dataclass(frozen=True)
class ModelBundle:
    """What a model folder holds: weights for each runtime, class names, image size, identity."""

    root: Path
    pt: Path | None
    onnx: Path | None
    info: dict[str, Any]
    name: str
    version: str

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.info.get("classes", [])]

    @property
    def imgsz(self) -> int | None:
        v = self.info.get("imgsz")
        return int(v) if v else None


def _first(root: Path, pattern: str) -> Path | None:
    hits = sorted(p for p in root.rglob(pattern) if p.is_file())
    # the MLflow layout keeps weights under artifacts/; prefer the shallowest match
    hits.sort(key=lambda p: len(p.relative_to(root).parts))
    return hits[0] if hits else None


def _version_from_path(root: Path) -> str | None:
    """Azure ML mounts a registered model at .../azureml-models/<name>/<version>; our local
    cache is outputs/models/<name>/<version>. Either way the version is a numeric folder."""
    for part in (root.name, root.parent.name):
        if re.fullmatch(r"\d+", part):
            return part
    return None


def find_model(model_dir: Path | str, *, name: str | None = None, version: str | None = None) -> ModelBundle:
    """Locate weights and model_info.json in an MLflow model folder or a flat folder.

    Name and version: explicit arguments, then `VISIONOPS_SERVING_MODEL_NAME` /
    `VISIONOPS_SERVING_MODEL_VERSION` (set by the local endpoint, and settable on an Azure
    deployment), then model_info.json, then the folder path.
    """
    root = Path(model_dir).expanduser()
    if not root.is_dir():
        raise ModelNotFoundError(
            f"model folder {root} does not exist; set AZUREML_MODEL_DIR (or --model_dir) to a registered "
            "model's folder (visionops.registry.download)"
        )
    pt, onnx = _first(root, "*.pt"), _first(root, "*.onnx")
    if pt is None and onnx is None:
        raise ModelNotFoundError(f"no .pt or .onnx weights under {root}; is this a registered VisionOps model?")
    info_path = _first(root, MODEL_INFO)
    info: dict[str, Any] = json.loads(info_path.read_text()) if info_path else {}
    name = name or os.environ.get("VISIONOPS_SERVING_MODEL_NAME") or info.get("name") or root.name
    version = (
        version
        or os.environ.get("VISIONOPS_SERVING_MODEL_VERSION")
        or (str(info["version"]) if info.get("version") is not None else None)
        or _version_from_path(root)
        or "unknown"
    )
    return ModelBundle(root=root, pt=pt, onnx=onnx, info=info, name=str(name), version=str(version))


def resolve_runtime(bundle: ModelBundle, runtime: str | None) -> Runtime:
    """'auto' (or None): ONNX Runtime when best.onnx exists (2-3x faster on CPU), else PyTorch."""
    wanted = (runtime or "auto").lower()
    if wanted == "auto":
        return "onnx" if bundle.onnx is not None else "pytorch"
    if wanted not in RUNTIMES:
        raise ConfigError(f"unknown serving runtime {runtime!r}; use onnx, pytorch or auto")
    if wanted == "onnx" and bundle.onnx is None:
        raise ModelNotFoundError(
            f"runtime onnx asked for, but {bundle.root} has no .onnx file; export one "
            "(visionops.serving.export.export_onnx) or use --runtime pytorch"
        )
    if wanted == "pytorch" and bundle.pt is None:
        raise ModelNotFoundError(f"runtime pytorch asked for, but {bundle.root} has no .pt weights; use --runtime onnx")
    return wanted  # type: ignore[return-value]


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


ImageLike = Image.Image | np.ndarray


def _as_rgb_array(image: ImageLike) -> np.ndarray:
    """HxWx3 uint8 RGB (PIL images in any mode, or an RGB array)."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {arr.shape}")
    return arr


class Predictor(ABC):
    """Load once, predict many times; thread-compatible (one predict at a time per instance)."""

    runtime: Runtime

    def __init__(self, bundle: ModelBundle, *, threads: int | None = None):
        self.bundle = bundle
        self.threads = threads or os.cpu_count() or 1
        self.imgsz = bundle.imgsz or 640
        self.names: list[str] = bundle.classes

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    def label(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)

    def _detections(self, frame: Frame, boxes: np.ndarray, scores: list[float], class_ids: list[int]) -> Detections:
        return Detections(
            width=frame.width, height=frame.height, boxes=np.asarray(boxes).tolist(),
            class_ids=[int(c) for c in class_ids], labels=[self.label(int(c)) for c in class_ids],
            confidences=[float(c) for c in scores],
        )

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "runtime": self.runtime, "imgsz": self.imgsz,
                "classes": list(self.names)}

    @abstractmethod
    def predict(
        self,
        images: Sequence[ImageLike],
        *,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET,
    ) -> list[Detections]:
        """Detections for each image, best first."""

    def warmup(self) -> None:
        """One prediction on a blank image so the first real request is not slow (lazy init, allocations)."""
        self.predict([np.full((self.imgsz, self.imgsz, 3), PAD_VALUE, np.uint8)])


# --- ONNX Runtime ------------------------------------------------------------------------------
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


def _onnx_names(meta: dict[str, str]) -> list[str]:
    """Ultralytics writes `names` into the ONNX metadata as a dict literal."""
    raw = meta.get("names")
    if not raw:
        return []
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return []
    return [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


class OnnxPredictor(Predictor):
    runtime: Runtime = "onnx"

    def __init__(self, bundle: ModelBundle, *, threads: int | None = None):
        super().__init__(bundle, threads=threads)
        if bundle.onnx is None:
            raise ModelNotFoundError(f"no .onnx file under {bundle.root}")
        import onnxruntime as ort

        if hasattr(ort, "disable_telemetry_events"):
            ort.disable_telemetry_events()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(bundle.onnx), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape  # [1, 3, H, W]; static export
        if isinstance(shape[-1], int):
            self.imgsz = int(shape[-1])
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        if not self.names:
            self.names = _onnx_names(meta)

    def predict(
        self,
        images: Sequence[ImageLike],
        *,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET,
    ) -> list[Detections]:
        results = []
        for image in images:
            arr = _as_rgb_array(image)
            blob, frame = preprocess(arr, self.imgsz)
            output = self.session.run(None, {self.input_name: blob})[0]
            boxes, scores, cls = postprocess(output, conf, iou, max_det)
            results.append(self._detections(frame, frame.to_image(boxes), scores.tolist(), cls.tolist()))
        return results


# --- PyTorch (Ultralytics) ---------------------------------------------------------------------
class TorchPredictor(Predictor):
    runtime: Runtime = "pytorch"

    def __init__(self, bundle: ModelBundle, *, threads: int | None = None, device: str = "cpu",
                 yolo_config_dir: Path | None = None):
        super().__init__(bundle, threads=threads)
        if bundle.pt is None:
            raise ModelNotFoundError(f"no .pt weights under {bundle.root}")
        from visionops import offline

        if yolo_config_dir is not None:
            offline.configure(yolo_config_dir, self.threads)
        else:
            offline.set_threads(self.threads)
        from ultralytics import YOLO

        self.device = device
        self.model = YOLO(str(bundle.pt), task="detect")
        if not self.names:
            names = self.model.names
            self.names = [str(names[k]) for k in sorted(names)]
        if bundle.imgsz is None:
            self.imgsz = int(self.model.overrides.get("imgsz") or 640)

    def predict(
        self,
        images: Sequence[ImageLike],
        *,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET,
    ) -> list[Detections]:
        import torch

        out = []
        for image in images:
            blob, frame = preprocess(_as_rgb_array(image), self.imgsz)
            # A tensor input skips Ultralytics' own letterbox (and its BGR flip: the blob is RGB
            # already), so boxes come back in letterboxed pixels and map back exactly as ONNX's do.
            (r,) = self.model.predict(
                torch.from_numpy(blob), imgsz=self.imgsz, conf=conf, iou=iou, max_det=max_det,
                device=self.device, verbose=False,
            )
            b = r.boxes
            out.append(self._detections(frame, frame.to_image(b.xyxy.cpu().numpy()), b.conf.tolist(), b.cls.tolist()))
        return out


def load_predictor(
    model_dir: Path | str,
    runtime: str | None = "auto",
    *,
    threads: int | None = None,
    device: str = "cpu",
    yolo_config_dir: Path | None = None,
    name: str | None = None,
    version: str | None = None,
) -> Predictor:
    """The predictor for a model folder (a registered version's download, or AZUREML_MODEL_DIR)."""
    bundle = find_model(model_dir, name=name, version=version)
    chosen = resolve_runtime(bundle, runtime)
    if chosen == "onnx":
        return OnnxPredictor(bundle, threads=threads)
    return TorchPredictor(bundle, threads=threads, device=device, yolo_config_dir=yolo_config_dir)

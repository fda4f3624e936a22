"""In-process scoring with a registered model: one `Predictor` API, two runtimes, two tasks.

`score.py` (the endpoint), batch scoring, the benchmarks and the tests all call this class, so
what is measured in-process is exactly what the endpoint runs. Two runtimes:

- `onnx`: ONNX Runtime on the exported `best.onnx`, with the post-processing in numpy (for
  detection, NMS that reproduces Ultralytics'). Skipping Ultralytics' ONNX wrapper keeps torch
  out of the server process (faster start, less memory) and saves its per-call tensor
  conversions (see docs/benchmarks.md).
- `pytorch`: Ultralytics' own model on `best.pt`, the reference the ONNX path is tested against.

The task (`detect` or `classify`) comes from the model itself: model_info.json's `task`, else the
ONNX metadata Ultralytics writes (`task`), else the Ultralytics model's `.task`; serving needs no
setting. Everything task-specific (pre-processing, reading the output) sits behind a `Head`
(visionops.serving.heads), shared by both runtimes, so they score the same pixels and agree on
non-square images too.

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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from visionops.errors import ConfigError, ModelNotFoundError
from visionops.serving.classify import Classification, classify_preprocess
from visionops.serving.detect import (  # re-exported: callers import the detection helpers from here
    DEFAULT_CONF,
    DEFAULT_IOU,
    DEFAULT_MAX_DET,
    MAX_NMS,
    MAX_WH,
    PAD_VALUE,
    Detections,
    Frame,
    letterbox,
    nms,
    postprocess,
    preprocess,
    resize_bilinear,
)
from visionops.serving.heads import Head, Params, Prediction, head_for

__all__ = [
    "DEFAULT_CONF", "DEFAULT_IOU", "DEFAULT_MAX_DET", "MAX_NMS", "MAX_WH", "PAD_VALUE", "Classification", "Detections",
    "Frame", "ModelBundle", "OnnxPredictor", "Prediction", "Predictor", "TorchPredictor", "classify_preprocess",
    "find_model", "letterbox", "load_predictor", "nms", "postprocess", "preprocess", "resize_bilinear",
    "resolve_runtime",
]

Runtime = Literal["onnx", "pytorch"]
RUNTIMES: tuple[str, ...] = ("onnx", "pytorch")
MODEL_INFO = "model_info.json"


@dataclass(frozen=True)
class ModelBundle:
    """What a model folder holds: weights for each runtime, class names, image size, identity."""

    root: Path
    pt: Path | None
    onnx: Path | None
    info: dict[str, Any]
    name: str
    version: str
    # 'detect' | 'classify'; None when only loading the weights can tell (a .pt without model_info task)
    task: str | None = None

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
    task = info.get("task") or (onnx_metadata(onnx).get("task") if onnx is not None else None)
    return ModelBundle(root=root, pt=pt, onnx=onnx, info=info, name=str(name), version=str(version),
                       task=str(task) if task else None)


def onnx_metadata(path: Path) -> dict[str, str]:
    """The custom metadata Ultralytics writes into an export (task, names, imgsz...), cached per file
    version. Read with ONNX Runtime (the serving environments have no `onnx` package), without
    graph optimisation, so it costs a fraction of loading the model for inference."""
    st = Path(path).stat()
    return dict(_onnx_metadata(str(path), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=16)
def _onnx_metadata(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    return tuple(sorted((session.get_modelmeta().custom_metadata_map or {}).items()))


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
    """Load once, predict many times; thread-compatible (one predict at a time per instance).

    A runtime only turns a blob into the raw output (`_run_onnx`-style) or an Ultralytics result;
    the task's `head` does the pre-processing and reads the output, the same for both runtimes."""

    runtime: Runtime

    def __init__(self, bundle: ModelBundle, *, threads: int | None = None):
        self.bundle = bundle
        self.threads = threads or os.cpu_count() or 1
        self.imgsz = bundle.imgsz or 640
        self.names: list[str] = bundle.classes
        self.task: str = bundle.task or "detect"

    @property
    def head(self) -> Head:
        return head_for(self.task)

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    def label(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "runtime": self.runtime, "task": self.task,
                "imgsz": self.imgsz, "classes": list(self.names)}

    def predict(
        self,
        images: Sequence[ImageLike],
        *,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET,
        top_k: int | None = None,
    ) -> list[Prediction]:
        """One prediction per image: `Detections` (boxes, best first) for a detector, `Classification`
        (top-k labels, best first) for a classifier. Parameters the task does not use are ignored."""
        params = Params(conf=conf, iou=iou, max_det=max_det, top_k=top_k)
        head = self.head
        out = []
        for image in images:
            blob, frame = head.preprocess(_as_rgb_array(image), self.imgsz)
            out.append(self._predict_blob(head, blob, frame, params))
        return out

    @abstractmethod
    def _predict_blob(self, head: Head, blob: np.ndarray, frame: Frame, params: Params) -> Prediction:
        """One pre-processed image through this runtime, read by the task's head."""

    def warmup(self) -> None:
        """One prediction on a blank image so the first real request is not slow (lazy init, allocations)."""
        self.predict([np.full((self.imgsz, self.imgsz, 3), PAD_VALUE, np.uint8)])


# --- ONNX Runtime ---------------------------------------------------------------------------------
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
        self.task = bundle.task or meta.get("task") or "detect"
        head_for(self.task)  # an unsupported task (segment, pose...) fails at load, naming it

    def _predict_blob(self, head: Head, blob: np.ndarray, frame: Frame, params: Params) -> Prediction:
        output = self.session.run(None, {self.input_name: blob})[0]
        return head.from_onnx(output, frame, self.names, params)


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
        # without a known task Ultralytics reads it from the checkpoint (its model's .task)
        self.model = YOLO(str(bundle.pt), task=bundle.task)
        self.task = bundle.task or str(self.model.task or "detect")
        head_for(self.task)
        if not self.names:
            names = self.model.names
            self.names = [str(names[k]) for k in sorted(names)]
        if bundle.imgsz is None:
            self.imgsz = int(self.model.overrides.get("imgsz") or 640)

    def _predict_blob(self, head: Head, blob: np.ndarray, frame: Frame, params: Params) -> Prediction:
        import torch

        # A tensor input skips Ultralytics' own pre-processing (letterbox or classify_transforms, and
        # its BGR flip: the blob is RGB already), so both runtimes score exactly the head's pixels.
        (r,) = self.model.predict(
            torch.from_numpy(blob), imgsz=self.imgsz, conf=params.conf, iou=params.iou, max_det=params.max_det,
            device=self.device, verbose=False,
        )
        return head.from_ultralytics(r, frame, self.names, params)


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

"""The task-specific parts of serving behind one small interface: one `Head` per task.

A head knows how its task's model wants its pixels (`preprocess`), how to read the raw ONNX output
and Ultralytics' result into the response's per-image prediction (`from_onnx`, `from_ultralytics`),
which request parameters change its output (`run_params`, recorded by batch scoring so a resumed
run cannot mix settings) and whether COCO detection results make sense for it (`coco`). The
predictor, score.py, batch scoring and the smoke test ask the head; nothing else branches on the
task. A new task is a new head in `HEADS`.

Request parameters a task does not use are ignored (still validated by the protocol): one client
can send `conf` to a classifier, or `top_k` to a detector, and get an answer. See docs/serving.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from visionops.errors import ConfigError
from visionops.serving.classify import Classification, classify_preprocess, effective_top_k, top_k
from visionops.serving.detect import (
    DEFAULT_CONF,
    DEFAULT_IOU,
    DEFAULT_MAX_DET,
    Detections,
    Frame,
    postprocess,
    preprocess,
)

Prediction = Detections | Classification


@dataclass(frozen=True)
class Params:
    """The request's parameters, all tasks together; each head reads the ones it uses."""

    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU
    max_det: int = DEFAULT_MAX_DET
    top_k: int | None = None  # None: 5, capped at the number of classes


def _label(names: list[str], class_id: int) -> str:
    return names[class_id] if 0 <= class_id < len(names) else str(class_id)


class Head(ABC):
    """One task's pre-processing and output reading, shared by both runtimes."""

    task: ClassVar[str]
    coco: ClassVar[bool]  # whether COCO detection results (batch scoring) apply

    @abstractmethod
    def preprocess(self, arr: np.ndarray, size: int) -> tuple[np.ndarray, Frame]:
        """An HxWx3 RGB uint8 image -> the (1, 3, size, size) float32 blob and its frame."""

    @abstractmethod
    def from_onnx(self, output: np.ndarray, frame: Frame, names: list[str], params: Params) -> Prediction:
        """One image's raw ONNX `output0` (batch axis of 1 kept) -> its prediction."""

    @abstractmethod
    def from_ultralytics(self, result: Any, frame: Frame, names: list[str], params: Params) -> Prediction:
        """One Ultralytics `Results` (of the same blob) -> its prediction."""

    @abstractmethod
    def run_params(self, params: Params) -> dict[str, Any]:
        """The parameters that change this task's output, as recorded with batch predictions."""

    @abstractmethod
    def describe(self, predictions: list[Prediction]) -> str:
        """A few words for the server log: what was found."""


class DetectHead(Head):
    """Boxes: square letterbox in, Ultralytics' NMS out, boxes mapped back to image pixels."""

    task = "detect"
    coco = True

    def preprocess(self, arr: np.ndarray, size: int) -> tuple[np.ndarray, Frame]:
        return preprocess(arr, size)

    def _detections(self, frame: Frame, boxes: np.ndarray, scores: list[float], class_ids: list[int],
                    names: list[str]) -> Detections:
        return Detections(
            width=frame.width, height=frame.height, boxes=frame.to_image(boxes).tolist(),
            class_ids=[int(c) for c in class_ids], labels=[_label(names, int(c)) for c in class_ids],
            confidences=[float(c) for c in scores],
        )

    def from_onnx(self, output: np.ndarray, frame: Frame, names: list[str], params: Params) -> Detections:
        boxes, scores, cls = postprocess(output, params.conf, params.iou, params.max_det)
        return self._detections(frame, boxes, scores.tolist(), cls.tolist(), names)

    def from_ultralytics(self, result: Any, frame: Frame, names: list[str], params: Params) -> Detections:
        b = result.boxes
        return self._detections(frame, b.xyxy.cpu().numpy(), b.conf.tolist(), b.cls.tolist(), names)

    def run_params(self, params: Params) -> dict[str, Any]:
        return {"conf": params.conf, "iou": params.iou, "max_det": params.max_det}

    def describe(self, predictions: list[Prediction]) -> str:
        return f"{sum(len(p) for p in predictions)} detection(s)"


class ClassifyHead(Head):
    """Top-k labels: short side resized and center-cropped in, the softmax row out."""

    task = "classify"
    coco = False

    def preprocess(self, arr: np.ndarray, size: int) -> tuple[np.ndarray, Frame]:
        return classify_preprocess(arr, size)

    def _classification(self, frame: Frame, probabilities: np.ndarray, names: list[str],
                        params: Params) -> Classification:
        probs = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        ids, values = top_k(probs, effective_top_k(params.top_k, len(probs)))
        return Classification(width=frame.width, height=frame.height, labels=[_label(names, i) for i in ids],
                              class_ids=ids, probabilities=values)

    def from_onnx(self, output: np.ndarray, frame: Frame, names: list[str], params: Params) -> Classification:
        return self._classification(frame, output[0], names, params)

    def from_ultralytics(self, result: Any, frame: Frame, names: list[str], params: Params) -> Classification:
        return self._classification(frame, result.probs.data.float().cpu().numpy(), names, params)

    def run_params(self, params: Params) -> dict[str, Any]:
        return {"task": self.task, "top_k": params.top_k}

    def describe(self, predictions: list[Prediction]) -> str:
        tops = [p.labels[0] for p in predictions if isinstance(p, Classification) and p.labels]
        return f"top-1 {', '.join(tops[:4])}{' ...' if len(tops) > 4 else ''}"


HEADS: dict[str, Head] = {h.task: h for h in (DetectHead(), ClassifyHead())}


def head_for(task: str | None) -> Head:
    """The head of a task ('detect' when the model does not say: models from before `task` existed)."""
    try:
        return HEADS[task or "detect"]
    except KeyError:
        raise ConfigError(
            f"model task {task!r} is not served by VisionOps; it serves {', '.join(HEADS)} models "
            "(segment, pose and obb exports are not supported)"
        ) from None

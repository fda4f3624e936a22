"""The in-process Predictor: our ONNX pre/post-processing against Ultralytics', and ONNX Runtime
against PyTorch on real test images of a trained detector."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from visionops.errors import ConfigError, ModelNotFoundError
from visionops.serving.predictor import find_model, letterbox, load_predictor, nms, resolve_runtime


@pytest.mark.parametrize("shape", [(96, 96), (90, 150), (150, 90), (37, 211), (640, 480), (1, 300), (60, 40)])
def test_letterbox_matches_ultralytics(shape):
    """Same size, padding and grey as Ultralytics' LetterBox; pixels within one grey level of its
    cv2 INTER_LINEAR resize (Pillow's affine bilinear rounds differently), so no OpenCV is needed."""
    from ultralytics.data.augment import LetterBox

    img = np.random.default_rng(1).integers(0, 255, (*shape, 3), dtype=np.uint8)
    ours, (gx, gy), (left, top) = letterbox(img, 96)
    theirs = LetterBox((96, 96), auto=False, stride=32)(image=img)
    assert ours.shape == theirs.shape == (96, 96, 3)
    border = np.ones((96, 96), dtype=bool)
    border[top:top + round(shape[0] * gy), left:left + round(shape[1] * gx)] = False
    assert (ours[border] == 114).all() and (theirs[border] == 114).all()  # the same grey border
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.5, (diff.max(), diff.mean())


def test_nms_matches_torchvision():
    import torch
    import torchvision

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 80, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    for thr in (0.3, 0.5, 0.7):
        ours = nms(boxes, scores, thr)
        theirs = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).numpy()
        assert np.array_equal(ours, theirs)


def test_find_model_in_flat_and_mlflow_folders(tmp_path, detector):
    bundle = find_model(detector.model_dir)  # MLflow layout: weights under artifacts/
    assert bundle.pt.name == "best.pt" and bundle.onnx.name == "best.onnx"
    assert bundle.classes == ["circle", "rectangle"] and bundle.imgsz == 96
    assert bundle.version == detector.ref.version  # from the folder: outputs/models/<name>/<version>
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(bundle.onnx, flat / "model.onnx")
    (flat / "model_info.json").write_text(json.dumps({"name": "m", "version": 7, "classes": ["a", "b"], "imgsz": 96}))
    flat_bundle = find_model(flat)
    assert (flat_bundle.name, flat_bundle.version, flat_bundle.pt) == ("m", "7", None)
    assert resolve_runtime(flat_bundle, "auto") == "onnx"
    with pytest.raises(ModelNotFoundError, match="runtime onnx"):
        resolve_runtime(dataclasses.replace(bundle, onnx=None), "onnx")
    assert resolve_runtime(dataclasses.replace(bundle, onnx=None), "auto") == "pytorch"
    with pytest.raises(ModelNotFoundError, match="--runtime onnx"):
        resolve_runtime(flat_bundle, "pytorch")
    with pytest.raises(ConfigError, match="unknown serving runtime"):
        resolve_runtime(flat_bundle, "tensorrt")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        find_model(tmp_path / "missing")


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_onnx_runtime_agrees_with_pytorch(detector):
    onnx = load_predictor(detector.model_dir, "onnx")
    torch_ = load_predictor(detector.model_dir, "pytorch")
    assert (onnx.runtime, torch_.runtime) == ("onnx", "pytorch")
    assert onnx.names == torch_.names == ["circle", "rectangle"]
    images = [Image.open(p) for p in detector.test_images]
    # non-square images of both orientations and another size: letterbox padding on one axis
    images += [images[0].resize((150, 90)), images[1].resize((70, 133)), images[2].resize((301, 97))]
    compared = 0
    for i, img in enumerate(images):
        a = onnx.predict([img], conf=0.25)[0]
        b = torch_.predict([img], conf=0.25)[0]
        assert (a.width, a.height) == (b.width, b.height) == img.size
        assert len(a) == len(b), f"image {i}: {len(a)} ONNX vs {len(b)} PyTorch boxes"
        for box, label, conf in zip(b.boxes, b.labels, b.confidences, strict=True):
            j = max(range(len(a)), key=lambda k: _iou(a.boxes[k], box))
            assert a.labels[j] == label, f"image {i}: label {a.labels[j]} vs {label}"
            assert max(abs(u - v) for u, v in zip(a.boxes[j], box, strict=True)) <= 1.0, (
                f"image {i}: boxes differ by more than 1 px: {a.boxes[j]} vs {box}")
            assert abs(a.confidences[j] - conf) <= 0.01, f"image {i}: confidence {a.confidences[j]} vs {conf}"
            compared += 1
    assert compared >= len(detector.test_images), f"only {compared} boxes compared: the detector finds too little"


def test_pytorch_scorer_refuses_non_images_with_a_4xx(detector):
    """Loading Ultralytics patches PIL.Image.open (it would try to install pi-heif on unknown files);
    with the PyTorch runtime loaded, bytes that are no image must still be a 400, not a crash."""
    import base64
    import json

    from visionops.serving.protocol import Limits
    from visionops.serving.score import Scorer

    scorer = Scorer(load_predictor(detector.model_dir, "pytorch"),
                    Limits(max_payload_bytes=1_000_000, max_image_pixels=4096 * 4096, max_images=4))
    status, body = scorer.score(json.dumps({"image": base64.b64encode(b"no image here at all").decode()}))
    assert status == 400 and body["error"]["field"] == "image", body

"""Classification served end to end on a real small classifier: the pre-processing against
Ultralytics' classify_transforms, ONNX Runtime against PyTorch on non-square images, top_k and
the detection parameters in requests, the endpoint and its smoke test, the MLflow pyfunc."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from visionops.serving.predictor import find_model, load_predictor
from visionops.serving.protocol import Limits

LIMITS = Limits(max_payload_bytes=1_000_000, max_image_pixels=4096 * 4096, max_images=4)


def _b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("shape", [(64, 64), (64, 96), (96, 64), (37, 211), (480, 640), (300, 7), (50, 50)])
def test_classify_preprocess_matches_ultralytics(shape):
    """The same pixels as Ultralytics' classify_transforms (short side resized bilinear, center
    crop, RGB in 0..1, no mean/std), without torch: exact up to float rounding."""
    from ultralytics.data.augment import classify_transforms

    from visionops.serving.classify import classify_preprocess

    img = np.random.default_rng(2).integers(0, 255, (*shape, 3), dtype=np.uint8)
    ours, frame = classify_preprocess(img, 64)
    theirs = classify_transforms(64)(Image.fromarray(img)).numpy()[None]
    assert ours.shape == theirs.shape == (1, 3, 64, 64) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert (frame.width, frame.height) == (shape[1], shape[0])


def test_top_k_order_and_ties():
    from visionops.serving.classify import effective_top_k, top_k

    assert top_k(np.array([0.1, 0.6, 0.3]), 2) == ([1, 2], [pytest.approx(0.6), pytest.approx(0.3)])
    assert top_k(np.array([0.5, 0.5]), 2)[0] == [0, 1]  # ties keep class order
    assert [effective_top_k(k, n) for k, n in [(None, 3), (None, 10), (2, 3), (9, 3)]] == [3, 5, 2, 3]


def test_each_task_has_a_head_and_other_tasks_are_refused_by_name():
    from visionops.errors import ConfigError
    from visionops.serving.heads import head_for

    assert (head_for("detect").coco, head_for("classify").coco, head_for(None).task) == (True, False, "detect")
    with pytest.raises(ConfigError, match="task .segment. is not served by VisionOps; it serves detect, classify"):
        head_for("segment")


def test_find_model_knows_the_task_from_model_info_and_from_onnx_metadata(classifier, detector, tmp_path):
    bundle = find_model(classifier.model_dir)
    assert (bundle.task, bundle.classes, bundle.imgsz) == ("classify", ["bar", "disc", "square"], 64)
    assert find_model(detector.model_dir).task == "detect"
    # a bare ONNX export, no model_info.json: the task comes from the metadata Ultralytics wrote
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(bundle.onnx, flat / "model.onnx")
    assert find_model(flat).task == "classify"
    p = load_predictor(flat, "onnx")
    assert (p.task, p.names, p.imgsz) == ("classify", ["bar", "disc", "square"], 64)


@pytest.mark.slow
def test_onnx_runtime_agrees_with_pytorch_and_classifies_the_test_images(classifier):
    onnx = load_predictor(classifier.model_dir, "onnx", threads=1)
    torch_ = load_predictor(classifier.model_dir, "pytorch", threads=1)
    assert onnx.task == torch_.task == "classify" and onnx.names == torch_.names
    cases = classifier.test_images
    assert {Image.open(p).size[0] != Image.open(p).size[1] for p, _ in cases} == {True}  # all non-square
    for path, truth in cases:
        img = Image.open(path)
        a = onnx.predict([img], top_k=3)[0]
        b = torch_.predict([img], top_k=3)[0]
        assert (a.width, a.height) == (b.width, b.height) == img.size
        pa = dict(zip(a.labels, a.probabilities, strict=True))
        pb = dict(zip(b.labels, b.probabilities, strict=True))
        assert pa.keys() == pb.keys() == {"bar", "disc", "square"}
        assert max(abs(pa[k] - pb[k]) for k in pa) <= 1e-3, (path.name, pa, pb)
        assert abs(sum(pa.values()) - 1) < 1e-4  # the exported head is a softmax
        assert a.labels[0] == b.labels[0] == truth, (path.name, pa)


def test_predictions_carry_top_k_labels_best_first(classifier):
    p = load_predictor(classifier.model_dir, "onnx", threads=1)
    img = Image.open(classifier.known.path)
    default = p.predict([img])[0].to_dict()
    assert sorted(default) == ["class_ids", "height", "labels", "probabilities", "width"]
    assert len(default["labels"]) == 3  # default 5, capped at the 3 classes
    assert default["probabilities"] == sorted(default["probabilities"], reverse=True)
    assert [p.names[i] for i in default["class_ids"]] == default["labels"]
    one = p.predict([img], top_k=1, conf=0.99)[0]  # conf is a detection parameter: ignored
    assert one.labels == [classifier.known.label]


def test_scorer_validates_top_k_and_ignores_detection_parameters(classifier, detector):
    from visionops.serving.score import Scorer

    scorer = Scorer(load_predictor(classifier.model_dir, "onnx", threads=1), LIMITS)
    image = _b64(classifier.known.path)
    status, body = scorer.score({"image": image, "top_k": 2, "conf": 0.9, "iou": 0.1, "max_det": 1})
    assert status == 200, body
    assert body["model"]["task"] == "classify" and body["model"]["runtime"] == "onnx"
    (pred,) = body["predictions"]
    assert len(pred["labels"]) == len(pred["probabilities"]) == 2 and pred["labels"][0] == classifier.known.label
    for bad, message in [(4, "the model has 3 classes"), (0, "[1, 3]"), ("two", "an integer")]:
        status, body = scorer.score({"image": image, "top_k": bad})
        assert status == 400 and body["error"]["field"] == "top_k" and message in body["error"]["message"], body
    status, body = scorer.score({"image": image, "conf": 2})  # still validated, though unused
    assert status == 400 and body["error"]["field"] == "conf"
    # and the other way round: top_k on a detector is validated, then ignored
    det = Scorer(load_predictor(detector.model_dir, "onnx", threads=1), LIMITS)
    status, body = det.score({"image": _b64(detector.known.path), "top_k": 1})
    assert status == 200 and body["model"]["task"] == "detect" and "boxes" in body["predictions"][0]
    assert det.score({"image": _b64(detector.known.path), "top_k": 3})[0] == 400  # 2 classes


@pytest.mark.slow
def test_endpoint_classifies_and_the_smoke_test_checks_the_label(classify_endpoint, classifier):
    from visionops.serving.endpoint import EndpointClient
    from visionops.serving.smoke_test import KnownLabel, known_image_from_dataset, run_smoke_test

    with EndpointClient(classify_endpoint.info, timeout=30) as client:
        answer = client.score({"images": [_b64(p) for p, _ in classifier.test_images[:3]], "top_k": 2})
    assert answer["model"] == {"name": classifier.ref.name, "version": classifier.ref.version, "runtime": "onnx",
                               "task": "classify"}
    assert [p["labels"][0] for p in answer["predictions"]] == [t for _, t in classifier.test_images[:3]]
    known = known_image_from_dataset(classifier.dataset)
    assert known == classifier.known and known.path.parent.parent.name == "test"
    report = run_smoke_test(classify_endpoint.info, known)
    assert report.ok, report.summary()
    assert f"top-1 {known.label}" in report.checks[1].detail and report.model["task"] == "classify"
    wrong = next(c for c in ("bar", "disc", "square") if c != known.label)
    failed = run_smoke_test(classify_endpoint.info, KnownLabel(path=known.path, label=wrong))
    assert not failed.ok and f"expected top-1 {wrong}" in failed.checks[1].detail


@pytest.mark.slow
def test_mlflow_pyfunc_returns_labels_and_probabilities(classifier):
    import mlflow
    import pandas as pd

    from visionops import tracking

    tracking.configure_mlflow(classifier.settings)
    model = mlflow.pyfunc.load_model(f"models:/{classifier.ref.name}/{classifier.ref.version}")
    paths = [str(p) for p, _ in classifier.test_images[:2]]
    # the registered signature declares no params, so MLflow passes none: the default top 5, capped at 3 classes
    out = model.predict(pd.DataFrame({"path": paths}))
    assert list(out.columns) == ["image_index", "rank", "class_id", "label", "probability"]
    assert out["image_index"].tolist() == [0, 0, 0, 1, 1, 1] and out["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    top1 = out[out["rank"] == 1]["label"].tolist()
    assert top1 == [t for _, t in classifier.test_images[:2]]
    assert ((out["probability"] > 0) & (out["probability"] <= 1)).all()
    info = json.loads(next(classifier.model_dir.rglob("model_info.json")).read_text())
    assert info["task"] == "classify"


def test_mlflow_pyfunc_class_honours_top_k(classifier):
    """The pyfunc class itself (what MLflow copies into the model), with params as a caller passes them."""
    from types import SimpleNamespace

    import pandas as pd

    from visionops.mlflow_model import YoloModel

    model = YoloModel()
    model.load_context(SimpleNamespace(artifacts={"weights": str(find_model(classifier.model_dir).pt)}))
    out = model.predict(None, pd.DataFrame({"image": [_b64(classifier.known.path)]}), params={"top_k": 1})
    assert out[["rank", "label"]].values.tolist() == [[1, classifier.known.label]]
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        model.predict(None, pd.DataFrame({"path": [str(classifier.known.path)]}), params={"top_k": 0})

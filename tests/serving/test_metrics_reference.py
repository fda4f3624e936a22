"""VisionOps' reported mAP50-95 agrees with the reference implementation (pycocotools).

The champion/challenger gate promotes on `evaluation.metrics.score`'s mAP50-95 (Ultralytics'
validator), so that number must mean what COCO mAP means everywhere else. Here the same fixed
model's test-split predictions are scored by pycocotools' COCOeval against the COCO export of
the ground truth (`data.formats.coco.export_coco`), independently of Ultralytics' metric code.

Why conf=0.001 for the reference predictions: mAP integrates precision over the whole recall
range, so it needs the low-confidence detections too. Ultralytics' validator keeps everything
above 0.001 (its val default), and pycocotools is only comparable when it sees the same tail;
at a serving threshold such as 0.25 the curve is cut short and the reference mAP comes out
lower for a reason that has nothing to do with the metric code. NMS IoU 0.7 and max_det 300 are
likewise the validator's values (pycocotools then keeps the 100 best per image; these images
hold one or two objects).

Ultralytics' validator NMS is multi-label (a box may be kept once per class, which the served
model never does); it put the validator 0.018 to 0.046 above the served predictions on this
fixture depending on the training run, so `score` runs the validator with the served NMS (one
class per box; `evaluation.metrics.served_nms_validator`). What is left is the AP integration
(trapezoid rule over the interpolated curve vs COCO's 101 steps: about 0.001 here, up to 0.015 on
the 8-image val split). The test also scores the validator's own detections with pycocotools:
that isolates the metric code, and when the first check fails it tells whether the gap is in the
detections or the math.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

pycocotools = pytest.importorskip("pycocotools", reason="pycocotools is a dev dependency (pip install -e .[dev])")

# Ultralytics' validator settings, mirrored for the reference predictions (see the module docstring).
VAL_CONF = 0.001
VAL_IOU = 0.7
VAL_MAX_DET = 300
TOLERANCE = 0.02


def _cocoeval_map50_95(coco_json: Path, detections: list[dict]) -> float:
    """pycocotools' mAP50-95 (IoU 0.50:0.95, all areas, 100 detections per image)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # COCO's loaders and summarize() print tables
        gt = COCO(str(coco_json))
        dt = gt.loadRes(detections)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def _reference_map50_95(weights: Path, root: Path, coco_json: Path, imgsz: int) -> tuple[float, int]:
    """pycocotools' mAP50-95 of the model's own predictions (one class per box, as served)."""
    from ultralytics import YOLO

    doc = json.loads(coco_json.read_text())
    model = YOLO(str(weights))
    detections = []
    for image in doc["images"]:
        result = model.predict(
            str(root / image["file_name"]), imgsz=imgsz, conf=VAL_CONF, iou=VAL_IOU, max_det=VAL_MAX_DET,
            device="cpu", verbose=False,
        )[0]
        for (x0, y0, x1, y1), score, cls in zip(
            result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist(), strict=True
        ):
            detections.append({
                "image_id": image["id"],
                "category_id": int(cls) + 1,  # export_coco writes category id = class id + 1
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": score,
            })
    assert detections, f"the fixture model found nothing in {len(doc['images'])} test images"
    return _cocoeval_map50_95(coco_json, detections), len(detections)


def _validator_detections(weights: Path, data_yaml: Path, coco_json: Path, imgsz: int, out: Path) -> list[dict]:
    """The detections Ultralytics' validator itself scored (its COCO-format predictions.json), with
    image ids mapped to those of the COCO export (the validator names images by file stem)."""
    from ultralytics import YOLO

    from visionops.evaluation.metrics import served_nms_validator

    m = YOLO(str(weights)).val(
        validator=served_nms_validator(), data=str(data_yaml), split="test", imgsz=imgsz, batch=16, device="cpu",
        plots=False, save_json=True, project=str(out.parent), name=out.name, exist_ok=True, verbose=False, workers=0,
    )
    ids = {Path(im["file_name"]).stem: im["id"] for im in json.loads(coco_json.read_text())["images"]}
    preds = json.loads((Path(m.save_dir) / "predictions.json").read_text())
    return [{**p, "image_id": ids[str(p["image_id"])]} for p in preds]


def test_reported_map50_95_agrees_with_pycocotools(detector, tmp_path):
    from visionops import registry
    from visionops.data.catalog import LocalDatasetCatalog
    from visionops.data.formats.coco import export_coco
    from visionops.evaluation.metrics import score

    settings = detector.settings
    dataset = LocalDatasetCatalog(settings.catalog_dir).get(
        detector.ref.tags["dataset.name"], detector.ref.tags["dataset.version"]
    )
    weights = registry.model_files(detector.model_dir)["pt"]
    reported = score(weights, dataset, settings, split="test", save_dir=tmp_path / "score", plots=False)

    coco = export_coco(Path(dataset.path), tmp_path / "coco")
    gt_doc = json.loads(coco["test"].read_text())
    assert len(gt_doc["images"]) == dataset.counts["test"]["images"]
    assert gt_doc["annotations"], "the test split has no boxes: nothing to compare"

    reference, n_det = _reference_map50_95(weights, Path(dataset.path), coco["test"], reported.imgsz)
    ours = reported.metrics["map50_95"]
    same_detections = _cocoeval_map50_95(
        coco["test"],
        _validator_detections(weights, Path(dataset.path) / "data.yaml", coco["test"], reported.imgsz,
                              tmp_path / "val-json"),
    )
    numbers = (
        f"VisionOps {ours:.4f}; pycocotools on the served predictions {reference:.4f} ({n_det} detections), "
        f"on the validator's own detections {same_detections:.4f}; {dataset.name}:{dataset.version} test split"
    )
    # Both near zero would agree for no reason: the fixture model does detect (see conftest).
    assert reference > 0.3, f"the model barely detects: {numbers}"
    assert abs(ours - same_detections) <= TOLERANCE, f"the metric code disagrees with COCOeval: {numbers}"
    assert abs(ours - reference) <= TOLERANCE, f"mAP50-95 differs by more than {TOLERANCE}: {numbers}"

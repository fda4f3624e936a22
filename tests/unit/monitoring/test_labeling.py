"""Which production images go to labeling, and the checks on a labeled batch coming back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visionops.errors import VisionOpsError
from visionops.monitoring.labeling import export_batch, image_bounds, read_batch, select, why_picked
from visionops.monitoring.records import ImageStats, ModelRef, ProductionRecord, summarize

MODEL = ModelRef(name="parts-detector", version="2", task="detect")
STATS = ImageStats(width=640, height=480, aspect=1.3333, brightness=100.0, contrast=40.0, sharpness=500.0)


def record(confs: list[float], i: int = 0, sample: str | None = None, brightness: float = 100.0,
           task: str = "detect") -> ProductionRecord:
    labels = ["bolt"] * len(confs)
    raw = {"width": 640, "height": 480, "boxes": [[10.0 * k, 20.0, 10.0 * k + 50.5, 80.25] for k in range(len(confs))],
           "labels": labels, "confidences": confs} if task == "detect" else {"labels": ["bolt"], "probabilities": confs}
    return ProductionRecord(model=MODEL if task == "detect" else MODEL.model_copy(update={"task": "classify"}),
                            correlation_id=f"req{i}", image=STATS.model_copy(update={"brightness": brightness}),
                            prediction=summarize(task, raw), raw=raw, sample=sample)


def test_reasons_and_scores():
    assert why_picked(record([]), 0.5) == ("no_prediction", 1.0)
    assert why_picked(record([0.3, 0.2]), 0.5) == ("low_confidence", 0.7)
    assert why_picked(record([0.9, 0.3, 0.2]), 0.5) == ("low_confidence", round(2 / 3 / 2, 4))
    assert why_picked(record([0.9, 0.8]), 0.5) is None
    bounds = {"brightness": (80.0, 120.0)}
    assert why_picked(record([0.9], brightness=30.0), 0.5, bounds) == ("unusual_image:brightness", 0.25)
    assert why_picked(record([], brightness=30.0), 0.5, bounds) == ("no_prediction+unusual_image:brightness", 1.25)
    assert why_picked(record([0.4], task="classify"), 0.5) == ("low_confidence", 0.6)


def test_select_ranks_most_unsure_first_and_counts_records_without_a_sample(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"jpeg")
    records = [record([0.45], 0, "a.jpg"), record([], 1, "b.jpg"), record([0.1], 2, None),
               record([0.9], 3, "c.jpg"), record([0.2], 4, "gone.jpg")]
    picks, candidates, missing = select(records, tmp_path, threshold=0.5, limit=10)
    assert [p.record.correlation_id for p in picks] == ["req1", "req0"]
    assert (candidates, missing) == (4, 2)


def test_export_writes_images_coco_prelabels_and_batch_json(tmp_path):
    prod = tmp_path / "production"
    prod.mkdir()
    (prod / "s.jpg").write_bytes(b"jpeg")
    summary = export_batch([record([0.3, 0.4], 7, "s.jpg")], prod, tmp_path / "batch", model="parts-detector:2",
                           classes=["nut", "bolt"])
    coco = json.loads((tmp_path / "batch" / "annotations.json").read_text())
    assert summary.picked == 1 and (tmp_path / "batch" / "images" / "req7-0.jpg").is_file()
    assert [c["name"] for c in coco["categories"]] == ["nut", "bolt"]
    assert coco["annotations"][1]["bbox"] == [10.0, 20.0, 50.5, 60.25] and coco["annotations"][1]["category_id"] == 2
    assert read_batch(tmp_path / "batch")["images"][0]["reason"] == "low_confidence"
    with pytest.raises(VisionOpsError, match="not empty"):
        export_batch([], prod, tmp_path / "batch", model="m:1", classes=[])


def test_image_bounds_are_the_baselines_percentiles():
    bounds = image_bounds([record([0.9], i, brightness=float(i)) for i in range(101)])
    assert bounds["brightness"] == pytest.approx((1.0, 99.0))


def test_a_folder_without_batch_json_is_not_a_batch(tmp_path):
    with pytest.raises(VisionOpsError, match="not a labeling batch"):
        read_batch(tmp_path)


def test_a_label_outside_the_data_sets_classes_is_refused(tmp_path):
    from visionops.data.merge import check_labeled_batch

    prod = tmp_path / "production"
    prod.mkdir()
    (prod / "s.jpg").write_bytes(b"jpeg")
    export_batch([record([0.3], 1, "s.jpg")], prod, tmp_path / "batch", model="m:1", classes=["bolt"])
    coco_path = tmp_path / "batch" / "annotations.json"
    coco = json.loads(coco_path.read_text())
    coco["categories"].append({"id": 9, "name": "washer"})
    coco["annotations"][0]["category_id"] = 9
    coco_path.write_text(json.dumps(coco))
    with pytest.raises(VisionOpsError, match="washer"):
        check_labeled_batch(Path(tmp_path / "batch"), ["bolt"])



def test_a_reused_request_id_still_gives_every_image_its_own_file(tmp_path: Path) -> None:
    prod, out = tmp_path / "production", tmp_path / "batch"
    prod.mkdir()
    (prod / "a.png").write_bytes(b"png a")
    (prod / "b.png").write_bytes(b"png b")
    same = [record([], 0, s).model_copy(update={"correlation_id": "client:42"}) for s in ("a.png", "b.png")]
    export_batch(same, prod, out, model="m:1", classes=["bolt"])
    assert sorted(p.name for p in (out / "images").iterdir()) == ["client_42-0-2.png", "client_42-0.png"]
    coco = json.loads((out / "annotations.json").read_text())
    assert sorted(i["file_name"] for i in coco["images"]) == ["client_42-0-2.png", "client_42-0.png"]
    copied = {e["file_name"]: e["sample"] for e in read_batch(out)["images"]}
    assert {n: (out / "images" / n).read_bytes() for n in copied} == {
        n: (prod / s).read_bytes() for n, s in copied.items()}

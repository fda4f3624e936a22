"""Human in the loop end to end, without training: production records and sampled images -> a
labeling batch -> a simulated labeler (Azure ML style: normalised bboxes, width/height 0.0,
datastore paths) -> `visionops data import <batch> --into NAME` -> a new, current data set version
with the new images in train/val only, the test split byte for byte unchanged, the image that was
already in the data set not added twice, and an image from outside the batch refused by name."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from visionops.data.layout import iter_items, read_labels
from visionops.data.synthetic import SyntheticSpec, render_image
from visionops.monitoring.collect import read_records
from visionops.monitoring.labeling import ANNOTATIONS, export_batch
from visionops.monitoring.records import ModelRef, ProductionRecord, image_stats, summarize

SPEC = SyntheticSpec(n_train=6, n_val=3, n_test=3, image_size=64, seed=1)
NEW = 4  # production frames the data set has never seen


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A project root with data set 'parts' registered and current; settings read from it."""
    from visionops.data.dataset import generate_synthetic
    from visionops.runner import Runner
    from visionops.settings import get_settings, reset_settings_cache

    monkeypatch.setenv("VISIONOPS_ROOT", str(tmp_path))
    reset_settings_cache()
    s = get_settings()
    folder = generate_synthetic(SPEC, s.data_dir / "work" / "parts", "parts")
    ref = Runner(s).register_folder(folder, "parts")
    yield s, ref
    reset_settings_cache()


def _digests(root: Path, split: str) -> dict[str, str]:
    return {i.image.name: hashlib.sha256(i.image.read_bytes()).hexdigest() for i in iter_items(root, (split,))}


def _production(s, base: Path) -> dict[str, list]:
    """Records and samples as the endpoint writes them: NEW unseen frames plus one image of the data
    set's train split, all predicted with low confidence. Returns {correlation id: true boxes}."""
    frames = SPEC.model_copy(update={"seed": 99})
    shots = [render_image(frames, "test", i) for i in range(NEW)]
    known = next(iter_items(base, ("train",)))
    prod = s.production_dir
    (prod / "samples" / "2026120300").mkdir(parents=True)
    (prod / "records").mkdir()
    truth, lines = {}, []
    for i, (img, boxes) in enumerate([*shots, (None, read_labels(known.label))]):
        sample = f"samples/2026120300/{i}.png"
        if img is None:
            shutil.copyfile(known.image, prod / sample)
        else:
            img.save(prod / sample)
        with Image.open(prod / sample) as im:
            stats, w, h = image_stats(im), *im.size
        raw = {"width": w, "height": h, "boxes": [[2.0, 3.0, 20.0, 30.0]], "labels": [SPEC.classes[0]],
               "class_ids": [0], "confidences": [0.31]}
        rec = ProductionRecord(correlation_id=f"req{i}", model=ModelRef(name="parts-detector", version="1",
                               task="detect"), image=stats, prediction=summarize("detect", raw), raw=raw,
                               sample=sample)
        lines.append(rec.model_dump_json())
        truth[f"req{i}-0"] = boxes
    (prod / "records" / "records-2026120300-1-0001.jsonl").write_text("\n".join(lines) + "\n{truncated\n")
    return truth


def _label(batch: Path, truth: dict[str, list]) -> int:
    """The labeler: true boxes as Azure ML Data Labeling exports them (normalised, sizes 0.0, paths)."""
    path = batch / ANNOTATIONS
    doc = json.loads(path.read_text())
    anns = []
    for image in doc["images"]:
        for box in truth[Path(image["file_name"]).stem]:
            x0, y0, x1, y1 = box.corners()
            anns.append({"id": len(anns) + 1, "image_id": image["id"], "category_id": box.cls + 1,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": 0.0, "iscrowd": 0})
        image.update(file_name=f"AmlDatastore://workspaceblobstore/labeling/batch/{image['file_name']}",
                     width=0.0, height=0.0)
    doc["annotations"] = anns
    path.write_text(json.dumps(doc))
    return len(anns)


def test_label_export_then_import_makes_a_new_version_in_train_and_val_only(workspace, tmp_path: Path) -> None:
    from visionops.cli import app
    from visionops.workspace import get_workspace

    s, base = workspace
    truth = _production(s, Path(base.path))
    records, skipped = read_records(s.production_dir)
    assert (len(records), skipped) == (NEW + 1, 1)
    batch = tmp_path / "batch"
    summary = export_batch(records, s.production_dir, batch, model="parts-detector:1", classes=base.classes)
    assert summary.picked == NEW + 1 and summary.missing_samples == 0
    boxes = _label(batch, truth)

    r = CliRunner().invoke(app, ["data", "import", str(batch), "--into", "parts"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "1 already in the data set" in r.output and "req4-0.png" in r.output
    ws = get_workspace(s)
    new = ws.current_dataset()
    assert new is not None and (new.name, new.version) != (base.name, base.version)
    old_dir, new_dir = Path(base.path), Path(new.path)
    assert _digests(new_dir, "test") == _digests(old_dir, "test")  # the gate's test split is frozen
    for split in ("train", "val"):
        assert set(_digests(old_dir, split).items()) <= set(_digests(new_dir, split).items())
    added = {n: split for split in ("train", "val") for n in _digests(new_dir, split) if n.startswith("req")}
    assert sorted(added) == [f"req{i}-0.png" for i in range(NEW)]  # the known image was not added twice
    assert sum(new.counts[sp]["boxes"] for sp in ("train", "val")) == (
        sum(base.counts[sp]["boxes"] for sp in ("train", "val")) + boxes - len(truth["req4-0"]))
    for name, split in added.items():  # normalised boxes came back in the right place
        got = read_labels(new_dir / "labels" / split / f"{Path(name).stem}.txt")
        want = truth[Path(name).stem]
        assert [b.cls for b in got] == [b.cls for b in want]
        for g, w in zip(got, want, strict=True):
            assert max(abs(u - v) for u, v in zip(g.corners(), w.corners(), strict=True)) < 0.02
    manifest = json.loads((new_dir / "manifest.json").read_text())
    assert manifest["source"]["base"] == f"parts:{base.version}" and manifest["source"]["duplicates"] == ["req4-0.png"]

    # a rerun of the same batch on the same base gives the same split, hence the same version
    again = CliRunner().invoke(app, ["data", "import", str(batch), "--into", f"parts:{base.version}"])
    assert again.exit_code == 0, (again.output, again.exception)
    assert ws.current_dataset().version == new.version

    # an image the batch never exported is refused by name, and nothing new is registered
    doc = json.loads((batch / ANNOTATIONS).read_text())
    doc["images"].append({"id": 999, "file_name": "stranger.jpg", "width": 64, "height": 64})
    (batch / ANNOTATIONS).write_text(json.dumps(doc))
    refused = CliRunner().invoke(app, ["data", "import", str(batch), "--into", "parts"])
    assert refused.exit_code != 0 and "stranger.jpg" in str(refused.exception)
    assert "not in this labeling batch" in str(refused.exception)
    assert len(ws.list_datasets("parts")) == 2


def test_a_relabeled_known_image_keeps_its_labels_and_unknown_classes_are_refused(workspace, tmp_path: Path) -> None:
    from visionops.data.layout import Box
    from visionops.errors import VisionOpsError
    from visionops.monitoring.labeling import label_import

    s, base = workspace
    truth = _production(s, Path(base.path))
    truth["req4-0"] = [Box(0, 0.5, 0.5, 0.2, 0.2)]  # the labeler drew something else on the known image
    records, _ = read_records(s.production_dir)
    batch = tmp_path / "batch"
    export_batch(records, s.production_dir, batch, model="parts-detector:1", classes=base.classes)
    _label(batch, truth)
    ref, report = label_import(s, batch, "parts", tmp_path / "merged")
    assert report.duplicates == ["req4-0.png"] and report.conflicts == ["req4-0.png"]
    assert ref.version != base.version and sum(report.added.values()) == NEW and report.added.get("test") is None
    with pytest.raises(VisionOpsError, match="overlaps"):  # never written into the data set it reads
        label_import(s, batch, f"parts:{base.version}", Path(base.path) / "merged")

    doc = json.loads((batch / ANNOTATIONS).read_text())
    doc["categories"].append({"id": 77, "name": "gear"})
    doc["annotations"][0]["category_id"] = 77
    (batch / ANNOTATIONS).write_text(json.dumps(doc))
    with pytest.raises(VisionOpsError, match=r"\['gear'\] are not classes of the data set"):
        label_import(s, batch, "parts", tmp_path / "merged")

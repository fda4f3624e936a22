"""Each common export layout, built by the test, imported faithfully: every box arrives, in the right
class, in pixels that match the source; `--format auto` recognises it and says what it saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from data_exports import CLASSES, image, yolo_line, yolo_split

from visionops.data.dataset import import_dataset
from visionops.data.formats import import_automl, import_coco, import_voc, import_yolo
from visionops.data.formats.detect import detect_format
from visionops.data.formats.report import read_import_report
from visionops.data.layout import iter_items, read_class_names, read_labels
from visionops.data.manifest import read_manifest
from visionops.data.naming import derived_name
from visionops.data.validation import validate


def _boxes(root: Path) -> int:
    return sum(len(read_labels(i.label)) for i in iter_items(root))


def _per_split(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in iter_items(root):
        out[i.split] = out.get(i.split, 0) + 1
    return out


# --- Ultralytics YAML variants ------------------------------------------------------------------
@pytest.mark.parametrize("names", [CLASSES, dict(enumerate(CLASSES))], ids=["names-list", "names-mapping"])
def test_ultralytics_yaml_with_path_lists_of_folders_and_any_name(tmp_path: Path, names) -> None:
    root = tmp_path / "ds"
    yolo_split(root / "images" / "train_a", root / "labels" / "train_a", 5)
    yolo_split(root / "images" / "train_b", root / "labels" / "train_b", 4, start=5)
    yolo_split(root / "images" / "val", root / "labels" / "val", 3, start=9)
    cfg = tmp_path / "configs" / "fasteners.yaml"  # outside the data, with 'path:' pointing at it
    cfg.parent.mkdir()
    cfg.write_text(yaml.safe_dump({"path": "../ds", "train": ["images/train_a", "images/train_b"],
                                   "validation": "images/val", "names": names}))
    out = import_yolo(cfg, tmp_path / "out")
    assert read_class_names(out) == CLASSES and _boxes(out) == 12
    assert read_import_report(out).read["val"].images == 3  # 'validation' read as val


def test_ultralytics_txt_image_lists_with_parent_paths(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    yolo_split(shared / "images", shared / "labels", 10)
    task = tmp_path / "task"
    task.mkdir()
    (task / "train.txt").write_text("".join(f"../shared/images/img_{i:03d}.jpg\n" for i in range(7)))
    (task / "val.txt").write_text("".join(f"{shared}/images/img_{i:03d}.jpg\n" for i in range(7, 10)))
    (task / "data.yaml").write_text(yaml.safe_dump({"train": "train.txt", "val": "val.txt", "nc": 3,
                                                    "names": CLASSES}))
    out = import_yolo(task, tmp_path / "out")
    assert _boxes(out) == 10 and _per_split(out)["val"] == 3


def test_nc_disagreeing_with_names_is_a_named_error(tmp_path: Path) -> None:
    yolo_split(tmp_path / "images" / "train", tmp_path / "labels" / "train", 4)
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "nc": 5, "names": CLASSES}))
    with pytest.raises(Exception, match=r"'nc: 5' but 'names' lists 3 classes"):
        import_yolo(tmp_path, tmp_path.parent / "out")


# --- Roboflow, CVAT, Label Studio -----------------------------------------------------------------
def _roboflow(root: Path) -> Path:
    for split, n, start in (("train", 8, 0), ("valid", 3, 8), ("test", 3, 11)):
        yolo_split(root / split / "images", root / split / "labels", n, start=start)
    (root / "data.yaml").write_text(yaml.safe_dump({
        "train": "../train/images", "val": "../valid/images", "test": "../test/images", "nc": 3, "names": CLASSES,
        "roboflow": {"workspace": "w", "project": "fasteners", "version": 2, "license": "CC BY 4.0", "url": "u"},
    }))
    return root


def test_roboflow_export_keeps_its_three_splits(tmp_path: Path) -> None:
    src = _roboflow(tmp_path / "Fasteners.v2i.yolov8")
    out = import_dataset(src, tmp_path / "out", fmt="auto")
    assert _per_split(out) == {"train": 8, "val": 3, "test": 3} and _boxes(out) == 14
    m = read_manifest(out)
    assert m.name == "fasteners-v2i-yolov8"  # derived from the folder, sanitised
    report = read_import_report(out)
    assert "Roboflow" in report.detected and "Ultralytics YOLO yaml" in report.detected
    assert report.carved == []


def test_cvat_yolo_1_1_export(tmp_path: Path) -> None:
    src = tmp_path / "cvat"
    for i in range(10):
        image(src / "obj_train_data" / f"frame_{i:06d}.png", i)
        (src / "obj_train_data" / f"frame_{i:06d}.txt").write_text(yolo_line(i) if i != 4 else "")
    (src / "obj.names").write_text("\n".join(CLASSES) + "\n")
    (src / "obj.data").write_text("classes = 3\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n")
    (src / "train.txt").write_text("".join(f"data/obj_train_data/frame_{i:06d}.png\n" for i in range(10)))
    assert detect_format(src).fmt == "yolo"
    out = import_dataset(src, tmp_path / "out", "parts", "auto")
    assert _boxes(out) == 9 and read_class_names(out) == CLASSES
    report = read_import_report(out)
    assert "CVAT YOLO 1.1" in report.detected and report.read["train"].background == 1
    assert sum(c.images for c in report.carved) == 4  # 2 + 2 of 10 at 0.7/0.15/0.15
    assert {c.from_split for c in report.carved} == {"train"}


def test_cvat_ultralytics_export(tmp_path: Path) -> None:
    src = tmp_path / "cvat_ul"
    yolo_split(src / "images" / "train", src / "labels" / "train", 8)
    yolo_split(src / "images" / "val", src / "labels" / "val", 3, start=8)
    (src / "train.txt").write_text("".join(f"images/train/img_{i:03d}.jpg\n" for i in range(8)))
    (src / "val.txt").write_text("".join(f"images/val/img_{i:03d}.jpg\n" for i in range(8, 11)))
    (src / "data.yaml").write_text(yaml.safe_dump({"path": "./", "train": "train.txt", "val": "val.txt",
                                                   "names": dict(enumerate(CLASSES))}))
    out = import_yolo(src, tmp_path / "out")
    assert _boxes(out) == 11 and _per_split(out)["val"] == 3


def test_label_studio_yolo_export_without_splits(tmp_path: Path) -> None:
    src = tmp_path / "project-3-at-2024"
    yolo_split(src / "images", src / "labels", 12)
    (src / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (src / "notes.json").write_text(json.dumps({"categories": [{"id": i, "name": n} for i, n in enumerate(CLASSES)]}))
    out = import_dataset(src, tmp_path / "out", fmt="auto", seed=5)
    assert _boxes(out) == 12 and set(_per_split(out)) == {"train", "val", "test"}
    report = read_import_report(out)
    assert "Label Studio" in report.detected
    assert [(c.split, c.seed, c.out_of) for c in report.carved] == [("val", 5, 12), ("test", 5, 12)]


def test_ancestor_folder_named_images_does_not_redirect_the_lookup(tmp_path: Path) -> None:
    src = tmp_path / "images" / "cvat"  # Ultralytics would look in tmp/labels/cvat/...
    for i in range(6):
        image(src / "obj_train_data" / f"f{i}.jpg", i)
        (src / "obj_train_data" / f"f{i}.txt").write_text(yolo_line(i))
    (src / "obj.names").write_text("\n".join(CLASSES))
    (src / "obj.data").write_text("classes = 3\ntrain = train.txt\nnames = obj.names\n")
    (src / "train.txt").write_text("".join(f"obj_train_data/f{i}.jpg\n" for i in range(6)))
    out = import_yolo(src, tmp_path / "out")
    assert _boxes(out) == 6


# --- COCO ---------------------------------------------------------------------------------------
def test_coco_quirks_of_real_exports(tmp_path: Path) -> None:
    """Sparse 0-based ids, images without annotations, crowds, width/height missing or 0,
    segmentation-only annotations and sub-folders in file_name."""
    images = tmp_path / "imgs"
    doc: dict = {"images": [], "annotations": [],
                 "categories": [{"id": 0, "name": "washer"}, {"id": 7, "name": "bolt"}, {"id": 42, "name": "nut"}]}
    sizes = {}
    for i in range(10):
        rel = f"cam{i % 3}/shot_{i}.jpg"
        sizes[i] = image(images / rel, i)
        entry = {"id": 100 + i, "file_name": rel}
        if i % 3 == 1:
            entry.update(width=0, height=0)
        elif i % 3 == 2:
            entry.update(width=sizes[i][0], height=sizes[i][1])
        doc["images"].append(entry)
    for i in range(9):  # image 9 has no annotation
        w, h = sizes[i]
        ann = {"id": i, "image_id": 100 + i, "category_id": (0, 7, 42)[i % 3], "iscrowd": int(i == 3)}
        if i == 5:  # polygon only
            ann["segmentation"] = [[4, 6, 20, 6, 20, 30, 4, 30]]
        else:
            ann["bbox"] = [2, 3, w / 2, h / 3]
        doc["annotations"].append(ann)
    path = tmp_path / "instances_default.json"
    path.write_text(json.dumps(doc))
    out = import_coco(path, images, tmp_path / "out", seed=2)
    assert read_class_names(out) == ["washer", "bolt", "nut"]
    assert _boxes(out) == 9
    report = read_import_report(out)
    assert report.read["unsplit"].images == 10 and report.read["unsplit"].background == 1
    assert any("1 iscrowd=1 annotation(s): kept" in n for n in report.notes)
    assert any("category ids [0, 7, 42]" in n for n in report.notes)
    skipped = import_coco(path, images, tmp_path / "skip", seed=2, crowd="skip")
    assert _boxes(skipped) == 8
    assert [s.reason for s in read_import_report(skipped).read["unsplit"].skipped] == [
        "iscrowd=1 (crowd policy: skip)"]
    poly = next(read_labels(i.label) for i in iter_items(out) if i.image.name == "shot_5.jpg")
    w, h = sizes[5]
    assert poly[0].corners() == pytest.approx((4 / w, 6 / h, 20 / w, 30 / h))


# --- Azure ML Data Labeling: AutoML JSONL / MLTable ----------------------------------------------
@pytest.mark.parametrize("scheme", [
    "azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/workspaceblobstore/paths/",
    "AmlDatastore://workspaceblobstore/",
    "https://acct.blob.core.windows.net/container/",
])
def test_azure_labeling_jsonl_and_mltable_with_remote_urls(tmp_path: Path, scheme: str) -> None:
    local = tmp_path / "downloaded"
    lines = []
    for i in range(10):
        w, h = image(local / "UI" / "batch1" / f"p{i}.jpg", i)
        lines.append({
            "image_url": f"{scheme}UI/batch1/p{i}.jpg",
            "image_details": {"format": "jpg", "width": f"{w}px", "height": f"{h}px"},
            "label": [{"label": CLASSES[i % 3], "topX": 0.1, "topY": 0.2, "bottomX": 0.6, "bottomY": 0.7,
                       "isCrowd": 0}],
        })
    export = tmp_path / "export"
    export.mkdir()
    (export / "labeled.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (export / "MLTable").write_text(yaml.safe_dump({"paths": [{"file": "./labeled.jsonl"}],
                                                    "transformations": [{"read_json_lines": {}}]}))
    out = import_dataset(export, tmp_path / "out", fmt="auto", images_dir=local)
    assert _boxes(out) == 10
    item = next(i for i in iter_items(out) if i.image.name == "p1.jpg")
    (box,) = read_labels(item.label)
    assert box.corners() == pytest.approx((0.1, 0.2, 0.6, 0.7), abs=1e-6)
    report = read_import_report(out)
    assert "MLTable" in report.detected and any("mapped to files under" in n for n in report.notes)
    direct = import_automl(export / "labeled.jsonl", local, tmp_path / "direct", classes=CLASSES)
    assert _boxes(direct) == 10


# --- Pascal VOC ---------------------------------------------------------------------------------
def _voc_object(name: str, box: tuple[int, int, int, int], difficult: int) -> str:
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def test_voc_difficult_policy_missing_size_and_one_based_corners(tmp_path: Path) -> None:
    src = tmp_path / "VOC"
    for i in range(8):
        w, h = image(src / "JPEGImages" / f"{i:04d}.jpg", i)
        size = "" if i % 2 else f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
        objs = _voc_object(CLASSES[i % 3], (1, 1, w, h), 0) + _voc_object("nut", (3, 3, 12, 12), int(i == 2))
        (src / "Annotations").mkdir(exist_ok=True)
        (src / "Annotations" / f"{i:04d}.xml").write_text(
            f"<annotation><filename>{i:04d}.jpeg</filename>{size}{objs}</annotation>")
    assert detect_format(src).fmt == "voc"
    kept = import_voc(src, tmp_path / "kept")
    assert _boxes(kept) == 16
    first = next(i for i in iter_items(kept) if i.image.name == "0000.jpg")
    assert read_labels(first.label)[0].corners() == pytest.approx((0, 0, 1, 1))  # xmin=1..xmax=W: whole image
    skipped = import_voc(src, tmp_path / "skipped", difficult="skip")
    assert _boxes(skipped) == 15
    report = read_import_report(skipped)
    assert any("1 difficult object(s): skipped" in n for n in report.notes)
    assert validate(skipped).ok


# --- auto detection and names -------------------------------------------------------------------
def test_format_auto_says_what_it_detected(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    assert detect_format(tmp_path / "a.json").fmt == "coco"
    assert detect_format(tmp_path).fmt == "coco"
    (tmp_path / "x.xml").write_text("<annotation/>")
    assert detect_format(tmp_path).fmt == "voc"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match="cannot tell the format"):
        detect_format(empty)


def test_names_follow_the_data(tmp_path: Path) -> None:
    (tmp_path / "PCB Defects (v2)").mkdir()
    (tmp_path / "PCB Defects (v2)" / "data.yaml").write_text("")
    (tmp_path / "PCB Defects (v2)" / "bolts.yaml").write_text("")
    assert derived_name(tmp_path / "PCB Defects (v2)") == "pcb-defects-v2"
    assert derived_name(tmp_path / "PCB Defects (v2)" / "data.yaml") == "pcb-defects-v2"
    assert derived_name(tmp_path / "PCB Defects (v2)" / "bolts.yaml") == "bolts"
    assert derived_name(Path("/")) == "dataset"

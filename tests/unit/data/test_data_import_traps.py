"""The ways real exports used to lose labels silently (issue 11), each reproduced, now caught or
imported faithfully, with an import report that shows every count."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from data_exports import CLASSES, image, yolo_split

from visionops.data.formats import import_coco, import_yolo
from visionops.data.formats.report import read_import_report
from visionops.data.layout import iter_items, read_labels
from visionops.data.manifest import read_manifest
from visionops.data.validation import validate
from visionops.errors import DataValidationError, VisionOpsError


def _boxes(root: Path) -> int:
    return sum(len(read_labels(i.label)) for i in iter_items(root))


def _pool_task(tmp_path: Path) -> Path:
    """A shared image pool and a task folder whose images/ is a symlink to it, described by config.yaml."""
    pool = tmp_path / "pool" / "images"
    task = tmp_path / "task"
    yolo_split(pool / "train", task / "labels" / "train", 8)
    yolo_split(pool / "val", task / "labels" / "val", 3, start=8)
    os.symlink("../pool/images", task / "images")
    (task / "config.yaml").write_text(yaml.safe_dump({"train": "images/train", "val": "images/val",
                                                      "names": CLASSES}))
    return task


def test_symlinked_images_folder_finds_labels_beside_the_link(tmp_path: Path) -> None:
    task = _pool_task(tmp_path)
    out = import_yolo(task, tmp_path / "out", seed=1)
    assert _boxes(out) == 11  # before: 0 (labels looked for beside ../pool, every image background)
    report = read_import_report(out)
    assert report is not None and report.read["train"].label_files == 8 and report.read["train"].boxes == 8
    assert report.read["val"].without_label_file == 0
    assert report.boxes_read == sum(s.boxes for s in report.imported.values()) == 11
    assert [(c.split, c.from_split, c.seed) for c in report.carved] == [("test", "train", 1)]
    assert "config.yaml" in report.detected


def test_labels_that_are_not_where_the_paths_say_fail_and_say_where(tmp_path: Path) -> None:
    task = _pool_task(tmp_path)
    (task / "images").unlink()
    os.symlink("../pool/images", task / "imgs")  # no 'images' in the path: Ultralytics looks beside the image
    (task / "config.yaml").write_text(yaml.safe_dump({"train": "imgs/train", "val": "imgs/val", "names": CLASSES}))
    with pytest.raises(DataValidationError) as err:
        import_yolo(task, tmp_path / "out")
    msg = str(err.value)
    assert err.value.report.codes() == {"labels_not_found"}
    assert "imgs is a symlink to ../pool/images" in msg and "0 of 8 found" in msg
    assert f"label files found at {task / 'labels'}" in msg and "labels looked for at" in msg
    assert not (tmp_path / "out").exists()


def test_a_split_without_any_label_file_fails_unless_meant_as_background(tmp_path: Path) -> None:
    src = tmp_path / "src"
    yolo_split(src / "images" / "train", src / "labels" / "train", 8)
    yolo_split(src / "images" / "val", src / "labels" / "val", 3, start=8)
    yolo_split(src / "images" / "test", None, 3, start=11)  # no labels/test at all
    (src / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "val": "images/val",
                                                   "test": "images/test", "names": CLASSES}))
    with pytest.raises(DataValidationError) as err:
        import_yolo(src, tmp_path / "out")
    (problem,) = err.value.report.problems
    assert problem.code == "no_labels" and "split 'test': 3 images" in problem.message
    assert "--unlabeled" in problem.fix
    out = import_yolo(src, tmp_path / "out", unlabeled=True)
    report = read_import_report(out)
    assert report.read["test"].without_label_file == 3 and report.read["test"].background == 3
    assert any("--unlabeled" in n for n in report.notes)
    assert report.imported["test"].boxes == 0 and report.imported["train"].boxes == 8


def test_no_labels_folder_at_all_is_an_error_not_an_all_background_import(tmp_path: Path) -> None:
    src = tmp_path / "src"
    yolo_split(src / "images" / "train", None, 6)
    (src / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": CLASSES}))
    with pytest.raises(DataValidationError, match=r"split 'train': 6 images and not one label file"):
        import_yolo(src, tmp_path / "out")
    with pytest.raises(DataValidationError, match="not one box"):  # background only: still useless
        import_yolo(src, tmp_path / "out", unlabeled=True)


def test_all_empty_label_files_fail(tmp_path: Path) -> None:
    src = tmp_path / "src"
    yolo_split(src / "images" / "train", src / "labels" / "train", 6)
    for label in (src / "labels" / "train").iterdir():
        label.write_text("")
    (src / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": CLASSES}))
    with pytest.raises(DataValidationError) as err:
        import_yolo(src, tmp_path / "out")
    assert err.value.report.codes() == {"no_boxes"}


def test_a_label_file_without_image_fails(tmp_path: Path) -> None:
    src = tmp_path / "src"
    yolo_split(src / "images" / "train", src / "labels" / "train", 6)
    (src / "labels" / "train" / "gone.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (src / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": CLASSES}))
    with pytest.raises(DataValidationError) as err:
        import_yolo(src, tmp_path / "out")
    (problem,) = err.value.report.problems
    assert problem.code == "orphan_label" and problem.path.endswith("gone.txt")


def test_two_images_sharing_one_label_file_fail(tmp_path: Path) -> None:
    src = tmp_path / "src"
    yolo_split(src / "images" / "train", src / "labels" / "train", 6)
    image(src / "images" / "train" / "img_000.png", 9)
    (src / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": CLASSES}))
    with pytest.raises(DataValidationError) as err:
        import_yolo(src, tmp_path / "out")
    assert err.value.report.codes() == {"shared_label_file"}


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    yolo_split(src / "images" / "train", src / "labels" / "train", 4)
    (src / "data.yaml").write_text("train: images/train\nnames: [bolt, nut\nval: x\n")
    with pytest.raises(VisionOpsError, match=r"data.yaml:\d+: is not valid YAML"):
        import_yolo(src, tmp_path / "out")


def _azure_coco(tmp_path: Path, n: int = 8) -> tuple[Path, Path]:
    """Azure ML Data Labeling COCO: bboxes normalised to 0..1, width/height 0.0, datastore sub-folders."""
    images = tmp_path / "blob"
    doc: dict = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "bolt"}, {"id": 2, "name": "nut"}]}
    for i in range(n):
        rel = f"labeling/batch{i % 2}/frame_{i}.jpg"
        image(images / rel, i)
        doc["images"].append({"id": i + 1, "file_name": rel, "width": 0.0, "height": 0.0,
                              "coco_url": f"AmlDatastore://workspaceblobstore/{rel}"})
        doc["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2,
                                   "bbox": [0.25, 0.25, 0.5, 0.5], "area": 0.0, "iscrowd": 0})
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(doc))
    return path, images


def test_coco_with_normalised_bboxes_is_detected_and_converted(tmp_path: Path) -> None:
    path, images = _azure_coco(tmp_path)
    out = import_coco(path, images, tmp_path / "out")
    for item in iter_items(out):
        (box,) = read_labels(item.label)
        assert box.corners() == pytest.approx((0.25, 0.25, 0.75, 0.75))  # before: w about 0.001 (sub-pixel)
    report = read_import_report(out)
    assert any("normalised to 0..1" in n for n in report.notes)
    assert report.read["unsplit"].boxes == 8 and validate(out).ok


def test_pixel_bboxes_read_as_normalised_would_be_caught_by_validation(tmp_path: Path) -> None:
    """Forced the wrong way (`coordinates='normalized'` on pixel boxes) the import refuses."""
    path, images = _azure_coco(tmp_path)
    doc = json.loads(path.read_text())
    for ann in doc["annotations"]:
        ann["bbox"] = [0.01, 0.01, 0.02, 0.02]  # 1 px or less in every image
    path.write_text(json.dumps(doc))
    with pytest.raises(DataValidationError) as err:
        import_coco(path, images, tmp_path / "out", coordinates="normalized")
    assert "tiny_box" in err.value.report.codes()
    assert "normalised twice" in str(err.value)


def test_report_is_kept_in_the_manifest_and_through_the_catalog(tmp_path: Path) -> None:
    from visionops.data.catalog import LocalDatasetCatalog

    task = _pool_task(tmp_path)
    out = import_yolo(task, tmp_path / "out")
    assert read_manifest(out).source["report"]["read"]["train"]["images"] == 8
    ref = LocalDatasetCatalog(tmp_path / "catalog").register(out, "fasteners")
    assert read_import_report(Path(ref.path)).read["val"].boxes == 3

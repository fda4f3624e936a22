"""Bad inputs give one clear error naming the file (and annotation id / line) and the fix, and
write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from visionops.data.formats import (
    export_automl,
    export_coco,
    export_voc,
    import_automl,
    import_coco,
    import_voc,
    import_yolo,
)
from visionops.data.layout import read_class_names
from visionops.errors import ConfigError, DataValidationError, VisionOpsError


def _nothing_written(dst: Path) -> bool:
    """No destination and no staging folder left beside it."""
    return not dst.exists() and not list(dst.parent.glob(f".{dst.name}-import-*"))


@pytest.fixture
def coco(dataset: Path, tmp_path: Path) -> tuple[Path, dict]:
    path = export_coco(dataset, tmp_path / "coco")["train"]
    return path, json.loads(path.read_text())


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def test_coco_unknown_category_id(coco, dataset: Path, tmp_path: Path) -> None:
    path, doc = coco
    doc["annotations"][2]["category_id"] = 99
    aid = doc["annotations"][2]["id"]
    with pytest.raises(DataValidationError) as err:
        import_coco(_write(path, doc), dataset, tmp_path / "out")
    msg = str(err.value)
    assert str(path) in msg and f"annotation id {aid}" in msg and "category_id 99" in msg
    assert "known ids: [1, 2, 3, 4]" in msg and "add the category" in msg
    assert err.value.report.codes() == {"unknown_category"}
    assert _nothing_written(tmp_path / "out")


def test_coco_bbox_outside_image(coco, dataset: Path, tmp_path: Path) -> None:
    path, doc = coco
    doc["annotations"][0]["bbox"] = [80.0, 10.0, 40.0, 20.0]  # reaches x=120 in a 96 px image
    aid = doc["annotations"][0]["id"]
    with pytest.raises(DataValidationError) as err:
        import_coco(_write(path, doc), dataset, tmp_path / "out")
    msg = str(err.value)
    assert str(path) in msg and f"annotation id {aid}" in msg
    assert "outside the 96x96 image" in msg and "fix the bbox" in msg
    assert err.value.report.codes() == {"bbox_outside_image"}


def test_coco_missing_image(coco, dataset: Path, tmp_path: Path) -> None:
    path, doc = coco
    doc["images"][1]["file_name"] = "images/train/gone.jpg"
    with pytest.raises(DataValidationError) as err:
        import_coco(_write(path, doc), dataset, tmp_path / "out")
    msg = str(err.value)
    assert str(path) in msg and "'images/train/gone.jpg' not found" in msg and str(dataset) in msg
    assert err.value.report.codes() == {"missing_image"}


def test_coco_reports_every_problem_at_once(coco, dataset: Path, tmp_path: Path) -> None:
    path, doc = coco
    doc["annotations"][0]["category_id"] = 0
    doc["annotations"][1]["bbox"] = [10, 10, 0, 5]
    doc["annotations"][2]["image_id"] = 999
    doc["images"][3]["file_name"] = "nowhere.jpg"
    with pytest.raises(DataValidationError) as err:
        import_coco(_write(path, doc), dataset, tmp_path / "out")
    assert err.value.report.codes() == {"unknown_category", "zero_area_box", "unknown_image", "missing_image"}


def test_coco_invalid_json_names_line(coco, dataset: Path, tmp_path: Path) -> None:
    path, _ = coco
    path.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataValidationError, match=rf"{path}:2: is not valid JSON"):
        import_coco(path, dataset, tmp_path / "out")


def test_coco_argument_errors(coco, dataset: Path, tmp_path: Path) -> None:
    path, _ = coco
    with pytest.raises(ConfigError, match="not both"):
        import_coco(path, dataset, tmp_path / "out", split_files={"train": (path, dataset)})
    with pytest.raises(ConfigError, match="must include 'train'"):
        import_coco(None, None, tmp_path / "out", split_files={"val": (path, dataset)})
    with pytest.raises(VisionOpsError, match="split_ratios"):
        import_coco(path, dataset, tmp_path / "out", split_ratios=(1, 0, 0))


def test_voc_errors_name_file_and_object(dataset: Path, tmp_path: Path) -> None:
    voc = export_voc(dataset, tmp_path / "voc")
    ann = voc / "Annotations"
    (ann / "train_00001.xml").write_text((ann / "train_00001.xml").read_text().replace("<xmax>", "<xmax>9", 1))
    (ann / "train_00002.xml").write_text("<annotation>\n<object>\n</annotation>")  # mismatched tag, line 3
    (voc / "JPEGImages" / "train_00005.jpg").unlink()
    text = (ann / "train_00006.xml").read_text()
    (ann / "train_00006.xml").write_text(text.replace("<name>", "<name>mystery_", 1))
    with pytest.raises(DataValidationError) as err:
        import_voc(voc, tmp_path / "out", classes=read_class_names(dataset))
    by_code = {p.code: p for p in err.value.report.problems}
    assert set(by_code) == {"bbox_outside_image", "bad_xml", "missing_image", "unknown_class"}
    assert by_code["bbox_outside_image"].path.endswith("train_00001.xml")
    assert "object #1" in by_code["bbox_outside_image"].message
    assert by_code["bad_xml"].path.endswith("train_00002.xml") and by_code["bad_xml"].line == 3
    assert by_code["missing_image"].path.endswith("train_00005.xml")
    assert "'mystery_" in by_code["unknown_class"].message
    assert "train_00001.xml" in str(err.value) and "train_00002.xml:3" in str(err.value)
    assert _nothing_written(tmp_path / "out")


def test_voc_image_set_listing_a_missing_annotation(dataset: Path, tmp_path: Path) -> None:
    voc = export_voc(dataset, tmp_path / "voc")
    listing = voc / "ImageSets" / "Main" / "val.txt"
    listing.write_text(listing.read_text() + "ghost\n")
    with pytest.raises(DataValidationError) as err:
        import_voc(voc, tmp_path / "out", classes=read_class_names(dataset))
    (problem,) = err.value.report.problems
    assert (problem.code, problem.line) == ("missing_annotation", 5)
    assert problem.path == str(listing) and "ghost" in problem.message


def test_automl_errors_name_file_and_line(dataset: Path, tmp_path: Path) -> None:
    folders = export_automl(dataset, tmp_path / "automl")
    jsonl = folders["train"] / "train_annotations.jsonl"
    lines = jsonl.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["label"][0]["bottomX"] = 1.4
    lines[1] = json.dumps(rec)
    lines[3] = lines[3][:-5]  # cut the closing braces
    rec = json.loads(lines[4])
    rec["image_url"] = "images/train/missing.jpg"
    lines[4] = json.dumps(rec)
    jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as err:
        import_automl(jsonl, dataset, tmp_path / "out", classes=read_class_names(dataset))
    found = {(p.code, p.line) for p in err.value.report.problems}
    assert found == {("bbox_outside_image", 2), ("bad_json", 4), ("missing_image", 5)}
    msg = str(err.value)
    assert f"{jsonl}:2: label #1" in msg and f"{jsonl}:5: image 'images/train/missing.jpg' not found" in msg


def test_yolo_label_errors_name_file_and_line(dataset: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(dataset, tmp_path / "src"))
    label = src / "labels" / "train" / "train_00000.txt"
    n = len(label.read_text().splitlines())
    label.write_text(label.read_text() + "0 0.5 0.5 0.2\n7 0.5 0.5 0.2 0.2\n0 0.9 0.5 0.4 0.2\n")
    with pytest.raises(DataValidationError) as err:
        import_yolo(src, tmp_path / "out")
    found = {(p.code, p.line) for p in err.value.report.problems}
    assert found == {("malformed_line", n + 1), ("class_out_of_range", n + 2), ("box_outside_image", n + 3)}
    assert f"{label}:{n + 2}: class id 7" in str(err.value)
    assert _nothing_written(tmp_path / "out")


def test_yolo_yaml_errors(dataset: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(dataset, tmp_path / "src"))
    doc = yaml.safe_load((src / "data.yaml").read_text())
    (src / "data.yaml").write_text(yaml.safe_dump({**doc, "val": "images/validation"}))
    with pytest.raises(DataValidationError, match=r"split folder or list .*images/validation does not exist"):
        import_yolo(src, tmp_path / "out")
    (src / "data.yaml").write_text(yaml.safe_dump({k: v for k, v in doc.items() if k not in ("names", "nc")}))
    with pytest.raises(VisionOpsError, match="needs 'names:'"):
        import_yolo(src, tmp_path / "out")
    (src / "data.yaml").unlink()
    with pytest.raises(VisionOpsError, match="has no data.yaml"):
        import_yolo(src, tmp_path / "out")


def test_exports_refuse_an_invalid_data_set(dataset_copy: Path, tmp_path: Path) -> None:
    (dataset_copy / "labels" / "val" / "val_00000.txt").write_text("0 0.5 0.5\n")
    for export in (export_coco, export_voc, export_automl):
        with pytest.raises(DataValidationError, match="val_00000.txt:1"):
            export(dataset_copy, tmp_path / export.__name__)
        assert not (tmp_path / export.__name__).exists()


def _coco_of(names: list[str]) -> dict:
    return {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [2, 2, 10, 8]}],
    }


def test_same_picture_in_two_splits_names_the_source_files(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    for sub in ("a", "b"):
        (images / sub).mkdir(parents=True)
    Image.new("RGB", (40, 30), (0, 200, 0)).save(images / "a" / "same.jpg")
    shutil.copyfile(images / "a" / "same.jpg", images / "b" / "same.jpg")
    Image.new("RGB", (40, 30), (200, 0, 0)).save(images / "a" / "other.jpg")
    train = _write(tmp_path / "train.json", _coco_of(["a/same.jpg", "a/other.jpg"]))
    val = _write(tmp_path / "val.json", _coco_of(["b/same.jpg"]))
    with pytest.raises(DataValidationError) as err:
        import_coco(None, None, tmp_path / "out", split_files={"train": (train, images), "val": (val, images)})
    (problem,) = [p for p in err.value.report.problems if p.code == "duplicate_across_splits"]
    assert {problem.path, problem.message.split("as ")[1].split(" in")[0]} == {
        str(images / "a" / "same.jpg"), str(images / "b" / "same.jpg")
    }
    assert _nothing_written(tmp_path / "out")

"""Round trips between our layout and YOLO (Ultralytics), COCO, Pascal VOC and AutoML JSONL/MLTable."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
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
from visionops.data.layout import SPLITS, iter_images, iter_items, read_class_names, read_labels
from visionops.data.manifest import content_hash, read_manifest
from visionops.data.validation import validate
from visionops.errors import VisionOpsError


def _split_names(root: Path) -> dict[str, list[str]]:
    return {s: [p.name for p in iter_images(root, s)] for s in SPLITS}


# --- YOLO ---------------------------------------------------------------------------------------
def test_yolo_import_of_our_layout_is_identical(dataset: Path, tmp_path: Path, snapshot) -> None:
    before = snapshot(dataset)
    out = import_yolo(dataset, tmp_path / "imported")
    assert validate(out).ok
    assert content_hash(out) == content_hash(dataset)  # same content -> same version, wherever it came from
    assert read_manifest(out).source["format"] == "yolo"
    assert snapshot(dataset) == before  # source untouched


def test_yolo_import_of_ultralytics_folder_carves_test_from_train(dataset: Path, tmp_path: Path) -> None:
    """Roboflow-style export: <split>/images + <split>/labels, splits '../' relative to the yaml, no test."""
    src = tmp_path / "roboflow"
    for split, folder in (("train", "train"), ("val", "valid")):
        shutil.copytree(dataset / "images" / split, src / folder / "images")
        shutil.copytree(dataset / "labels" / split, src / folder / "labels")
    (src / "train" / "labels" / "train_00003.txt").unlink()  # Ultralytics: no label file = no objects
    (src / "train" / "labels" / "train_00004.txt").write_text("1 0.1 0.2 0.5 0.2 0.3 0.6\n")  # a polygon
    names = read_class_names(dataset)
    doc = {"train": "../train/images", "val": "../valid/images", "nc": len(names), "names": names}
    (src / "data.yaml").write_text(yaml.safe_dump(doc))

    out = import_yolo(src, tmp_path / "a", seed=3)
    assert validate(out).ok, validate(out).summary()
    got = _split_names(out)
    assert got["val"] == _split_names(dataset)["val"]
    assert len(got["test"]) == 2  # round(12 * 0.15 / 0.85)
    assert sorted(got["train"] + got["test"]) == _split_names(dataset)["train"]
    assert not set(got["train"]) & set(got["test"])
    split_of = {i.image.name: i for i in iter_items(out)}
    assert read_labels(split_of["train_00003.jpg"].label) == []
    (poly,) = read_labels(split_of["train_00004.jpg"].label)
    assert poly.cls == 1
    assert poly.corners() == pytest.approx((0.1, 0.2, 0.5, 0.6))

    again = import_yolo(src, tmp_path / "b", seed=3)
    assert content_hash(again) == content_hash(out)  # deterministic by seed
    other = import_yolo(src / "data.yaml", tmp_path / "c", seed=4)
    assert _split_names(other)["test"] != got["test"]


def test_yolo_import_of_txt_image_lists(dataset: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(dataset, tmp_path / "src"))
    for split in SPLITS:
        lines = [f"./images/{split}/{p.name}" for p in iter_images(src, split)]
        (src / f"{split}.txt").write_text("\n".join(lines) + "\n")
    doc = {"path": ".", "train": "train.txt", "val": "val.txt", "test": "test.txt", "names": read_class_names(src)}
    (src / "lists.yaml").write_text(yaml.safe_dump(doc))
    out = import_yolo(src / "lists.yaml", tmp_path / "out")
    assert content_hash(out) == content_hash(dataset)


def test_import_refuses_to_overwrite_unless_asked(dataset: Path, tmp_path: Path) -> None:
    out = import_yolo(dataset, tmp_path / "out")
    with pytest.raises(VisionOpsError, match="already holds a data set"):
        import_yolo(dataset, out)
    assert import_yolo(dataset, out, overwrite=True) == out
    assert validate(out).ok
    for into_source in (dataset, dataset / "images", dataset / "labels" / "train" / "new"):
        with pytest.raises(VisionOpsError, match="overlaps the source"):
            import_yolo(dataset, into_source)


# --- COCO ---------------------------------------------------------------------------------------
def test_coco_round_trip(dataset: Path, tmp_path: Path, assert_same_dataset, snapshot) -> None:
    before = snapshot(dataset)
    files = export_coco(dataset, tmp_path / "coco")
    assert sorted(files) == sorted(SPLITS)
    doc = json.loads(files["train"].read_text())
    names = read_class_names(dataset)
    assert [(c["id"], c["name"]) for c in doc["categories"]] == list(enumerate(names, start=1))
    first = doc["images"][0]
    assert first["file_name"] == "images/train/train_00000.jpg"
    with Image.open(dataset / first["file_name"]) as im:
        assert (first["width"], first["height"]) == im.size
    n_boxes = sum(len(read_labels(i.label)) for i in iter_items(dataset, ("train",)))
    assert len(doc["annotations"]) == n_boxes
    assert all(len(a["bbox"]) == 4 and a["bbox"][2] > 0 and a["iscrowd"] == 0 for a in doc["annotations"])

    out = import_coco(None, None, tmp_path / "back", split_files={s: (p, dataset) for s, p in files.items()})
    assert validate(out).ok
    assert_same_dataset(dataset, out)
    assert snapshot(dataset) == before


def test_coco_single_file_is_split_by_seed(dataset: Path, tmp_path: Path) -> None:
    files = export_coco(dataset, tmp_path / "coco")
    a = import_coco(files["train"], dataset, tmp_path / "a", seed=1)
    b = import_coco(files["train"], dataset, tmp_path / "b", seed=1)
    c = import_coco(files["train"], dataset, tmp_path / "c", seed=2)
    assert _split_names(a) == _split_names(b)
    assert _split_names(a) != _split_names(c)
    assert [len(v) for v in _split_names(a).values()] == [8, 2, 2]  # 12 images at 0.7/0.15/0.15
    assert validate(a).ok


def test_coco_arbitrary_category_ids_empty_images_and_crowds(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(6):
        Image.new("RGB", (50, 40), (40 * i, 90, 200 - 30 * i)).save(images / f"im{i}.png")
    doc = {
        "images": [{"id": 10 + i, "file_name": f"im{i}.png", "width": 50, "height": 40} for i in range(6)],
        "categories": [{"id": 90, "name": "zebra"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 90, "bbox": [5, 4, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 50, 40], "iscrowd": 1},
            {"id": 3, "image_id": 12, "category_id": 3, "bbox": [10.5, 20, 5, 5], "iscrowd": 0},
            *({"id": 4 + i, "image_id": 13 + i, "category_id": 90, "bbox": [2, 2, 9, 7]} for i in range(3)),
        ],
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    out = import_coco(ann, images, tmp_path / "out", split_ratios=(4, 1, 1))
    assert validate(out).ok
    assert read_class_names(out) == ["cat", "zebra"]  # sorted by category id: 3 -> 0, 90 -> 1
    labels = {i.image.name: read_labels(i.label) for i in iter_items(out)}
    assert len(labels) == 6
    assert [b.cls for b in labels["im0.png"]] == [1, 0]  # crowd box kept
    assert labels["im0.png"][0].corners() == pytest.approx((0.1, 0.1, 0.5, 0.35))
    assert labels["im0.png"][1].corners() == pytest.approx((0, 0, 1, 1))
    assert sum(not b for b in labels.values()) == 1  # images without annotations -> empty label files


# --- Pascal VOC ---------------------------------------------------------------------------------
def test_voc_round_trip(dataset: Path, tmp_path: Path, assert_same_dataset) -> None:
    out_dir = export_voc(dataset, tmp_path / "voc")
    for split in SPLITS:
        ids = (out_dir / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        assert ids == [p.stem for p in iter_images(dataset, split)]
    xml = ET.parse(out_dir / "Annotations" / "train_00000.xml").getroot()
    assert xml.findtext("filename") == "train_00000.jpg"
    assert xml.findtext("size/width") == "96"
    xmins = [int(o.findtext("bndbox/xmin")) for o in xml.iter("object")]
    assert xmins and min(xmins) >= 1  # 1-based

    out = import_voc(out_dir, tmp_path / "back", classes=read_class_names(dataset))
    assert validate(out).ok
    assert_same_dataset(dataset, out)


def test_voc_pixel_convention_is_one_based_and_exact(tmp_path: Path) -> None:
    """A box over the whole image is xmin=1..xmax=W in VOC and comes back as exactly 0..1."""
    src = tmp_path / "flat"
    src.mkdir()
    Image.new("RGB", (64, 32), "white").save(src / "a.jpg")
    (src / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>64</width><height>32</height><depth>3</depth></size>"
        "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>64</xmax><ymax>32</ymax></bndbox></object>"
        "<object><name>cat</name><bndbox><xmin>0</xmin><ymin>9</ymin><xmax>16</xmax><ymax>24</ymax></bndbox></object>"
        "</annotation>"
    )
    for i in range(3):  # a flat folder needs a few more images to carve val and test
        Image.new("RGB", (64, 32), (i * 50, 0, 0)).save(src / f"b{i}.jpg")
        (src / f"b{i}.xml").write_text(  # <filename> may not match the file: found by stem
            "<annotation><filename>b.jpg</filename><object><name>cat</name>"
            "<bndbox><xmin>3</xmin><ymin>3</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>"
        )
    out = import_voc(src, tmp_path / "out", split_ratios=(0.5, 0.25, 0.25))
    assert read_class_names(out) == ["cat", "dog"]  # default: sorted unique names
    (item,) = [i for i in iter_items(out) if i.image.name == "a.jpg"]
    dog, cat = read_labels(item.label)
    assert (dog.cls, cat.cls) == (1, 0)
    assert dog.corners() == pytest.approx((0, 0, 1, 1))
    assert cat.corners() == pytest.approx((0, 8 / 32, 16 / 64, 24 / 32))  # xmin=0 (0-based writer) clipped
    back = export_voc(out, tmp_path / "voc")
    dog_xml = ET.parse(back / "Annotations" / "a.xml").getroot().find("object/bndbox")
    assert [dog_xml.findtext(t) for t in ("xmin", "ymin", "xmax", "ymax")] == ["1", "1", "64", "32"]


# --- AutoML JSONL + MLTable ---------------------------------------------------------------------
PREFIX = "azureml://datastores/workspaceblobstore/paths/datasets/shapes/v1/"


def test_automl_export_lines_and_mltable(dataset: Path, tmp_path: Path) -> None:
    folders = export_automl(dataset, tmp_path / "automl", image_url_prefix=PREFIX)
    assert sorted(folders) == sorted(SPLITS)
    names = set(read_class_names(dataset))
    for split, folder in folders.items():
        jsonl = folder / f"{split}_annotations.jsonl"
        lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
        assert len(lines) == len(list(iter_images(dataset, split)))
        for rec in lines:
            assert rec["image_url"].startswith(PREFIX + f"images/{split}/")
            assert rec["image_details"] == {"format": "jpg", "width": 96, "height": 96}
            for lb in rec["label"]:
                assert lb["label"] in names and lb["isCrowd"] == 0
                corners = [lb[k] for k in ("topX", "topY", "bottomX", "bottomY")]
                assert all(0.0 <= v <= 1.0 for v in corners)
                assert lb["topX"] < lb["bottomX"] and lb["topY"] < lb["bottomY"]
        mltable = yaml.safe_load((folder / "MLTable").read_text())
        assert mltable["paths"] == [{"file": f"./{jsonl.name}"}]
        assert (folder / mltable["paths"][0]["file"]).resolve() == jsonl.resolve()
        read, convert = mltable["transformations"]
        assert read == {"read_json_lines": {"encoding": "utf8", "invalid_lines": "error", "include_path_column": False}}
        assert convert == {"convert_column_types": [{"columns": "image_url", "column_type": "stream_info"}]}


def test_automl_mltable_folder_is_an_azure_ml_input(dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("azure.ai.ml", reason="the azure extra (azure-ai-ml) is not installed")
    from azure.ai.ml import Input
    from azure.ai.ml.constants import AssetTypes

    folders = export_automl(dataset, tmp_path / "automl")
    inp = Input(type=AssetTypes.MLTABLE, path=str(folders["train"]))
    assert inp.type == "mltable"
    assert inp.path == str(folders["train"])


def test_automl_round_trip(dataset: Path, tmp_path: Path, assert_same_dataset) -> None:
    folders = export_automl(dataset, tmp_path / "automl", image_url_prefix=PREFIX)
    files = [folders[s] / f"{s}_annotations.jsonl" for s in SPLITS]
    # No prefix given: the datastore part of the URL is dropped by matching the path under images_root.
    out = import_automl(files, dataset, tmp_path / "back", classes=read_class_names(dataset))
    assert validate(out).ok
    assert_same_dataset(dataset, out)
    plain = export_automl(dataset, tmp_path / "plain")
    again = import_automl(
        [plain[s] / f"{s}_annotations.jsonl" for s in SPLITS], dataset, tmp_path / "again",
        classes=read_class_names(dataset),
    )
    assert content_hash(again) == content_hash(out)


def test_images_sharing_a_name_in_one_split_are_kept_apart(tmp_path: Path) -> None:
    """COCO file_names in subfolders may repeat a base name: labels match images by stem, so rename."""
    images = tmp_path / "imgs"
    names = []
    for i, sub in enumerate(("a", "b", "c", "d")):
        (images / sub).mkdir(parents=True)
        Image.new("RGB", (40, 30), (60 * i, 20, 20)).save(images / sub / "frame.jpg")
        names.append(f"{sub}/frame.jpg")
    doc = {
        "images": [{"id": i, "file_name": n, "width": 40, "height": 30} for i, n in enumerate(names)],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [i, 2, 10, 8]} for i in range(4)],
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    out = import_coco(ann, images, tmp_path / "out", split_ratios=(0.5, 0.25, 0.25))
    items = list(iter_items(out))
    assert len(items) == 4 and validate(out).ok
    train = sorted(i.image.name for i in items if i.split == "train")
    assert train[1] == "frame.jpg" and train[0] in {f"{sub}_frame.jpg" for sub in "abcd"}  # <parent>_<stem>
    assert {i.image.name for i in items if i.split != "train"} == {"frame.jpg"}  # unique there: unchanged
    lefts = sorted(round(read_labels(i.label)[0].corners()[0] * 40) for i in items)
    assert lefts == [0, 1, 2, 3]  # every image kept its own box

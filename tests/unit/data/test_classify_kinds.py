"""The task-aware data path: `folder_task`, manifests with `task`, the catalog and DatasetRef for
classification, and detection unchanged through the same calls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from visionops.data.catalog import LocalDatasetCatalog
from visionops.data.classify.synthetic import ClassifySpec
from visionops.data.dataset import generate_synthetic, ref_from_folder
from visionops.data.kinds import ClassifyData, DetectData, data_kind, folder_task, kind_for
from visionops.data.manifest import build_manifest, content_hash, count, read_manifest
from visionops.data.validation import validate
from visionops.errors import ConfigError, DataValidationError

SPEC = ClassifySpec(per_class_train=3, per_class_val=2, per_class_test=2, image_size=48, seed=3)


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(SPEC, tmp_path_factory.mktemp("cls") / "objects", "objects")


def test_folder_task_follows_the_manifest_then_the_layout(objects: Path, dataset: Path, tmp_path: Path) -> None:
    assert folder_task(objects) == "classify"
    assert folder_task(dataset) == "detect"  # detection synthetic set, no manifest: images/ + data.yaml
    bare = Path(shutil.copytree(objects, tmp_path / "bare"))
    (bare / "manifest.json").unlink()
    assert folder_task(bare) == "classify"  # class folders with images under train/, no data.yaml
    (bare / "data.yaml").write_text("names: [a]\n")
    assert folder_task(bare) == "detect"  # a data.yaml means detection when no manifest says otherwise
    (bare / "manifest.json").write_text(json.dumps({"task": "classify"}))
    assert folder_task(bare) == "classify"
    roboflow_detect = tmp_path / "rf" / "train"
    (roboflow_detect / "images").mkdir(parents=True)
    shutil.copy(next((objects / "train" / "circle").iterdir()), roboflow_detect / "images" / "a.jpg")
    assert folder_task(tmp_path / "rf") == "detect"  # train/images + train/labels is a detection split
    assert folder_task(tmp_path / "missing") == "detect"


def test_kinds_are_one_object_per_task() -> None:
    assert isinstance(kind_for("classify"), ClassifyData) and isinstance(kind_for("detect"), DetectData)
    with pytest.raises(ConfigError, match="unknown task 'segment'.*detect, classify"):
        kind_for("segment")


def test_manifest_counts_images_per_class_and_records_the_task(objects: Path) -> None:
    m = read_manifest(objects)
    assert m.task == "classify" and m.format == "folders"
    assert m.classes == sorted(SPEC.classes)  # Ultralytics' order: sorted folder names
    assert m.source["kind"] == "synthetic" and m.source["task"] == "classify"
    assert m.splits["train"].images == 12 and m.splits["train"].boxes == 0
    assert m.splits["val"].per_class == {c: 2 for c in sorted(SPEC.classes)}
    assert count(objects) == m.splits and content_hash(objects) == m.version
    assert build_manifest(objects, "x").version == m.version


def test_content_hash_changes_with_bytes_names_and_classes(objects: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(objects, tmp_path / "c"))
    assert content_hash(copy) == content_hash(objects)  # where it lies does not matter
    img = next((copy / "test" / "star").iterdir())
    img.rename(img.with_name("renamed.jpg"))
    renamed = content_hash(copy)
    assert renamed != content_hash(objects)
    (copy / "train" / "star").rename(copy / "train" / "stars")
    assert content_hash(copy) != renamed


def test_register_copies_versions_and_describes_a_classification_set(objects: Path, tmp_path: Path) -> None:
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    ref = catalog.register(objects, "objects")
    assert ref.task == "classify" and ref.version == content_hash(objects)
    assert ref.counts["test"] == {"images": 8, "boxes": 0} and ref.classes == sorted(SPEC.classes)
    frozen = Path(ref.path)
    assert sorted(p.name for p in frozen.iterdir()) == ["manifest.json", "test", "train", "val"]
    assert ref.ultralytics_data == frozen  # Ultralytics trains with data=<root> for classification
    assert catalog.register(objects, "objects").version == ref.version  # same content, same version
    assert catalog.get("objects").task == "classify"
    assert ref_from_folder(frozen).task == "classify" and ref_from_folder(frozen).version == ref.version
    assert data_kind(frozen).task == "classify"


def test_register_refuses_a_broken_classification_set(objects: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(objects, tmp_path / "broken"))
    shutil.rmtree(broken / "val" / "square")
    with pytest.raises(DataValidationError, match="class 'square' has images in train but none in val"):
        LocalDatasetCatalog(tmp_path / "catalog").register(broken, "objects")
    assert not (tmp_path / "catalog" / "objects").exists()


def test_detection_goes_through_the_same_calls_unchanged(dataset: Path, tmp_path: Path) -> None:
    ref = LocalDatasetCatalog(tmp_path / "catalog").register(dataset, "shapes")
    assert ref.task == "detect" and ref.ultralytics_data == Path(ref.path) / "data.yaml"
    assert read_manifest(Path(ref.path)).task == "detect"
    assert validate(dataset).task == "detect" and validate(dataset).ok

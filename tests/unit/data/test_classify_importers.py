"""Classification imports from data VisionOps did not make: a folder per class (with or without
splits), a path,label CSV and Azure ML multi-class JSONL. Every file read is carried or named as
skipped, splits are carved stratified by class, broken inputs are errors listing every problem,
and a failed import writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from foreign_classify import (
    CLASSES,
    PER_CLASS,
    build_class_folders,
    build_csv_export,
    build_jsonl_export,
    build_split_folders,
    photo,
)
from PIL import Image

from visionops.data.classify.importers import import_csv, import_folders, import_jsonl
from visionops.data.classify.layout import class_names, iter_samples
from visionops.data.dataset import import_dataset
from visionops.data.formats.detect import detect_format
from visionops.data.formats.report import read_import_report
from visionops.data.manifest import content_hash, read_manifest
from visionops.data.validation import validate
from visionops.errors import DataValidationError, VisionOpsError


def _per_split_class(root: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in iter_samples(root):
        out.setdefault(s.split, {}).setdefault(s.label, 0)
        out[s.split][s.label] += 1
    return out


def test_unsplit_class_folders_are_carved_stratified_and_reported(tmp_path: Path, snapshot) -> None:
    src = build_class_folders(tmp_path / "Photos by class")
    before = snapshot(src)
    out = import_dataset(src, tmp_path / "out", fmt="auto", seed=3)
    assert snapshot(src) == before  # the source is only read
    assert class_names(out) == sorted(CLASSES)  # unicode names survive, in Ultralytics' order
    counts = _per_split_class(out)
    for split in ("train", "val", "test"):
        assert set(counts[split]) == set(CLASSES)  # every class in every split
    assert sum(sum(c.values()) for c in counts.values()) == len(CLASSES) * PER_CLASS
    m = read_manifest(out)
    assert m.task == "classify" and m.name == "photos-by-class" and m.source["format"] == "folders"
    report = read_import_report(out)
    assert report is not None and report.task == "classify"
    assert report.read["unsplit"].images == len(CLASSES) * PER_CLASS
    skipped = {Path(s.path).name: s.reason for s in report.read["unsplit"].skipped}
    assert skipped == {"README.txt": "not in a class folder", ".DS_Store": "hidden file",
                       "notes.txt": "not an image file (suffix '.txt')"}
    assert [c.split for c in report.carved] == ["val", "test"] and all(c.seed == 3 for c in report.carved)
    text = report.render()
    assert "carved val" in text and "stratified by class" in text and "café" in text
    assert validate(out).ok
    again = import_dataset(src, tmp_path / "again", fmt="folders", seed=3)
    assert content_hash(again) == content_hash(out)  # seeded: the same split every time
    other = import_dataset(src, tmp_path / "other", fmt="folders", seed=4)
    assert content_hash(other) != content_hash(out)


def test_split_folders_with_valid_alias_are_kept(tmp_path: Path) -> None:
    src = build_split_folders(tmp_path / "rf")
    assert detect_format(src).fmt == "folders"
    out = import_folders(src, tmp_path / "out")
    counts = _per_split_class(out)
    assert {s: sum(c.values()) for s, c in counts.items()} == {"train": 18, "val": 6, "test": 6}
    assert read_import_report(out).carved == []  # nothing carved: the source had every split


def test_missing_test_split_is_carved_from_train_per_class(tmp_path: Path) -> None:
    src = build_split_folders(tmp_path / "rf")
    shutil.rmtree(src / "test")
    out = import_folders(src, tmp_path / "out")
    counts = _per_split_class(out)
    assert set(counts["test"]) == set(CLASSES) and counts["val"] == {c: 2 for c in CLASSES}
    carve = read_import_report(out).carved
    assert [(c.split, c.from_split, c.out_of) for c in carve] == [("test", "train", 18)]


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    csv = build_csv_export(tmp_path / "with")
    assert detect_format(csv).fmt == "csv" and detect_format(csv.parent).fmt == "csv"
    out = import_dataset(csv, tmp_path / "a", fmt="auto")
    assert sum(1 for _ in iter_samples(out)) == len(CLASSES) * PER_CLASS
    assert "header row" in read_import_report(out).detected
    bare = build_csv_export(tmp_path / "without", header=False)
    out2 = import_csv(bare, tmp_path / "b")
    assert content_hash(out2) == content_hash(out)  # same images, same labels, same split
    assert "no header" in read_import_report(out2).detected


def test_csv_split_column_and_every_bad_row_named(tmp_path: Path) -> None:
    root = tmp_path / "src"
    rows = ["image,class,split"]
    for c, name in enumerate(["ant", "bee"]):
        for i, split in enumerate(["train", "train", "valid", "test"]):
            photo(root / f"{name}{i}.png", c, i)
            rows.append(f"{name}{i}.png,{name},{split}")
    (root / "ok.csv").write_text("\n".join(rows) + "\n")
    out = import_csv(root / "ok.csv", tmp_path / "out")
    assert {s: sum(c.values()) for s, c in _per_split_class(out).items()} == {"train": 4, "val": 2, "test": 2}
    bad = rows + ["missing.jpg,ant,train", "ant0.png,bee,train", "bee1.png,,train", "bee2.png,bee,holdout", "x"]
    (root / "bad.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(DataValidationError) as err:
        import_csv(root / "bad.csv", tmp_path / "bad")
    codes = [p.code for p in err.value.report.problems]
    assert codes == ["missing_image", "duplicate_image", "bad_label", "bad_split", "bad_row"]
    assert [p.line for p in err.value.report.problems] == [10, 11, 12, 13, 14]
    assert not (tmp_path / "bad").exists()


def test_automl_multiclass_jsonl_maps_urls_and_keeps_file_splits(tmp_path: Path) -> None:
    jsonl = build_jsonl_export(tmp_path / "labeling")
    found = detect_format(jsonl)
    assert found.fmt == "jsonl" and "classification labels" in found.why
    assert detect_format(jsonl.parent).fmt == "jsonl"  # a folder of train_/validation_ JSONL files
    out = import_dataset(jsonl.parent, tmp_path / "out", fmt="auto", images_dir=jsonl.parent / "images")
    counts = _per_split_class(out)
    assert counts["val"] == {c: 2 for c in CLASSES}  # validation_annotations.jsonl -> val
    assert set(counts["test"]) == set(CLASSES)  # carved from train, per class
    report = read_import_report(out)
    assert any("azureml://" in n for n in report.notes)
    single = import_jsonl(jsonl, jsonl.parent / "images", tmp_path / "single")
    assert sum(1 for _ in iter_samples(single)) == 7 * len(CLASSES)  # train file only


def test_multi_label_jsonl_is_a_clear_error(tmp_path: Path) -> None:
    jsonl = build_jsonl_export(tmp_path / "ml", multi_label=True)
    assert detect_format(jsonl).fmt == "jsonl"
    with pytest.raises(DataValidationError, match="multi-label classification is not supported") as err:
        import_dataset(jsonl, tmp_path / "out", fmt="auto", images_dir=jsonl.parent / "images")
    assert {p.code for p in err.value.report.problems} == {"multi_label"}
    assert "one label per image" in err.value.report.problems[0].fix
    assert not (tmp_path / "out").exists()


def test_detection_jsonl_is_not_mistaken_for_classification(tmp_path: Path) -> None:
    src = tmp_path / "src"
    img = photo(src / "images" / "a.jpg", 0, 0)
    line = {"image_url": "a.jpg", "label": [{"label": "ant", "topX": 0.1, "topY": 0.1, "bottomX": 0.5,
                                                       "bottomY": 0.5}]}
    (src / "det.jsonl").write_text(json.dumps(line) + "\n")
    assert img.is_file() and detect_format(src / "det.jsonl").fmt == "automl"
    with pytest.raises(DataValidationError, match="object-detection JSONL"):
        import_jsonl(src / "det.jsonl", src / "images", tmp_path / "out")


def test_broken_class_folders_list_every_problem_and_write_nothing(tmp_path: Path) -> None:
    src = build_class_folders(tmp_path / "src")
    (src / "empty").mkdir()
    (src / CLASSES[0] / "broken.jpg").write_text("not a jpeg")
    photo(src / CLASSES[1] / "kittens" / "k.jpg", 1, 50)
    with pytest.raises(DataValidationError) as err:
        import_folders(src, tmp_path / "out")
    problems = {p.code: p for p in err.value.report.problems}
    assert set(problems) == {"empty_class", "corrupt_image", "nested_folder"}
    assert "not flattened" in problems["nested_folder"].message and "kittens" in problems["nested_folder"].path
    assert not (tmp_path / "out").exists()


def test_a_class_too_small_to_split_is_named(tmp_path: Path) -> None:
    src = build_class_folders(tmp_path / "src", per_class=4)
    for extra in list((src / CLASSES[2]).iterdir())[2:]:
        extra.unlink()  # two images: cannot be in train, val and test
    with pytest.raises(DataValidationError, match="too few to put it in train") as err:
        import_folders(src, tmp_path / "out")
    assert any(p.code == "class_missing_from_split" and CLASSES[2] in p.path for p in err.value.report.problems)


def test_same_file_names_in_one_class_stay_apart(tmp_path: Path) -> None:
    root = tmp_path / "src"
    rows = ["path,label"]
    for c, name in enumerate(["ant", "bee"]):
        for i in range(6):
            photo(root / f"cam{i % 2}" / f"{name}_{i // 2}.jpg", c, i)  # the same file name in two folders
            rows.append(f"cam{i % 2}/{name}_{i // 2}.jpg,{name}")
    (root / "l.csv").write_text("\n".join(rows) + "\n")
    out = import_csv(root / "l.csv", tmp_path / "out")
    assert sum(1 for _ in iter_samples(out)) == 12


def test_overwrite_and_unknown_format(tmp_path: Path) -> None:
    src = build_split_folders(tmp_path / "rf")
    out = import_folders(src, tmp_path / "out")
    with pytest.raises(VisionOpsError, match="already holds a data set"):
        import_folders(src, out)
    assert import_dataset(src, out, fmt="folders") == out  # the dataset API replaces its working copy
    with pytest.raises(VisionOpsError, match="folders, csv or jsonl"):
        import_dataset(src, tmp_path / "x", fmt="parquet")  # type: ignore[arg-type]
    with Image.open(next(iter_samples(out)).image) as im:
        assert im.size[0] > 0

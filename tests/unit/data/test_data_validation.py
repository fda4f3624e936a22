"""validate() finds every planted fault, with code, file and line, in one report; the catalog then
registers nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from visionops.data.catalog import LocalDatasetCatalog
from visionops.data.layout import DATA_YAML, SPLITS
from visionops.data.validation import Problem, ValidationReport, validate
from visionops.errors import DataValidationError


def _append(label: Path, line: str) -> int:
    """Append a line to a label file; returns its 1-based line number."""
    lines = label.read_text().splitlines() + [line]
    label.write_text("\n".join(lines) + "\n")
    return len(lines)


def plant_faults(root: Path) -> dict[str, tuple[str, str, int | None]]:
    """Plant one of each file-level fault; returns {name: (code, path relative to root, line)}."""
    img, lab = root / "images", root / "labels"
    planted: dict[str, tuple[str, str, int | None]] = {}

    (img / "train" / "corrupt.jpg").write_bytes(os.urandom(2048))
    (lab / "train" / "corrupt.txt").write_text("")
    planted["corrupt image"] = ("corrupt_image", "images/train/corrupt.jpg", None)

    real = (img / "train" / "train_00000.jpg").read_bytes()
    (img / "train" / "truncated.jpg").write_bytes(real[: len(real) // 2])
    (lab / "train" / "truncated.txt").write_text("")
    planted["truncated jpeg"] = ("corrupt_image", "images/train/truncated.jpg", None)

    Image.new("RGB", (64, 64), (1, 2, 3)).save(img / "train" / "unlabelled.jpg")
    planted["image without label"] = ("missing_label", "images/train/unlabelled.jpg", None)

    (lab / "val" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    planted["label without image"] = ("orphan_label", "labels/val/orphan.txt", None)

    for name, stem, line, code in (
        ("four values", "train_00001", "0 0.5 0.5 0.1", "malformed_line"),
        ("non-numeric", "train_00002", "1 a b c d", "malformed_line"),
        ("class out of range", "train_00003", "9 0.5 0.5 0.1 0.1", "class_out_of_range"),
        ("box outside", "train_00004", "0 0.95 0.5 0.2 0.2", "box_outside_image"),
        ("zero area", "train_00005", "0 0.5 0.5 0 0.1", "zero_area_box"),
    ):
        no = _append(lab / "train" / f"{stem}.txt", line)
        planted[name] = (code, f"labels/train/{stem}.txt", no)

    for sub in ("images", "labels"):
        shutil.rmtree(root / sub / "test")
    planted["empty split"] = ("empty_split", "images/test", None)

    shutil.copyfile(img / "train" / "train_00006.jpg", img / "val" / "copied.jpg")
    shutil.copyfile(lab / "train" / "train_00006.txt", lab / "val" / "copied.txt")
    planted["same image in two splits"] = ("duplicate_across_splits", "images/val/copied.jpg", None)
    return planted


def _find(report: ValidationReport, code: str, path: str, line: int | None) -> Problem:
    matches = [p for p in report.problems if p.code == code and p.path == path and p.line == line]
    assert matches, f"{code} at {path}:{line} not reported; got:\n{report.summary(limit=100)}"
    return matches[0]


def test_every_planted_fault_is_reported_in_one_report(dataset_copy: Path) -> None:
    planted = plant_faults(dataset_copy)
    report = validate(dataset_copy)
    assert not report.ok
    for name, (code, path, line) in planted.items():
        problem = _find(report, code, path, line)
        where = f"{path}:{line}" if line else path
        assert str(problem).startswith(where), name  # file (and line) in the message
        assert problem.fix, name
    assert len(report.problems) == len(planted)  # nothing else, nothing twice
    dup = _find(report, "duplicate_across_splits", "images/val/copied.jpg", None)
    assert "images/train/train_00006.jpg" in dup.message
    with pytest.raises(DataValidationError) as err:
        report.raise_if_failed()
    assert err.value.report is report and f"{len(planted)} problem(s)" in str(err.value)


def test_missing_data_yaml_is_reported_with_the_other_file_faults(dataset_copy: Path) -> None:
    (dataset_copy / DATA_YAML).unlink()
    (dataset_copy / "labels" / "val" / "orphan.txt").write_text("")
    (dataset_copy / "images" / "test" / "test_00000.jpg").write_bytes(b"not a jpeg")
    report = validate(dataset_copy)
    assert report.codes() == {"bad_data_yaml", "orphan_label", "corrupt_image"}
    assert _find(report, "bad_data_yaml", DATA_YAML, None).message.endswith(
        "every data set needs a data.yaml with its class names"
    )


def test_label_lines_are_checked_even_without_data_yaml(dataset_copy: Path) -> None:
    (dataset_copy / DATA_YAML).unlink()
    no = _append(dataset_copy / "labels" / "train" / "train_00000.txt", "0 0.5 0.5 0.1")
    report = validate(dataset_copy)
    _find(report, "malformed_line", "labels/train/train_00000.txt", no)


def test_register_raises_and_leaves_the_catalog_unchanged(dataset_copy: Path, tmp_path: Path) -> None:
    plant_faults(dataset_copy)
    catalog_dir = tmp_path / "catalog"
    catalog = LocalDatasetCatalog(catalog_dir)
    with pytest.raises(DataValidationError) as err:
        catalog.register(dataset_copy, "shapes")
    assert {"corrupt_image", "malformed_line", "empty_split"} <= err.value.report.codes()
    assert not catalog.index_path.exists()
    assert not catalog_dir.exists() or not any(catalog_dir.iterdir())
    assert catalog.list() == []


def test_register_leaves_an_existing_catalog_unchanged(dataset: Path, dataset_copy: Path, tmp_path: Path) -> None:
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    ref = catalog.register(dataset, "shapes")
    index_before = catalog.index_path.read_text()
    folders_before = sorted(p.relative_to(catalog.dir) for p in catalog.dir.rglob("*") if p.is_dir())
    (dataset_copy / "labels" / "train" / "train_00000.txt").write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(DataValidationError, match="train_00000.txt:1"):
        catalog.register(dataset_copy, "shapes")
    assert catalog.index_path.read_text() == index_before
    assert sorted(p.relative_to(catalog.dir) for p in catalog.dir.rglob("*") if p.is_dir()) == folders_before
    assert [r.version for r in catalog.list("shapes")] == [ref.version]


def test_clean_data_set_has_no_problems_in_any_split(dataset: Path) -> None:
    report = validate(dataset)
    assert report.ok and report.problems == []
    assert validate(dataset, splits=SPLITS[:1]).images_checked == len(list((dataset / "images/train").iterdir()))


def test_two_images_sharing_one_label_file_are_reported(dataset_copy: Path) -> None:
    src = dataset_copy / "images" / "train" / "train_00000.jpg"
    Image.open(src).save(dataset_copy / "images" / "train" / "train_00000.png")
    report = validate(dataset_copy)
    problem = _find(report, "duplicate_stem", "images/train/train_00000.png", None)
    assert "train_00000.txt" in problem.message and "images/train/train_00000.jpg" in problem.message

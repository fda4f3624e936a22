"""Validation of the folder-per-class layout against a bad-input corpus VisionOps did not make:
each problem is named with its path and fix, all are collected in one report, imbalance is a
warning with the counts, and unicode class names are fine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from foreign_classify import build_bad_corpus, photo

from visionops.data.classify import validation as cv
from visionops.data.validation import validate

WARNINGS = {"class_imbalance"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_bad_corpus(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    ("case", "path", "words"),
    [
        ("corrupt_image", "train/ant/readme.jpg", "cannot be decoded as an image"),
        ("empty_class", "train/cat", "holds no image"),
        ("nested_folder", "train/bee/drones", "silently train its images as 'bee'"),
        ("class_missing_from_split", "val/cow", "has images in train but none in val"),
        ("class_not_in_train", "val/cow", "has no folder in train"),
        ("duplicate_across_splits", "test/ant/copy.jpg", "same image content as train/ant/train_0.jpg"),
    ],
)
def test_each_bad_input_is_an_error_naming_the_path(corpus: dict[str, Path], case: str, path: str,
                                                    words: str) -> None:
    report = validate(corpus[case])
    assert report.task == "classify" and not report.ok
    hits = [p for p in report.problems if p.code == case]
    assert any(p.path == path and words in p.message and p.fix for p in hits), report.summary()
    assert "nothing was registered" in report.summary()


def test_a_class_only_in_train_is_missing_from_val_and_test(corpus: dict[str, Path]) -> None:
    report = validate(corpus["class_missing_from_split"])
    assert sorted(p.path for p in report.problems) == ["test/cow", "val/cow"]


def test_heavy_imbalance_is_a_warning_with_the_counts(corpus: dict[str, Path]) -> None:
    report = validate(corpus["class_imbalance"])
    assert report.ok and report.warning_codes() == WARNINGS
    message = report.warnings[0].message
    assert "'ant' has 30 images, 'bee' 2" in message and "15.0x" in message
    assert f"warning at {cv.IMBALANCE_WARN_RATIO:g}x" in message


def test_imbalance_threshold_is_the_named_constant(corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv, "IMBALANCE_WARN_RATIO", 20.0)
    assert validate(corpus["class_imbalance"]).warnings == []


def test_unicode_class_names_pass(corpus: dict[str, Path]) -> None:
    report = validate(corpus["unicode_ok"])
    assert report.ok and not report.warnings, report.summary()
    assert report.per_class == {"café": 8, "猫": 8}
    assert "OK (16 images in 2 classes)" in report.summary()


def test_every_problem_is_collected_in_one_report(corpus: dict[str, Path], tmp_path: Path) -> None:
    root = Path(shutil.copytree(corpus["unicode_ok"], tmp_path / "all"))
    (root / "train" / "café" / "notes.txt").write_text("x")
    (root / "train" / "猫" / "bad.png").write_bytes(b"\x89PNG broken")
    (root / "val" / "stray.jpg").write_text("x")
    photo(root / "train" / "café" / "sub" / "s.jpg", 0, 99)
    shutil.rmtree(root / "test")
    report = validate(root)
    assert {"not_an_image", "corrupt_image", "image_outside_class", "nested_folder", "empty_split"} <= report.codes()
    assert len(report.to_dict()["problems"]) == len(report.problems) >= 5


def test_one_class_and_a_valid_folder_are_named(tmp_path: Path) -> None:
    for split in ("train", "valid", "test"):
        photo(tmp_path / split / "only" / "a.jpg", 0, len(split))
    report = validate(tmp_path)
    assert "too_few_classes" in report.codes()
    missing_val = next(p for p in report.problems if p.code == "empty_split")
    assert "rename valid/ to val/" in missing_val.fix

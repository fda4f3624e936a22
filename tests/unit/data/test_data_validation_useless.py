"""validate() knows a data set that parses but cannot teach anything: no boxes, a class never seen in
train, boxes of a pixel or two (coordinates normalised twice), mostly background; YAML errors are
named problems, not crashes."""

from __future__ import annotations

from pathlib import Path

from visionops.data.layout import SPLITS, iter_items
from visionops.data.validation import validate


def _empty_labels(root: Path, splits: tuple[str, ...] = SPLITS) -> None:
    for item in iter_items(root, splits):
        item.label.write_text("")


def test_zero_boxes_overall_is_an_error(dataset_copy: Path) -> None:
    _empty_labels(dataset_copy)
    report = validate(dataset_copy)
    assert report.codes() == {"no_boxes"}
    assert "not one box" in report.problems[0].message


def test_zero_boxes_in_train_or_val_is_an_error_in_test_it_is_allowed(dataset_copy: Path) -> None:
    _empty_labels(dataset_copy, ("val",))
    report = validate(dataset_copy)
    assert [(p.code, p.path) for p in report.problems] == [("no_boxes_in_split", "labels/val")]
    _empty_labels(dataset_copy, ("test",))
    assert [p.path for p in validate(dataset_copy).problems] == ["labels/val"]


def test_boxes_under_two_pixels_name_file_line_and_the_likely_cause(dataset_copy: Path) -> None:
    label = dataset_copy / "labels" / "train" / "train_00000.txt"
    n = len(label.read_text().splitlines())
    label.write_text(label.read_text() + "0 0.5 0.5 0.005 0.3\n")  # 0.48 px wide in a 96 px image
    report = validate(dataset_copy)
    (problem,) = report.problems
    assert (problem.code, problem.path, problem.line) == ("tiny_box", "labels/train/train_00000.txt", n + 1)
    assert "normalised twice" in problem.message and "0.48x28.80 px" in problem.message


def test_class_missing_from_train_is_listed_and_mostly_background_warns(dataset_copy: Path) -> None:
    items = list(iter_items(dataset_copy))
    for item in items:  # drop class 3 from train, then empty most files
        if item.split == "train":
            lines = [ln for ln in item.label.read_text().splitlines() if not ln.startswith("3 ")]
            item.label.write_text("".join(ln + "\n" for ln in lines))
    report = validate(dataset_copy)
    assert report.ok and report.classes_without_train_instances == ["cross"]
    assert report.warning_codes() == {"class_without_train_instances"}
    for item in items[1:-4]:
        if item.split != "val":
            item.label.write_text("")
    report = validate(dataset_copy)
    assert report.ok and "mostly_background" in report.warning_codes()
    assert "warning(s)" in report.summary() and report.to_dict()["warnings"]


def test_yaml_syntax_error_is_a_named_problem_with_its_line(dataset_copy: Path) -> None:
    (dataset_copy / "data.yaml").write_text("train: images/train\nnames: [circle, rectangle\nval: images/val\n")
    report = validate(dataset_copy)
    (problem,) = [p for p in report.problems if p.code == "bad_data_yaml"]
    assert problem.path == "data.yaml" and problem.line == 3 and "not valid YAML" in problem.message


def test_the_generated_data_set_still_validates_clean(dataset: Path) -> None:
    report = validate(dataset)
    assert report.ok and report.warnings == [] and sum(report.boxes.values()) > 0

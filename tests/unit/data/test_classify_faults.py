"""Planted classification faults (notebook 01 with task=classify): validation reports each one,
with its code and file, and nothing else; the source is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionops.data import faults
from visionops.data.classify import faults as classify_faults
from visionops.data.classify.synthetic import ClassifySpec
from visionops.data.kinds import kind_for
from visionops.data.validation import validate


@pytest.fixture
def dataset(tmp_path):
    spec = ClassifySpec(per_class_train=6, per_class_val=2, per_class_test=2, image_size=48)
    return kind_for("classify").generate(spec, tmp_path / "ds")


def test_every_planted_fault_is_reported_and_nothing_else(dataset, tmp_path):
    before = sorted(p.relative_to(dataset).as_posix() for p in dataset.rglob("*"))
    planted = faults.plant_faults(dataset, tmp_path / "broken")  # dispatches on the data set's task
    assert [f.code for f in planted] == list(classify_faults.FAULTS)
    report = validate(tmp_path / "broken")
    assert report.codes() == set(classify_faults.FAULTS)
    reported = {(p.code, p.path) for p in report.problems}
    assert {(f.code, f.path) for f in planted} <= reported
    assert validate(dataset).ok and sorted(p.relative_to(dataset).as_posix() for p in dataset.rglob("*")) == before


def test_one_fault_at_a_time_and_bad_requests(dataset, tmp_path):
    [only] = faults.plant_faults(dataset, tmp_path / "one", ("class_missing_from_split",))
    assert validate(tmp_path / "one").codes() == {"class_missing_from_split"} and only.path.startswith("val/")
    with pytest.raises(ValueError, match="unknown fault"):
        faults.plant_faults(dataset, tmp_path / "x", ("zero_area_box",))
    with pytest.raises(ValueError, match="must not be the source"):
        faults.plant_faults(dataset, dataset / "inside")


def test_the_automl_export_of_a_classification_set_imports_back_with_every_image(dataset, tmp_path):
    """Notebook 01's AutoML export (multi-class JSONL + MLTable per split) carries every image with
    its class, and the JSONL importer reads it back into the same classes and counts."""
    import json

    from visionops.data.dataset import import_dataset, ref_from_folder
    from visionops.data.formats.automl import export_automl

    out = export_automl(dataset, tmp_path / "automl")
    for split, folder in out.items():
        lines = [json.loads(x) for x in (folder / f"{split}_annotations.jsonl").read_text().splitlines()]
        assert {Path(r["image_url"]).parent.name for r in lines} == {r["label"] for r in lines}
        assert len(lines) == kind_for("classify").count(dataset)[split].images
    back = import_dataset(out["train"] / "train_annotations.jsonl", tmp_path / "back", "back", "jsonl",
                          images_dir=dataset)
    ref = ref_from_folder(back)
    assert ref.task == "classify" and ref.classes == kind_for("classify").names(dataset)
    assert sum(c["images"] for c in ref.counts.values()) == kind_for("classify").count(dataset)["train"].images

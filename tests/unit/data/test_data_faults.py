"""Planted faults (visionops.data.faults): each is reported by validation with its own code at the
planted file, nothing else is reported, the source stays untouched, and the catalog refuses the copy."""

from __future__ import annotations

import pytest

from visionops.data.catalog import LocalDatasetCatalog
from visionops.data.faults import FAULTS, plant_faults
from visionops.data.validation import validate
from visionops.errors import DataValidationError


def test_every_fault_is_reported_where_it_was_planted_and_nothing_else(dataset, tmp_path, snapshot):
    before = snapshot(dataset)
    planted = plant_faults(dataset, tmp_path / "broken")
    assert [f.code for f in planted] == list(FAULTS)
    report = validate(tmp_path / "broken")
    assert report.codes() == set(FAULTS)
    assert len(report.problems) == len(FAULTS)  # one problem per fault: no fault hides or doubles another
    reported = {(p.code, p.path) for p in report.problems}
    for fault in planted:
        assert (fault.code, fault.path) in reported, fault
        assert fault.what == FAULTS[fault.code]
    assert snapshot(dataset) == before  # the source was only read
    assert validate(dataset).ok


def test_a_subset_of_faults(dataset, tmp_path):
    planted = plant_faults(dataset, tmp_path / "broken", kinds=("missing_label", "orphan_label"))
    assert validate(tmp_path / "broken").codes() == {"missing_label", "orphan_label"} == {f.code for f in planted}


def test_replanting_replaces_the_copy(dataset, tmp_path):
    plant_faults(dataset, tmp_path / "broken")
    plant_faults(dataset, tmp_path / "broken", kinds=("zero_area_box",))
    assert validate(tmp_path / "broken").codes() == {"zero_area_box"}


def test_the_catalog_refuses_the_broken_copy(dataset, tmp_path):
    plant_faults(dataset, tmp_path / "broken")
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    with pytest.raises(DataValidationError) as err:
        catalog.register(tmp_path / "broken", "shapes")
    assert err.value.report is not None and err.value.report.codes() == set(FAULTS)
    assert catalog.list() == []


def test_bad_requests(dataset, tmp_path):
    with pytest.raises(ValueError, match="unknown fault"):
        plant_faults(dataset, tmp_path / "x", kinds=("typo",))
    with pytest.raises(ValueError, match="must not be the source"):
        plant_faults(dataset, dataset / "inside")
    from visionops.data.synthetic import SyntheticSpec, generate

    small = generate(SyntheticSpec(n_train=2, n_val=1, n_test=1, image_size=64), tmp_path / "small")
    with pytest.raises(ValueError, match="training images"):
        plant_faults(small, tmp_path / "broken")

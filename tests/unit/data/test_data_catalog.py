"""The local catalog: content-addressed versions, idempotent registration, lookups and their errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from visionops.data.catalog import LocalDatasetCatalog
from visionops.data.manifest import content_hash, read_manifest
from visionops.errors import DatasetNotFoundError


def _index(catalog: LocalDatasetCatalog) -> list[dict]:
    return json.loads(catalog.index_path.read_text())


def test_same_content_registers_once(dataset: Path, tmp_path: Path) -> None:
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    first = catalog.register(dataset, "shapes", source={"kind": "synthetic"})
    moved = Path(shutil.copytree(dataset, tmp_path / "elsewhere"))
    second = catalog.register(moved, "shapes")
    assert second.version == first.version == content_hash(dataset)
    assert second.path == first.path
    assert len(_index(catalog)) == 1
    copy = Path(first.path)
    assert copy == catalog.dir / "shapes" / first.version
    manifest = read_manifest(copy)
    assert manifest.version == first.version and manifest.source == {"kind": "synthetic"}
    assert first.counts["train"] == {"images": 12, "boxes": manifest.splits["train"].boxes}
    assert first.data_yaml.is_file()


def test_changed_content_gives_a_new_version(dataset: Path, dataset_copy: Path, tmp_path: Path) -> None:
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    v1 = catalog.register(dataset, "shapes")
    label = dataset_copy / "labels" / "val" / "val_00000.txt"
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")
    v2 = catalog.register(dataset_copy, "shapes")
    assert v2.version != v1.version
    assert {e["version"] for e in _index(catalog)} == {v1.version, v2.version}
    assert Path(v1.path).is_dir() and Path(v2.path).is_dir()
    # v1's frozen copy did not change
    assert content_hash(Path(v1.path)) == v1.version


def test_list_get_latest(dataset: Path, dataset_copy: Path, tmp_path: Path) -> None:
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    v1 = catalog.register(dataset, "shapes")
    (dataset_copy / "labels" / "test" / "test_00000.txt").write_text("")
    v2 = catalog.register(dataset_copy, "shapes")
    other = catalog.register(dataset, "other")
    assert [r.version for r in catalog.list("shapes")] == [v1.version, v2.version]
    assert {(r.name, r.version) for r in catalog.list()} == {
        ("shapes", v1.version), ("shapes", v2.version), ("other", other.version)
    }
    assert catalog.get("shapes").version == v2.version
    assert catalog.get("shapes", "latest").version == v2.version
    assert catalog.get("shapes", v1.version) == v1
    assert catalog.get("other").uri == f"local:other:{other.version}"


def test_unknown_name_or_version_is_a_helpful_error(dataset: Path, tmp_path: Path) -> None:
    catalog = LocalDatasetCatalog(tmp_path / "catalog")
    with pytest.raises(DatasetNotFoundError, match=r"no data set named 'shapes'.*known: none.*visionops data register"):
        catalog.get("shapes")
    ref = catalog.register(dataset, "shapes")
    with pytest.raises(DatasetNotFoundError, match=r"no data set named 'shapez'.*known: \['shapes'\]"):
        catalog.get("shapez")
    with pytest.raises(DatasetNotFoundError, match=rf"'shapes' has no version 'v0'.*{ref.version}"):
        catalog.get("shapes", "v0")


def test_registering_a_working_copy_keeps_its_recorded_source(dataset: Path, tmp_path: Path) -> None:
    from visionops.data.catalog import write_local_manifest

    work = Path(shutil.copytree(dataset, tmp_path / "work"))
    write_local_manifest(work, "shapes", {"kind": "synthetic", "spec": {"seed": 7}})
    ref = LocalDatasetCatalog(tmp_path / "catalog").register(work, "shapes")  # no source given
    assert read_manifest(Path(ref.path)).source == {"kind": "synthetic", "spec": {"seed": 7}}

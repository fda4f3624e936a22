"""Produce a data set folder from a source: the synthetic generator or an import from a path.

Shared by `visionops data generate|import`, notebook 01 and the lifecycle, so they all write
the same layout and the same manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from visionops.data.catalog import DatasetRef, write_local_manifest
from visionops.data.manifest import read_manifest
from visionops.data.synthetic import SyntheticSpec, generate

SourceFormat = Literal["yolo", "coco", "voc", "automl"]


def generate_synthetic(spec: SyntheticSpec, dst: Path, name: str) -> Path:
    """Generate the synthetic set into `dst` and write its manifest (spec recorded as source)."""
    generate(spec, dst)
    write_local_manifest(dst, name, {"kind": "synthetic", "spec": spec.model_dump()})
    return Path(dst)


def import_dataset(
    src: Path, dst: Path, name: str, fmt: SourceFormat, *, images_dir: Path | None = None, seed: int = 0
) -> Path:
    """Import a YOLO folder, COCO JSON, Pascal VOC folder or AutoML JSONL into our layout."""
    from visionops.data import formats

    src = Path(src)
    if fmt == "yolo":
        formats.import_yolo(src, dst, seed=seed, overwrite=True)
    elif fmt == "coco":
        formats.import_coco(src, Path(images_dir or src.parent), dst, seed=seed, overwrite=True)
    elif fmt == "voc":
        formats.import_voc(src, dst, seed=seed, overwrite=True)
    elif fmt == "automl":
        formats.import_automl(src, Path(images_dir or src.parent), dst, seed=seed, overwrite=True)
    else:  # pragma: no cover - typer/pydantic restrict fmt
        raise ValueError(f"unknown format {fmt!r}")
    write_local_manifest(dst, name, {"kind": "import", "format": fmt, "path": str(src)})
    return Path(dst)


def ref_from_folder(path: Path, backend: str = "local") -> DatasetRef:
    """A DatasetRef for a folder that carries a manifest (a catalog copy, or a mounted Azure input)."""
    path = Path(path).resolve()
    m = read_manifest(path)
    return DatasetRef(
        name=m.name,
        version=m.version,
        path=str(path),
        created=m.created,
        counts={s: {"images": c.images, "boxes": c.boxes} for s, c in m.splits.items()},
        classes=m.classes,
        backend=backend,
    )


def describe_source(path: Path) -> dict[str, Any]:
    return read_manifest(path).source

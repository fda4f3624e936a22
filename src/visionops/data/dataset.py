"""Produce a data set folder from a source: the synthetic generator or an import from a path.

Shared by `visionops data generate|import`, notebook 01 and the lifecycle, so they all write
the same layout and the same manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from visionops.data.catalog import DatasetRef, write_local_manifest
from visionops.data.classify.synthetic import ClassifySpec
from visionops.data.kinds import spec_kind
from visionops.data.manifest import build_manifest, read_manifest, write_manifest
from visionops.data.synthetic import SyntheticSpec
from visionops.errors import ConfigError

SourceFormat = Literal["yolo", "coco", "voc", "automl", "folders", "csv", "jsonl"]
CLASSIFY_FORMATS: tuple[str, ...] = ("folders", "csv", "jsonl")


def generate_synthetic(spec: SyntheticSpec | ClassifySpec, dst: Path, name: str) -> Path:
    """Generate the synthetic set of the spec's task into `dst` and write its manifest (spec recorded
    as source): `SyntheticSpec` gives the detection shapes, `ClassifySpec` the classification objects."""
    kind = spec_kind(spec)
    kind.generate(spec, dst)
    source = {"kind": "synthetic", "task": kind.task, "spec": spec.model_dump()}
    write_manifest(dst, build_manifest(dst, name, source, task=kind.task))
    return Path(dst)


def import_dataset(
    src: Path,
    dst: Path,
    name: str | None = None,
    fmt: SourceFormat | Literal["auto"] = "yolo",
    *,
    images_dir: Path | None = None,
    seed: int = 0,
    unlabeled: bool = False,
    difficult: Literal["keep", "skip"] = "keep",
    crowd: Literal["keep", "skip"] = "keep",
    classes: list[str] | None = None,
) -> Path:
    """Import a YOLO folder, COCO JSON, Pascal VOC folder or AutoML JSONL/MLTable (detection), or a
    folder per class, a `path,label` CSV or AutoML multi-class JSONL (classification) into our layout.

    `name` defaults to one derived from the source (`visionops.data.naming.derived_name`);
    `fmt="auto"` recognises the format (`detect_format`) and the import report says what it
    recognised. `images_dir`: where COCO/AutoML images are (an AutoML image URL such as
    azureml://..., AmlDatastore://... or https://... is mapped to the file under it). `unlabeled`
    (YOLO): images with no label file at all are background, not lost labels. `difficult` (VOC)
    and `crowd` (COCO): keep or skip those objects. The manifest keeps the import report.
    """
    from visionops.data import formats
    from visionops.data.classify import importers as classify
    from visionops.data.formats.detect import detect_format
    from visionops.data.naming import derived_name

    src = Path(src)
    name = name or derived_name(src)
    why = None
    if fmt == "auto":
        detected = detect_format(src)
        fmt, src, why = detected.fmt, detected.path, detected.why  # type: ignore[assignment]
    if fmt == "yolo":
        formats.import_yolo(src, dst, seed=seed, overwrite=True, unlabeled=unlabeled)
    elif fmt == "coco":
        coco = detect_format(src).path if src.is_dir() else src
        formats.import_coco(coco, Path(images_dir or coco.parent), dst, seed=seed, overwrite=True, crowd=crowd)
    elif fmt == "voc":
        formats.import_voc(src, dst, seed=seed, overwrite=True, difficult=difficult, classes=classes)
    elif fmt == "automl":
        root = images_dir or (src if src.is_dir() else src.parent)
        formats.import_automl(src, Path(root), dst, seed=seed, overwrite=True, classes=classes)
    elif fmt == "folders":
        classify.import_folders(src, dst, seed=seed, overwrite=True)
    elif fmt == "csv":
        classify.import_csv(src, dst, seed=seed, overwrite=True)
    elif fmt == "jsonl":
        root = images_dir or (src if src.is_dir() else src.parent)
        classify.import_jsonl(src, Path(root), dst, seed=seed, overwrite=True)
    else:
        raise ConfigError(f"unknown format {fmt!r}; choose auto, yolo, coco, voc, automl, folders, csv or jsonl")
    written = read_manifest(dst).source
    if why is not None and isinstance(written.get("report"), dict):
        known = written["report"].get("detected")  # the importer's own finding is the more specific
        written["report"]["detected"] = f"{known} (--format auto)" if known else f"{why} (--format auto)"
    write_local_manifest(dst, name, {**written, "kind": "import", "format": fmt, "path": str(src)})
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
        task=m.task,
    )


def describe_source(path: Path) -> dict[str, Any]:
    return read_manifest(path).source

"""`--format auto`: recognise an export by the files it is made of, and say what was recognised.

The rules look at names and layout, in an order that cannot confuse two formats: an MLTable or
JSONL is AutoML (detection `automl`, or classification `jsonl` when its first labels are class
names rather than boxes: the one peek at content), a yaml/obj.data/classes.txt is YOLO,
Annotations/ or *.xml is Pascal VOC, split or class folders holding images directly are a
folder-per-class classification set (`folders`), a single CSV is `path,label` (`csv`), a single
JSON is COCO.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from visionops.errors import VisionOpsError

FORMATS: tuple[str, ...] = ("yolo", "coco", "voc", "automl", "folders", "csv", "jsonl")
_PEEK_LINES = 50  # JSONL lines read to tell classification labels from boxes
# Sub-folder names of detection exports: a folder holding these is never a folder-per-class set.
_DETECTION_FOLDERS = frozenset({"images", "labels", "annotations", "jpegimages", "imagesets"})


@dataclass(frozen=True)
class Detected:
    """The format, the path to hand its importer, and why (printed in the import report)."""

    fmt: str
    path: Path
    why: str


def _only(paths: list[Path]) -> Path | None:
    return paths[0] if len(paths) == 1 else None


def _jsonl_task(files: list[Path]) -> str:
    """"jsonl" when the first labelled lines carry class names (AutoML classification), else "automl"."""
    from visionops.data.classify.importers import jsonl_label_kind

    for path in files:
        try:
            with path.open(encoding="utf-8-sig") as fh:
                for _, raw in zip(range(_PEEK_LINES), fh, strict=False):
                    try:
                        kind = jsonl_label_kind(json.loads(raw).get("label")) if raw.strip() else "unknown"
                    except (ValueError, AttributeError):
                        continue
                    if kind in ("multi-class", "multi-label"):
                        return "jsonl"
                    if kind == "detection":
                        return "automl"
        except OSError:
            continue
    return "automl"


def _automl(path: Path, why: str) -> Detected:
    from visionops.data.formats.automl import jsonl_files

    try:
        files = jsonl_files(path)
    except VisionOpsError:
        return Detected("automl", path, why)  # the importer names what is wrong with the MLTable
    if _jsonl_task(files) == "jsonl":
        return Detected("jsonl", path, f"{why}, classification labels")
    return Detected("automl", path, why)


def _class_folders(src: Path) -> str | None:
    """Why `src` is a folder-per-class classification source, or None."""
    from visionops.data.classify.layout import SPLIT_ALIASES, looks_like_class_folders

    subs = [p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if any(p.name.lower() in _DETECTION_FOLDERS for p in subs):
        return None
    splits = [p for p in subs if p.name.lower() in SPLIT_ALIASES]
    if splits:
        if any(looks_like_class_folders(p) for p in splits):
            return f"{', '.join(sorted(p.name for p in splits))}/ with a folder per class: classification folders"
        return None
    if looks_like_class_folders(src):
        return f"{len(subs)} folders of images (a folder per class, no splits): classification folders"
    return None


def detect_format(src: Path) -> Detected:
    """The format of `src` (a file or a folder); VisionOpsError naming what was looked for."""
    src = Path(src)
    if src.is_file():
        name, suffix = src.name, src.suffix.lower()
        if name == "MLTable" or suffix == ".jsonl":
            return _automl(src, f"{name}: Azure ML AutoML JSONL/MLTable")
        if suffix == ".csv":
            return Detected("csv", src, f"{name}: CSV of path,label")
        if suffix in (".yaml", ".yml") or name in ("obj.data", "classes.txt"):
            return Detected("yolo", src, f"{name}: YOLO description")
        if suffix == ".json":
            return Detected("coco", src, f"{name}: COCO JSON")
        if suffix == ".xml":
            return Detected("voc", src.parent, f"{name}: Pascal VOC XML (importing its folder)")
        raise VisionOpsError(
            f"cannot tell the format of {src}; pass --format {'|'.join(FORMATS)}, or the export's folder"
        )
    if not src.is_dir():
        raise VisionOpsError(f"{src} does not exist; pass the path of the data set to import")
    if (src / "MLTable").is_file():
        return _automl(src, "MLTable file: Azure ML AutoML / Data Labeling MLTable")
    jsonls = sorted(src.glob("*.jsonl"))
    if jsonl := _only(jsonls):
        return _automl(jsonl, f"{jsonl.name}: Azure ML AutoML JSONL")
    if jsonls and _jsonl_task(jsonls) == "jsonl":  # e.g. train_ and validation_annotations.jsonl
        return Detected("jsonl", src, f"{len(jsonls)} JSONL files: Azure ML AutoML multi-class JSONL")
    yamls = sorted(src.glob("*.yaml")) + sorted(src.glob("*.yml"))
    if yamls:
        return Detected("yolo", src, f"{', '.join(p.name for p in yamls)}: Ultralytics YOLO yaml")
    if (src / "obj.data").is_file():
        return Detected("yolo", src, "obj.data: CVAT YOLO 1.1 export")
    if (src / "classes.txt").is_file() and (src / "images").is_dir():
        return Detected("yolo", src, "classes.txt + images/: Label Studio YOLO export")
    if (src / "Annotations").is_dir() or list(src.glob("*.xml")):
        return Detected("voc", src, "Annotations/ or *.xml: Pascal VOC")
    if why := _class_folders(src):
        return Detected("folders", src, why)
    if table := _only(sorted(src.glob("*.csv"))):
        return Detected("csv", table, f"{table.name}: CSV of path,label")
    jsons = sorted(src.glob("*.json")) or sorted((src / "annotations").glob("*.json"))
    if coco := _only(jsons):
        return Detected("coco", coco, f"{coco.relative_to(src)}: COCO JSON (images looked up beside it)")
    raise VisionOpsError(
        f"cannot tell the format of {src}: no MLTable, *.jsonl, *.yaml, obj.data, classes.txt, Annotations/, "
        f"*.xml, folders of images per class, single *.csv or single *.json found"
        f"{' (several JSON files: pass one)' if jsons else ''}; pass the file itself or --format {'|'.join(FORMATS)}"
    )

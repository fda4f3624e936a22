"""`--format auto`: recognise an export by the files it is made of, and say what was recognised.

The rules look only at names and layout (no content guessing beyond that), in an order that
cannot confuse two formats: an MLTable or JSONL is AutoML, a yaml/obj.data/classes.txt is YOLO,
Annotations/ or *.xml is Pascal VOC, a single JSON is COCO.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from visionops.errors import VisionOpsError

FORMATS: tuple[str, ...] = ("yolo", "coco", "voc", "automl")


@dataclass(frozen=True)
class Detected:
    """The format, the path to hand its importer, and why (printed in the import report)."""

    fmt: str
    path: Path
    why: str


def _only(paths: list[Path]) -> Path | None:
    return paths[0] if len(paths) == 1 else None


def detect_format(src: Path) -> Detected:
    """The format of `src` (a file or a folder); VisionOpsError naming what was looked for."""
    src = Path(src)
    if src.is_file():
        name, suffix = src.name, src.suffix.lower()
        if name == "MLTable" or suffix == ".jsonl":
            return Detected("automl", src, f"{name}: Azure ML AutoML JSONL/MLTable")
        if suffix in (".yaml", ".yml") or name in ("obj.data", "classes.txt"):
            return Detected("yolo", src, f"{name}: YOLO description")
        if suffix == ".json":
            return Detected("coco", src, f"{name}: COCO JSON")
        if suffix == ".xml":
            return Detected("voc", src.parent, f"{name}: Pascal VOC XML (importing its folder)")
        raise VisionOpsError(
            f"cannot tell the format of {src}; pass --format yolo|coco|voc|automl, or the export's folder"
        )
    if not src.is_dir():
        raise VisionOpsError(f"{src} does not exist; pass the path of the data set to import")
    if (src / "MLTable").is_file():
        return Detected("automl", src, "MLTable file: Azure ML AutoML / Data Labeling MLTable")
    if jsonl := _only(sorted(src.glob("*.jsonl"))):
        return Detected("automl", jsonl, f"{jsonl.name}: Azure ML AutoML JSONL")
    yamls = sorted(src.glob("*.yaml")) + sorted(src.glob("*.yml"))
    if yamls:
        return Detected("yolo", src, f"{', '.join(p.name for p in yamls)}: Ultralytics YOLO yaml")
    if (src / "obj.data").is_file():
        return Detected("yolo", src, "obj.data: CVAT YOLO 1.1 export")
    if (src / "classes.txt").is_file() and (src / "images").is_dir():
        return Detected("yolo", src, "classes.txt + images/: Label Studio YOLO export")
    if (src / "Annotations").is_dir() or list(src.glob("*.xml")):
        return Detected("voc", src, "Annotations/ or *.xml: Pascal VOC")
    jsons = sorted(src.glob("*.json")) or sorted((src / "annotations").glob("*.json"))
    if coco := _only(jsons):
        return Detected("coco", coco, f"{coco.relative_to(src)}: COCO JSON (images looked up beside it)")
    raise VisionOpsError(
        f"cannot tell the format of {src}: no MLTable, *.jsonl, *.yaml, obj.data, classes.txt, Annotations/, "
        f"*.xml or single *.json found{' (several JSON files: pass one)' if jsons else ''}; "
        "pass the file itself or --format yolo|coco|voc|automl"
    )

"""Azure ML AutoML-for-Images object detection JSONL (+ MLTable) <-> our layout.

One JSON line per image: `image_url`, `image_details` (format, width, height) and `label`, a
list of boxes whose corners `topX, topY, bottomX, bottomY` are ratios of the image size. Each
split goes into its own folder holding the JSONL and an `MLTable` file, which is what an
`Input(type="mltable", path=<folder>)` of an AutoML job or a registered mltable Data asset
points at.

`image_url` is the image's path relative to the data set root, prefixed with `image_url_prefix`
when given. AutoML reads images from that URL, so for a job in Azure pass the datastore URI of
the uploaded data set root, e.g.
`azureml://datastores/workspaceblobstore/paths/datasets/shapes/<version>/`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from visionops.data.formats._common import (
    ExportItem,
    Problems,
    Record,
    assign_splits,
    box_from_pixels,
    box_to_pixels,
    check_destination,
    check_split_ratios,
    image_format,
    image_problem,
    image_size,
    iter_lines,
    read_for_export,
    relpath,
    write_dataset,
)
from visionops.data.formats.report import ImportReport
from visionops.data.layout import SPLITS
from visionops.errors import VisionOpsError

MLTABLE = "MLTable"
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "test": "test", "testing": "test"}
_LABEL_FIX = "give each label 'label' (a class name) and topX, topY, bottomX, bottomY as ratios in 0..1"


# --- export --------------------------------------------------------------------------------------
def mltable_doc(jsonl_name: str) -> dict[str, Any]:
    """The MLTable of one JSONL beside it: read JSON lines, then make image_url a stream column."""
    return {
        "paths": [{"file": f"./{jsonl_name}"}],
        "transformations": [
            {"read_json_lines": {"encoding": "utf8", "invalid_lines": "error", "include_path_column": False}},
            {"convert_column_types": [{"columns": "image_url", "column_type": "stream_info"}]},
        ],
    }


def _ratio(v: float) -> float:
    return round(min(max(v, 0.0), 1.0), 6)


def jsonl_record(item: ExportItem, names: list[str], url: str) -> dict[str, Any]:
    """One JSONL line: image URL, its size and the boxes as corner ratios clipped to 0..1."""
    labels = []
    for box in item.boxes:
        x0, y0, x1, y1 = box_to_pixels(box, item.width, item.height)
        labels.append({
            "label": names[box.cls],
            "topX": _ratio(x0 / item.width),
            "topY": _ratio(y0 / item.height),
            "bottomX": _ratio(x1 / item.width),
            "bottomY": _ratio(y1 / item.height),
            "isCrowd": 0,
        })
    return {
        "image_url": url,
        "image_details": {"format": image_format(item.image), "width": item.width, "height": item.height},
        "label": labels,
    }


def _join_url(prefix: str | None, rel: str) -> str:
    return prefix.rstrip("/") + "/" + rel if prefix else rel


def export_automl(root: Path, out_dir: Path, *, image_url_prefix: str | None = None) -> dict[str, Path]:
    """Write `<out_dir>/<split>/<split>_annotations.jsonl` and `<out_dir>/<split>/MLTable` per split.

    Returns {split: folder}; each folder is a self-contained mltable (the JSONL path in the
    MLTable is relative to it). A detection data set gives boxes (`label`: a list of
    {label, topX, topY, bottomX, bottomY}), a classification data set its multi-class form
    (`label`: the class name), what AutoML's image_object_detection / image_classification read.
    """
    records = _classify_records(Path(root), image_url_prefix)
    if records is None:
        root, names, items = read_for_export(root)
        records = {split: [jsonl_record(it, names, _join_url(image_url_prefix, relpath(root, it.image)))
                           for it in items if it.split == split] for split in SPLITS}
    out: dict[str, Path] = {}
    for split in SPLITS:
        folder = Path(out_dir) / split
        folder.mkdir(parents=True, exist_ok=True)
        jsonl = folder / f"{split}_annotations.jsonl"
        lines = [json.dumps(record, ensure_ascii=False) for record in records[split]]
        jsonl.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        (folder / MLTABLE).write_text(yaml.safe_dump(mltable_doc(jsonl.name), sort_keys=False), encoding="utf-8")
        out[split] = folder
    return out


def _classify_records(root: Path, prefix: str | None) -> dict[str, list[dict[str, Any]]] | None:
    """{split: [{"image_url", "label": class}]} of a classification data set; None for detection."""
    from visionops.data.kinds import data_kind

    kind = data_kind(root)
    if kind.has_boxes:
        return None
    records: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    for sample in kind.samples(root):
        url = _join_url(prefix, sample.image.relative_to(root).as_posix())
        records[sample.split].append({"image_url": url, "label": sample.label})
    return records


# --- import --------------------------------------------------------------------------------------
def split_of(jsonl: Path) -> str | None:
    """Split named by the file (`train_annotations.jsonl`, `validation_annotations.jsonl`) or None."""
    head = jsonl.stem.split("_")[0].lower()
    return _SPLIT_ALIASES.get(head)


def resolve_image(url: str, images_root: Path, prefix: str | None) -> Path | None:
    """Local file of an image_url: strip `prefix` (or any scheme), then take the longest tail of
    the path that exists under images_root (datastore URIs carry folders the local copy lacks)."""
    rel = url[len(prefix):] if prefix and url.startswith(prefix) else url
    if "://" in rel:
        rel = rel.split("://", 1)[1]
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    for i in range(len(parts)):
        candidate = images_root.joinpath(*parts[i:])
        if candidate.is_file():
            return candidate
    return None


def pixel_count(value: Any) -> int | None:
    """An image_details width/height: an int, or a string such as "400px" (Azure ML writes both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("px").strip()
        if text.isdigit():
            return int(text)
    return None


def jsonl_files(source: Path) -> list[Path]:
    """The JSONL file(s) of a source: the file itself, or those an MLTable (file or folder) names
    under `paths: - file:` (relative to the MLTable's folder)."""
    source = Path(source)
    mltable = source / MLTABLE if source.is_dir() else source
    if mltable.name != MLTABLE:
        return [source]
    if not mltable.is_file():
        raise VisionOpsError(f"{source} has no {MLTABLE} file; pass the JSONL file or the MLTable folder")
    try:
        doc = yaml.safe_load(mltable.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise VisionOpsError(f"{mltable} is not valid YAML ({exc}); fix the syntax") from None
    paths = doc.get("paths") if isinstance(doc, dict) else None
    files = [mltable.parent / str(p["file"]) for p in paths or [] if isinstance(p, dict) and p.get("file")]
    if not files:
        raise VisionOpsError(f"{mltable}: 'paths:' names no '- file: <jsonl>'; point it at the annotations JSONL")
    return files


def _parse_line(
    text: str, path: Path, no: int, problems: Problems
) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]] | None:
    """(image_url, image_details, labels) of one line, or None with the problem recorded."""
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add("bad_json", path, f"line is not valid JSON ({exc.msg})", "write one JSON object per line", no)
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("image_url"), str):
        problems.add("bad_record", path, "line has no 'image_url' string",
                     "write {'image_url': ..., 'image_details': ..., 'label': [...]}", no)
        return None
    labels = rec.get("label", [])
    if not isinstance(labels, list):
        problems.add("bad_record", path, "'label' must be a list of boxes", _LABEL_FIX, no)
        return None
    details = rec.get("image_details") if isinstance(rec.get("image_details"), dict) else None
    return rec["image_url"], details, labels


def import_automl(
    jsonl: Path | list[Path],
    images_root: Path,
    dst: Path,
    *,
    classes: list[str] | None = None,
    image_url_prefix: str | None = None,
    split_ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Import AutoML object-detection JSONL file(s) into our layout at dst.

    A file's split comes from its name (`train_`/`val_`/`validation_`/`test_...jsonl`, as
    `export_automl` and Azure ML's samples write them); lines of other files are split by
    `split_ratios`/`seed`, and a missing val/test split is carved out of train. Images are
    found under `images_root` (see `resolve_image`). `classes` fixes the class order; by
    default the sorted unique label names. Raises DataValidationError listing every problem
    with file and line.
    """
    check_split_ratios(split_ratios)
    given = [jsonl] if isinstance(jsonl, str | Path) else jsonl
    files = [f.resolve() for p in given for f in jsonl_files(Path(p))]
    if not files:
        raise VisionOpsError("import_automl needs at least one JSONL file")
    images_root = Path(images_root).resolve()
    dst = check_destination(dst, [images_root, *(f.parent for f in files)], overwrite)
    problems = Problems(files[0])
    report = ImportReport(format="automl", source=str(files[0]))
    parsed: list[tuple[Path, int, Path, str | None, list[dict[str, Any]]]] = []
    seen: dict[Path, str] = {}
    urls: list[str] = []
    for path in files:
        if not path.is_file():
            problems.add("missing_file", path, "JSONL file does not exist", "pass the path of the annotations file")
            continue
        for no, text in iter_lines(path):
            line = _parse_line(text, path, no, problems)
            if line is None:
                continue
            url, details, labels = line
            urls.append(url)
            image = resolve_image(url, images_root, image_url_prefix)
            if image is None:
                problems.add("missing_image", path, f"image {url!r} not found under {images_root}",
                             "pass the folder holding the images as images_root, or image_url_prefix", no)
                continue
            if image in seen:
                problems.add("duplicate_image", path, f"image {url!r} already appears at {seen[image]}",
                             "keep one line per image (merge their labels)", no)
                continue
            seen[image] = f"{path.name}:{no}"
            if reason := image_problem(image):
                problems.add("corrupt_image", image, f"{reason} (from {path.name} line {no})",
                             "replace the file with a readable JPEG/PNG or remove the line")
                continue
            w, h = image_size(image)
            declared = pixel_count((details or {}).get("width")), pixel_count((details or {}).get("height"))
            if all(v for v in declared) and declared != (w, h):
                problems.add("size_mismatch", path,
                             f"image_details says {declared[0]}x{declared[1]} but {image.name} is {w}x{h}",
                             "fix image_details (or drop it)", no)
                continue
            parsed.append((path, no, image, split_of(path), labels))
    found = sorted({lb.get("label") for *_, labels in parsed for lb in labels
                    if isinstance(lb, dict) and isinstance(lb.get("label"), str)})
    names = list(classes) if classes else found
    class_of = {n: i for i, n in enumerate(names)}
    records: list[Record] = []
    for path, no, image, split, labels in parsed:
        w, h = image_size(image)
        boxes = []
        for i, lb in enumerate(labels, start=1):
            try:
                name = lb["label"]
                x0, y0, x1, y1 = (float(lb[k]) for k in ("topX", "topY", "bottomX", "bottomY"))
            except (KeyError, TypeError, ValueError):
                problems.add("bad_label", path, f"label #{i} {lb!r} is incomplete or not numeric", _LABEL_FIX, no)
                continue
            if name not in class_of:
                problems.add("unknown_class", path, f"label #{i}: class {name!r} is not in classes {names}",
                             "add it to classes=[...] or fix the label", no)
                continue
            box, reason = box_from_pixels(class_of[name], x0 * w, y0 * h, x1 * w, y1 * h, w, h)
            if box is None:
                code = "zero_area_box" if "zero" in reason else "bbox_outside_image"
                problems.add(code, path, f"label #{i} ({name}): {reason}; ratios must be in 0..1", _LABEL_FIX, no)
                continue
            boxes.append(box)
        report.split(split).add_image(len(boxes))
        records.append(Record(image, boxes, split))
    if not names and not problems:
        problems.add("no_classes", files[0], "no labels found and no classes given", "pass classes=[...]")
    problems.raise_if_any("AutoML JSONL annotations")
    schemes = sorted({url.split("://", 1)[0] + "://" for url in urls if "://" in url})
    if schemes:
        report.notes.append(f"image URLs ({', '.join(schemes)}) mapped to files under {images_root}")
    records = assign_splits(records, split_ratios, seed, report)
    source = {"format": "automl", "path": str(files[0]), "files": [str(f) for f in files], "seed": seed,
              "split_ratios": list(split_ratios)}
    return write_dataset(records, names, dst, source=source, overwrite=overwrite, report=report)

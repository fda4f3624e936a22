"""COCO detection JSON <-> our layout.

COCO boxes are `[x, y, w, h]` in pixels from the top-left corner; category ids are arbitrary
and are mapped to contiguous class ids 0..n-1 in the order of the category ids. Export writes
category ids 1..n (class id + 1: many COCO tools reserve 0 for background).

`iscrowd` annotations are imported as ordinary boxes by default (`crowd="keep"`): YOLO labels
cannot mark a box as a crowd, and dropping them would leave crowds of objects unlabelled (the
detector would learn that they are background). `crowd="skip"` leaves them out; the import
report counts them either way.

Real exports differ from the spec in ways that used to corrupt boxes silently; each is handled
and stated in the import report: bboxes normalised to 0..1 (Azure ML Data Labeling, which also
writes width/height 0.0) are detected and multiplied by the image size read from the file;
missing or zero width/height are read from the file; an annotation with only a polygon
segmentation gets its bounding box; file_name may carry sub-folders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from visionops.data.formats._common import (
    ExportItem,
    Problems,
    Record,
    assign_splits,
    box_from_pixels,
    box_to_pixels,
    check_destination,
    check_split_ratios,
    image_problem,
    image_size,
    read_for_export,
    relpath,
    write_dataset,
)
from visionops.data.formats.report import ImportReport
from visionops.data.layout import IMAGE_SUFFIXES, SPLITS
from visionops.errors import ConfigError

_BOX_FIX = "fix the bbox ([x, y, width, height] in pixels inside the image) or delete the annotation"
Coordinates = Literal["auto", "pixels", "normalized"]
CrowdPolicy = Literal["keep", "skip"]
_NORMALISED_MAX = 1.0 + 1e-6


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _bbox_of(ann: dict[str, Any]) -> list[float] | None:
    """[x, y, w, h] from 'bbox', else the bounding box of a polygon 'segmentation' (None if neither)."""
    bbox = ann.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox):
        return [float(v) for v in bbox]
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg and all(isinstance(poly, list) and len(poly) >= 6 for poly in seg):
        coords = [v for poly in seg for v in poly]
        if all(_number(v) for v in coords):
            xs, ys = coords[0::2], coords[1::2]
            return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return None


def looks_normalised(doc: dict[str, Any]) -> bool:
    """True when every bbox lies within 0..1 (Azure ML Data Labeling writes them that way):
    read as pixels they would all be sub-pixel, which no real labelled data set is."""
    boxes = [b for ann in doc["annotations"] if isinstance(ann, dict) and (b := _bbox_of(ann)) is not None]
    return bool(boxes) and all(
        max(b) <= _NORMALISED_MAX and b[0] + b[2] <= _NORMALISED_MAX and b[1] + b[3] <= _NORMALISED_MAX
        for b in boxes
    )


def load_json(path: Path, problems: Problems) -> dict[str, Any] | None:
    """The COCO document, or None with a problem naming the file and line of the syntax error."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add("missing_file", path, "annotation file does not exist", "pass the path of the COCO JSON file")
        return None
    except json.JSONDecodeError as exc:
        problems.add("bad_json", path, f"is not valid JSON ({exc.msg}, column {exc.colno})",
                     "fix the JSON syntax", exc.lineno)
        return None
    keys = ("images", "annotations", "categories")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in keys):
        problems.add("bad_coco", path, "needs the lists 'images', 'annotations' and 'categories'",
                     "export the file as COCO object detection JSON")
        return None
    return doc


def category_map(doc: dict[str, Any], path: Path, problems: Problems) -> dict[int, str]:
    """Category id -> name, checked for missing fields and duplicate ids/names."""
    cats: dict[int, str] = {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            problems.add("bad_category", path, f"categories[{i}] needs an integer 'id' and a string 'name': {cat!r}",
                         "fix the category entry")
            continue
        if cat["id"] in cats:
            problems.add("duplicate_category", path, f"category id {cat['id']} is defined twice",
                         "give every category a unique id")
            continue
        cats[cat["id"]] = cat["name"]
    names = list(cats.values())
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add("duplicate_category", path, f"category name {dup!r} is used by several ids",
                     "merge those categories or rename them")
    return cats


def _find_image(images_dir: Path, file_name: str) -> Path | None:
    """file_name relative to images_dir, or its base name there (COCO files often keep only one of the two)."""
    for candidate in (images_dir / file_name, images_dir / Path(file_name).name):
        if candidate.is_file():
            return candidate
    return None


def _records(
    doc: dict[str, Any], path: Path, images_dir: Path, class_of: dict[int, int], split: str | None, problems: Problems,
    *, normalised: bool = False, crowd: CrowdPolicy = "keep", report: ImportReport | None = None,
) -> list[Record]:
    """One record per COCO image, boxes in class-id order of `class_of`; every problem collected.

    `normalised`: bboxes are fractions of the image size (multiplied by the size read from the file).
    """
    images: dict[int, dict[str, Any]] = {}
    sizes: dict[int, tuple[int, int]] = {}
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            problems.add("bad_image_entry", path, f"images[{i}] needs an integer 'id' and a 'file_name': {im!r}",
                         "fix the image entry")
            continue
        if im["id"] in images:
            problems.add("duplicate_image", path, f"image id {im['id']} is defined twice",
                         "give every image a unique id")
            continue
        found = _find_image(images_dir, im["file_name"])
        if found is None:
            problems.add(
                "missing_image", path,
                f"image id {im['id']}: file {im['file_name']!r} not found in {images_dir}",
                "put the image there, pass the right images_dir, or remove the image and its annotations",
            )
            continue
        if reason := image_problem(found):
            problems.add("corrupt_image", found, f"{reason} (image id {im['id']} in {path})",
                         "replace the file with a readable JPEG/PNG or remove it")
            continue
        w, h = image_size(found)
        declared = (im.get("width"), im.get("height"))
        if all(_number(v) and v > 0 for v in declared) and (round(declared[0]), round(declared[1])) != (w, h):
            problems.add(
                "size_mismatch", path,
                f"image id {im['id']} ({im['file_name']}) is declared {declared[0]}x{declared[1]} "
                f"but the file is {w}x{h}",
                "fix width/height in the JSON (the boxes must be in the file's pixel coordinates)",
            )
            continue
        images[im["id"]] = {"path": found, "boxes": []}
        sizes[im["id"]] = (w, h)
    known_images = {im.get("id") for im in doc["images"] if isinstance(im, dict)}
    for i, ann in enumerate(doc["annotations"]):
        aid = ann.get("id", f"#{i}") if isinstance(ann, dict) else f"#{i}"
        where = f"annotation id {aid}"
        if not isinstance(ann, dict):
            problems.add("bad_annotation", path, f"{where} is not an object", "fix the annotation")
            continue
        if ann.get("category_id") not in class_of:
            problems.add(
                "unknown_category", path,
                f"{where}: category_id {ann.get('category_id')!r} is not in 'categories' "
                f"(known ids: {sorted(class_of)})",
                "add the category to 'categories' or fix the annotation's category_id",
            )
            continue
        if ann.get("image_id") not in known_images:
            problems.add("unknown_image", path, f"{where}: image_id {ann.get('image_id')!r} is not in 'images'",
                         "add the image to 'images' or delete the annotation")
            continue
        if ann["image_id"] not in images:  # image already reported (missing, corrupt, size)
            continue
        bbox = _bbox_of(ann)
        if bbox is None:
            problems.add("bad_bbox", path, f"{where}: bbox {ann.get('bbox')!r} is not [x, y, width, height] "
                         "and there is no polygon segmentation to take it from", _BOX_FIX)
            continue
        if ann.get("iscrowd") and crowd == "skip":
            if report is not None:
                report.skip(split, f"{path} {where}", "iscrowd=1 (crowd policy: skip)")
            continue
        x, y, bw, bh = bbox
        w, h = sizes[ann["image_id"]]
        if normalised:
            x, y, bw, bh = x * w, y * h, bw * w, bh * h
        box, reason = box_from_pixels(class_of[ann["category_id"]], x, y, x + bw, y + bh, w, h)
        if box is None:
            code = "zero_area_box" if "zero" in reason else "bbox_outside_image"
            problems.add(code, path, f"{where} (image {images[ann['image_id']]['path'].name}): {reason}", _BOX_FIX)
            continue
        images[ann["image_id"]]["boxes"].append(box)
    if report is not None:
        counts = report.split(split)
        for v in images.values():
            counts.add_image(len(v["boxes"]))
        listed = {Path(os.path.abspath(v["path"])) for v in images.values()}
        for dirpath, _, files in os.walk(images_dir):
            for fn in sorted(files):
                p = Path(os.path.abspath(Path(dirpath) / fn))
                if p.suffix.lower() in IMAGE_SUFFIXES and p not in listed and split is None:
                    report.skip(split, p, f"image not listed in {path.name}")
    return [
        Record(v["path"], v["boxes"], split)
        for iid, v in sorted(images.items())
    ]


def import_coco(
    annotations_json: Path | None,
    images_dir: Path | None,
    dst: Path,
    *,
    split_ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_files: dict[str, tuple[Path, Path]] | None = None,
    overwrite: bool = False,
    coordinates: Coordinates = "auto",
    crowd: CrowdPolicy = "keep",
) -> Path:
    """Import COCO detection JSON into our layout at dst.

    Either one file (`annotations_json` + `images_dir`, split by `split_ratios`/`seed`) or
    `split_files` = {split: (json, images_dir)} for sources that are already split (then the
    first two arguments must be None); a missing val/test split is carved out of train. Images
    without annotations become empty label files. `coordinates="auto"` detects bboxes normalised
    to 0..1 (see `looks_normalised`); `crowd` keeps or skips iscrowd=1 annotations. Raises
    DataValidationError listing every problem with the file and annotation id.
    """
    check_split_ratios(split_ratios)
    if split_files:
        if annotations_json is not None or images_dir is not None:
            raise ConfigError("pass either annotations_json + images_dir or split_files, not both")
        unknown = set(split_files) - set(SPLITS)
        if unknown or "train" not in split_files:
            raise ConfigError(f"split_files keys must include 'train' and be among {SPLITS}; got {sorted(split_files)}")
        sources: dict[str | None, tuple[Path, Path]] = {
            s: (Path(j), Path(d)) for s, (j, d) in split_files.items()
        }
    else:
        if annotations_json is None or images_dir is None:
            raise ConfigError("import_coco needs annotations_json and images_dir (or split_files)")
        sources = {None: (Path(annotations_json), Path(images_dir))}
    first_json = next(iter(sources.values()))[0]
    dst = check_destination(dst, [p for pair in sources.values() for p in pair], overwrite)
    problems = Problems(first_json)
    docs = {split: (json_path, d, load_json(json_path, problems)) for split, (json_path, d) in sources.items()}
    problems.raise_if_any("COCO annotations")
    cat_maps = {split: category_map(doc, j, problems) for split, (j, _, doc) in docs.items()}
    reference_split, reference = next(iter(cat_maps.items()))
    for split, cats in cat_maps.items():
        if cats != reference:
            problems.add(
                "category_mismatch", docs[split][0],
                f"categories differ from those of {docs[reference_split][0]} ({cats} vs {reference})",
                "use the same 'categories' list in every split's file",
            )
    if not reference:
        problems.add("no_categories", first_json, "'categories' is empty", "list the object categories")
    problems.raise_if_any("COCO annotations")
    class_of = {cid: i for i, cid in enumerate(sorted(reference))}
    names = [reference[cid] for cid in sorted(reference)]
    report = ImportReport(format="coco", source=str(first_json))
    records: list[Record] = []
    for split, (json_path, img_dir, doc) in docs.items():
        normalised = coordinates == "normalized" or (coordinates == "auto" and looks_normalised(doc))
        if normalised:
            report.notes.append(
                f"{json_path.name}: bboxes are normalised to 0..1 (as Azure ML Data Labeling exports them); "
                "converted to pixels with each image's size read from the file"
            )
        records += _records(doc, json_path, Path(img_dir), class_of, split, problems, normalised=normalised,
                            crowd=crowd, report=report)
    crowds = sum(
        1 for _, _, doc in docs.values() for a in doc["annotations"] if isinstance(a, dict) and a.get("iscrowd")
    )
    if crowds:
        report.notes.append(f"{crowds} iscrowd=1 annotation(s): {'kept as boxes' if crowd == 'keep' else 'skipped'}")
    if len(class_of) and sorted(class_of) != list(range(1, len(class_of) + 1)):
        report.notes.append(f"category ids {sorted(class_of)} mapped to classes 0..{len(class_of) - 1} in id order")
    problems.raise_if_any("COCO annotations")
    records = assign_splits(records, split_ratios, seed, report)
    source = {
        "format": "coco",
        "path": str(first_json),
        "files": {str(s or "all"): str(j) for s, (j, _, _) in docs.items()},
        "seed": seed,
        "split_ratios": list(split_ratios),
    }
    return write_dataset(records, names, dst, source=source, overwrite=overwrite, report=report)


def coco_document(root: Path, names: list[str], items: list[ExportItem], split: str) -> dict[str, Any]:
    """The COCO dict of one split: file_name relative to the data set root, category id = class + 1."""
    images, annotations = [], []
    for image_id, item in enumerate((it for it in items if it.split == split), start=1):
        images.append({"id": image_id, "file_name": relpath(root, item.image), "width": item.width,
                       "height": item.height})
        for box in item.boxes:
            x0, y0, x1, y1 = box_to_pixels(box, item.width, item.height)
            w, h = x1 - x0, y1 - y0
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": box.cls + 1,
                "bbox": [round(x0, 3), round(y0, 3), round(w, 3), round(h, 3)],
                "area": round(w * h, 3),
                "iscrowd": 0,
                "segmentation": [],
            })
    return {
        "info": {"description": f"{root.name} ({split} split), exported by visionops"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(names)],
    }


def export_coco(root: Path, out_dir: Path) -> dict[str, Path]:
    """Write `instances_<split>.json` per split into out_dir; returns {split: path}.

    Import them back with `import_coco(None, None, dst, split_files={s: (path, root)})`.
    """
    root, names, items = read_for_export(root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for split in SPLITS:
        path = out_dir / f"instances_{split}.json"
        path.write_text(json.dumps(coco_document(root, names, items, split)), encoding="utf-8")
        out[split] = path
    return out

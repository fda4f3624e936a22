"""Pascal VOC XML <-> our layout.

VOC boxes are integer pixel corners, 1-based and inclusive: `xmin=1` is the first pixel column
and `xmax=W` the last. With continuous 0-based corners x0..x1 (what YOLO boxes denote) that is
`xmin = round(x0) + 1`, `xmax = round(x1)`, and back `x0 = xmin - 1`, `x1 = xmax`; both
directions use this one rule, so a round trip moves a corner by at most half a pixel. Files
written by 0-based tools (`xmin=0`) import fine: the overshoot of one pixel is clipped.

YOLO labels have no field for `difficult` or `truncated`. Difficult objects are imported as
ordinary boxes by default (`difficult="keep"`, as detectron2 does); `difficult="skip"` leaves
them out (as Ultralytics' VOC script does). The import report counts them either way. A missing
or zero <size> is read from the image file; <filename> that does not match the file on disk
falls back to the annotation's stem.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

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
    iter_lines,
    read_for_export,
    write_dataset,
)
from visionops.data.formats.report import ImportReport
from visionops.data.layout import IMAGE_SUFFIXES, SPLITS, Box
from visionops.errors import VisionOpsError

_OBJ_FIX = "give every <object> a <name> and a <bndbox> with numeric xmin, ymin, xmax, ymax"
DifficultPolicy = Literal["keep", "skip"]


# --- pure helpers --------------------------------------------------------------------------------
def voc_corners(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """1-based inclusive integer corners of a normalised box (at least one pixel wide and high)."""
    x0, y0, x1, y1 = box_to_pixels(box, width, height)
    xmin, ymin = int(round(x0)) + 1, int(round(y0)) + 1
    xmax, ymax = max(int(round(x1)), xmin), max(int(round(y1)), ymin)
    return xmin, ymin, xmax, ymax


def voc_xml(filename: str, width: int, height: int, depth: int, objects: list[tuple[str, Box]]) -> ET.Element:
    """The <annotation> element of one image."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "JPEGImages"
    ET.SubElement(ann, "filename").text = filename
    size = ET.SubElement(ann, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(ann, "segmented").text = "0"
    for name, box in objects:
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), voc_corners(box, width, height), strict=True):
            ET.SubElement(bnd, tag).text = str(value)
    ET.indent(ann)
    return ann


# --- import --------------------------------------------------------------------------------------
def _parse_xml(path: Path, problems: Problems) -> ET.Element | None:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        problems.add("bad_xml", path, f"is not valid XML ({exc})", "fix the XML syntax", exc.position[0])
    except OSError as exc:
        problems.add("unreadable_xml", path, f"cannot be read ({exc})", "check the file")
    return None


def _objects(root: ET.Element, path: Path, problems: Problems) -> list[tuple[str, tuple[float, ...], bool]]:
    """(name, (xmin, ymin, xmax, ymax), difficult) of each <object>, as written in the file."""
    out = []
    for i, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        if not name or bnd is None:
            problems.add("bad_object", path, f"object #{i} ({name or 'no name'}): no <name> or no <bndbox>", _OBJ_FIX)
            continue
        raw = [bnd.findtext(tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        try:
            coords = tuple(float(v) for v in raw)
        except (TypeError, ValueError):
            problems.add("bad_object", path, f"object #{i} ({name}): xmin, ymin, xmax, ymax {raw} are not all numbers",
                         _OBJ_FIX)
            continue
        out.append((name, coords, (obj.findtext("difficult") or "0").strip() not in ("0", "", "false")))
    return out


def _declared_size(root: ET.Element) -> tuple[int, int] | None:
    """<size> width/height, or None when absent or zero (some tools write 0: nothing to check)."""
    try:
        w, h = (int(float(root.findtext(f"size/{tag}") or 0)) for tag in ("width", "height"))
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None


def _image_beside(folder: Path, stem: str, filename: str | None) -> Path | None:
    """The image of an annotation: its <filename> in folder, else any supported image with its stem."""
    if filename and (folder / Path(filename).name).is_file():
        return folder / Path(filename).name
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _pairs(src: Path, problems: Problems) -> list[tuple[Path, Path, str | None]]:
    """(xml, image folder, split) per annotation: VOC tree (with or without ImageSets) or flat folder."""
    if (src / "Annotations").is_dir():
        ann_dir, img_dir = src / "Annotations", src / "JPEGImages"
        if not img_dir.is_dir():
            raise VisionOpsError(f"{src} has Annotations/ but no JPEGImages/; put the images in {img_dir}")
        sets = src / "ImageSets" / "Main"
        listed = {s: sets / f"{s}.txt" for s in SPLITS if (sets / f"{s}.txt").is_file()}
        if listed:
            pairs, seen = [], {}
            for split, list_file in listed.items():
                for no, line in iter_lines(list_file):
                    stem = line.split()[0]
                    xml = ann_dir / f"{stem}.xml"
                    if stem in seen:
                        problems.add("duplicate_image", list_file, f"{stem} is also listed in {seen[stem]}.txt",
                                     "keep each image in one split only", no)
                    elif not xml.is_file():
                        problems.add("missing_annotation", list_file, f"lists {stem} but {xml} does not exist",
                                     "add the annotation or remove the line", no)
                    else:
                        pairs.append((xml, img_dir, split))
                    seen.setdefault(stem, split)
            return pairs
        pairs = [(xml, img_dir, None) for xml in sorted(ann_dir.glob("*.xml"))]
        annotated = {x.stem for x, _, _ in pairs}
        for img in sorted(img_dir.iterdir()):
            if img.suffix.lower() in IMAGE_SUFFIXES and img.stem not in annotated:
                problems.add("missing_annotation", img, f"no annotation {ann_dir / (img.stem + '.xml')}",
                             "add the XML (with no <object> for an image without objects) or remove the image")
        return pairs
    pairs = [(xml, src, None) for xml in sorted(src.glob("*.xml"))]
    annotated = {x.stem for x, _, _ in pairs}
    for img in sorted(src.iterdir()):
        if img.is_file() and img.suffix.lower() in IMAGE_SUFFIXES and img.stem not in annotated:
            problems.add("missing_annotation", img, f"no annotation {src / (img.stem + '.xml')}",
                         "add the XML (with no <object> for an image without objects) or remove the image")
    return pairs


def import_voc(
    src: Path,
    dst: Path,
    *,
    classes: list[str] | None = None,
    split_ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    overwrite: bool = False,
    difficult: DifficultPolicy = "keep",
) -> Path:
    """Import Pascal VOC XML into our layout at dst.

    `src` holds JPEGImages/ + Annotations/ (+ optional ImageSets/Main/{train,val,test}.txt, which
    then decide the splits and which images are imported) or is a flat folder of images with
    same-stem .xml files. `classes` fixes the class order (and rejects other names); by default
    the sorted unique object names. `difficult` keeps or skips objects marked difficult.
    Raises DataValidationError listing every problem.
    """
    check_split_ratios(split_ratios)
    src = Path(src).resolve()
    if not src.is_dir():
        raise VisionOpsError(f"{src} is not a folder; pass a VOC folder (JPEGImages/ + Annotations/) or a flat folder")
    dst = check_destination(dst, [src], overwrite)
    problems = Problems(src)
    parsed: list[tuple[Path, Path, str | None, list[tuple[str, tuple[float, ...], bool]]]] = []
    report = ImportReport(format="voc", source=str(src))
    for xml, img_dir, split in _pairs(src, problems):
        root = _parse_xml(xml, problems)
        if root is None:
            continue
        image = _image_beside(img_dir, xml.stem, root.findtext("filename"))
        if image is None:
            problems.add("missing_image", xml, f"image {root.findtext('filename') or xml.stem + '.*'} "
                         f"not found in {img_dir}", "put the image there or remove the annotation")
            continue
        if reason := image_problem(image):
            problems.add("corrupt_image", image, reason, "replace the file with a readable JPEG/PNG or remove it")
            continue
        w, h = image_size(image)
        declared = _declared_size(root)
        if declared is not None and declared != (w, h):
            problems.add("size_mismatch", xml, f"<size> says {declared[0]}x{declared[1]} but {image.name} is {w}x{h}",
                         "fix <size> (boxes must be in the image file's pixel coordinates)")
            continue
        parsed.append((xml, image, split, _objects(root, xml, problems)))
    found_names = sorted({name for *_, objs in parsed for name, _, _ in objs})
    names = list(classes) if classes else found_names
    if not names:
        problems.add("no_classes", src, "no objects found and no classes given", "pass classes=[...]")
    class_of = {n: i for i, n in enumerate(names)}
    records: list[Record] = []
    for xml, image, split, objs in parsed:
        w, h = image_size(image)
        boxes = []
        for i, (name, (xmin, ymin, xmax, ymax), hard) in enumerate(objs, start=1):
            if hard and difficult == "skip":
                report.skip(split, f"{xml} object #{i}", "difficult=1 (difficult policy: skip)")
                continue
            if name not in class_of:
                problems.add("unknown_class", xml, f"object #{i}: class {name!r} is not in classes {names}",
                             "add it to classes=[...] or fix the <name>")
                continue
            box, reason = box_from_pixels(class_of[name], xmin - 1, ymin - 1, xmax, ymax, w, h)
            if box is None:
                code = "zero_area_box" if "zero" in reason else "bbox_outside_image"
                problems.add(code, xml, f"object #{i} ({name}): {reason} (VOC corners are 1-based)",
                             "fix the <bndbox> or delete the object")
                continue
            boxes.append(box)
        report.split(split).add_image(len(boxes))
        records.append(Record(image, boxes, split))
    hard_total = sum(hard for *_, objs in parsed for _, _, hard in objs)
    if hard_total:
        report.notes.append(f"{hard_total} difficult object(s): {'kept' if difficult == 'keep' else 'skipped'}")
    if not records and not problems:
        problems.add("empty_dataset", src, "no annotated images found", "check the folder layout")
    problems.raise_if_any("Pascal VOC annotations")
    records = assign_splits(records, split_ratios, seed, report)
    source = {"format": "voc", "path": str(src), "seed": seed, "split_ratios": list(split_ratios)}
    return write_dataset(records, names, dst, source=source, overwrite=overwrite, report=report)


# --- export --------------------------------------------------------------------------------------
def _voc_ids(items: list[ExportItem]) -> list[str]:
    """One id per image, unique across splits (VOC keeps every split in one folder):
    the stem, or `<split>_<stem>` where two splits share a stem."""
    stems = [it.image.stem for it in items]
    return [
        f"{it.split}_{it.image.stem}" if stems.count(it.image.stem) > 1 else it.image.stem for it in items
    ]


def export_voc(root: Path, out_dir: Path) -> Path:
    """Write JPEGImages/, Annotations/ and ImageSets/Main/<split>.txt into out_dir; returns out_dir.

    Image files keep their format (a .png stays .png; <filename> names it). Import it back with
    `import_voc(out_dir, dst, classes=<data.yaml names>)` to keep the class order.
    """
    from PIL import Image

    root, names, items = read_for_export(root)
    out_dir = Path(out_dir)
    img_dir, ann_dir, sets = out_dir / "JPEGImages", out_dir / "Annotations", out_dir / "ImageSets" / "Main"
    for d in (img_dir, ann_dir, sets):
        d.mkdir(parents=True, exist_ok=True)
    per_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for item, vid in zip(items, _voc_ids(items), strict=True):
        filename = f"{vid}{item.image.suffix}"
        shutil.copyfile(item.image, img_dir / filename)
        with Image.open(item.image) as im:
            depth = len(im.getbands())
        xml = voc_xml(filename, item.width, item.height, depth, [(names[b.cls], b) for b in item.boxes])
        ET.ElementTree(xml).write(ann_dir / f"{vid}.xml", encoding="utf-8", xml_declaration=False)
        per_split[item.split].append(vid)
    for split, ids in per_split.items():
        (sets / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return out_dir

"""What every importer and exporter shares: problem collection, split assignment, pixel/normalised
box conversion and the one writer of our on-disk layout.

Importers turn their source into `Record`s (source image, boxes, split or None) while collecting
every problem they find, then hand the records to `write_dataset`, which builds the data set in a
staging folder, validates it with `visionops.data.validation` and only then moves it into place,
so a failed import never leaves half a data set behind and never touches the source.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from visionops.data.formats.report import Carve, ImportedSplit, ImportReport
from visionops.data.layout import (
    DATA_YAML,
    IMAGE_SUFFIXES,
    MANIFEST,
    SPLITS,
    Box,
    image_dir,
    iter_items,
    label_dir,
    read_class_names,
    read_labels,
    write_data_yaml,
    write_labels,
)
from visionops.data.manifest import build_manifest, write_manifest
from visionops.data.validation import Problem, ValidationReport, _check_image, validate
from visionops.errors import DataValidationError, VisionOpsError

PIXEL_TOLERANCE = 1.0  # a box may overshoot the image by this many pixels and is clipped (rounding, VOC 0/1-based)
_SUMMARY_LIMIT = 20
# Formats Ultralytics reads but our layout does not list: reported instead of silently skipped.
UNSUPPORTED_IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".dng", ".mpo", ".heic", ".pfm", ".gif")


@dataclass
class Record:
    """One source image with its boxes; `split` None means 'assign me from split_ratios'."""

    image: Path
    boxes: list[Box]
    split: str | None = None


@dataclass
class Problems:
    """Collects every problem of an import so one error lists them all (as validate() does)."""

    source: Path
    items: list[Problem] = field(default_factory=list)

    def add(self, code: str, path: Path | str, message: str, fix: str, line: int | None = None) -> None:
        self.items.append(Problem(code, str(path), message, fix, line))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        report = ValidationReport(Path(self.source), list(self.items))
        lines = [f"cannot import {what} from {self.source}: {len(self.items)} problem(s); nothing was written"]
        lines += [f"  - {p}" for p in self.items[:_SUMMARY_LIMIT]]
        if len(self.items) > _SUMMARY_LIMIT:
            lines.append(f"  ... and {len(self.items) - _SUMMARY_LIMIT} more (see the error's .report)")
        raise DataValidationError("\n".join(lines), report=report)


# --- split ratios -------------------------------------------------------------------------------
def check_split_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Three positive shares (train, val, test), normalised to sum to 1."""
    values = tuple(float(r) for r in ratios)
    if len(values) != 3 or any(r <= 0 for r in values):
        raise VisionOpsError(
            f"split_ratios {tuple(ratios)!r} must be three positive numbers (train, val, test), e.g. (0.7, 0.15, 0.15)"
        )
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def assign_splits(
    records: list[Record], ratios: Sequence[float], seed: int, report: ImportReport | None = None
) -> list[Record]:
    """Give every record a split so that train, val and test are all present.

    Records without a split count as train. Each missing split is carved out of train
    deterministically (sorted by source path, shuffled by `seed`) with its share of
    train + the missing splits; splits the source already has are left alone. Each carve is
    recorded in `report` (how many, out of how many, from where, which seed).
    """
    r = dict(zip(SPLITS, check_split_ratios(ratios), strict=True))
    present = {rec.split for rec in records if rec.split is not None}
    missing = [s for s in ("val", "test") if s not in present]
    pool = sorted((rec for rec in records if rec.split in (None, "train")), key=lambda x: x.image.as_posix())
    fixed = [rec for rec in records if rec.split not in (None, "train")]
    random.Random(seed).shuffle(pool)
    share = r["train"] + sum(r[s] for s in missing)
    carved: dict[str, int] = {s: max(1, round(len(pool) * r[s] / share)) for s in missing}
    if len(pool) - sum(carved.values()) < 1:
        need = 1 + len(missing)
        raise VisionOpsError(
            f"only {len(pool)} training image(s): cannot carve {', '.join(missing)} out of them "
            f"(need at least {need}); add images or provide the missing split(s) explicitly"
        )
    out: list[Record] = list(fixed)
    start = 0
    if report is not None:
        unsplit = any(rec.split is None for rec in pool)
        from_split = "train" if not unsplit else ("the unsplit images" if all(
            rec.split is None for rec in pool) else "train and the unsplit images")
        report.carved += [Carve(split=s, images=carved[s], out_of=len(pool), from_split=from_split, seed=seed)
                          for s in missing]
    for s in missing:
        for rec in pool[start : start + carved[s]]:
            out.append(Record(rec.image, rec.boxes, s))
        start += carved[s]
    out += [Record(rec.image, rec.boxes, "train") for rec in pool[start:]]
    return out


# --- images and boxes ---------------------------------------------------------------------------
def image_problem(path: Path) -> str | None:
    """Why the image cannot be used (missing, unsupported, does not decode), or None."""
    if not path.is_file():
        return "file does not exist"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"suffix {path.suffix!r} is not one of {', '.join(IMAGE_SUFFIXES)}"
    return _check_image(path)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; no full decode."""
    with Image.open(path) as im:
        return im.size


def box_from_pixels(
    cls: int, x0: float, y0: float, x1: float, y1: float, width: int, height: int
) -> tuple[Box | None, str | None]:
    """Normalised box from pixel corners, clipped when it overshoots by at most PIXEL_TOLERANCE.

    Returns (box, None) or (None, reason) so callers can collect the reason with file and line.
    """
    if not x1 > x0 or not y1 > y0:
        return None, f"box has zero or negative size ({x0:g},{y0:g} to {x1:g},{y1:g} px)"
    tol = PIXEL_TOLERANCE
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        return None, (
            f"box {x0:g},{y0:g} to {x1:g},{y1:g} px reaches outside the {width}x{height} image "
            f"(by more than {tol:g} px)"
        )
    cx0, cy0 = max(0.0, x0), max(0.0, y0)
    cx1, cy1 = min(float(width), x1), min(float(height), y1)
    if not cx1 > cx0 or not cy1 > cy0:
        return None, f"box {x0:g},{y0:g} to {x1:g},{y1:g} px lies outside the {width}x{height} image"
    return Box.from_corners(cls, cx0 / width, cy0 / height, cx1 / width, cy1 / height), None


def box_to_pixels(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixel corners (x0, y0, x1, y1), continuous 0-based coordinates, clipped to the image."""
    x0, y0, x1, y1 = box.corners()
    return (
        min(max(x0, 0.0), 1.0) * width,
        min(max(y0, 0.0), 1.0) * height,
        min(max(x1, 0.0), 1.0) * width,
        min(max(y1, 0.0), 1.0) * height,
    )


def relpath(root: Path, path: Path) -> str:
    """Posix path relative to the data set root: what exports write into their files."""
    return Path(path).relative_to(root).as_posix()


# --- reading a data set for export --------------------------------------------------------------
@dataclass(frozen=True)
class ExportItem:
    split: str
    image: Path
    width: int
    height: int
    boxes: list[Box]


def read_for_export(root: Path) -> tuple[Path, list[str], list[ExportItem]]:
    """Validate the data set (exports of broken data are worse than no export), then list it."""
    root = Path(root).resolve()
    validate(root).raise_if_failed()
    names = read_class_names(root)
    items = []
    for item in iter_items(root):
        w, h = image_size(item.image)
        items.append(ExportItem(item.split, item.image, w, h, read_labels(item.label)))
    return root, names, items


def image_format(path: Path) -> str:
    """Format name as exports write it: 'jpg' for .jpg/.jpeg, else the suffix."""
    suffix = path.suffix.lower().lstrip(".")
    return "jpg" if suffix == "jpeg" else suffix


# --- writing our layout -------------------------------------------------------------------------
def check_destination(dst: Path, sources: Sequence[Path], overwrite: bool) -> Path:
    """dst must not overlap a source (we never write into the source) nor hold a data set already."""
    dst = Path(dst).resolve()
    for src in sources:
        src = Path(src).resolve()
        if dst == src or src in dst.parents or dst in src.parents:
            raise VisionOpsError(
                f"destination {dst} overlaps the source {src}; import into a separate folder "
                "(the source is never modified)"
            )
    if dst.exists() and not dst.is_dir():
        raise VisionOpsError(f"destination {dst} is a file; pass a folder for the imported data set")
    existing = [n for n in ("images", "labels", DATA_YAML) if (dst / n).exists()]
    if existing and not overwrite:
        raise VisionOpsError(
            f"destination {dst} already holds a data set ({', '.join(existing)}); "
            "choose an empty folder or pass overwrite=True to replace it"
        )
    return dst


def _unique_stems(records: list[Record]) -> list[str]:
    """A file stem per record, unique within its split (labels are matched to images by stem)."""
    used: dict[str, set[str]] = {s: set() for s in SPLITS}
    out = []
    for rec in records:
        taken = used[rec.split or "train"]
        stem = rec.image.stem
        if stem in taken:
            stem = f"{rec.image.parent.name}_{rec.image.stem}"
        base, n = stem, 1
        while stem in taken:
            n += 1
            stem = f"{base}_{n}"
        taken.add(stem)
        out.append(stem)
    return out


def _in_source_terms(problem: Problem, origin: dict[str, Path]) -> Problem:
    """A problem of the staged copy, re-worded with the source files the user can fix."""
    found = [rel for rel in origin if rel in problem.message]
    message = problem.message
    if found:  # one pass, so a replaced source path is never rewritten again
        pattern = "|".join(re.escape(rel) for rel in sorted(found, key=len, reverse=True))
        message = re.sub(pattern, lambda m: str(origin[m.group(0)]), message)
    path = str(origin.get(problem.path, problem.path))
    return Problem(problem.code, path, message, problem.fix, problem.line)


def write_dataset(
    records: list[Record],
    names: list[str],
    dst: Path,
    *,
    source: dict[str, Any],
    overwrite: bool = False,
    report: ImportReport | None = None,
) -> Path:
    """Copy images, write labels and data.yaml in a staging folder, validate, then move into dst.

    Two records whose images share a stem in one split get `<parent>_<stem>` (then `_2`, `_3`):
    labels are matched to images by stem, and sources such as COCO keep images in subfolders.
    With a `report`, the written label files are read back and must hold exactly the images and
    boxes the importer read (conservation check); the report goes into the manifest.
    """
    dst = Path(dst).resolve()
    records = sorted(records, key=lambda r: (SPLITS.index(r.split or "train"), r.image.as_posix()))
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}-import-", dir=dst.parent))
    try:
        for split in SPLITS:
            image_dir(staging, split).mkdir(parents=True, exist_ok=True)
            label_dir(staging, split).mkdir(parents=True, exist_ok=True)
        origin: dict[str, Path] = {}
        for rec, stem in zip(records, _unique_stems(records), strict=True):
            split = rec.split or "train"
            target = image_dir(staging, split) / f"{stem}{rec.image.suffix}"
            shutil.copyfile(rec.image, target)
            write_labels(label_dir(staging, split) / f"{stem}.txt", rec.boxes)
            origin[relpath(staging, target)] = rec.image
        write_data_yaml(staging, names)
        if report is not None:
            _conserve(staging, report)
            source = {**source, "report": report.model_dump()}
        checked = validate(staging)
        if not checked.ok:
            checked = ValidationReport(dst, [_in_source_terms(p, origin) for p in checked.problems])
            lines = [f"the data set imported from {source.get('path', '?')} fails validation; nothing was written"]
            lines += [f"  - {p}" for p in checked.problems[:_SUMMARY_LIMIT]]
            raise DataValidationError("\n".join(lines), report=checked)
        write_manifest(staging, build_manifest(staging, dst.name, source))
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("images", "labels", DATA_YAML, MANIFEST):
            target = dst / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            (staging / name).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dst


def _conserve(staging: Path, report: ImportReport) -> None:
    """Count what was written per split into `report.imported`; fail when it differs from what was read.

    Every annotation read is either written or listed as skipped with a reason, so a difference
    here means a bug lost data between reading and writing: refuse rather than register it.
    """
    report.imported = {}
    for item in iter_items(staging):
        counts = report.imported.setdefault(item.split, ImportedSplit())
        boxes = len(read_labels(item.label))
        counts.images += 1
        counts.boxes += boxes
        counts.background += boxes == 0
    written_boxes = sum(s.boxes for s in report.imported.values())
    written_images = sum(s.images for s in report.imported.values())
    if (written_images, written_boxes) != (report.images_read, report.boxes_read):
        raise DataValidationError(
            f"import of {report.source} would write {written_images} images with {written_boxes} boxes but read "
            f"{report.images_read} images with {report.boxes_read} boxes; nothing was written "
            "(this is a VisionOps bug: please report it with the source layout)"
        )


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-empty lines of a text file."""
    for no, raw in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        if raw.strip():
            yield no, raw.strip()

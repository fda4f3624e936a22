"""Importers of image-classification data into the folder-per-class layout.

Three sources, all ending in `write_classify_dataset`, which builds the data set in a staging
folder, carves missing splits (stratified by class), checks conservation, validates and only then
moves it into place (a failed import writes nothing; the source is only read):

- `import_folders`: a folder per class, with split folders (`train`, `val`/`valid`/`validation`,
  `test`) or without (then every split is carved out, stratified by class, seeded);
- `import_csv`: a CSV of `path,label` (header optional; an optional third column `split`),
  relative paths relative to the CSV;
- `import_jsonl`: Azure ML AutoML / Data Labeling multi-class JSONL (`image_url` + `"label": "cat"`)
  or an MLTable naming such files. Multi-label lines (`"label": ["cat", "dog"]`) are refused.

Every file read is either carried or listed as skipped with its reason in the import report
(kept in the manifest), never silently dropped. Broken inputs (an image that does not decode, a
nested folder inside a class folder, an empty class folder, a CSV row without a label) are errors
listing every problem with file and line: nested sub-folders are *not* flattened, because whether
`dogs/puppies/` means "dog" or a class of its own is the data owner's call.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionops.data.classify.layout import SPLIT_ALIASES, iter_samples
from visionops.data.classify.validation import validate_classify
from visionops.data.formats._common import (
    UNSUPPORTED_IMAGE_SUFFIXES,
    Problems,
    _in_source_terms,
    check_destination,
    check_split_ratios,
    image_problem,
    iter_lines,
)
from visionops.data.formats.automl import jsonl_files, resolve_image, split_of
from visionops.data.formats.report import Carve, ImportedSplit, ImportReport
from visionops.data.layout import DATA_YAML, IMAGE_SUFFIXES, MANIFEST, SPLITS
from visionops.data.manifest import build_manifest, write_manifest
from visionops.data.validation import ValidationReport
from visionops.errors import DataValidationError, VisionOpsError

DEFAULT_RATIOS: tuple[float, float, float] = (0.7, 0.15, 0.15)
PATH_HEADERS = frozenset({"path", "image", "image_path", "file", "filename", "file_name", "filepath", "image_url"})
LABEL_HEADERS = frozenset({"label", "class", "category", "class_name", "label_name"})
_SUMMARY_LIMIT = 20
_MULTI_LABEL_FIX = (
    "VisionOps trains multi-class classifiers (one label per image): export the project as multi-class, "
    "or make one data set per label"
)


@dataclass(frozen=True)
class ClassRecord:
    """One source image, its class and its split (None: assign it by carving)."""

    image: Path
    label: str
    split: str | None = None


# --- shared pieces -------------------------------------------------------------------------------
def _label_problem(label: str) -> str | None:
    """Why a label cannot be a class folder name, or None (unicode names are fine)."""
    if not label.strip():
        return "label is empty"
    if label != label.strip():
        return f"label {label!r} starts or ends with spaces"
    if "/" in label or "\\" in label or label in (".", "..") or label.startswith("."):
        return f"label {label!r} cannot be a folder name (no '/', '\\\\', or leading '.')"
    return None


def _take_image(path: Path, label: str, split: str | None, report: ImportReport, problems: Problems,
                records: list[ClassRecord], where: str) -> None:
    """Carry a readable image, skip (with the reason) a file that is not an image, or record a problem."""
    suffix = path.suffix.lower()
    if path.is_file() and suffix not in IMAGE_SUFFIXES:
        why = (f"{suffix} images are not read by Ultralytics' classifier here: convert to JPEG/PNG"
               if suffix in UNSUPPORTED_IMAGE_SUFFIXES else f"not an image file (suffix {suffix or '(none)'!r})")
        report.skip(split, path, why)
        return
    if reason := image_problem(path):
        problems.add("corrupt_image" if path.is_file() else "missing_image", path, f"{reason} ({where})",
                     "replace the file with a readable JPEG/PNG or remove it from the source")
        return
    report.split(split).add_labelled(label)
    records.append(ClassRecord(path, label, split))


def carve_stratified(records: list[ClassRecord], ratios: Sequence[float], seed: int,
                     report: ImportReport) -> list[ClassRecord]:
    """Give every record a split; missing val/test are carved out of train, class by class.

    Per class (sorted names), its train/unsplit images are sorted by path, shuffled with a
    `random.Random(seed)` shared in that order, and each missing split takes its share, at least
    one image when the class has enough images to leave one in train: a class with 3 images
    lands in train, val and test. Classes too small for that are noted in the report (validation
    then names them). Splits the source has are left alone.
    """
    r = dict(zip(SPLITS, check_split_ratios(ratios), strict=True))
    present = {rec.split for rec in records if rec.split is not None}
    missing = [s for s in ("val", "test") if s not in present]
    out = [rec for rec in records if rec.split not in (None, "train")]
    rng = random.Random(seed)
    taken = {s: 0 for s in missing}
    pool_size = 0
    share = r["train"] + sum(r[s] for s in missing)
    for label in sorted({rec.label for rec in records}):
        pool = sorted((rec for rec in records if rec.label == label and rec.split in (None, "train")),
                      key=lambda x: x.image.as_posix())
        rng.shuffle(pool)
        pool_size += len(pool)
        start = 0
        if missing and len(pool) < 1 + len(missing):
            report.notes.append(f"class '{label}' has {len(pool)} image(s) to split: too few to put it in train "
                                f"and in {' and '.join(missing)} (needs {1 + len(missing)})")
        else:
            for s in missing:
                n = max(1, round(len(pool) * r[s] / share))
                n = min(n, len(pool) - start - (len(missing) - missing.index(s)))  # leave one for train
                out += [ClassRecord(rec.image, rec.label, s) for rec in pool[start:start + n]]
                taken[s] += n
                start += n
        out += [ClassRecord(rec.image, rec.label, "train") for rec in pool[start:]]
    if missing:
        unsplit = any(rec.split is None for rec in records)
        from_split = "the unsplit images" if unsplit else "train"
        report.carved += [Carve(split=s, images=taken[s], out_of=pool_size, from_split=from_split, seed=seed)
                          for s in missing]
        report.notes.append("missing splits carved stratified by class (each class split by the same shares)")
    return out


def _file_names(records: list[ClassRecord]) -> list[str]:
    """A file name per record, unique within its split/class folder (`<parent>_<name>`, then `_2`)."""
    used: dict[tuple[str, str], set[str]] = {}
    out = []
    for rec in records:
        taken = used.setdefault((rec.split or "train", rec.label), set())
        name = rec.image.name
        if name in taken:
            name = f"{rec.image.parent.name}_{rec.image.name}"
        stem, suffix, n = Path(name).stem, rec.image.suffix, 1
        while name in taken:
            n += 1
            name = f"{stem}_{n}{suffix}"
        taken.add(name)
        out.append(name)
    return out


def _conserve(staging: Path, report: ImportReport) -> None:
    """Count what was written into `report.imported`; refuse when it differs from what was read."""
    report.imported = {}
    for s in iter_samples(staging):
        counts = report.imported.setdefault(s.split, ImportedSplit())
        counts.images += 1
        counts.per_class[s.label] = counts.per_class.get(s.label, 0) + 1
    read: dict[str, int] = {}
    for split in report.read.values():
        for label, n in split.per_class.items():
            read[label] = read.get(label, 0) + n
    written: dict[str, int] = {}
    for split in report.imported.values():
        for label, n in split.per_class.items():
            written[label] = written.get(label, 0) + n
    if read != written:
        raise DataValidationError(
            f"import of {report.source} would write {written} images per class but read {read}; nothing was "
            "written (this is a VisionOps bug: please report it with the source layout)"
        )


def _clear_destination(dst: Path) -> None:
    """Remove a previous data set of either task from dst (overwrite)."""
    for name in (*SPLITS, "images", "labels", DATA_YAML, MANIFEST):
        target = dst / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def write_classify_dataset(
    records: list[ClassRecord],
    dst: Path,
    *,
    source: dict[str, Any],
    report: ImportReport,
    split_ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Carve missing splits, copy into `<split>/<class>/` in staging, check, validate, move into dst."""
    dst = Path(dst).resolve()
    existing = [n for n in SPLITS if (dst / n).exists()]
    if existing and not overwrite:
        raise VisionOpsError(f"destination {dst} already holds a data set ({', '.join(existing)}); "
                             "choose an empty folder or pass overwrite=True to replace it")
    records = carve_stratified(records, split_ratios, seed, report)
    records.sort(key=lambda r: (SPLITS.index(r.split or "train"), r.label, r.image.as_posix()))
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}-import-", dir=dst.parent))
    try:
        origin: dict[str, Path] = {}
        for rec, name in zip(records, _file_names(records), strict=True):
            folder = staging / (rec.split or "train") / rec.label
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rec.image, folder / name)
            origin[f"{rec.split}/{rec.label}/{name}"] = rec.image
        for split in SPLITS:
            (staging / split).mkdir(exist_ok=True)
        _conserve(staging, report)
        source = {**source, "report": report.model_dump()}
        checked = validate_classify(staging)
        if not checked.ok:
            problems = [_in_source_terms(p, origin) for p in checked.problems]
            checked = ValidationReport(dst, problems, task="classify")
            lines = [f"the data set imported from {source.get('path', '?')} fails validation; nothing was written"]
            lines += [f"  - {p}" for p in problems[:_SUMMARY_LIMIT]]
            lines += [f"  note: {n}" for n in report.notes if "too few" in n]
            raise DataValidationError("\n".join(lines), report=checked)
        write_manifest(staging, build_manifest(staging, dst.name, source, task="classify"))
        dst.mkdir(parents=True, exist_ok=True)
        _clear_destination(dst)
        for name in (*SPLITS, MANIFEST):
            (staging / name).rename(dst / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dst


# --- a folder per class ----------------------------------------------------------------------------
def _read_class_folder(cdir: Path, split: str | None, report: ImportReport, problems: Problems,
                       records: list[ClassRecord]) -> None:
    label = cdir.name
    if reason := _label_problem(label):
        problems.add("bad_class_name", cdir, reason, "rename the folder")
        return
    before = len(records)
    entries = sorted(cdir.iterdir(), key=lambda p: p.name)
    for p in entries:
        if p.name.startswith("."):
            report.skip(split, p, "hidden file")
        elif p.is_dir():
            problems.add("nested_folder", p, f"sub-folder inside class folder '{label}' (not flattened: is it "
                         f"'{label}' or a class of its own?)",
                         f"move its images up into {cdir}, or make it a class folder of its own")
        else:
            _take_image(p, label, split, report, problems, records, f"class '{label}'")
    if len(records) == before and not any(p.is_dir() for p in entries):
        problems.add("empty_class", cdir, f"class folder '{label}' holds no image",
                     "add images of this class or delete the folder")


def split_folders(src: Path) -> dict[str, Path]:
    """{split: folder} of the split folders in `src` (train, val/valid/validation, test)."""
    found: dict[str, Path] = {}
    for p in sorted(Path(src).iterdir(), key=lambda q: q.name):
        split = SPLIT_ALIASES.get(p.name.lower()) if p.is_dir() else None
        if split is None:
            continue
        if split in found:
            raise VisionOpsError(f"{src} has two folders for split '{split}' ({found[split].name}/ and {p.name}/); "
                                 "merge them or remove one")
        found[split] = p
    return found


def import_folders(src: Path, dst: Path, *, split_ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0,
                   overwrite: bool = False) -> Path:
    """Import a folder per class (`<src>/<split>/<class>/*` or `<src>/<class>/*`) into dst."""
    src = Path(src).resolve()
    if not src.is_dir():
        raise VisionOpsError(f"{src} is not a folder; pass the folder holding one sub-folder per class")
    check_split_ratios(split_ratios)
    dst = check_destination(dst, [src], overwrite)
    report = ImportReport(format="folders", source=str(src), task="classify")
    problems = Problems(src)
    records: list[ClassRecord] = []
    splits = split_folders(src)
    if splits:
        report.detected = f"split folders {', '.join(p.name for p in splits.values())} with a folder per class"
        tops = {split: splits[split] for split in SPLITS if split in splits}
    else:
        report.detected = "a folder per class, no split folders (all splits carved)"
        tops = {None: src}  # type: ignore[dict-item]
    for p in sorted(src.iterdir(), key=lambda q: q.name):
        if p not in tops.values() and (splits or not p.is_dir()):
            what = "not a split folder (train, val/valid/validation, test)" if p.is_dir() else "not in a class folder"
            report.skip(None, p, what)
    for split, top in tops.items():
        for p in sorted(top.iterdir(), key=lambda q: q.name):
            if p.is_dir() and not p.name.startswith("."):
                _read_class_folder(p, split, report, problems, records)
            elif p.is_dir():
                report.skip(split, p, "hidden folder")
            elif top is not src:
                report.skip(split, p, "not in a class folder")
    if not records and not problems:
        problems.add("no_images", src, "no class folder with images found", "put each class's images in <class>/")
    problems.raise_if_any("a folder-per-class data set")
    source = {"format": "folders", "path": str(src), "seed": seed, "split_ratios": list(split_ratios)}
    return write_classify_dataset(records, dst, source=source, report=report, split_ratios=split_ratios, seed=seed,
                                  overwrite=overwrite)


# --- CSV of path,label ---------------------------------------------------------------------------
def _csv_columns(first: list[str]) -> tuple[dict[str, int], bool]:
    """({path, label[, split]} -> column index, has_header) from the first row."""
    lowered = [c.strip().lower() for c in first]
    if len(lowered) >= 2 and lowered[0] in PATH_HEADERS | {"path"} and any(c in LABEL_HEADERS for c in lowered):
        cols = {"path": 0, "label": next(i for i, c in enumerate(lowered) if c in LABEL_HEADERS)}
        if "split" in lowered:
            cols["split"] = lowered.index("split")
        return cols, True
    cols = {"path": 0, "label": 1}
    if len(first) >= 3:
        cols["split"] = 2
    return cols, False


def import_csv(csv_path: Path, dst: Path, *, split_ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0,
               overwrite: bool = False) -> Path:
    """Import a CSV of `path,label` (header optional; optional `split` column) into dst."""
    csv_path = Path(csv_path).resolve()
    if not csv_path.is_file():
        raise VisionOpsError(f"{csv_path} does not exist; pass the CSV file of path,label rows")
    check_split_ratios(split_ratios)
    dst = check_destination(dst, [csv_path.parent], overwrite)
    report = ImportReport(format="csv", source=str(csv_path), task="classify")
    problems = Problems(csv_path)
    records: list[ClassRecord] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [(no, row) for no, row in enumerate(csv.reader(fh), start=1) if any(c.strip() for c in row)]
    if not rows:
        raise VisionOpsError(f"{csv_path} has no rows; write one 'path,label' row per image")
    cols, header = _csv_columns(rows[0][1])
    report.detected = f"CSV with columns {', '.join(cols)}" + (" (header row)" if header else " (no header)")
    seen: dict[Path, int] = {}
    for no, row in rows[1:] if header else rows:
        if len(row) <= max(cols.values()):
            problems.add("bad_row", csv_path, f"row has {len(row)} column(s): {row!r}",
                         f"write {','.join(cols)} on every row", no)
            continue
        raw_path, label = row[cols["path"]].strip(), row[cols["label"]].strip()
        split = None
        if "split" in cols and row[cols["split"]].strip():
            split = SPLIT_ALIASES.get(row[cols["split"]].strip().lower())
            if split is None:
                problems.add("bad_split", csv_path, f"split {row[cols['split']]!r} is not train, val or test",
                             "use train, val (valid, validation) or test, or leave it empty to carve", no)
                continue
        if reason := _label_problem(label):
            problems.add("bad_label", csv_path, f"{reason} for {raw_path!r}", "give every image one class name", no)
            continue
        path = Path(raw_path).expanduser()
        path = (path if path.is_absolute() else csv_path.parent / path).resolve()
        if path in seen:
            problems.add("duplicate_image", csv_path, f"{raw_path!r} is already listed on line {seen[path]}",
                         "keep one row per image (one label each)", no)
            continue
        seen[path] = no
        if not path.is_file():
            problems.add("missing_image", csv_path, f"image {raw_path!r} does not exist ({path})",
                         "fix the path (relative paths are relative to the CSV's folder) or remove the row", no)
            continue
        _take_image(path, label, split, report, problems, records, f"{csv_path.name} line {no}")
    problems.raise_if_any("a path,label CSV")
    source = {"format": "csv", "path": str(csv_path), "seed": seed, "split_ratios": list(split_ratios)}
    return write_classify_dataset(records, dst, source=source, report=report, split_ratios=split_ratios, seed=seed,
                                  overwrite=overwrite)


# --- AutoML / Data Labeling multi-class JSONL ------------------------------------------------------
def jsonl_label_kind(value: Any) -> str:
    """'multi-class' (a string), 'multi-label' (a list of strings), 'detection' (a list of boxes), or
    'unknown': how `--format auto` and the importer tell AutoML classification from detection."""
    if isinstance(value, str):
        return "multi-class"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "multi-label"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "detection"
    return "unknown"


def _jsonl_files(source: Path) -> list[Path]:
    """A JSONL file, the files an MLTable names, or every *.jsonl of a folder without an MLTable."""
    if source.is_dir() and not (source / "MLTable").is_file():
        return sorted(source.glob("*.jsonl"))
    return jsonl_files(source)


def import_jsonl(jsonl: Path | list[Path], images_root: Path, dst: Path, *, image_url_prefix: str | None = None,
                 split_ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0, overwrite: bool = False) -> Path:
    """Import AutoML / Data Labeling multi-class classification JSONL file(s) (a file, a folder of
    them, or an MLTable) into dst.

    A file's split comes from its name (`train_`/`val_`/`validation_`/`test_...jsonl`); lines of
    other files are carved. Images are found under `images_root` (an `azureml://`,
    `AmlDatastore://` or `https://` URL maps to the longest tail of its path that exists there).
    """
    check_split_ratios(split_ratios)
    given = [jsonl] if isinstance(jsonl, str | Path) else jsonl
    files = [f.resolve() for p in given for f in _jsonl_files(Path(p))]
    if not files:
        raise VisionOpsError(f"no JSONL file in {', '.join(str(p) for p in given)}; pass the annotations file")
    images_root = Path(images_root).resolve()
    dst = check_destination(dst, [images_root, *(f.parent for f in files)], overwrite)
    report = ImportReport(format="jsonl", source=str(files[0]), task="classify",
                          detected="Azure ML AutoML / Data Labeling multi-class JSONL")
    problems = Problems(files[0])
    records: list[ClassRecord] = []
    seen: dict[Path, str] = {}
    schemes: set[str] = set()
    for path in files:
        if not path.is_file():
            problems.add("missing_file", path, "JSONL file does not exist", "pass the path of the annotations file")
            continue
        split = split_of(path)
        for no, text in iter_lines(path):
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.add("bad_json", path, f"line is not valid JSON ({exc.msg})", "write one JSON object per line",
                             no)
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("image_url"), str):
                problems.add("bad_record", path, "line has no 'image_url' string",
                             "write {'image_url': ..., 'label': '<class>'}", no)
                continue
            url, label = rec["image_url"], rec.get("label")
            kind = jsonl_label_kind(label)
            if kind == "multi-label":
                problems.add("multi_label", path, f"label {label!r} is a list: multi-label classification is not "
                             "supported", _MULTI_LABEL_FIX, no)
                continue
            if kind == "detection":
                problems.add("detection_jsonl", path, "label is a list of boxes: this is an object-detection JSONL",
                             "import it with --format automl (detection)", no)
                continue
            if kind != "multi-class" or (reason := _label_problem(label)):
                problems.add("bad_label", path, f"label {label!r}: " + (
                    "expected one class name" if kind != "multi-class" else str(reason)),
                    "write \"label\": \"<class>\" on every line", no)
                continue
            if "://" in url:
                schemes.add(url.split("://", 1)[0] + "://")
            image = resolve_image(url, images_root, image_url_prefix)
            if image is None:
                problems.add("missing_image", path, f"image {url!r} not found under {images_root}",
                             "pass the folder holding the downloaded images as --images", no)
                continue
            if image in seen:
                problems.add("duplicate_image", path, f"image {url!r} already appears at {seen[image]}",
                             "keep one line per image (one label each)", no)
                continue
            seen[image] = f"{path.name}:{no}"
            _take_image(image, label, split, report, problems, records, f"{path.name} line {no}")
    problems.raise_if_any("AutoML classification JSONL")
    if schemes:
        report.notes.append(f"image URLs ({', '.join(sorted(schemes))}) mapped to files under {images_root}")
    source = {"format": "jsonl", "path": str(files[0]), "files": [str(f) for f in files], "seed": seed,
              "split_ratios": list(split_ratios)}
    return write_classify_dataset(records, dst, source=source, report=report, split_ratios=split_ratios, seed=seed,
                                  overwrite=overwrite)

"""The import report: what each importer read from its source, what it wrote, and what it left out.

Imports used to lose labels silently (a symlinked `images/`, a missing `labels/`, normalised COCO
boxes), and nothing downstream could tell. The report makes every count visible per split, the
manifest keeps it (under `source.report`) so it travels into the catalog, and `write_dataset`
checks that what was written adds up to what was read (the conservation check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from visionops.data.layout import MANIFEST

UNSPLIT = "unsplit"  # records whose source has no split; they are divided by split_ratios/seed


class Skip(BaseModel):
    """A file or annotation the import did not carry, and why (policy, not an error)."""

    path: str
    reason: str


class SourceSplit(BaseModel):
    """Counts of one split as the source has it (before any carving)."""

    images: int = 0
    label_files: int = 0  # label files (or annotation entries) found for those images
    boxes: int = 0  # annotations read and carried
    background: int = 0  # images with no box (an empty label file, or none)
    without_label_file: int = 0  # images for which no label file exists at all
    skipped: list[Skip] = Field(default_factory=list)
    per_class: dict[str, int] = Field(default_factory=dict)  # classification: images read per class

    def add_image(self, boxes: int, has_label_file: bool = True) -> None:
        self.images += 1
        self.boxes += boxes
        self.background += boxes == 0
        self.label_files += has_label_file
        self.without_label_file += not has_label_file

    def add_labelled(self, label: str) -> None:
        """A classification image read with its class (its folder, CSV cell or JSONL label)."""
        self.images += 1
        self.label_files += 1
        self.per_class[label] = self.per_class.get(label, 0) + 1


class ImportedSplit(BaseModel):
    """Counts of one split as written into our layout."""

    images: int = 0
    boxes: int = 0
    background: int = 0
    per_class: dict[str, int] = Field(default_factory=dict)  # classification: images written per class


class Carve(BaseModel):
    """A split the source lacked, carved out of its training images."""

    split: str
    images: int
    out_of: int
    from_split: str
    seed: int


class ImportReport(BaseModel):
    """Per split: read from the source, written into the data set; plus carving and notes."""

    format: str
    source: str
    detected: str | None = None  # how `--format auto` (or the yolo reader) recognised the source
    read: dict[str, SourceSplit] = Field(default_factory=dict)
    imported: dict[str, ImportedSplit] = Field(default_factory=dict)
    carved: list[Carve] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    task: str = "detect"  # classification reports images per class instead of label files and boxes

    def split(self, name: str | None) -> SourceSplit:
        """The source counts of `name` (None: the source has no splits), created on first use."""
        return self.read.setdefault(name or UNSPLIT, SourceSplit())

    def skip(self, split: str | None, path: Path | str, reason: str) -> None:
        self.split(split).skipped.append(Skip(path=str(path), reason=reason))

    @property
    def boxes_read(self) -> int:
        return sum(s.boxes for s in self.read.values())

    @property
    def images_read(self) -> int:
        return sum(s.images for s in self.read.values())

    def render(self) -> str:
        """Plain-text report for the CLI and notebooks (one line per split, then notes)."""
        lines = [f"import report: {self.format} from {self.source}"]
        if self.detected:
            lines.append(f"  detected: {self.detected}")
        lines.append("  read from the source:")
        for name, s in self.read.items():
            if self.task == "classify":
                skipped = f"{len(s.skipped):>4} skipped"
                lines.append(f"    {name:<8} {s.images:>6} images  {skipped}  {_classes(s.per_class)}")
            else:
                lines.append(
                    f"    {name:<8} {s.images:>6} images  {s.label_files:>6} label files  {s.boxes:>7} boxes  "
                    f"{s.background:>5} background  {s.without_label_file:>5} without a label file  "
                    f"{len(s.skipped):>4} skipped"
                )
            reasons: dict[str, int] = {}
            for sk in s.skipped:
                reasons[sk.reason] = reasons.get(sk.reason, 0) + 1
            lines += [f"             skipped {n}: {reason}" for reason, n in sorted(reasons.items())]
        lines.append("  written:")
        for name, s in self.imported.items():
            if self.task == "classify":
                lines.append(f"    {name:<8} {s.images:>6} images  {_classes(s.per_class)}")
            else:
                lines.append(f"    {name:<8} {s.images:>6} images  {s.boxes:>7} boxes  {s.background:>5} background")
        for c in self.carved:
            lines.append(
                f"  carved {c.split}: {c.images} of {c.out_of} images taken from {c.from_split} (seed {c.seed})"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _classes(per_class: dict[str, int]) -> str:
    return "(" + ", ".join(f"{c} {n}" for c, n in per_class.items()) + ")" if per_class else ""


def report_from_source(source: dict[str, Any]) -> ImportReport | None:
    """The report stored in a manifest's `source` (None for generated or older data sets)."""
    raw = source.get("report")
    return ImportReport.model_validate(raw) if isinstance(raw, dict) else None


def read_import_report(root: Path) -> ImportReport | None:
    """The import report of a data set folder, from its manifest.json."""
    from visionops.data.manifest import read_manifest

    if not (Path(root) / MANIFEST).is_file():
        return None
    return report_from_source(read_manifest(root).source)

"""The one place where detection and classification data differ: a small interface per task.

The catalog, the manifest, validation, stats, plots and the CLI ask `data_kind(root)` (or
`kind_for(task)`) for the task's object and call it; none of them branch on the task. A task's
object says which files make up a data set, how to name its classes, hash and count it, validate
it, list its labelled images and generate its synthetic demo set.

`folder_task(root)` is the contract's rule: the manifest's task when there is a manifest; else
"classify" when `root/train` holds class sub-folders with images and there is no data.yaml;
else "detect".
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from visionops.data.layout import DATA_YAML, MANIFEST, SPLITS
from visionops.errors import ConfigError

if TYPE_CHECKING:
    from visionops.data.manifest import SplitCounts
    from visionops.data.validation import ValidationReport

TASKS: tuple[str, ...] = ("detect", "classify")


@dataclass(frozen=True)
class LabelledImage:
    """One image of a split and its label: a box file (detection) or a class name (classification)."""

    split: str
    image: Path
    label_file: Path | None = None
    label: str | None = None


class DetectData:
    """Detection: images/{split}, labels/{split} (YOLO boxes) and data.yaml with the class names."""

    task: ClassVar[str] = "detect"
    payload: ClassVar[tuple[str, ...]] = ("images", "labels", DATA_YAML)  # what registration copies
    has_boxes: ClassVar[bool] = True
    layout_format: ClassVar[str] = "yolo"  # the manifest's `format`

    def names(self, root: Path) -> list[str]:
        from visionops.data.layout import read_class_names

        return read_class_names(root)

    def content_hash(self, root: Path) -> str:
        from visionops.data.manifest import detect_content_hash

        return detect_content_hash(root)

    def count(self, root: Path) -> dict[str, SplitCounts]:
        from visionops.data.manifest import detect_count

        return detect_count(root)

    def validate(self, root: Path, splits: tuple[str, ...] = SPLITS) -> ValidationReport:
        from visionops.data.validation import validate_detect

        return validate_detect(root, splits)

    def samples(self, root: Path, splits: tuple[str, ...] = SPLITS) -> list[LabelledImage]:
        from visionops.data.layout import iter_items

        return [LabelledImage(i.split, i.image, label_file=i.label) for i in iter_items(Path(root), splits)]

    def generate(self, spec: Any, dst: Path) -> Path:
        from visionops.data.synthetic import generate

        return generate(spec, dst)

    def ultralytics_data(self, root: Path) -> Path:
        """What Ultralytics' `data=` takes: the data.yaml."""
        return Path(root) / DATA_YAML


class ClassifyData:
    """Classification: {train,val,test}/<class>/<image>; classes are the sorted folder names of train/."""

    task: ClassVar[str] = "classify"
    payload: ClassVar[tuple[str, ...]] = SPLITS
    has_boxes: ClassVar[bool] = False
    layout_format: ClassVar[str] = "folders"

    def names(self, root: Path) -> list[str]:
        from visionops.data.classify.layout import class_names

        return class_names(root)

    def content_hash(self, root: Path) -> str:
        from visionops.data.classify.layout import content_hash
        from visionops.data.manifest import VERSION_LENGTH

        return content_hash(root, VERSION_LENGTH)

    def count(self, root: Path) -> dict[str, SplitCounts]:
        """Per split: images, images per class (every class of train listed, zeros included), no boxes."""
        from visionops.data.classify.layout import iter_samples
        from visionops.data.manifest import SplitCounts

        names = self.names(root)
        out: dict[str, SplitCounts] = {}
        for split in SPLITS:
            per_class = Counter(s.label for s in iter_samples(Path(root), (split,)))
            extra = sorted(set(per_class) - set(names))
            out[split] = SplitCounts(
                images=sum(per_class.values()), boxes=0,
                per_class={n: per_class.get(n, 0) for n in [*names, *extra]},
            )
        return out

    def validate(self, root: Path, splits: tuple[str, ...] = SPLITS) -> ValidationReport:
        from visionops.data.classify.validation import validate_classify

        return validate_classify(root, splits)

    def samples(self, root: Path, splits: tuple[str, ...] = SPLITS) -> list[LabelledImage]:
        from visionops.data.classify.layout import iter_samples

        return [LabelledImage(s.split, s.image, label=s.label) for s in iter_samples(Path(root), splits)]

    def generate(self, spec: Any, dst: Path) -> Path:
        from visionops.data.classify.synthetic import generate

        return generate(spec, dst)

    def ultralytics_data(self, root: Path) -> Path:
        """What Ultralytics' `data=` takes for classification: the data set folder itself."""
        return Path(root)


DataKind = DetectData | ClassifyData
_KINDS: dict[str, DataKind] = {"detect": DetectData(), "classify": ClassifyData()}


def kind_for(task: str) -> DataKind:
    """The data interface of a task name; ConfigError naming the known tasks otherwise."""
    try:
        return _KINDS[task]
    except KeyError:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}") from None


def _manifest_task(root: Path) -> str | None:
    """The `task` a manifest.json records ("detect" for manifests written before the field existed)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a broken manifest is validation's to report; fall back to the layout
    task = doc.get("task", "detect") if isinstance(doc, dict) else None
    return task if task in _KINDS else None


def folder_task(root: Path) -> str:
    """"detect" or "classify" for a data set folder (see the module docstring for the rule)."""
    from visionops.data.classify.layout import looks_like_class_folders

    root = Path(root)
    if (task := _manifest_task(root)) is not None:
        return task
    if not (root / DATA_YAML).exists() and looks_like_class_folders(root / "train"):
        return "classify"
    return "detect"


def data_kind(root: Path) -> DataKind:
    """The data interface for the data set at `root`."""
    return kind_for(folder_task(root))


def spec_kind(spec: Any) -> DataKind:
    """The data interface whose generator takes this synthetic spec (each spec class names its task)."""
    return kind_for(getattr(type(spec), "task", "detect"))

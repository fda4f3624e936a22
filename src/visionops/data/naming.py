"""Data set names that follow the data: derived from the source's folder or file name.

Catalog names (and Azure ML data asset names) allow letters, digits, '-' and '_'; an import of
`~/exports/PCB Defects (v2)/data.yaml` becomes `pcb-defects-v2`, not the settings' default name,
so two imported data sets never overwrite each other's "current" version.
"""

from __future__ import annotations

import re
from pathlib import Path

# File stems that name the format, not the data: the folder names the data set instead.
GENERIC_STEMS = frozenset(
    {"data", "dataset", "annotations", "config", "labels", "instances", "export", "train", "obj", "classes",
     "mltable", "result", "results"}
)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def sanitize_name(raw: str) -> str:
    """Lower case, runs of other characters -> '-', no leading/trailing '-' or '_'; never empty."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-_").lower()
    return name or "dataset"


def derived_name(source: Path) -> str:
    """The folder's name, or the file's stem unless it is generic (data.yaml, obj.data, ...)."""
    p = Path(source).expanduser().absolute()
    stem = p.stem if p.is_file() else p.name
    if p.is_file() and (stem.lower() in GENERIC_STEMS or stem.lower().startswith(("instances_", "train_"))):
        stem = p.parent.name
    return sanitize_name(stem)

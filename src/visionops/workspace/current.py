"""Which data set is current in this workspace: the one an import or a registration last chose.

Every step that is not told which data set to use takes this one, so a team's own data, once
imported (notebook 01, `visionops data import|register`, `visionops run --source`), flows
through training, evaluation, registration, deployment and the pipeline without being named
again. The pointer is a small JSON file beside the local catalog; the azure backend versions and
uploads data sets from that catalog too, so one pointer serves both backends.

A workspace can hold a detection and a classification data set at once, so the file keeps one
current data set per task (`by_task`) beside the last one made current of any task; a
classification run never picks up the detection data set just because it was imported last.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CURRENT_JSON = "current.json"


def current_path(catalog_dir: Path) -> Path:
    return Path(catalog_dir) / CURRENT_JSON


def _read(catalog_dir: Path) -> dict[str, Any]:
    path = current_path(catalog_dir)
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return {}  # a hand-edited, broken pointer: as if none (the next import rewrites it)
    return doc if isinstance(doc, dict) else {}


def read_current(catalog_dir: Path, task: str | None = None) -> tuple[str, str] | None:
    """(name, version) of the current data set (of `task` when given), or None when nothing was
    made current yet. A pointer written before tasks existed is a detection data set's."""
    doc = _read(catalog_dir)
    entry: Any = doc if task is None else (doc.get("by_task") or {}).get(task)
    if entry is None and task is not None and doc.get("task", "detect") == task:
        entry = doc
    try:
        return str(entry["name"]), str(entry["version"])
    except (KeyError, TypeError):
        return None


def write_current(catalog_dir: Path, name: str, version: str, task: str = "detect") -> Path:
    """Make `name:version` current (for its task, and overall); the file is replaced atomically."""
    path = current_path(catalog_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = _read(catalog_dir)
    by_task = dict(doc.get("by_task") or {})
    if "by_task" not in doc and "name" in doc:  # an old single pointer: keep it as its task's
        by_task.setdefault(str(doc.get("task", "detect")), {"name": doc["name"], "version": doc["version"]})
    by_task[task] = {"name": name, "version": version}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"name": name, "version": version, "task": task, "by_task": by_task}, indent=2))
    tmp.replace(path)
    return path

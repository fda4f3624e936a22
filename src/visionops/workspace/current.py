"""Which data set is current in this workspace: the one an import or a registration last chose.

Every step that is not told which data set to use takes this one, so a team's own data, once
imported (notebook 01, `visionops data import|register`, `visionops run --source`), flows
through training, evaluation, registration, deployment and the pipeline without being named
again. The pointer is a small JSON file beside the local catalog; the azure backend versions and
uploads data sets from that catalog too, so one pointer serves both backends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CURRENT_JSON = "current.json"


def current_path(catalog_dir: Path) -> Path:
    return Path(catalog_dir) / CURRENT_JSON


def read_current(catalog_dir: Path) -> tuple[str, str] | None:
    """(name, version) of the current data set, or None when nothing was made current yet."""
    path = current_path(catalog_dir)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        return str(doc["name"]), str(doc["version"])
    except (ValueError, KeyError, TypeError):
        return None  # a hand-edited, broken pointer: as if none (the next import rewrites it)


def write_current(catalog_dir: Path, name: str, version: str) -> Path:
    """Make `name:version` current; the file is replaced atomically."""
    path = current_path(catalog_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"name": name, "version": version}, indent=2))
    tmp.replace(path)
    return path

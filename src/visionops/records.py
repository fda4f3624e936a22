"""What each notebook found, as a small JSON file: `outputs/notebooks/<notebook>.json`.

Tests assert on these values (papermill value tests), CI publishes them, and
`visionops demo-summary` prints them; so a notebook's result is checkable without parsing its
outputs. Every record names the data set the notebook worked on.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from visionops.settings import Settings

SUMMARIES_DIR = "notebooks"


def summaries_dir(settings: Settings) -> Path:
    return Path(settings.outputs_dir) / SUMMARIES_DIR


def record_summary(settings: Settings, name: str, data: dict[str, Any]) -> Path:
    """Write `outputs/notebooks/<name>.json`: what the notebook found, for tests and CI to assert on.

    Adds the notebook name and the time; values that are not JSON (paths, numpy numbers) are
    written as strings. The file is replaced atomically, so a reader never sees half of it."""
    folder = summaries_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"notebook": name, "recorded": datetime.now(UTC).isoformat(timespec="seconds"), **data}
    text = json.dumps(doc, indent=2, default=str)
    path = folder / f"{name}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def read_summary(settings: Settings, name: str) -> dict[str, Any] | None:
    path = summaries_dir(settings) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None

"""The local data set catalog: immutable, content-versioned copies under `data/catalog/`.

Registering copies the data set into `data/catalog/<name>/<version>/` so a version can never
change after a model was trained or scored on it (the frozen test split the champion/challenger
decision relies on). The index `data/catalog/catalog.json` lists name, version, path, counts
and created time. Azure ML data assets play the same role on the azure backend.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.data.kinds import data_kind, kind_for
from visionops.data.layout import DATA_YAML, MANIFEST
from visionops.data.manifest import build_manifest, read_manifest, write_manifest
from visionops.data.validation import ValidationReport
from visionops.errors import DatasetNotFoundError

INDEX = "catalog.json"


class DatasetRef(BaseModel):
    """A registered data set version, as every backend describes it."""

    name: str
    version: str
    path: str  # local folder, or an azureml:// URI on the azure backend
    created: str
    counts: dict[str, dict[str, int]]
    classes: list[str]
    backend: str = "local"
    task: str = "detect"  # "detect" | "classify" (visionops.data.kinds)

    @property
    def data_yaml(self) -> Path:
        return Path(self.path) / DATA_YAML

    @property
    def ultralytics_data(self) -> Path:
        """What Ultralytics' `data=` takes: data.yaml for detection, the folder for classification."""
        return kind_for(self.task).ultralytics_data(Path(self.path))

    @property
    def uri(self) -> str:
        return f"{self.backend}:{self.name}:{self.version}"


class LocalDatasetCatalog:
    """Register, look up and list data set versions on this machine."""

    def __init__(self, catalog_dir: Path):
        self.dir = Path(catalog_dir)

    # --- index -----------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.dir / INDEX

    def _read(self) -> list[dict[str, Any]]:
        if not self.index_path.is_file():
            return []
        return json.loads(self.index_path.read_text())

    def _write(self, entries: list[dict[str, Any]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=2))
        tmp.replace(self.index_path)  # atomic: a crash never leaves half an index

    # --- API -------------------------------------------------------------------------------
    def register(self, path: Path, name: str, source: dict[str, Any] | None = None) -> DatasetRef:
        """Validate, version by content and copy in; the same content returns the existing version.

        Raises DataValidationError (with the full report) and registers nothing when the data
        set has problems.
        """
        path = Path(path).resolve()
        kind = data_kind(path)
        report: ValidationReport = kind.validate(path)
        report.raise_if_failed()
        if source is None and (path / MANIFEST).is_file():  # keep where the working copy came from
            source = read_manifest(path).source
        self.dir.mkdir(parents=True, exist_ok=True)
        # Copy first, then hash the copy: the version always describes exactly the frozen files,
        # even if the source changes while we copy.
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.dir))
        try:
            for part in kind.payload:  # only what the task's layout is made of (no caches, no manifest)
                if (path / part).is_dir():
                    shutil.copytree(path / part, staging / part, ignore=shutil.ignore_patterns("*.cache"))
                else:
                    shutil.copy2(path / part, staging / part)
            manifest = build_manifest(staging, name, source, task=kind.task)
            target = self.dir / name / manifest.version
            for entry in self._read():
                if entry["name"] == name and entry["version"] == manifest.version and target.is_dir():
                    return DatasetRef(**entry)  # same content, same version: nothing new
            if not target.is_dir():
                write_manifest(staging, manifest)
                target.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(target)  # appears complete or not at all
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        ref = DatasetRef(
            name=name,
            version=manifest.version,
            path=str(target),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            counts={s: {"images": c.images, "boxes": c.boxes} for s, c in manifest.splits.items()},
            classes=manifest.classes,
            task=manifest.task,
        )
        entries = [e for e in self._read() if not (e["name"] == name and e["version"] == manifest.version)]
        entries.append(ref.model_dump())
        self._write(entries)
        return ref

    def list(self, name: str | None = None) -> list[DatasetRef]:
        """Versions in registration order (the index is append-only), so the last is the latest."""
        return [DatasetRef(**e) for e in self._read() if name is None or e["name"] == name]

    def get(self, name: str, version: str | None = None) -> DatasetRef:
        """A version, or the most recently registered one when version is None or 'latest'."""
        refs = self.list(name)
        if not refs:
            known = sorted({r.name for r in self.list()})
            raise DatasetNotFoundError(
                f"no data set named {name!r} in {self.index_path} (known: {known or 'none'}); "
                "register one with `visionops data register`"
            )
        if version in (None, "latest"):
            return refs[-1]
        for r in refs:
            if r.version == version:
                return r
        raise DatasetNotFoundError(
            f"data set {name!r} has no version {version!r} (versions: {[r.version for r in refs]})"
        )


def write_local_manifest(path: Path, name: str, source: dict[str, Any] | None = None) -> None:
    """Manifest for a working copy (before registration), e.g. right after generation."""
    write_manifest(path, build_manifest(path, name, source))

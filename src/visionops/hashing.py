"""Content hashes: the one way VisionOps turns files or values into a version.

Data set versions, pipeline versions, Azure ML environment versions, the runner's step requests
and registered class lists all hash with these functions, so "same content, same version" means
the same thing everywhere and on every machine (names are hashed as POSIX paths relative to a
base, never as absolute paths).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SHORT = 12  # hex digits of a version: plenty against accidental collisions, short enough to read


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks (data set images may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Hasher:
    """An incremental content hash: add names, files and values in a fixed order, read the version."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def text(self, value: str) -> Hasher:
        self._h.update(value.encode("utf-8"))
        return self

    def value(self, value: Any) -> Hasher:
        """A JSON-able value, keys sorted (so dict order never changes a version)."""
        return self.text(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))

    def file(self, path: Path, name: str | None = None) -> Hasher:
        """A file's name (as given, or its file name) and its bytes."""
        self.text(name if name is not None else Path(path).name)
        return self.text(file_digest(Path(path)))

    def files(self, paths: Iterable[Path], base: Path) -> Hasher:
        """Files named by their POSIX path relative to `base`, in sorted order."""
        for p in sorted(Path(p) for p in paths):
            self.file(p, p.relative_to(base).as_posix())
        return self

    def hexdigest(self, length: int | None = SHORT) -> str:
        full = self._h.hexdigest()
        return full if length is None else full[:length]


def value_digest(value: Any, length: int | None = SHORT) -> str:
    """The version of a JSON-able value (a step request, a class list)."""
    return Hasher().value(value).hexdigest(length)

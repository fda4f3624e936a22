"""A folder nobody can create, for the "collection never fails a request" tests."""

from __future__ import annotations

from pathlib import Path


def blocked_folder(base: Path) -> Path:
    """A folder path under `base` that cannot be created: under a 0o500 folder, or (for root, whom
    chmod does not stop) under a regular file."""
    ro = base / "read-only"
    ro.mkdir()
    ro.chmod(0o500)
    target = ro / "production"
    try:
        target.mkdir()
    except PermissionError:
        return target
    target.rmdir()
    blocker = base / "a-file"
    blocker.write_text("not a folder")
    return blocker / "production"

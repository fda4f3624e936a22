"""Errors a user can act on. Each message names the file, field or setting and what to do;
the CLI prints it as one line (no traceback unless --debug) and exits non-zero."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from visionops.data.validation import ValidationReport


class VisionOpsError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class DataValidationError(VisionOpsError):
    """A data set has problems; nothing was registered. `.report` lists every problem."""

    def __init__(self, message: str, report: ValidationReport | None = None):
        super().__init__(message)
        self.report = report


class DatasetNotFoundError(VisionOpsError):
    """A data set name/version is not in the catalog."""


class ModelNotFoundError(VisionOpsError):
    """No model (or no champion) where one was expected."""


class TrainingError(VisionOpsError):
    """Training could not start or produced no weights."""


class ConfigError(VisionOpsError):
    """A setting or parameter is missing or inconsistent."""


class BackendUnavailableError(VisionOpsError):
    """The azure backend was chosen but its packages or settings are missing."""

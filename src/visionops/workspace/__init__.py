"""The backend seam (design §3): one interface, a local and an Azure ML implementation.

Notebooks and the CLI call `get_workspace(settings)` and never branch on the backend beyond
choosing it. The azure module is imported only when the azure backend is chosen, so local mode
needs no `azure-*` package.
"""

from __future__ import annotations

from visionops.errors import BackendUnavailableError
from visionops.settings import Settings, get_settings
from visionops.workspace.base import Workspace


def get_workspace(settings: Settings | None = None) -> Workspace:
    settings = settings or get_settings()
    if settings.backend == "local":
        from visionops.workspace.local import LocalWorkspace

        return LocalWorkspace(settings)
    if settings.backend == "azure":
        try:
            from visionops.workspace.azure import AzureWorkspace
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the azure backend needs the azure extra ({exc.name} is missing): "
                "pip install -c requirements/constraints.txt -e '.[azure]'"
            ) from exc
        return AzureWorkspace(settings)
    raise BackendUnavailableError(f"unknown backend {settings.backend!r}; use 'local' or 'azure'")


__all__ = ["Workspace", "get_workspace"]

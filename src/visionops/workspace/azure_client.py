"""How the azure backend gets its `MLClient`: from settings, from a workspace `config.json`, or
from a factory named in settings (how tests and the notebooks' Azure cells inject a mocked client).

Imported only by the azure backend. Creating the client does no network I/O (the credential asks
for a token on the first real call), so a misconfiguration surfaces here as a ConfigError naming
the setting to fix, while an expired login surfaces on the first operation.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from visionops.errors import ConfigError
from visionops.settings import Settings

# Where `az ml` and the studio's "download config.json" put the workspace ids, in search order.
CONFIG_LOCATIONS = ("config.json", ".azureml/config.json")
_ID_SETTINGS = {
    "subscription_id": "VISIONOPS_SUBSCRIPTION_ID",
    "resource_group": "VISIONOPS_RESOURCE_GROUP",
    "workspace_name": "VISIONOPS_WORKSPACE_NAME",
}


def find_config(settings: Settings) -> Path | None:
    """The workspace config.json: VISIONOPS_AZURE_CONFIG_FILE, else <root>/config.json, else
    <root>/.azureml/config.json."""
    explicit = getattr(settings, "azure_config_file", None)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"VISIONOPS_AZURE_CONFIG_FILE={path} does not exist; download config.json from the "
                              "workspace's overview page in Azure ML studio, or unset it")
        return path
    for rel in CONFIG_LOCATIONS:
        path = settings.root / rel
        if path.is_file():
            return path
    return None


def workspace_ids(settings: Settings) -> dict[str, str]:
    """subscription_id, resource_group and workspace_name from settings, completed by config.json.

    Raises ConfigError naming the environment variables still missing."""
    ids = {k: getattr(settings, k) for k in _ID_SETTINGS}
    if not all(ids.values()):
        config = find_config(settings)
        if config is not None:
            raw = json.loads(config.read_text())
            from_file = {
                "subscription_id": raw.get("subscription_id"),
                "resource_group": raw.get("resource_group"),
                "workspace_name": raw.get("workspace_name"),
            }
            ids = {k: v or from_file[k] for k, v in ids.items()}
    missing = [env for k, env in _ID_SETTINGS.items() if not ids.get(k)]
    if missing:
        raise ConfigError(
            f"the azure backend needs the workspace: set {', '.join(missing)} (in .env or the environment), "
            f"or put the workspace's config.json at {settings.root / 'config.json'}"
        )
    return {k: str(v) for k, v in ids.items()}


def default_credential() -> Any:
    """DefaultAzureCredential: environment (service principal), workload/managed identity, then the
    Azure CLI login (`az login`, or AzureCLI@2 in Azure DevOps). No browser pop-up: papermill and
    CI cannot answer one."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def load_factory(spec: str) -> Any:
    """The callable named by 'module:function' (VISIONOPS_AZURE_CLIENT_FACTORY)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(f"VISIONOPS_AZURE_CLIENT_FACTORY={spec!r} must look like 'package.module:function'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"VISIONOPS_AZURE_CLIENT_FACTORY={spec!r} cannot be imported: {exc}") from exc


def make_ml_client(settings: Settings, credential: Any = None) -> Any:
    """An MLClient for the settings' workspace, telemetry off.

    Order: a factory named in VISIONOPS_AZURE_CLIENT_FACTORY (called with the settings; tests and
    notebook runs use it to hand in a mocked client), then the ids from settings, then
    config.json through MLClient.from_config."""
    factory = getattr(settings, "azure_client_factory", None)
    if factory:
        return load_factory(factory)(settings)
    from azure.ai.ml import MLClient

    credential = credential or default_credential()
    if all(getattr(settings, k) for k in _ID_SETTINGS):
        return MLClient(
            credential,
            subscription_id=settings.subscription_id,
            resource_group_name=settings.resource_group,
            workspace_name=settings.workspace_name,
            enable_telemetry=False,  # on by default under Jupyter kernels, i.e. under papermill
        )
    config = find_config(settings)
    if config is None or any(getattr(settings, k) for k in _ID_SETTINGS):
        ids = workspace_ids(settings)  # raises with the missing variables, or completes them
        return MLClient(
            credential,
            subscription_id=ids["subscription_id"],
            resource_group_name=ids["resource_group"],
            workspace_name=ids["workspace_name"],
            enable_telemetry=False,
        )
    return MLClient.from_config(credential, path=str(config), enable_telemetry=False)

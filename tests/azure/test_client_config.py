"""Where the azure backend's MLClient comes from: settings, config.json, or an injected factory;
and errors that name the setting to fix. Constructing an MLClient does no I/O, so the real class
is used here with a credential that would fail if it were ever asked for a token."""

from __future__ import annotations

import json

import pytest
from azure.ai.ml import MLClient

from visionops.errors import ConfigError
from visionops.settings import Settings
from visionops.workspace import get_workspace
from visionops.workspace.azure_client import make_ml_client

pytestmark = pytest.mark.azure


class NoTokenCredential:
    """A TokenCredential that refuses: proof that building the client asked for no token."""

    def get_token(self, *scopes, **kwargs):
        raise AssertionError("a token was requested while only building the client")


def _settings(tmp_path, **kw) -> Settings:
    return Settings(_env_file=None, root=tmp_path, backend="azure", **kw)


def test_client_from_settings_has_telemetry_off(tmp_path):
    s = _settings(tmp_path, subscription_id="sub-1", resource_group="rg-1", workspace_name="ws-1")
    client = make_ml_client(s, NoTokenCredential())
    assert isinstance(client, MLClient)
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == ("sub-1", "rg-1", "ws-1")
    assert client._operation_config.enable_telemetry is False  # papermill runs under a Jupyter kernel


def test_client_from_config_json(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"subscription_id": "sub-2", "resource_group": "rg-2", "workspace_name": "ws-2"})
    )
    client = make_ml_client(_settings(tmp_path), NoTokenCredential())
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == ("sub-2", "rg-2", "ws-2")
    assert client._operation_config.enable_telemetry is False
    # a setting overrides config.json, and config.json completes the rest
    client = make_ml_client(_settings(tmp_path, workspace_name="ws-other"), NoTokenCredential())
    assert (client.subscription_id, client.workspace_name) == ("sub-2", "ws-other")


def test_missing_ids_name_the_variables_to_set(tmp_path):
    with pytest.raises(ConfigError) as err:
        get_workspace(_settings(tmp_path, resource_group="rg"))
    message = str(err.value)
    assert "VISIONOPS_SUBSCRIPTION_ID" in message and "VISIONOPS_WORKSPACE_NAME" in message
    assert "VISIONOPS_RESOURCE_GROUP" not in message and str(tmp_path / "config.json") in message
    with pytest.raises(ConfigError, match="VISIONOPS_AZURE_CONFIG_FILE"):
        make_ml_client(_settings(tmp_path, azure_config_file=tmp_path / "nope.json"), NoTokenCredential())


def test_factory_injects_the_client_notebooks_and_tests_use(tmp_path, monkeypatch):
    """VISIONOPS_AZURE_CLIENT_FACTORY=azure_mock:mock_ml_client: how a papermill kernel gets the mock."""
    monkeypatch.setenv("VISIONOPS_AZURE_CLIENT_FACTORY", "azure_mock:mock_ml_client")
    monkeypatch.setenv("VISIONOPS_WORKSPACE_NAME", "ws-from-env")
    s = Settings(_env_file=None, root=tmp_path, backend="azure")  # no subscription needed with a factory
    ws = get_workspace(s)
    assert type(ws).__name__ == "AzureWorkspace" and ws.ml_client.workspace_name == "ws-from-env"
    assert ws.ml_client.sent == []
    with pytest.raises(ConfigError, match="module:function|package.module:function"):
        make_ml_client(_settings(tmp_path, azure_client_factory="no_colon_here"))
    with pytest.raises(ConfigError, match="cannot be imported"):
        make_ml_client(_settings(tmp_path, azure_client_factory="not_a_module_xyz:make"))


def test_mock_log_records_what_another_process_sent(tmp_path, monkeypatch, smoke_folder):
    """The JSON-lines log lets a notebook test assert on entities sent from the kernel process."""
    monkeypatch.setenv("VISIONOPS_AZURE_MOCK_LOG", str(tmp_path / "sent.jsonl"))
    from azure_mock import mock_ml_client

    from visionops.workspace.azure import AzureWorkspace

    s = _settings(tmp_path, subscription_id="s", resource_group="r", workspace_name="w")
    AzureWorkspace(s, ml_client=mock_ml_client(s)).register_dataset(smoke_folder)
    [line] = [json.loads(x) for x in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert line["op"] == "data.create_or_update" and line["type"] == "Data"
    assert line["entity"]["type"] == "uri_folder" and line["entity"]["name"] == "shapes"

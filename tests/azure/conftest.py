"""Offline validation of everything Azure: no account, no network.

Skipped as a whole, with the reason, when the azure extra is not installed. Every test here runs
with outbound sockets blocked (loopback and unix sockets stay allowed): only the network call
itself is ever faked, by the mocked MLClient of tests/support/azure_mock.py.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "azure.ai.ml",
    reason="the azure extra is not installed (pip install -c requirements/constraints.txt -e '.[azure]'); "
    "the offline Azure ML / Azure DevOps validation tests need azure-ai-ml",
)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


class NetworkBlocked(PermissionError):
    pass


def _local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="ignore")
    return host is None or str(host).startswith(_LOCAL)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse every non-loopback connection and name lookup for the duration of each test."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address):
        if isinstance(address, tuple) and not _local(address[0]):
            raise NetworkBlocked(f"network blocked in tests/azure: connect to {address!r}")

    def connect(self, address):
        check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _local(host):
            raise NetworkBlocked(f"network blocked in tests/azure: lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def azure_settings(tmp_path):
    """Settings of the azure backend in an empty project root, with a workspace named by env-style ids."""
    from visionops.settings import Settings

    return Settings(
        _env_file=None, root=tmp_path, backend="azure",
        subscription_id="00000000-0000-0000-0000-000000000000", resource_group="rg-visionops",
        workspace_name="mlw-visionops",
    )


@pytest.fixture
def mock_client(azure_settings):
    from azure_mock import mock_ml_client

    return mock_ml_client(azure_settings)


@pytest.fixture
def workspace(azure_settings, mock_client):
    from visionops.workspace.azure import AzureWorkspace

    return AzureWorkspace(azure_settings, ml_client=mock_client)


@pytest.fixture(scope="session")
def smoke_folder(tmp_path_factory):
    """A smoke-profile data set folder (YOLO layout + manifest), generated once (well under a second)."""
    from visionops.data.dataset import generate_synthetic
    from visionops.profiles import get_profile

    return generate_synthetic(get_profile("smoke").data, tmp_path_factory.mktemp("smoke-data") / "shapes", "shapes")


@pytest.fixture
def register(workspace, tmp_path):
    """Register a model version in the workspace's registry (the mocked workspace reports a local
    sqlite store as its MLflow URI) through visionops.registry, with best.pt and, unless
    onnx=False, best.onnx: what stage_deployment lists to choose the runtime. The weights are
    placeholders: deploying only lists file names, it never loads them."""
    import mlflow

    from visionops import registry
    from visionops.evaluation.decision import DecisionRule, decide
    from visionops.tracking import configure_mlflow

    settings = workspace.registry_settings()

    def make(*, onnx: bool = True):
        folder = tmp_path / f"weights-{len(registry.list_versions(settings)) + 1}"
        folder.mkdir()
        (folder / "best.pt").write_bytes(b"placeholder: deployment lists names, it never loads weights")
        extra = {}
        if onnx:
            (folder / "best.onnx").write_bytes(b"placeholder")
            extra["onnx"] = folder / "best.onnx"
        configure_mlflow(settings)
        with mlflow.start_run() as run:
            pass
        ref = registry.register(
            settings, decision=decide({"map50_95": 0.5}, None, DecisionRule(floor=0.0)), weights=folder / "best.pt",
            train_run_id=run.info.run_id, tags={}, info={"classes": ["circle", "rectangle"], "imgsz": 64},
            extra_artifacts=extra,
        )
        return ref

    return make

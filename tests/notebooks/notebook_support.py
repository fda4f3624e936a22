"""Helpers of the notebook tests: where the notebooks are, the environment their kernels get,
what the mocked Azure workspace received, and cleaning up endpoints (fixtures: conftest.py).

Each run has its own project root under the session root (never the session root itself: the
lifecycle tests there expect to register version 1 of the model), and runs with the network
blocked (tests/support/netblock): the kernels, papermill, nbval and azmlinfsrv all inherit it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SUPPORT = REPO / "tests" / "support"
ORDER = (
    "00_environment_setup",
    "01_dataset_setup",
    "02_model_training",
    "03_model_evaluation",
    "04_model_deployment",
    "05_training_pipeline",
    "06_hyperparameter_tuning",
    "07_automl_benchmark",
    "08_monitoring_and_retraining",
)
CLI = str(Path(sys.executable).with_name("visionops"))
# settings a developer may have exported, which would change what the notebooks do
_LEAKY = ("VISIONOPS_PROFILE", "VISIONOPS_BACKEND", "VISIONOPS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI",
          "VISIONOPS_AZURE_CLIENT_FACTORY", "VISIONOPS_ENDPOINT_URL", "VISIONOPS_ENDPOINT_KEY")

# the mocked workspace (tests/support/azure_mock.py) the Azure cells talk to
AZURE_IDS = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-visionops-test",
    "workspace_name": "mlw-visionops-test",
}


def azure_extra_installed() -> bool:
    try:
        import azure.ai.ml  # noqa: F401
    except ImportError:
        return False
    return True


def kernel_env(netblocked_env, root: Path, *, azure_mock_log: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a notebook run (papermill or nbval) and so of its kernel."""
    env = netblocked_env(root / "netblock.log", VISIONOPS_ROOT=str(root), **extra)
    for key in _LEAKY:
        if key not in extra:
            env.pop(key, None)
    if azure_mock_log is not None:
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(SUPPORT)])
        env["VISIONOPS_AZURE_CLIENT_FACTORY"] = "azure_mock:mock_ml_client"
        env["VISIONOPS_AZURE_MOCK_LOG"] = str(azure_mock_log)
    return env


def netblock_report(root: Path) -> tuple[list[str], list[str]]:
    lines = (root / "netblock.log").read_text().splitlines() if (root / "netblock.log").is_file() else []
    return [ln for ln in lines if ln.startswith("armed")], [ln for ln in lines if ln.startswith("blocked")]


def mock_calls(log: Path) -> list[dict[str, Any]]:
    """What the notebook sent to the mocked MLClient (one JSON line per call)."""
    return [json.loads(ln) for ln in log.read_text().splitlines()] if log.is_file() else []


def stop_endpoints(root: Path) -> None:
    """Stop a local endpoint a failed notebook left running (it is detached, like an Azure endpoint)."""
    try:
        from visionops.serving.local_endpoint import endpoints_dir, stop_local
        from visionops.settings import get_settings
    except ImportError:  # pragma: no cover - serving not installed
        return
    settings = get_settings(root=root)
    folder = endpoints_dir(settings)
    for record in folder.glob("*/") if folder.is_dir() else []:
        stop_local(settings, record.name)

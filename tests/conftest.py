"""Test-wide isolation: every test session gets its own project root (outputs/, data/, MLflow
store) in a temporary folder, so tests never touch the developer's outputs/ and CI starts clean.

Expensive artefacts are session fixtures shared by many tests: `smoke_run` runs the whole smoke
lifecycle once (data -> train -> evaluate -> register) against a real MLflow sqlite store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="visionops-tests-"))
os.environ["VISIONOPS_ROOT"] = str(_SESSION_ROOT)  # before visionops is imported anywhere
os.environ.setdefault("MPLBACKEND", "Agg")
for _key in ("VISIONOPS_BACKEND", "VISIONOPS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_key, None)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))  # test helpers: foreign_data, azure_mock
sys.path.insert(0, str(REPO / "scripts"))  # CI tools the tests check: ado_schema


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def session_root() -> Path:
    return _SESSION_ROOT


@pytest.fixture(scope="session")
def smoke_settings(session_root):
    from visionops.settings import get_settings, reset_settings_cache

    reset_settings_cache()
    return get_settings(root=session_root)


NETBLOCK = REPO / "tests" / "support" / "netblock"


def netblocked_env(log: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess whose network attempts are blocked and logged (see netblock)."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETBLOCK), env.get("PYTHONPATH", "")]))
    env["NETBLOCK_LOG"] = str(log)
    return env


@pytest.fixture(name="netblocked_env", scope="session")
def _netblocked_env_fixture():
    """The `netblocked_env(log, **env)` helper for tests that start their own subprocesses."""
    return netblocked_env


@pytest.fixture(scope="session")
def smoke_run(session_root, smoke_settings):
    """`visionops run --profile smoke` once per session, as a user runs it, with the network blocked.

    Returns the RunResult it recorded; `smoke_run.netlog` is the block log. Serving,
    registry and notebook tests reuse its registered production model.
    """
    from visionops.runner import LAST_RUN, LIFECYCLE_DIR, RunResult

    log = session_root / "netblock-smoke.log"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("visionops")), "run", "--profile", "smoke"],
        env=netblocked_env(log, VISIONOPS_ROOT=str(session_root)),
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"smoke lifecycle failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = RunResult.model_validate_json((smoke_settings.outputs_dir / LIFECYCLE_DIR / LAST_RUN).read_text())
    return SmokeRun(result=result, netlog=log, stdout=proc.stdout, stderr=proc.stderr)


@dataclass
class SmokeRun:
    result: Any  # visionops.runner.RunResult
    netlog: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def foreign_export(tmp_path_factory) -> Path:
    """A team's export unlike the synthetic shapes (see tests/support/foreign_data.py), read-only."""
    from foreign_data import build_foreign_export

    return build_foreign_export(tmp_path_factory.mktemp("fasteners-export") / "fasteners")


@pytest.fixture
def fresh_settings(tmp_path):
    """Settings rooted in an empty folder: an empty catalog and an empty MLflow store."""
    from visionops.settings import get_settings

    return get_settings(root=tmp_path)

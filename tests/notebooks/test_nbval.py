"""`pytest --nbval-lax` over every stored notebook, smoke profile, as part of plain `pytest`.

How it is wired: each notebook is one test here that runs `python -m pytest --nbval-lax
--nbval-current-env notebooks/<name>.ipynb` in a subprocess. nbval runs the notebook as it is
stored (committed without outputs, so `--nbval-lax` means "every cell runs without error";
nbval has no parameter injection), and its kernel inherits the subprocess' environment, which
is where the parameters come from: the `profile = None` / `backend = None` defaults resolve to
VISIONOPS_PROFILE / VISIONOPS_BACKEND. Keeping those variables in the subprocess' environment
(rather than in this process, e.g. via addopts and an autouse fixture) leaves the settings of
every other test untouched, and a notebook run cannot leak a profile into them.

Two choices make these runs complement the papermill runs (tests/notebooks/test_papermill.py)
instead of repeating them:

- **last to first, in an empty project root**: 05 runs first and finds nothing, 04 finds no
  champion and builds one (data, training, evaluation, registration) before deploying, 03
  reuses 04's training, and so on. So every notebook proves it runs on its own in a fresh
  kernel, while papermill (first to last) proves the reuse chain.
- **on the azure backend, against the mocked MLClient** (tests/support/azure_mock.py, via
  VISIONOPS_AZURE_CLIENT_FACTORY, with the workspace ids in VISIONOPS_* variables): every cell
  guarded by `if backend == "azure":` runs here, and each test asserts what the notebook sent to
  the workspace. The local-only cells run in the papermill tests. Without the azure extra the
  notebooks run here on the local backend instead.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from notebook_support import (
    AZURE_IDS,
    NOTEBOOKS,
    ORDER,
    REPO,
    azure_extra_installed,
    kernel_env,
    mock_calls,
    netblock_report,
    stop_endpoints,
)

pytestmark = pytest.mark.slow

AZURE = azure_extra_installed()

# what each notebook must send to the mocked workspace (operation -> at least this many calls)
EXPECTED_AZURE_CALLS = {
    "08_monitoring_and_retraining": {},
    "07_automl_benchmark": {"jobs.create_or_update": 1},
    "06_hyperparameter_tuning": {},
    "05_training_pipeline": {"data.create_or_update": 1, "jobs.create_or_update": 1,
                             "components.create_or_update": 5},
    "04_model_deployment": {"online_endpoints.begin_create_or_update": 2,
                            "online_deployments.begin_create_or_update": 1, "online_endpoints.invoke": 22,
                            "online_endpoints.begin_delete": 1},
    "03_model_evaluation": {},
    "02_model_training": {"jobs.create_or_update": 1},
    "01_dataset_setup": {"data.create_or_update": 1},
    "00_environment_setup": {"environments.create_or_update": 2},
}


@pytest.fixture(scope="module")
def nbval_root(session_root):
    root = session_root / "notebooks-nbval"
    root.mkdir(parents=True, exist_ok=True)
    yield root
    stop_endpoints(root)


@pytest.mark.parametrize("name", list(reversed(ORDER)))
def test_nbval(name, nbval_root, netblocked_env):
    log = nbval_root / f"azure-mock-{name}.jsonl"
    extra = {"VISIONOPS_PROFILE": "smoke"}
    if AZURE:
        extra.update({"VISIONOPS_BACKEND": "azure", **{f"VISIONOPS_{k.upper()}": v for k, v in AZURE_IDS.items()}})
    env = kernel_env(netblocked_env, nbval_root, azure_mock_log=log if AZURE else None, **extra)
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
           "-o", "addopts=", "-q", str(NOTEBOOKS / f"{name}.ipynb")]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"nbval failed on {name}:\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}"
    assert " passed" in proc.stdout and "failed" not in proc.stdout.splitlines()[-1]

    _, blocked = netblock_report(nbval_root)
    assert blocked == [], "network attempts:\n" + "\n".join(blocked)
    summary = (nbval_root / "outputs" / "notebooks" / f"{name}.json")
    assert summary.is_file(), f"{name} recorded no summary"
    if not AZURE:
        return
    import json

    recorded = json.loads(summary.read_text())
    assert (recorded["profile"], recorded["backend"]) == ("smoke", "azure")
    ops: dict[str, int] = {}
    for call in mock_calls(log):
        ops[call["op"]] = ops.get(call["op"], 0) + 1
    for op, at_least in EXPECTED_AZURE_CALLS[name].items():
        assert ops.get(op, 0) >= at_least, f"{name}: {op} called {ops.get(op, 0)} times, expected >= {at_least}: {ops}"
    if name == "07_automl_benchmark":  # the azure backend submits the checked AutoML job
        assert recorded["submitted"] is True and recorded["validated"] is True
        assert recorded["url"].startswith("https://ml.azure.com/runs/")
        jobs = [c for c in mock_calls(log) if c["op"] == "jobs.create_or_update"]
        assert jobs[0]["type"] == "ImageObjectDetectionJob"
    if name == "06_hyperparameter_tuning":
        assert recorded["trials"] == 3 and recorded["registered"] is (recorded["decision"] == "promote")
    if name == "05_training_pipeline":
        assert recorded["status"] == "Completed" and recorded["url"].startswith("https://ml.azure.com/runs/")
        assert recorded["published"]["backend"] == "azure"
    if name == "04_model_deployment":  # built its own champion: nothing ran before it in this root
        assert recorded["model_version"] == "1" and recorded["answered_by"]["version"] == "1"
        assert recorded["endpoint_check"]["ok"] is True
    if name == "03_model_evaluation":  # re-scores 04's model against itself: a tie, nothing registered
        assert recorded["champion_version_before"] == "1" and recorded["decision"] == "reject"
        assert recorded["registered"] is False
    if name == "02_model_training":
        assert recorded["compute_job"]["status"] == "Completed"
    if name == "00_environment_setup":
        assert set(recorded["azure_environments"]) == {"training", "inference"}


def test_nbval_is_installed():
    """The plugin the tests above drive (a missing plugin would make pytest ignore the notebooks)."""
    import nbval  # noqa: F401

    assert os.path.isfile(NOTEBOOKS / "00_environment_setup.ipynb")

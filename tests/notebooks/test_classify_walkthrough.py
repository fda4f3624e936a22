"""The walkthrough with `task=classify`: notebooks 00-05 with papermill and the smoke profile
(`visionops notebooks --profile smoke --param task=classify`), in a fresh project root with the
network blocked. The same notebooks as detection, no task branches in them: each records a
classification data set, a classifier trained and scored on top-1, registered as
`<dataset>-classifier`, served and answering with labels, and the pipeline on the same data.

Then nbval over the same notebooks, last to first in another empty root (as tests/notebooks/
test_nbval.py does for detection): each one runs on its own, with the task from the
environment (`VISIONOPS_TASK=classify`, which the `task = None` parameter resolves to)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_support import CLI, ORDER, REPO, kernel_env, netblock_report, stop_endpoints
from notebook_support import NOTEBOOKS as NOTEBOOK_DIR

pytestmark = pytest.mark.slow
NOTEBOOKS = ORDER[:6]  # 00..05: the lifecycle (06/07 tune and benchmark detection)


@pytest.fixture(scope="module")
def run(session_root, netblocked_env):
    root = session_root / "notebooks-classify"
    root.mkdir(parents=True, exist_ok=True)
    only = [arg for nb in NOTEBOOKS for arg in ("--only", nb)]
    proc = subprocess.run([CLI, "notebooks", "--profile", "smoke", "--param", "task=classify", *only, "--no-html"],
                          env=kernel_env(netblocked_env, root), cwd=REPO, capture_output=True, text=True,
                          timeout=1500)
    yield root, proc
    stop_endpoints(root)


def _summary(root: Path, name: str) -> dict:
    return json.loads((root / "outputs" / "notebooks" / f"{name}.json").read_text())


def test_notebooks_00_to_05_run_offline_with_task_classify(run):
    root, proc = run
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    record = json.loads((root / "outputs" / "notebooks" / "run.json").read_text())
    assert [n["name"] for n in record["notebooks"]] == list(NOTEBOOKS)
    assert all(n["status"] == "ok" for n in record["notebooks"])
    assert record["parameters"] == {"profile": "smoke", "task": "classify"}
    armed, blocked = netblock_report(root)
    assert armed and blocked == [], "network attempts:\n" + "\n".join(blocked)


def test_each_notebook_worked_on_the_classification_data_set(run):
    from visionops import registry
    from visionops.profiles import get_profile
    from visionops.settings import get_settings

    root, proc = run
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert _summary(root, "00_environment_setup")["task"] == "classify"

    data = _summary(root, "01_dataset_setup")
    spec = get_profile("smoke", "classify").data
    name = data["dataset"].split(":")[0]
    assert name == "shapes-cls" and data["classes"] == sorted(spec.classes)
    assert data["counts"]["train"]["images"] == spec.per_class_train * len(spec.classes)
    assert data["validation_ok"] and data["broken_copy_codes"] == sorted(data["planted_faults"])
    assert data["reregistered_same_version"]
    lines = (Path(data["automl"]["train"]) / "train_annotations.jsonl").read_text().splitlines()
    assert len(lines) == data["counts"]["train"]["images"] and json.loads(lines[0])["label"] in spec.classes

    trained = _summary(root, "02_model_training")
    assert trained["dataset"] == data["dataset"] and set(trained["metrics"]) == {"top1", "top5"}
    assert trained["epochs"] == get_profile("smoke", "classify").train.epochs

    evaluation = _summary(root, "03_model_evaluation")
    assert evaluation["task"] == "classify" and evaluation["rule"]["metric"] == "top1"
    assert evaluation["train_run_id"] == trained["run_id"]  # 03 reused 02's training
    assert evaluation["model_name"] == "shapes-cls-classifier"
    assert [c["name"] for c in evaluation["per_class"]] == data["classes"]
    assert all({"precision", "recall", "f1"} <= set(c) and "ap50" not in c for c in evaluation["per_class"])
    assert evaluation["images_drawn"] == 4 and evaluation["registered"] is True  # smoke floor 0

    deployed = _summary(root, "04_model_deployment")
    assert deployed["answered_by"] == {"name": "shapes-cls-classifier", "version": "1", "runtime": "onnx",
                                       "task": "classify"}
    assert deployed["answer_sizes"] == [len(spec.classes)] * 4  # top-k labels, k capped at the 4 classes
    checks = deployed["endpoint_check"]["checks"]
    assert checks["health"] and checks["invalid request"] and checks["healthy afterwards"]

    pipeline = _summary(root, "05_training_pipeline")
    assert pipeline["dataset"] == data["dataset"] and pipeline["status"] == "Completed"
    assert set(pipeline["steps"].values()) == {"Completed"}

    settings = get_settings(root=root, task="classify")
    versions = registry.list_versions(settings, "shapes-cls-classifier")
    assert [v.tags["task"] for v in versions] == ["classify"] * len(versions) and versions
    assert registry.list_versions(settings, "shapes-detector") == []  # nothing detection was made


@pytest.fixture(scope="module")
def nbval_root(session_root):
    root = session_root / "notebooks-classify-nbval"
    root.mkdir(parents=True, exist_ok=True)
    yield root
    stop_endpoints(root)


@pytest.mark.parametrize("name", list(reversed(NOTEBOOKS)))
def test_nbval_with_task_classify(name, nbval_root, netblocked_env):
    env = kernel_env(netblocked_env, nbval_root, VISIONOPS_PROFILE="smoke", VISIONOPS_TASK="classify")
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
           "-o", "addopts=", "-q", str(NOTEBOOK_DIR / f"{name}.ipynb")]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"nbval failed on {name}:\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}"
    _, blocked = netblock_report(nbval_root)
    assert blocked == [], "network attempts:\n" + "\n".join(blocked)
    recorded = _summary(nbval_root, name)
    if "dataset" in recorded:  # 01-05 name the data set they used: the classification one
        assert recorded["dataset"].startswith("shapes-cls:"), recorded["dataset"]
    if name == "04_model_deployment":  # built its own champion: nothing ran before it in this root
        assert recorded["model_name"] == "shapes-cls-classifier" and recorded["answered_by"]["task"] == "classify"

"""`visionops run --task classify` as a user runs it (subprocess, network blocked), on a team's own
classification export: a folder per class with unicode class names, non-square photos of mixed
sizes and formats, no split folders (tests/support/foreign_classify.py). The export is imported
(splits carved, stratified), trained, scored on top-1 and registered as `<dataset>-classifier`;
then the same data set with no option; asking for the other task is a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from foreign_classify import CLASSES, PER_CLASS, build_class_folders

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("visionops"))


def _run(root: Path, netblocked_env, *args: str) -> subprocess.CompletedProcess[str]:
    env = netblocked_env(root / "netblock.log", VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=900)


def _last(root: Path) -> dict:
    return json.loads((root / "outputs" / "lifecycle" / "last_run.json").read_text())


def test_run_classify_on_a_foreign_export(tmp_path_factory, netblocked_env):
    from visionops import registry
    from visionops.settings import get_settings

    root = tmp_path_factory.mktemp("run-classify")
    export = build_class_folders(tmp_path_factory.mktemp("exports") / "plant-photos")

    first = _run(root, netblocked_env, "run", "--profile", "smoke", "--task", "classify", "--source", str(export),
                 "--epochs", "2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    run1 = _last(root)
    ds = run1["dataset"]
    assert ds["name"] == "plant-photos" and ds["task"] == "classify"
    assert ds["classes"] == sorted(CLASSES)
    assert sum(c["images"] for c in ds["counts"].values()) == len(CLASSES) * PER_CLASS  # every photo carried
    assert all(ds["counts"][split]["images"] >= len(CLASSES) for split in ("train", "val", "test"))
    assert run1["model_name"] == "plant-photos-classifier" and run1["train"]["task"] == "classify"
    assert run1["train"]["epochs"] == 2
    assert {"top1", "top5"} <= set(run1["evaluation"]["challenger"])
    assert run1["evaluation"]["metric"] == "top1"
    assert run1["registration"]["registered"] is True  # smoke floor 0: the first classifier is promoted

    settings = get_settings(root=root, task="classify")
    [version] = registry.list_versions(settings, "plant-photos-classifier")
    assert version.tags["task"] == "classify" and version.tags["dataset.name"] == "plant-photos"
    assert registry.list_versions(settings, "plant-photos-detector") == []

    again = _run(root, netblocked_env, "run", "--profile", "smoke", "--epochs", "1")  # the current data set
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert _last(root)["dataset"]["version"] == ds["version"] and _last(root)["model_name"] == "plant-photos-classifier"

    wrong = _run(root, netblocked_env, "run", "--profile", "smoke", "--task", "detect",
                 "--dataset", f"{ds['name']}:{ds['version']}")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "'classify' data set but task 'detect' was asked for" in wrong.stderr.strip().splitlines()[0]
    blocked = [ln for ln in (root / "netblock.log").read_text().splitlines() if ln.startswith("blocked")]
    assert blocked == []

"""`visionops run` on a team's export, as a user runs it (subprocess, network blocked): `--source`
imports it (named after its folder, made current) and takes it through the whole lifecycle; then
`--dataset name:version` and no option at all both run on that same data set, never on the
synthetic shapes; a bad data set name is one line listing what is registered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("visionops"))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run-your-data")


def _run(root: Path, netblocked_env, *args: str) -> subprocess.CompletedProcess[str]:
    env = netblocked_env(root / "netblock.log", VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=900)


def _last(root: Path) -> dict:
    return json.loads((root / "outputs" / "lifecycle" / "last_run.json").read_text())


def test_run_source_then_dataset_then_default(root, netblocked_env, foreign_export):
    from visionops import registry
    from visionops.settings import get_settings

    first = _run(root, netblocked_env, "run", "--profile", "smoke", "--source", str(foreign_export), "--epochs", "2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "import report" in first.stdout and "fasteners" in first.stdout
    run1 = _last(root)
    name, version = run1["dataset"]["name"], run1["dataset"]["version"]
    assert name == "fasteners" and run1["dataset"]["classes"] == ["bolt", "nut", "washer"]
    assert run1["model_name"] == "fasteners-detector" and run1["train"]["epochs"] == 2

    second = _run(root, netblocked_env, "run", "--profile", "smoke", "--dataset", f"{name}:{version}", "--epochs", "1")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    run2 = _last(root)
    assert (run2["dataset"]["name"], run2["dataset"]["version"]) == (name, version)
    assert run2["train"]["epochs"] == 1 and run2["train"]["run_id"] != run1["train"]["run_id"]

    third = _run(root, netblocked_env, "run", "--profile", "smoke", "--epochs", "1")  # the current data set
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert f"{name}:{version}" in third.stdout and "the current data set" in third.stdout
    assert (_last(root)["dataset"]["name"], _last(root)["dataset"]["version"]) == (name, version)

    settings = get_settings(root=root)
    assert {v.name for v in registry.list_versions(settings, "fasteners-detector")} == {"fasteners-detector"}
    assert registry.list_versions(settings, "shapes-detector") == []
    catalog = json.loads((root / "data" / "catalog" / "catalog.json").read_text())
    assert {e["name"] for e in catalog} == {"fasteners"}  # the synthetic set was never generated

    bad = _run(root, netblocked_env, "run", "--profile", "smoke", "--dataset", "nope:3")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    first_line = bad.stderr.strip().splitlines()[0]
    assert "no data set 'nope:3'" in first_line and f"{name}:{version}" in first_line
    blocked = [ln for ln in (root / "netblock.log").read_text().splitlines() if ln.startswith("blocked")]
    assert blocked == []

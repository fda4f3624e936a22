"""Your data through the whole walkthrough: notebooks 00-05 (smoke) with `source=` a team's export
that differs from the synthetic shapes in everything (three other class names, non-square photos of
mixed sizes, a Roboflow train/valid/test layout). Every notebook must work on *that* data set, say
so in its record, and the model must be named after it and predict its classes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from notebook_support import CLI, ORDER, REPO, kernel_env, netblock_report, stop_endpoints

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def your_data_walkthrough(session_root, netblocked_env, foreign_export):
    root = session_root / "notebooks-your-data"
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [CLI, "notebooks", "--profile", "smoke", "--param", f"source={foreign_export}"],
        env=kernel_env(netblocked_env, root), cwd=REPO, capture_output=True, text=True, timeout=1500,
    )
    out = root / "outputs" / "notebooks"
    yield {"root": root, "proc": proc, "out": out}
    stop_endpoints(root)


def _summary(run, name: str) -> dict:
    path = run["out"] / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{name} recorded nothing:\n{(run['proc'].stdout + run['proc'].stderr)[-6000:]}")
    return json.loads(path.read_text())


def test_every_notebook_used_the_imported_data_set(your_data_walkthrough):
    run = your_data_walkthrough
    assert run["proc"].returncode == 0, (run["proc"].stdout + run["proc"].stderr)[-6000:]
    data = _summary(run, "01_dataset_setup")
    assert data["dataset"].startswith("fasteners:")  # named after the source folder, not 'shapes'
    assert data["classes"] == ["bolt", "nut", "washer"]
    assert data["current"] == data["dataset"]
    assert data["counts"]["train"]["images"] == 18 and data["counts"]["val"]["images"] == 6
    assert data["counts"]["test"]["images"] == 6  # Roboflow's valid/ became val; nothing lost
    for name in ORDER[2:]:
        assert _summary(run, name)["dataset"] == data["dataset"], name
    assert _summary(run, "02_model_training")["classes"] == data["classes"]
    loop = _summary(run, "08_monitoring_and_retraining")  # the production loop on non-square photos
    assert loop["normal"]["status"] != "drift" and loop["shifted"]["status"] == "drift"
    assert loop["new_dataset"].startswith("fasteners:") and loop.get("added", {}).get("test") is None
    armed, blocked = netblock_report(run["root"])
    assert armed and blocked == []


def test_the_model_is_named_after_the_data_and_predicts_its_classes(your_data_walkthrough):
    from visionops import registry
    from visionops.settings import get_settings

    run = your_data_walkthrough
    evaluation = _summary(run, "03_model_evaluation")
    assert evaluation["model_name"] == "fasteners-detector"
    assert {c["name"] for c in evaluation["per_class"]} <= {"bolt", "nut", "washer"}
    deployment = _summary(run, "04_model_deployment")
    assert deployment["model_name"] == "fasteners-detector"
    settings = get_settings(root=run["root"])
    names = {v.name for v in registry.list_versions(settings, "fasteners-detector")}
    assert names == {"fasteners-detector"}
    assert registry.list_versions(settings, "shapes-detector") == []  # nothing trained on the shapes
    champion = registry.require_champion(settings, "fasteners-detector")
    info = json.loads(registry.model_files(registry.download(settings, champion))["info"].read_text())
    assert info["classes"] == ["bolt", "nut", "washer"]
    catalog = json.loads((Path(run["root"]) / "data" / "catalog" / "catalog.json").read_text())
    assert {e["name"] for e in catalog} == {"fasteners"}  # the synthetic set was never generated

"""The Azure ML pipeline's component commands, run locally by the lifecycle runner, end to end.

Runs `visionops pipeline run --profile smoke --epochs 1` as a user would, on the smoke session's
registered data set but in a fresh project root (its own MLflow store, so the session's champion
is untouched), with `azure`/`azureml` made unimportable and the network blocked in every
process: local mode needs neither. Then checks that each step, run as its component command,
wrote what the in-process lifecycle writes for the same step (one runner, one layout).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from visionops.pipeline.components import GRAPH, load_components

pytestmark = pytest.mark.slow
NOAZURE = Path(__file__).resolve().parents[1] / "support" / "noazure"


@pytest.fixture(scope="module")
def local_pipeline(smoke_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline-root")
    log = root / "netblock.log"
    env = dict(os.environ, VISIONOPS_ROOT=str(root), NETBLOCK_LOG=str(log))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOAZURE), env.get("PYTHONPATH", "")]))
    # register the smoke data set in this root's catalog (a copy; same content, same version)
    register = subprocess.run(
        [str(Path(sys.executable).with_name("visionops")), "data", "register", smoke_run.result.dataset.path],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert register.returncode == 0, register.stderr
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("visionops")), "pipeline", "run", "--profile", "smoke", "--epochs", "1",
         "--metadata", str(root / "metadata.json")],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"local pipeline failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    runs = sorted((root / "outputs" / "lifecycle" / "pipeline_runs").glob("*.json"))
    assert len(runs) == 1
    return {"root": root, "run": json.loads(runs[0].read_text()), "log": log, "proc": proc}


def test_every_step_completed_with_the_component_commands(local_pipeline):
    run = local_pipeline["run"]
    assert run["status"] == "Completed" and run["backend"] == "local"
    assert [s["name"] for s in run["steps"]] == [n.name for n in GRAPH]
    assert all(s["status"] == "Completed" for s in run["steps"])
    specs = load_components()
    for step in run["steps"]:
        # the command that ran is the YAML's template with folders in place of the bindings
        assert f"python -m visionops.cli.steps {step['name']} " in step["command"]
        prefix = specs[step["name"]].command.split("${{")[0]
        assert step["command"].startswith(prefix)
        assert Path(step["log"]).is_file()
    metadata = json.loads((local_pipeline["root"] / "metadata.json").read_text())
    assert metadata["pipeline"]["run_id"] == run["run_id"]


def test_outputs_have_the_layout_of_the_in_process_lifecycle(local_pipeline, smoke_run):
    """Each step's folder holds the files the same step writes in-process (plus its log)."""
    steps = {s["name"]: s for s in local_pipeline["run"]["steps"]}
    lifecycle = Path(local_pipeline["root"]) / "outputs" / "lifecycle" / smoke_run.result.dataset.name
    for node, theirs_dir in smoke_run.result.folders.items():
        ours_dir = Path(next(iter(steps[node]["outputs"].values())))
        assert ours_dir.parent == lifecycle and ours_dir.name.startswith(f"{node}-")  # the runner's layout
        ours = {p.relative_to(ours_dir).as_posix() for p in ours_dir.rglob("*") if p.is_file()}
        theirs = {p.relative_to(theirs_dir).as_posix() for p in Path(theirs_dir).rglob("*") if p.is_file()}
        core = {"validate": {"validation.json"}, "train": {"weights/best.pt", "train_result.json"},
                "evaluate": {"decision.json", "evaluation.json"}, "register": {"registration.json"}}[node]
        assert core <= ours and core <= theirs, node
        assert ours - {"step.log"} == theirs or node == "register", (node, ours ^ theirs)  # ONNX only on promote


def test_same_inputs_reached_the_step_code(local_pipeline, smoke_run):
    outputs = local_pipeline["run"]["outputs"]
    trained = json.loads((Path(outputs["model"]) / "train_result.json").read_text())
    assert trained["dataset_version"] == smoke_run.result.dataset.version
    assert trained["epochs"] == 1  # the knob went through the optional $[[--epochs]] segment
    decision = json.loads((Path(outputs["evaluation"]) / "decision.json").read_text())
    assert decision["champion"] is None  # fresh root: judged against the floor, so promoted
    registration = json.loads((Path(outputs["registration"]) / "registration.json").read_text())
    assert registration["registered"] is True and registration["version"] == "1"
    assert registration["model_name"] == f"{smoke_run.result.dataset.name}-detector"
    assert registration["tags"]["git.commit"] not in ("", "unknown")  # GIT_COMMIT passed to every step


def test_no_azure_package_and_no_network_were_needed(local_pipeline):
    lines = local_pipeline["log"].read_text().splitlines()
    armed = [ln for ln in lines if ln.startswith("armed")]
    assert len(armed) >= 6, "the block was not armed in the CLI and every step process"  # cli, register, 4 steps
    assert [ln for ln in lines if ln.startswith("blocked")] == []

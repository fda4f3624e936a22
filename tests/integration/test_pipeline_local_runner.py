"""The Azure ML pipeline's component commands, run locally by the local runner, end to end.

Runs `visionops pipeline run --profile smoke --epochs 1` as a user would, on the smoke session's
registered data set but in a fresh project root (its own MLflow store, so the session's champion
is untouched), with `azure`/`azureml` made unimportable and the network blocked in every
process: local mode needs neither. Then checks that each step wrote what the in-process
lifecycle writes for the same step (same step code, same file layout).
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
    runs = sorted((root / "outputs" / "pipeline_runs").iterdir())
    assert len(runs) == 1
    return {"root": root, "run_dir": runs[0], "log": log, "proc": proc}


def test_every_step_completed_with_the_component_commands(local_pipeline):
    run = json.loads((local_pipeline["run_dir"] / "run.json").read_text())
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
    """Node outputs land in <run>/<node>/<output>/ with the files the same step writes in-process."""
    run_dir, folders = local_pipeline["run_dir"], smoke_run.result.folders
    outputs = {"validate": "report", "train": "model", "evaluate": "evaluation", "register": "registration"}
    for node, output in outputs.items():
        ours = {p.relative_to(run_dir / node / output).as_posix()
                for p in (run_dir / node / output).rglob("*") if p.is_file()}
        theirs = {p.relative_to(folders[node]).as_posix()
                  for p in Path(folders[node]).rglob("*") if p.is_file() and p.name != "request.json"}
        core = {"validate": {"validation.json"}, "train": {"weights/best.pt", "train_result.json"},
                "evaluate": {"decision.json", "evaluation.json"}, "register": {"registration.json"}}[node]
        assert core <= ours and core <= theirs, node
        assert ours == theirs or node == "register", (node, ours ^ theirs)  # register exports ONNX only on promote


def test_same_inputs_reached_the_step_code(local_pipeline, smoke_run):
    run_dir = local_pipeline["run_dir"]
    trained = json.loads((run_dir / "train" / "model" / "train_result.json").read_text())
    assert trained["dataset_version"] == smoke_run.result.dataset.version
    assert trained["epochs"] == 1  # the knob went through the optional $[[--epochs]] segment
    decision = json.loads((run_dir / "evaluate" / "evaluation" / "decision.json").read_text())
    assert decision["champion"] is None  # fresh root: judged against the floor, so promoted
    registration = json.loads((run_dir / "register" / "registration" / "registration.json").read_text())
    assert registration["registered"] is True and registration["version"] == "1"
    assert registration["tags"]["git.commit"] not in ("", "unknown")  # GIT_COMMIT passed to every step


def test_no_azure_package_and_no_network_were_needed(local_pipeline):
    lines = local_pipeline["log"].read_text().splitlines()
    armed = [ln for ln in lines if ln.startswith("armed")]
    assert len(armed) >= 6, "the block was not armed in the CLI and every step process"  # cli, register, 4 steps
    assert [ln for ln in lines if ln.startswith("blocked")] == []

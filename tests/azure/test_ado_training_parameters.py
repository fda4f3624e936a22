"""The Azure DevOps pipelines' parameters reach the commands they run: the training pipeline's
`task`, `dataset` and knobs, the deployment pipeline's `task` and its batch endpoint stage.

Offline: the pipeline is expanded for given parameter values the way Azure DevOps expands
template expressions (`${{ if eq(parameters.x, 'v') }}:` blocks and `${{ parameters.x }}`
values), and each training step's script then runs in bash with `visionops` and `python`
replaced by recorders, so the test sees the exact argv a real agent would run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.azure

_IF = re.compile(r"^\$\{\{\s*if\s+(eq|ne)\(parameters\.(\w+),\s*('?)([^')]*)\3\)\s*\}\}$")
_VALUE = re.compile(r"\$\{\{\s*parameters\.(\w+)\s*\}\}")


def _expand(node, params: dict):
    """Expand conditional insertions and parameter values (the subset this pipeline uses)."""
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, dict) and len(item) == 1 and _IF.match(next(iter(item))):
                op, name, _, value = _IF.match(next(iter(item))).groups()
                actual = str(params[name]).lower() if isinstance(params[name], bool) else str(params[name])
                if (actual == value) == (op == "eq"):
                    out.extend(_expand(next(iter(item.values())), params))
            else:
                out.append(_expand(item, params))
        return out
    if isinstance(node, dict):
        return {k: _expand(v, params) for k, v in node.items()}
    if isinstance(node, str):
        return _VALUE.sub(lambda m: str(params[m.group(1)]), node)
    return node


def _scripts(repo_root: Path, **overrides) -> list[tuple[str, str]]:
    raw = yaml.safe_load((repo_root / "ado_pipelines" / "model_training_pipeline.yml").read_text())
    params = {p["name"]: p["default"] for p in raw["parameters"]}
    params.update(overrides)
    [job] = _expand(raw["jobs"], params)
    return [(s["parameters"]["displayName"], s["parameters"]["script"]) for s in job["steps"]
            if s.get("template") == "templates/azure_ml_step.yml"]


def _run(script: str, tmp_path: Path, **variables: str) -> list[list[str]]:
    """Run the step's script with visionops/python recording their argv (one call a line)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "calls.txt"
    for tool in ("visionops", "python"):
        (bin_dir / tool).write_text(f'#!/bin/bash\nprintf "%s\\x1f" {tool} "$@" >> "{log}"; echo >> "{log}"\n')
        (bin_dir / tool).chmod(0o755)
    script = script.replace("$(outputsDir)", str(tmp_path / "out")).replace(
        "$(metadataFile)", str(tmp_path / "meta" / "model_metadata.json"))
    for name, value in variables.items():
        script = script.replace(f"$({name})", value)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [ln.rstrip("\x1f").split("\x1f") for ln in log.read_text().splitlines()] if log.is_file() else []


def test_default_trains_on_the_synthetic_demo_set(repo_root, tmp_path):
    steps = _scripts(repo_root)
    names = [n for n, _ in steps]
    assert "Generate and register the synthetic demo data set" in names
    [run] = [s for n, s in steps if n == "Run the training pipeline and wait for it"]
    [call] = _run(run, tmp_path)
    assert call[:6] == ["visionops", "pipeline", "run", "--backend", "azure", "--profile"]
    assert "--dataset" not in call and "--epochs" not in call  # the current (just registered) set, profile knobs


def test_a_registered_data_set_and_knobs_reach_the_pipeline(repo_root, tmp_path):
    steps = _scripts(repo_root, dataset="pcb-defects:7", epochs="40", model="yolo11s.yaml", profile="quick", seed="3")
    assert all("generate" not in n.lower() for n, _ in steps)  # no synthetic data when a data set is given
    [run] = [s for n, s in steps if n == "Run the training pipeline and wait for it"]
    [call] = _run(run, tmp_path)
    assert call[call.index("--dataset") + 1] == "pcb-defects:7"
    assert call[call.index("--epochs") + 1] == "40" and call[call.index("--model") + 1] == "yolo11s.yaml"
    assert call[call.index("--profile") + 1] == "quick" and call[call.index("--seed") + 1] == "3"
    assert "--imgsz" not in call and "--batch" not in call and "--patience" not in call


def test_the_notebook_path_gets_the_same_data_set_and_knobs(repo_root, tmp_path):
    steps = _scripts(repo_root, dataset="pcb-defects:7", batch="8", useNotebook=True)
    [nb] = [s for n, s in steps if n == "Notebook 05 on the azure backend"]
    papermill, metadata = _run(nb, tmp_path)
    assert papermill[:3] == ["python", "-m", "papermill"]
    pairs = {papermill[i + 1]: papermill[i + 2] for i, a in enumerate(papermill) if a == "-p"}
    assert pairs == {"backend": "azure", "task": "detect", "dataset": "pcb-defects:7", "batch": "8"}
    assert metadata[:3] == ["visionops", "pipeline", "metadata"]


def test_every_knob_parameter_is_a_training_knob(repo_root):
    """The pipeline's knob parameters are the pipeline's knobs (defined once in components.py), plus
    the seed (a setting every step reads), each an option of `visionops pipeline run`."""
    from typer.main import get_command

    from visionops.cli import app
    from visionops.pipeline.components import PIPELINE_KNOBS

    raw = yaml.safe_load((repo_root / "ado_pipelines" / "model_training_pipeline.yml").read_text())
    names = {p["name"] for p in raw["parameters"]} - {"profile", "useNotebook", "dataset", "task"}
    assert names == set(PIPELINE_KNOBS) | {"seed"}
    run = get_command(app).commands["pipeline"].commands["run"]
    assert names | {"task"} <= {p.name for p in run.params}
    generate = get_command(app).commands["data"].commands["generate"]
    assert "task" in {p.name for p in generate.params}  # the synthetic data set of the task


def test_the_task_reaches_the_training_commands(repo_root, tmp_path):
    steps = dict(_scripts(repo_root, task="classify", profile="smoke"))
    generate, register = _run(steps["Generate and register the synthetic demo data set"], tmp_path / "gen")
    assert generate[:3] == ["visionops", "data", "generate"] and generate[generate.index("--task") + 1] == "classify"
    assert register[:4] == ["visionops", "data", "register", "--backend"]
    assert register[-1] == generate[generate.index("--out") + 1]  # registers what it generated
    [call] = _run(steps["Run the training pipeline and wait for it"], tmp_path / "run")
    assert call[call.index("--task") + 1] == "classify" and call[call.index("--profile") + 1] == "smoke"
    nb = dict(_scripts(repo_root, task="classify", useNotebook=True))["Notebook 05 on the azure backend"]
    papermill, _ = _run(nb, tmp_path / "nb")
    assert {papermill[i + 1]: papermill[i + 2] for i, a in enumerate(papermill) if a == "-p"}["task"] == "classify"


# --- the deployment pipeline ----------------------------------------------------------------------------
def _deployment(repo_root: Path, **overrides) -> list[dict]:
    """The deployment pipeline's stages for these parameter values, stage templates expanded."""
    ado = repo_root / "ado_pipelines"
    raw = yaml.safe_load((ado / "model_deployment_pipeline.yml").read_text())
    params = {p["name"]: p["default"] for p in raw["parameters"]}
    params.update(overrides)
    stages = []
    for stage in _expand(raw["stages"], params):
        if "template" in stage:
            template = yaml.safe_load((ado / stage["template"]).read_text())
            values = {p["name"]: p["default"] for p in template["parameters"]}
            values.update(stage.get("parameters") or {})
            stages.extend(_expand(template["stages"], values))
        else:
            stages.append(stage)
    return stages


def _job_steps(stage: dict) -> list[dict]:
    [job] = stage["jobs"]
    return job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]


def _ml_scripts(stage: dict) -> dict[str, str]:
    return {s["parameters"]["displayName"]: s["parameters"]["script"] for s in _job_steps(stage)
            if str(s.get("template", "")).endswith("azure_ml_step.yml")}


def _variables(tmp_path: Path) -> dict[str, str]:
    return {"Pipeline.Workspace": str(tmp_path / "ws"), "stagedRecord": str(tmp_path / "staged.json")}


def test_the_deployment_smoke_tests_check_the_task(repo_root, tmp_path):
    stages = {s["stage"]: s for s in _deployment(repo_root, task="classify", modelVersion="4")}
    variables = _variables(tmp_path)
    [stage] = _run(_ml_scripts(stages["staging"])["Stage the model and smoke-test it"], tmp_path, **variables)
    assert stage[:3] == ["visionops", "azure", "stage"] and stage[stage.index("--version") + 1] == "4"
    assert stage[stage.index("--task") + 1] == "classify"
    smoke = _ml_scripts(stages["production"])["Smoke-test the endpoint"]
    assert smoke.split() == ["visionops", "azure", "smoke", "--task", "classify"]


def test_the_batch_stage_deploys_then_scores_a_sample_folder(repo_root, tmp_path):
    stages = _deployment(repo_root, modelVersion="7")
    assert [s["stage"] for s in stages] == ["staging", "production", "batch"]
    batch = stages[2]
    assert batch["dependsOn"] == "production"
    scripts = _ml_scripts(batch)
    assert scripts["Deploy the model to the batch endpoint"].count("model_metadata.json") == 1  # else: training's
    variables = _variables(tmp_path)
    [deploy] = _run(scripts["Deploy the model to the batch endpoint"], tmp_path / "deploy", **variables)
    assert deploy == ["visionops", "azure", "batch-deploy", "--version", "7"]
    generate, score = _run(scripts["Score a sample folder with a batch job"], tmp_path / "score", **variables)
    assert generate[:3] == ["visionops", "data", "generate"]
    folder = generate[generate.index("--out") + 1]
    assert score[:3] == ["visionops", "azure", "batch-score"] and "--wait" in score
    assert score[score.index("--images") + 1] == f"{folder}/images/test"
    assert score[score.index("--out") + 1] == str(tmp_path / "score" / "out" / "batch")
    [published] = [s for s in _job_steps(batch) if s.get("task") == "PublishPipelineArtifact@1"]
    assert published["inputs"]["artifact"] == "batch-predictions"
    # a cloud folder is scored as given; the stage can be left out
    cloud = _deployment(repo_root, batchImages="azureml:photos:3")[2]
    [score] = _run(_ml_scripts(cloud)["Score a sample folder with a batch job"], tmp_path / "cloud", **variables)
    assert score[score.index("--images") + 1] == "azureml:photos:3"
    assert [s["stage"] for s in _deployment(repo_root, deployBatch=False)] == ["staging", "production"]


def test_the_commands_the_deployment_runs_have_those_options():
    from typer.main import get_command

    from visionops.cli import app

    azure = get_command(app).commands["azure"].commands
    options = {name: {p.name for p in cmd.params} for name, cmd in azure.items()}
    assert {"version", "runtime", "task", "out"} <= options["stage"]
    assert {"task"} <= options["smoke"] and {"version"} <= options["batch-deploy"]
    assert {"images", "wait", "out"} <= options["batch-score"]

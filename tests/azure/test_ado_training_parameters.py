"""The Azure DevOps training pipeline's `dataset` and knob parameters reach the commands it runs.

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


def _run(script: str, tmp_path: Path) -> list[list[str]]:
    """Run the step's script with visionops/python recording their argv (one call a line)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.txt"
    for tool in ("visionops", "python"):
        (bin_dir / tool).write_text(f'#!/bin/bash\nprintf "%s\\x1f" {tool} "$@" >> "{log}"; echo >> "{log}"\n')
        (bin_dir / tool).chmod(0o755)
    script = script.replace("$(outputsDir)", str(tmp_path / "out")).replace(
        "$(metadataFile)", str(tmp_path / "meta" / "model_metadata.json"))
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
    assert pairs == {"backend": "azure", "dataset": "pcb-defects:7", "batch": "8"}
    assert metadata[:3] == ["visionops", "pipeline", "metadata"]


def test_every_knob_parameter_is_a_training_knob(repo_root):
    """The pipeline's knob parameters are the pipeline's knobs (defined once in components.py), plus
    the seed (a setting every step reads), each an option of `visionops pipeline run`."""
    from typer.main import get_command

    from visionops.cli import app
    from visionops.pipeline.components import PIPELINE_KNOBS

    raw = yaml.safe_load((repo_root / "ado_pipelines" / "model_training_pipeline.yml").read_text())
    names = {p["name"] for p in raw["parameters"]} - {"profile", "useNotebook", "dataset"}
    assert names == set(PIPELINE_KNOBS) | {"seed"}
    run = get_command(app).commands["pipeline"].commands["run"]
    assert names <= {p.name for p in run.params}

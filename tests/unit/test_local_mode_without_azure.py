"""Local mode never needs azure-*: the local backend's data set, pipeline and CLI pieces run in a
process where `azure` and `azureml` cannot be imported (as if the azure extra were missing), and
in a normal process they leave azure-ai-ml and the azure backend unimported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOAZURE = Path(__file__).resolve().parents[1] / "support" / "noazure"

LOCAL_PIECES = """
import json, sys
from visionops.data.dataset import generate_synthetic
from visionops.profiles import get_profile
from visionops.settings import get_settings
from visionops.workspace import get_workspace
import visionops.cli  # every command module loads lazily: the CLI itself must not pull azure in

s = get_settings()
ws = get_workspace(s)
folder = generate_synthetic(get_profile("smoke").data, s.data_dir / "work" / "shapes-smoke", "shapes")
ref = ws.register_dataset(folder)
plan = ws.build_pipeline(ref, "smoke", epochs=1)
published = ws.publish_pipeline()
from visionops.pipeline.steps import validate_step
validate_step(ref.path, s.outputs_dir / "validate")
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in ("azure", "azureml") or m.startswith("visionops.workspace.azure"))
print(json.dumps({"backend": ws.backend, "nodes": [n.name for n in plan.nodes], "published": published.version,
                  "loaded": loaded}))
"""


def _run(tmp_path: Path, block: bool) -> dict:
    env = dict(os.environ, VISIONOPS_ROOT=str(tmp_path), VISIONOPS_BACKEND="local")
    if block:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOAZURE), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", LOCAL_PIECES], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_local_pieces_run_without_any_azure_package(tmp_path):
    out = _run(tmp_path, block=True)
    assert out["backend"] == "local" and out["nodes"] == ["validate", "train", "evaluate", "register"]
    assert out["loaded"] == []
    assert (tmp_path / "outputs" / "validate" / "validation.json").is_file()


def test_local_pieces_leave_the_azure_backend_unimported(tmp_path):
    pytest.importorskip("azure.ai.ml", reason="only meaningful when the azure extra is installed")
    loaded = _run(tmp_path, block=False)["loaded"]
    assert not [m for m in loaded if m.startswith(("azure.ai.ml", "visionops.workspace.azure"))], loaded


def test_the_azure_backend_without_the_extra_says_how_to_install_it(tmp_path):
    env = dict(os.environ, VISIONOPS_ROOT=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOAZURE), env.get("PYTHONPATH", "")]))
    code = ("from visionops.settings import get_settings\nfrom visionops.workspace import get_workspace\n"
            "get_workspace(get_settings(backend='azure'))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "the azure backend needs the azure extra" in proc.stderr and ".[azure]" in proc.stderr

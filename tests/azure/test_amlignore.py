"""What Azure ML uploads as the code snapshot, decided by azure-ai-ml's own ignore-file logic
(`Code` asset -> get_ignore_file -> IgnoreFile; files enumerated as the upload enumerates them),
applied to a temporary copy of the repository layout with everything that must stay home."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from azure.ai.ml._utils._asset_utils import get_upload_files_from_folder
from azure.ai.ml.entities._assets._artifacts.code import Code

pytestmark = pytest.mark.azure

SHIPPED = [  # what a job needs
    "pyproject.toml", "src/visionops/__init__.py", "src/visionops/pipeline/steps.py",
    "src/visionops/pipeline/components/train.yml", "environments/conda/training.yml",
    "notebooks/05_training_pipeline.ipynb",
]
KEPT_HOME = [  # data, outputs, environments, secrets, checkpoints, weights
    "data/catalog/shapes/4112fc229996/images/train/0001.jpg", "data/work/shapes-smoke/labels/train/0001.txt",
    "outputs/mlflow.db", "outputs/runs/train/weights/best.pt", "outputs/notebooks/01_dataset_setup.ipynb",
    ".venv/lib/python3.11/site-packages/torch/__init__.py", ".venv-lock/bin/python",
    ".env", "config.json", "notebooks/.ipynb_checkpoints/05_training_pipeline-checkpoint.ipynb",
    "src/visionops/.ipynb_checkpoints/x-checkpoint.py", "src/visionops/__pycache__/settings.cpython-311.pyc",
    "yolo11n.pt", "runs/detect/train/weights/last.pt", "exports/best.onnx", "mlruns/0/meta.yaml",
    ".ultralytics/Ultralytics/Arial.ttf", ".git/HEAD", "visionops.egg-info/PKG-INFO",
]


def _layout(root: Path, repo_root: Path, relpaths: list[str]) -> None:
    shutil.copy2(repo_root / ".amlignore", root / ".amlignore")
    shutil.copy2(repo_root / "src" / ".amlignore", (root / "src").mkdir(parents=True) or root / "src" / ".amlignore")
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 16)


def _snapshot(folder: Path) -> set[str]:
    code = Code(path=str(folder))  # what command()/components build for `code:`, with its ignore file
    files = get_upload_files_from_folder(folder, ignore_file=code._ignore_file)
    return {Path(src).relative_to(folder.resolve()).as_posix() for src, _ in files}


def test_job_snapshot_keeps_data_outputs_secrets_and_weights_home(tmp_path, repo_root):
    _layout(tmp_path, repo_root, SHIPPED + KEPT_HOME)
    snapshot = _snapshot(tmp_path)
    assert set(SHIPPED) <= snapshot
    leaked = sorted(set(KEPT_HOME) & snapshot)
    assert leaked == [], f"these would be uploaded with every job: {leaked}"


def test_snapshot_hash_ignores_what_is_kept_home(tmp_path, repo_root):
    """Azure ML reuses a code snapshot by content hash: new data or weights must not make a new one."""
    _layout(tmp_path, repo_root, SHIPPED)
    before = Code(path=str(tmp_path))._hash_sha256
    for rel in KEPT_HOME:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"y" * 32)
    assert Code(path=str(tmp_path))._hash_sha256 == before
    (tmp_path / "src" / "visionops" / "pipeline" / "steps.py").write_text("changed")
    assert Code(path=str(tmp_path))._hash_sha256 != before  # a code change is a new snapshot


def test_deployment_snapshot_of_src(tmp_path, repo_root):
    """Online deployments upload src/ (their code configuration); it has its own .amlignore."""
    _layout(tmp_path, repo_root, SHIPPED + KEPT_HOME + ["src/visionops/serving/score.py"])
    snapshot = _snapshot(tmp_path / "src")
    assert {"visionops/serving/score.py", "visionops/__init__.py"} <= snapshot
    assert not any("__pycache__" in p or "checkpoint" in p for p in snapshot)

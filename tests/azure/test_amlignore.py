"""What Azure ML uploads as the code snapshot, decided by azure-ai-ml's own ignore-file logic
(`Code` asset -> get_ignore_file -> IgnoreFile; files enumerated as the upload enumerates them).

Jobs, pipeline steps and deployments all snapshot `src/` (the components' `code:`), so the
repository's data, outputs, virtual environments, notebooks and secrets are never near it; inside
src/, caches, weights, stores and secrets a developer may leave there stay home too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from azure.ai.ml._utils._asset_utils import get_upload_files_from_folder
from azure.ai.ml.entities._assets._artifacts.code import Code

pytestmark = pytest.mark.azure

SHIPPED = [  # what a job and a deployment need
    "visionops/__init__.py", "visionops/cli/steps.py", "visionops/pipeline/steps.py",
    "visionops/pipeline/components/train.yml", "visionops/serving/score.py",
]
KEPT_HOME = [  # left in src/ by a developer: caches, checkpoints, weights, stores, secrets, run outputs
    "visionops/__pycache__/settings.cpython-311.pyc", "visionops/.ipynb_checkpoints/x-checkpoint.py",
    "visionops.egg-info/PKG-INFO", "yolo11n.pt", "exports/best.onnx", "outputs/mlflow.db", "data/work/a.jpg",
    "runs/detect/train/weights/last.pt", "mlruns/0/meta.yaml", ".ultralytics/Ultralytics/Arial.ttf",
    ".env", "config.json",
]


def _layout(src: Path, repo_root: Path, relpaths: list[str]) -> None:
    src.mkdir(parents=True)
    shutil.copy2(repo_root / "src" / ".amlignore", src / ".amlignore")
    for rel in relpaths:
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 16)


def _snapshot(folder: Path) -> set[str]:
    code = Code(path=str(folder))  # what command()/components build for `code:`, with its ignore file
    files = get_upload_files_from_folder(folder, ignore_file=code._ignore_file)
    return {Path(src).relative_to(folder.resolve()).as_posix() for src, _ in files}


def test_the_components_and_deployments_snapshot_src(repo_root):
    from visionops.pipeline.components import load_components
    from visionops.workspace.azure_entities import source_root

    assert {spec.code for spec in load_components().values()} == {repo_root / "src"} == {source_root()}
    assert not (repo_root / ".amlignore").exists()  # nothing snapshots the repository root


def test_snapshot_keeps_caches_weights_stores_and_secrets_home(tmp_path, repo_root):
    _layout(tmp_path / "src", repo_root, SHIPPED + KEPT_HOME)
    snapshot = _snapshot(tmp_path / "src")
    assert set(SHIPPED) <= snapshot
    leaked = sorted(set(KEPT_HOME) & snapshot)
    assert leaked == [], f"these would be uploaded with every job: {leaked}"


def test_snapshot_hash_ignores_what_is_kept_home(tmp_path, repo_root):
    """Azure ML reuses a code snapshot by content hash: new weights or caches must not make a new one."""
    src = tmp_path / "src"
    _layout(src, repo_root, SHIPPED)
    before = Code(path=str(src))._hash_sha256
    for rel in KEPT_HOME:
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"y" * 32)
    assert Code(path=str(src))._hash_sha256 == before
    (src / "visionops" / "pipeline" / "steps.py").write_text("changed")
    assert Code(path=str(src))._hash_sha256 != before  # a code change is a new snapshot

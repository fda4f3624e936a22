"""MLflow set-up shared by training, evaluation and the registry, on either backend.

The local store is sqlite under outputs/; artifacts go to an absolute folder next to it (not
MLflow's default `./mlruns`, which would land in whatever directory a notebook was started from).
On Azure ML, the workspace's tracking URI is used, and inside an Azure ML job the runtime has
already set MLFLOW_TRACKING_URI, which we then leave alone.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from visionops.settings import Settings

_BAD_CHARS = re.compile(r"[^0-9A-Za-z_\-./ ]")


def configure_mlflow(settings: Settings, experiment: str | None = None) -> str:
    """Point MLflow at the settings' store and experiment; returns the experiment id."""
    from visionops import offline

    offline.apply_env(settings.yolo_config_dir)  # telemetry off before MLflow's first call
    import mlflow

    in_azure_job = bool(os.environ.get("AZUREML_RUN_ID")) and bool(os.environ.get("MLFLOW_TRACKING_URI"))
    if not in_azure_job:
        uri = settings.tracking_uri
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
    name = experiment or settings.experiment_name
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if mlflow.get_tracking_uri().startswith("sqlite:"):
            settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
            location = settings.artifacts_dir.as_uri()
        exp_id = client.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def clean_metric_name(name: str) -> str:
    """MLflow (and Azure ML's store) reject some characters Ultralytics uses: drop parentheses,
    keep the rest readable, e.g. 'metrics/mAP50-95(B)' -> 'metrics/mAP50-95B'."""
    return _BAD_CHARS.sub("", name)


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Only real numbers survive: NaN/inf and non-numbers would fail the whole log call."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[clean_metric_name(k)] = f
    return out


def git_commit(root: Path | None = None) -> str:
    """The commit the *code* came from, for lineage tags: the checkout holding this package
    (not the data root, which may live anywhere), or the commit CI names (Azure DevOps'
    BUILD_SOURCEVERSION, GIT_COMMIT in an Azure ML job); 'unknown' when neither exists."""
    if sha := os.environ.get("BUILD_SOURCEVERSION") or os.environ.get("GIT_COMMIT"):
        return sha
    root = Path(root) if root is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        sha = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return "unknown"

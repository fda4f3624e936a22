"""MLflow set-up shared by training, evaluation and the registry, on either backend.

The local store is sqlite under outputs/; artifacts go to an absolute folder next to it (not
MLflow's default `./mlruns`, which would land in whatever directory a notebook was started from).
On Azure ML, the workspace's tracking URI is used, and inside an Azure ML job the runtime has
already set MLFLOW_TRACKING_URI, which we then leave alone.

Two fixed costs of every process that tracks are cut here (measured in benchmarks/bench_overhead.py):
a new sqlite store is copied from a pre-migrated template instead of replaying MLflow's ~60
alembic migrations (seconds, once per workspace), and the git tags MLflow adds to each run are
read with the git command instead of importing GitPython (about a second on a loaded 2-core
machine); the stores and tags that result are the ones MLflow itself would have written.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
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
            db = Path(uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            new_store_from_template(db)
        mlflow.set_tracking_uri(uri)
    prefill_git_context()
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


def store_cache_dir() -> Path:
    """Where the pre-migrated store template lives: VISIONOPS_CACHE_DIR, else the user's cache
    folder, shared by every workspace on the machine (it holds no data, only MLflow's schema)."""
    if explicit := os.environ.get("VISIONOPS_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "visionops"


def store_template() -> Path | None:
    """An empty sqlite MLflow store at the installed MLflow's schema, built once per MLflow version.

    Built by MLflow itself (all of its migrations, exactly as a first use runs them), then the
    Default experiment is removed: MLflow recreates it when it opens a store without one, with
    the artifact folder of *that* store's process, as on a really new store. None when the cache
    folder cannot be written (MLflow then migrates the new store itself, as before)."""
    import mlflow

    template = store_cache_dir() / f"mlflow-{mlflow.__version__}-store.db"
    if template.is_file():
        return template
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=template.parent, prefix=".build-") as tmp:
            db = Path(tmp) / "store.db"
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = SqlAlchemyStore(f"sqlite:///{db}", Path(tmp).as_uri())
            store.engine.dispose()
            with sqlite3.connect(db) as con:
                con.execute("DELETE FROM experiments WHERE experiment_id = 0")
            con.close()
            os.replace(db, template)  # atomic: a concurrent builder's copy is as good as ours
    except OSError:
        return None
    return template


def new_store_from_template(db: Path) -> bool:
    """Create the sqlite store `db` from the template when it does not exist yet; True if copied.

    Never overwrites: the copy is linked into place, which fails when another process created the
    store meanwhile (that store is then used). False leaves the creation to MLflow."""
    if db.exists():
        return False
    template = store_template()
    if template is None:
        return False
    staged = db.with_name(f".{db.name}.{os.getpid()}.new")
    try:
        shutil.copyfile(template, staged)
        os.link(staged, db)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: MLflow creates the store itself
        return False
    finally:
        staged.unlink(missing_ok=True)
    return True


def _git(path: str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def git_context_tags(main_file: str | None) -> dict[str, str | None]:
    """The git tags MLflow's GitRunContext derives from the main file (commit, branch, first
    remote's URL without credentials), read with the git command: the same values, without
    importing GitPython (which MLflow does on every `start_run` for this alone)."""
    from mlflow.utils.git_utils import _strip_credentials_from_url
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL

    if main_file is None:
        return {}
    path = os.path.dirname(os.path.abspath(main_file)) if os.path.isfile(main_file) else main_file
    if not os.path.isdir(path):  # e.g. "-c": MLflow finds no repository either
        return {MLFLOW_GIT_COMMIT: None, MLFLOW_GIT_BRANCH: None, MLFLOW_GIT_REPO_URL: None}
    commit = _git(path, "rev-parse", "HEAD")
    if commit and _git(path, "check-ignore", path):  # MLflow skips code in ignored folders (a venv)
        commit = None
    branch = _git(path, "symbolic-ref", "--short", "-q", "HEAD")  # none when detached, as in MLflow
    remotes = _git(path, "config", "--get-regexp", r"^remote\..*\.url$")
    url = remotes.splitlines()[0].split(" ", 1)[1] if remotes else None
    return {
        MLFLOW_GIT_COMMIT: commit,
        MLFLOW_GIT_BRANCH: branch,
        MLFLOW_GIT_REPO_URL: _strip_credentials_from_url(url) if url else None,
    }


def prefill_git_context() -> bool:
    """Hand MLflow's git run-context provider its answer (see git_context_tags), once per process.

    MLflow caches that answer per process in the provider; we fill the cache the same way. With an
    MLflow whose provider looks different, nothing is filled and MLflow works it out itself."""
    from mlflow.tracking.context.default_context import _get_main_file
    from mlflow.tracking.context.git_context import GitRunContext
    from mlflow.tracking.context.registry import _run_context_provider_registry

    providers = [p for p in _run_context_provider_registry if isinstance(p, GitRunContext)]
    cache = getattr(providers[0], "_cache", None) if providers else None
    if not isinstance(cache, dict) or "git_info" in cache:
        return False
    cache["git_info"] = git_context_tags(_get_main_file())
    return True


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

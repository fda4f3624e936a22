"""The fixed per-process cost cuts keep what is tracked (issue 14): a new MLflow store copied from
the pre-migrated template is the store MLflow would have made, MLflow's git tags come out the
same without GitPython, per-epoch logging survives multi-GPU pickling, `train()` copes with
Ultralytics' DDP return value, and the GPU-only start-up checks stay off the network.
(Behaviour only; bench_overhead.py measures the time.)"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from visionops import tracking


def _schema(db: Path) -> dict[str, list[str]]:
    """Each table's and index's definition as a sorted list of clauses: MLflow's own migrations
    emit a table's CHECK constraints in a different order from one run to the next."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()
    con.close()
    return {name: sorted(line.strip().rstrip(",").strip() for line in sql.splitlines()) for name, sql in rows}


def _one(db: Path, query: str):
    with sqlite3.connect(db) as con:
        row = con.execute(query).fetchall()
    con.close()
    return row


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("VISIONOPS_CACHE_DIR", str(path))
    return path


def test_store_from_template_is_the_store_mlflow_makes(tmp_path, cache_dir, monkeypatch):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    monkeypatch.chdir(tmp_path)  # MLflow puts the Default experiment's artifacts under the cwd
    own = tmp_path / "own" / "mlflow.db"
    own.parent.mkdir()
    SqlAlchemyStore(f"sqlite:///{own}", "./mlruns").engine.dispose()  # MLflow's own first use: every migration

    ours = tmp_path / "ours" / "mlflow.db"
    ours.parent.mkdir()
    assert tracking.new_store_from_template(ours) is True
    assert (cache_dir / next(p.name for p in cache_dir.iterdir())).is_file()
    assert _one(ours, "SELECT count(*) FROM experiments") == [(0,)]  # Default is made by the store's own first open
    SqlAlchemyStore(f"sqlite:///{ours}", "./mlruns").engine.dispose()

    assert _schema(ours) == _schema(own)
    assert _one(ours, "SELECT version_num FROM alembic_version") == _one(own, "SELECT version_num FROM alembic_version")
    query = "SELECT experiment_id, name, artifact_location, lifecycle_stage, workspace FROM experiments"
    assert _one(ours, query) == _one(own, query)
    assert _one(ours, "SELECT name FROM workspaces") == _one(own, "SELECT name FROM workspaces")


def test_configure_mlflow_uses_the_template_and_never_replaces_a_store(tmp_path, cache_dir):
    import mlflow

    from visionops.settings import get_settings

    first = get_settings(root=tmp_path / "ws1")
    exp_id = tracking.configure_mlflow(first)
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_param("kept", "yes")
    db = first.outputs_dir / "mlflow.db"
    assert tracking.new_store_from_template(db) is False  # exists: left alone
    assert tracking.configure_mlflow(first) == exp_id
    assert mlflow.get_run(run.info.run_id).data.params == {"kept": "yes"}
    assert not list(db.parent.glob(".mlflow.db.*"))  # no staged copy left behind

    second = get_settings(root=tmp_path / "ws2")  # a new workspace: a copy of the template, its own experiment
    exp2 = tracking.configure_mlflow(second)
    assert mlflow.get_experiment(exp2).artifact_location == second.artifacts_dir.as_uri()


def test_no_writable_cache_means_mlflow_creates_the_store(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("VISIONOPS_CACHE_DIR", str(blocker / "cache"))
    assert tracking.store_template() is None
    assert tracking.new_store_from_template(tmp_path / "mlflow.db") is False
    assert not (tmp_path / "mlflow.db").exists()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "feature/x")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _git(repo, "remote", "add", "origin", "https://user:secret-token@example.com/team/project.git")
    (repo / ".gitignore").write_text("venv/\n")
    (repo / "train.py").write_text("print('hi')\n")
    (repo / "venv").mkdir()
    (repo / "venv" / "tool.py").write_text("")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    return repo


def test_git_tags_match_what_mlflow_reads_with_gitpython(repo, tmp_path, monkeypatch):
    from mlflow.tracking.context.git_context import _resolve_git_info

    outside = tmp_path / "outside.py"
    outside.write_text("")
    for main_file in (repo / "train.py", repo / "venv" / "tool.py", outside, "-c"):
        monkeypatch.setattr(sys, "argv", [str(main_file)])
        assert tracking.git_context_tags(str(main_file)) == _resolve_git_info(), main_file
    tags = tracking.git_context_tags(str(repo / "train.py"))
    assert tags["mlflow.source.git.repoURL"] == "https://example.com/team/project.git"  # no credentials
    assert tags["mlflow.source.git.branch"] == "feature/x" and len(tags["mlflow.source.git.commit"]) == 40


def test_runs_carry_mlflows_git_tags_without_importing_gitpython(repo, tmp_path):
    script = repo / "train.py"
    script.write_text(
        "import json, sys\n"
        "from visionops.settings import get_settings\n"
        "from visionops.tracking import configure_mlflow\n"
        "import mlflow\n"
        f"configure_mlflow(get_settings(root={str(tmp_path / 'ws')!r}))\n"
        "with mlflow.start_run() as run:\n"
        "    pass\n"
        "tags = mlflow.get_run(run.info.run_id).data.tags\n"
        "print(json.dumps({'gitpython': 'git' in sys.modules, 'tags': tags}))\n"
    )
    _git(repo, "commit", "-qam", "script")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["gitpython"] is False
    assert out["tags"]["mlflow.source.git.commit"] == head
    assert out["tags"]["mlflow.source.git.branch"] == "feature/x"
    assert out["tags"]["mlflow.source.name"] == str(script)


class _FakeTrainer:
    """What the epoch logger reads from Ultralytics' trainer."""

    tloss = None
    lr = {"lr/pg0": 0.01}

    def __init__(self, map50_95: float):
        self.metrics = {"metrics/mAP50-95(B)": map50_95, "metrics/mAP50(B)": 0.9}

    def label_loss_items(self, loss, prefix="train"):
        return {f"{prefix}/box_loss": 1.5}


def test_epoch_logger_survives_pickling_and_logs_once_per_epoch_on_rank_zero(fresh_settings, monkeypatch):
    import cloudpickle
    import mlflow

    from visionops.training import _epoch_logger

    exp = tracking.configure_mlflow(fresh_settings)
    with mlflow.start_run(experiment_id=exp) as run:
        run_id = run.info.run_id
    # Ultralytics' DDP launcher pickles the callbacks into each GPU's process with cloudpickle
    callbacks = cloudpickle.loads(cloudpickle.dumps(_epoch_logger(mlflow.get_tracking_uri(), run_id)))
    for epoch in range(2):
        callbacks["on_train_epoch_end"](_FakeTrainer(0.1 * (epoch + 1)))
        callbacks["on_fit_epoch_end"](_FakeTrainer(0.1 * (epoch + 1)))
    callbacks["on_fit_epoch_end"](_FakeTrainer(0.9))  # Ultralytics' final validation: no third epoch
    other_rank = _epoch_logger(mlflow.get_tracking_uri(), run_id)
    monkeypatch.setenv("RANK", "1")
    other_rank["on_train_epoch_end"](_FakeTrainer(0.5))
    other_rank["on_fit_epoch_end"](_FakeTrainer(0.5))

    history = mlflow.MlflowClient().get_metric_history(run_id, "map50_95")
    assert [(m.step, round(m.value, 3)) for m in history] == [(1, 0.1), (2, 0.2)]
    names = set(mlflow.get_run(run_id).data.metrics)
    assert {"map50_95", "map50", "train_box_loss", "lr_pg0", "metrics/mAP50-95B"} <= names


RESULTS_CSV = (
    "                  epoch,         train/box_loss,   metrics/mAP50(B),  metrics/mAP50-95(B)\n"
    "                      1,                 2.0,             0.30,             0.10\n"
    "                      2,                 1.8,             0.50,             0.25\n"
    "                      3,                 1.7,             0.45,             0.20\n"
)


class _DDPParentYOLO:
    """Ultralytics' YOLO as the launching process sees it under multi-GPU DDP: the epochs ran in
    child processes, which wrote best.pt and results.csv; this trainer never validated, and
    `train()` returns best.pt's train_metrics dict (or None)."""

    returned: dict | None = None

    def __init__(self, source):
        self.source = source

    def add_callback(self, event, fn):
        pass

    def train(self, **kwargs):
        save_dir = Path(kwargs["project"]) / kwargs["name"]
        (save_dir / "weights").mkdir(parents=True)
        (save_dir / "weights" / "best.pt").write_bytes(b"best weights")
        (save_dir / "results.csv").write_text(RESULTS_CSV)
        self.trainer = SimpleNamespace(save_dir=save_dir, metrics=None, epoch=0, ddp=True)
        return self.returned


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": 0.25, "fitness": 0.27}, 0.25),  # best.pt's train_metrics
        (None, 0.20),  # no checkpoint metrics: results.csv's last epoch
    ],
)
def test_train_reads_metrics_when_ultralytics_returns_a_ddp_dict_or_none(fresh_settings, monkeypatch, returned,
                                                                         expected):
    import mlflow
    import ultralytics

    from visionops.data.dataset import generate_synthetic
    from visionops.profiles import get_profile
    from visionops.training import train
    from visionops.workspace import get_workspace

    prof = get_profile("smoke")
    folder = generate_synthetic(prof.data, fresh_settings.data_dir / "work" / "ddp", "ddp")
    ref = get_workspace(fresh_settings).register_dataset(folder, "ddp")
    monkeypatch.setattr(_DDPParentYOLO, "returned", returned)
    monkeypatch.setattr(ultralytics, "YOLO", _DDPParentYOLO)

    result = train(ref, prof.train, fresh_settings.model_copy(update={"device": "cpu", "threads": 1}), profile="smoke")

    assert result.epochs == 3
    assert result.metrics["map50_95"] == pytest.approx(expected)
    run = mlflow.get_run(result.run_id)
    assert run.data.metrics["final_map50_95"] == pytest.approx(expected)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "train")}
    assert {"train/results.csv", "train/result.json"} <= artifacts


def test_gpu_start_up_checks_stay_off_the_network(tmp_path, netblocked_env):
    """Ultralytics' check_amp downloads yolo26n.pt on a GPU and check_font fetches Arial.ttf; after
    offline.configure neither tries the network (any attempt is blocked and logged)."""
    log = tmp_path / "net.log"
    code = (
        "import torch\n"
        "from visionops import offline\n"
        f"offline.configure({str(tmp_path / 'yolo')!r}, threads=1)\n"
        "import ultralytics.utils.downloads as dl\n"
        "def no_download(*a, **k):\n"
        "    raise AssertionError('download attempted')\n"
        "dl.attempt_download_asset = dl.safe_download = no_download\n"
        "from ultralytics.utils.checks import check_font\n"
        "assert check_font('Arial.ttf').name == 'Arial.ttf'\n"
        "assert check_font('Arial.Unicode.ttf').name == 'Arial.Unicode.ttf'\n"
        "import types\n"
        "import ultralytics.engine.trainer as trainer\n"
        "m = types.SimpleNamespace(parameters=lambda: iter([types.SimpleNamespace(device=torch.device('cuda', 0))]))\n"
        "torch.cuda.get_device_name = lambda device=None: 'NVIDIA H100 80GB HBM3'\n"
        "assert trainer.check_amp(m) is True\n"
        "torch.cuda.get_device_name = lambda device=None: 'NVIDIA GeForce GTX 1660'\n"
        "assert trainer.check_amp(m) is False\n"
        "print('OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=netblocked_env(log), capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
    lines = log.read_text().splitlines()
    assert any(line.startswith("armed") for line in lines)  # the block was active
    assert not [line for line in lines if line.startswith("blocked")]


def test_exit_now_runs_exit_handlers_and_flushes_output(tmp_path):
    """offline.exit_now skips the interpreter's teardown only: atexit handlers (MLflow ends its
    run there), buffered output and the exit code all survive."""
    marker = tmp_path / "handler-ran"
    code = (
        "import atexit, sys\n"
        "from visionops import offline\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "sys.stdout.write('x' * 100000)\n"
        "print('last line', file=sys.stderr)\n"
        "offline.exit_now(3)\n"
        "print('never reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 3
    assert proc.stdout == "x" * 100000
    assert proc.stderr.strip() == "last line"
    assert marker.read_text() == "yes"

"""The local sweep on the smoke data set against a real MLflow sqlite store and Optuna study:
3 trials (MLflow parent and children, per-epoch metrics, best params recorded, the gate), then
`visionops sweep --trials 1` as a user runs it, network blocked, which resumes the same study."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
optuna = pytest.importorskip("optuna", reason="optuna comes with the full extra")

EPOCHS = 2


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweep-root")


@pytest.fixture(scope="module")
def settings(sweep_root):
    from visionops.settings import get_settings

    return get_settings(root=sweep_root)


@pytest.fixture(scope="module")
def first(settings):
    from visionops.sweep.local import run_sweep

    return run_sweep(settings, 3, profile="smoke", knobs={"epochs": EPOCHS})


@pytest.fixture(scope="module")
def resumed(first, sweep_root, netblocked_env):
    """The same sweep again through the CLI (same data set, profile, space and epochs)."""
    from visionops.sweep.local import SWEEP_JSON, SWEEPS_DIR, SweepResult

    log = sweep_root / "netblock-sweep.log"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("visionops")), "sweep", "--trials", "1", "--profile", "smoke",
         "--epochs", str(EPOCHS)],
        env=netblocked_env(log, VISIONOPS_ROOT=str(sweep_root)), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"sweep failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    lines = log.read_text().splitlines()
    assert any(ln.startswith("armed") for ln in lines)  # the block was active...
    assert [ln for ln in lines if ln.startswith("blocked")] == []  # ...and nothing tried the network
    path = sweep_root / "outputs" / SWEEPS_DIR / first.study_name / SWEEP_JSON
    return SweepResult.model_validate_json(path.read_text()), proc.stdout


def test_each_trial_is_an_mlflow_child_run_of_one_parent(first, settings):
    import mlflow

    client = mlflow.MlflowClient()
    parent = client.get_run(first.parent_run_id)
    assert parent.data.tags["visionops.stage"] == "sweep" and parent.data.tags["sweep.study"] == first.study_name
    assert parent.data.params["space.lr0"] == "loguniform(0.0005, 0.02)"
    assert [t.number for t in first.trials] == [0, 1, 2] and first.new_trials == 3
    for trial in first.trials:
        assert trial.state in ("COMPLETE", "PRUNED")
        child = client.get_run(trial.run_id)
        assert child.data.tags["mlflow.parentRunId"] == first.parent_run_id
        assert child.data.tags["sweep.trial"] == str(trial.number)
        assert child.data.params["lr0"] == str(trial.params["lr0"])  # the drawn value trained
        assert child.data.params["momentum"] == str(trial.params["momentum"])
        history = client.get_metric_history(trial.run_id, "map50_95")
        assert [m.step for m in history] == list(range(1, trial.epochs + 1))


def test_the_best_trial_is_recorded_on_the_parent_and_in_the_study(first, settings):
    import mlflow

    from visionops.sweep.local import optuna_storage

    study = optuna.load_study(study_name=first.study_name, storage=optuna_storage(settings))
    assert study.best_trial.number == first.best.number and study.best_trial.params == first.best.params
    tags = mlflow.MlflowClient().get_run(first.parent_run_id).data.tags
    assert tags["best.trial"] == str(first.best.number) and tags["best.run_id"] == first.best.run_id
    for name, value in first.best.params.items():
        assert tags[f"best.{name}"] == str(value)
    trials = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=first.parent_run_id, artifact_path="sweep/trials.json")).read_text())
    assert [t["number"] for t in trials] == [0, 1, 2]


def test_the_best_trial_went_through_the_gate_with_the_sweep_in_its_lineage(first, settings):
    from visionops import registry

    assert first.evaluation is not None and first.evaluation["train_run_id"] == first.best.run_id
    assert first.evaluation["decision"] == "promote"  # no champion yet; the smoke floor is 0
    reg = first.registration
    assert reg is not None and reg.registered
    version = registry.get_version(settings, reg.version, reg.model_name)
    assert version.is_production and version.tags["train.run_id"] == first.best.run_id
    assert version.tags["sweep.parent_run_id"] == first.parent_run_id
    assert version.tags["sweep.study"] == first.study_name


def test_running_the_sweep_again_adds_trials_to_the_same_study(first, resumed, settings):
    import mlflow

    again, stdout = resumed
    assert again.study_name == first.study_name and again.parent_run_id == first.parent_run_id
    assert [t.number for t in again.trials] == [0, 1, 2, 3] and again.new_trials == 1
    assert [t.params for t in again.trials[:3]] == [t.params for t in first.trials]  # kept, not redone
    assert again.trials[3].params != again.trials[0].params
    experiment = mlflow.get_experiment_by_name(settings.experiment_name).experiment_id
    children = mlflow.MlflowClient().search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{first.parent_run_id}'")
    assert len(children) == 4
    assert again.evaluation is not None and again.registration is not None  # the gate ran again
    assert "best trial" in stdout and first.study_name in stdout


def test_each_trial_reports_one_step_per_epoch_to_the_study(first, settings):
    """No phantom step for Ultralytics' final validation of best.pt (it calls on_fit_epoch_end
    once more, numbered epochs + 1)."""
    from visionops.sweep.local import optuna_storage

    study = optuna.load_study(study_name=first.study_name, storage=optuna_storage(settings))
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == list(range(1, trial.user_attrs["epochs"] + 1))


def test_the_final_validation_call_is_not_an_epoch_and_cannot_prune_a_finished_trial():
    """Ultralytics 8.4's sequence: on_fit_epoch_end after each epoch (trainer.stop set on the
    last), then once more for best.pt's validation with trainer.epoch bumped to epochs + 1.
    Reported, that call would be a step the finished trials reached and a trial that trained to
    the end could be pruned on it."""
    from types import SimpleNamespace

    from visionops.sweep.local import EpochPruner

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    earlier = study.ask()
    for step, value in {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.9}.items():  # a run that logged the phantom step 4
        earlier.report(value, step)
    study.tell(earlier, 0.9)

    trial = study.ask()
    pruner = EpochPruner(trial, "map50_95")
    trainer = SimpleNamespace(epoch=0, metrics={}, stop=False)
    for epoch, value in enumerate((0.4, 0.5, 0.6)):  # above the median at every real epoch
        trainer.epoch, trainer.stop = epoch, epoch == 2
        trainer.metrics = {"metrics/mAP50-95(B)": value}
        pruner(trainer)
    trainer.epoch += 1  # the final validation of best.pt
    pruner(trainer)
    assert pruner.pruned_at is None
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {1: 0.4, 2: 0.5, 3: 0.6}


def test_a_sweep_without_pruning_still_records_each_trials_curve(tmp_path):
    """The study keeps every trial's per-epoch metric with pruning off too (the NopPruner never
    prunes), so Optuna's intermediate-values plot and pruned-vs-unpruned comparisons have data."""
    from visionops.settings import get_settings
    from visionops.sweep.local import optuna_storage, run_sweep

    settings = get_settings(root=tmp_path)
    result = run_sweep(settings, 1, profile="smoke", knobs={"epochs": EPOCHS}, pruning=False, gate=False)
    study = optuna.load_study(study_name=result.study_name, storage=optuna_storage(settings))
    assert result.trials[0].state == "COMPLETE"
    assert sorted(study.trials[0].intermediate_values) == list(range(1, EPOCHS + 1))

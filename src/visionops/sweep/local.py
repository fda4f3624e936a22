"""The local sweep: Optuna over the search space, one MLflow child run per trial, the best trial
through the champion/challenger gate.

- **Sampling**: Optuna's TPE sampler (a Bayesian optimiser: a different algorithm from Azure ML's
  `bayesian`, the same idea). **Trial 0 is the baseline**: the profile's own configuration,
  enqueued, so the best trial is at least what training without a sweep gives (on validation)
  and the pruner has a real reference from the first finished trial.
- **Pruning**: Optuna's MedianPruner, fed each epoch's value of the space's `prune_on` (default:
  its metric) by an Ultralytics `on_fit_epoch_end` callback; a pruned trial sets `trainer.stop`,
  so Ultralytics ends training after that epoch (its final validation of best.pt still runs).
  The detection space prunes on `val_loss`: a model trained from scratch scores mAP 0 for its
  first epochs, and a median of zeros prunes nothing (docs/benchmarks.md, Sweep).
  `model.tune()` is not used: its genetic search neither prunes nor draws from log or
  categorical ranges, so it could not mirror the Azure ML space.
- **Tracking**: one MLflow parent run per study (`sweep-<study>`); each trial is the usual
  training run (`visionops.training.train`: params, per-epoch metrics, weights) made a child of it
  with the `mlflow.parentRunId` tag. The parent records the space, then the best trial's params
  (tags `best.<knob>`), value and run id, and `sweep/trials.json`.
- **Resumable**: the study lives in `<outputs>/optuna.db` (sqlite, beside MLflow's `mlflow.db`)
  under a name derived from data set, profile and space, so running the same sweep again adds
  trials to it (and to the same parent run) instead of starting over.
- **The gate**: the best completed trial's folder has the train step's layout
  (`weights/best.pt`, `train_result.json`), so `Runner.evaluate` scores it against the champion on
  the frozen test split and `Runner.register` registers it only on promote; the registered
  version is then tagged with the sweep's parent run id (`sweep.parent_run_id`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.data.catalog import DatasetRef
from visionops.data.dataset import ref_from_folder
from visionops.errors import ConfigError, TrainingError, VisionOpsError
from visionops.hashing import value_digest
from visionops.pipeline.steps import TRAIN_JSON, RegistrationResult
from visionops.profiles import TrainSpec, get_profile
from visionops.runner import Say
from visionops.settings import Settings
from visionops.sweep.space import (
    ChoiceParam,
    LogUniformParam,
    RandintParam,
    SearchSpace,
    UniformParam,
    load_space,
    profile_knobs,
    space_summary,
)
from visionops.training import TrainResult, check_model_source, clean_metrics, task_training, train

SWEEPS_DIR = "sweeps"
OPTUNA_DB = "optuna.db"
SWEEP_JSON = "sweep.json"
PARENT_ATTR = "mlflow_parent_run_id"



class TrialRecord(BaseModel):
    """One trial as the study and MLflow know it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING
    params: dict[str, Any]
    value: float | None = None
    run_id: str | None = None
    epochs: int | None = None  # epochs actually trained (fewer when pruned)
    duration_s: float | None = None
    folder: str | None = None
    baseline: bool = False  # the profile's own configuration (the study's first trial)


class SweepResult(BaseModel):
    """What one `visionops sweep` did: the whole study so far, its best trial and the gate."""

    study_name: str
    storage: str
    parent_run_id: str
    dataset: DatasetRef
    profile: str
    metric: str
    goal: str
    new_trials: int
    trials: list[TrialRecord]
    best: TrialRecord
    evaluation: dict[str, Any] | None = None
    registration: RegistrationResult | None = None
    duration_s: float

    @property
    def pruned(self) -> int:
        return sum(t.state == "PRUNED" for t in self.trials)


def optuna_storage(settings: Settings) -> str:
    """The study's sqlite database, beside the local MLflow store (outputs/mlflow.db)."""
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.outputs_dir / OPTUNA_DB}"


def study_name_for(dataset: DatasetRef, profile: str, space: SearchSpace, knobs: dict[str, Any] | None = None) -> str:
    """Same data set version, profile, fixed knobs and space -> same study (so a rerun resumes it)."""
    digest = value_digest({"space": space.model_dump(mode="json"), "knobs": knobs or {}})[:8]
    return f"{dataset.name}-{dataset.version}-{profile}-{digest}"


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Draw one value per knob with the Optuna call that matches its distribution."""
    params: dict[str, Any] = {}
    for name, p in space.parameters.items():
        if isinstance(p, ChoiceParam):
            params[name] = trial.suggest_categorical(name, p.values)
        elif isinstance(p, LogUniformParam):
            params[name] = trial.suggest_float(name, p.low, p.high, log=True)
        elif isinstance(p, UniformParam):
            params[name] = trial.suggest_float(name, p.low, p.high)
        elif isinstance(p, RandintParam):
            params[name] = trial.suggest_int(name, 0, p.upper - 1)  # Azure ML's Randint excludes upper
        else:  # a new Param type must say how Optuna draws it
            raise TypeError(f"no Optuna mapping for {type(p).__name__}")
    return params


# Ultralytics' optimizer="auto" ignores lr0 and momentum (it picks both itself), so a trial that
# draws them trains with this instead: what "auto" picks for runs under 10,000 iterations.
SWEEP_OPTIMIZER = "AdamW"
OPTIMIZER_KNOBS = ("lr0", "momentum")


def trial_spec(profile: str, base_knobs: dict[str, Any], params: dict[str, Any], task: str | None = None) -> TrainSpec:
    """The (task's) profile's training spec with the fixed knobs, then the trial's values, applied.

    A draw of lr0 or momentum under optimizer="auto" would be silently ignored by Ultralytics
    (every trial the same schedule, the sweep a lie), so such a trial names the optimizer."""
    base = get_profile(profile, task, **base_knobs).train
    knobs = {**base_knobs, **profile_knobs(params, base)}
    spec = get_profile(profile, task, **knobs).train
    if spec.optimizer.lower() == "auto" and any(k in params for k in OPTIMIZER_KNOBS):
        spec = spec.model_copy(update={"optimizer": SWEEP_OPTIMIZER})
    return spec


def ultralytics_defaults() -> dict[str, Any]:
    """Ultralytics' default training arguments (its `cfg/default.yaml`), read without importing
    Ultralytics: the import checks whether it is online (DNS lookups, a font download) unless
    visionops.offline has set it up, which only training does."""
    import importlib.util

    import yaml

    found = importlib.util.find_spec("ultralytics")
    if found is None or not found.submodule_search_locations:
        raise VisionOpsError("ultralytics is not installed; install the full extra (make setup)")
    folder = Path(next(iter(found.submodule_search_locations)))
    return yaml.safe_load((folder / "cfg" / "default.yaml").read_text(encoding="utf-8"))


def baseline_params(profile: str, base_knobs: dict[str, Any], space: SearchSpace, task: str | None = None,
                    ) -> tuple[dict[str, Any] | None, str]:
    """The profile's own configuration as a point of the space (the study's first trial), or
    (None, why not) when one of its values lies outside the space.

    Trial 0 is the configuration a user would train without a sweep: its curve is the pruner's
    first reference (a trial that falls behind it is cut), and the sweep's best can only match or
    beat it on the validation split. Values the profile leaves to Ultralytics come from
    Ultralytics' defaults (`optimizer="auto"` leaves lr0 and momentum to itself: then the
    configuration has no point in a space that draws them)."""
    defaults = ultralytics_defaults()
    spec = get_profile(profile, task, **base_knobs).train
    args = spec.ultralytics_args()
    params: dict[str, Any] = {}
    for name, param in space.parameters.items():
        if name == "model":
            value: Any = spec.model
        elif name in OPTIMIZER_KNOBS and spec.optimizer.lower() == "auto":
            return None, f"the profile trains with optimizer=auto, which picks {name} itself"
        else:
            value = args.get(name, defaults.get(name))
        if value is None:
            return None, f"the profile has no value for {name}"
        if isinstance(param, ChoiceParam):
            match = [v for v in param.values if v == value]
            if not match:
                return None, f"its {name} {value!r} is not one of the choices {param.values}"
            value = match[0]
        elif isinstance(param, RandintParam):
            if not (isinstance(value, int) and 0 <= value < param.upper):
                return None, f"its {name} {value!r} is outside randint(0..{param.upper - 1})"
        elif not (param.low <= float(value) <= param.high):
            return None, f"its {name} {value!r} is outside [{param.low:g}, {param.high:g}]"
        else:
            value = float(value)
        params[name] = value
    return params, ""


class EpochPruner:
    """An Ultralytics `on_fit_epoch_end` callback reporting each epoch's metric to the trial and
    stopping training when the pruner says so (Ultralytics breaks out after that epoch).

    Ultralytics fires the event once more after training, for the final validation of best.pt,
    numbered epochs + 1 (8.4: "log best metrics at step epochs+1"). That call is not an epoch:
    reported, it would add a phantom step, and a trial trained to the end could be pruned after
    it, its full cost paid and its result thrown away. Training only ends after an epoch whose
    call saw `trainer.stop` set (last epoch, early stopping, time limit, pruning), so every call
    after such a one is the final validation and is ignored."""

    def __init__(self, trial: Any, metric: str, names: Mapping[str, str] | None = None, *, flip: bool = False):
        self.trial = trial
        self.metric = metric
        self.names = names  # Ultralytics' metric keys -> ours, the task's (None: detection's)
        # a signal that improves the other way than the study's goal (a loss in a study that
        # maximises mAP) is reported negated: the median pruner compares in the study's direction
        self.sign = -1.0 if flip else 1.0
        self.reported: set[int] = set()
        self.pruned_at: int | None = None
        self.training_over = False

    def __call__(self, trainer: Any) -> None:
        if self.training_over or self.pruned_at is not None:
            return
        self.training_over = bool(getattr(trainer, "stop", False))  # this epoch is the last one
        epoch = int(trainer.epoch) + 1
        if epoch in self.reported:
            return
        value = (clean_metrics(dict(trainer.metrics), self.names) if self.names is not None
                 else clean_metrics(dict(trainer.metrics))).get(self.metric)
        if value is None:
            return
        self.reported.add(epoch)
        self.trial.report(self.sign * value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            trainer.stop = True


def _write_trial_folder(result: TrainResult, folder: Path) -> TrainResult:
    """The train step's layout (weights/best.pt, train_result.json), which Runner.evaluate reads."""
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    shutil.copy2(result.weights, folder / "weights" / "best.pt")
    result = result.model_copy(update={"weights": folder / "weights" / "best.pt"})
    (folder / TRAIN_JSON).write_text(result.model_dump_json(indent=2))
    return result


class LocalSweep:
    """A study on one data set with one profile; `run(n)` adds n trials, then gates the best."""

    def __init__(
        self,
        settings: Settings,
        *,
        profile: str = "quick",
        dataset: str | DatasetRef | None = None,
        space: SearchSpace | Path | str | None = None,
        knobs: dict[str, Any] | None = None,
        study_name: str | None = None,
        pruning: bool = True,
        pruner_startup_trials: int = 1,
        pruner_warmup_epochs: int = 1,
        baseline: bool = True,
        on_step: Say | None = None,
    ):
        from visionops.profiles import get_profile
        from visionops.runner import Runner

        self.knobs = {k: v for k, v in (knobs or {}).items() if v is not None}
        self.profile = profile
        self.say: Say = on_step or (lambda step, msg: None)
        self.runner = Runner(settings, profile, self.knobs, on_step=self.say)
        self.dataset = dataset if isinstance(dataset, DatasetRef) else self.runner.dataset(dataset)
        self.runner.adopt(self.dataset)
        # the data set's task picks the default space, the profile's budget and the metric names
        self.task = self.dataset.task
        self.space = space if isinstance(space, SearchSpace) else load_space(space, task=self.task)
        if self.space.task != self.task:
            raise ConfigError(f"the search space is for task {self.space.task!r} (metric {self.space.metric}) but "
                              f"{self.dataset.name}:{self.dataset.version} is a {self.task!r} data set; use that "
                              "task's space (the default one, or a YAML with `task:` set)")
        budget = get_profile(profile, self.task).sweep
        if "epochs" not in self.knobs and budget.trial_epochs:  # the profile's trial length
            self.knobs["epochs"] = budget.trial_epochs
            self.runner = Runner(settings, profile, self.knobs, on_step=self.say, task=self.task)
        self.budget = budget
        self.settings = self.runner.settings_for(self.dataset)
        self.study_name = study_name or study_name_for(self.dataset, profile, self.space, self.knobs)
        self.pruning = pruning
        self.pruner_startup_trials = pruner_startup_trials
        self.pruner_warmup_epochs = pruner_warmup_epochs
        self.baseline = baseline
        self.folder = settings.outputs_dir / SWEEPS_DIR / self.study_name

    # --- the study ---------------------------------------------------------------------------
    def study(self) -> Any:
        """The study (created, or loaded to resume), its sampler seeded past the trials it has,
        so resumed trials do not redraw the first ones' values."""
        import optuna

        pruner = (optuna.pruners.MedianPruner(n_startup_trials=self.pruner_startup_trials,
                                              n_warmup_steps=self.pruner_warmup_epochs)
                  if self.pruning else optuna.pruners.NopPruner())
        study = optuna.create_study(study_name=self.study_name, storage=optuna_storage(self.settings),
                                    direction=self.space.goal, load_if_exists=True, pruner=pruner)
        if study.direction.name.lower() != self.space.goal:
            raise VisionOpsError(f"study {self.study_name} in {optuna_storage(self.settings)} "
                                 f"{study.direction.name.lower()}s, the space says {self.space.goal}; "
                                 "pass another --study name")
        study.sampler = optuna.samplers.TPESampler(seed=self.settings.seed + len(study.trials))
        if self.baseline and not study.trials:
            params, why = baseline_params(self.profile, self.knobs, self.space, self.task)
            if params is None:
                self.say("sweep", f"no baseline trial: {why}; every trial is drawn")
            else:
                study.enqueue_trial(params, user_attrs={"baseline": True})
                self.say("sweep", f"trial 0 is the profile's own configuration {json.dumps(params, default=str)}")
        return study

    def check_models(self) -> None:
        """Every model the space (or the profile) can train exists on disk or in Ultralytics:
        a typo fails now, not at the trial that happens to draw it."""
        choice = self.space.parameters.get("model")
        models = list(choice.values) if isinstance(choice, ChoiceParam) else [None]
        for model in models:
            check_model_source(trial_spec(self.profile, self.knobs, {} if model is None else {"model": model},
                                          self.task))

    def _parent_run(self, study: Any) -> str:
        """The sweep's MLflow parent run: the study's own when it has one (resume), else a new one."""
        import mlflow
        from mlflow.exceptions import MlflowException

        from visionops.tracking import configure_mlflow, git_commit

        exp_id = configure_mlflow(self.settings)
        client = mlflow.MlflowClient()
        known = study.user_attrs.get(PARENT_ATTR)
        if known:
            try:
                client.get_run(known)
                client.update_run(known, status="RUNNING")
                return str(known)
            except MlflowException:
                self.say("sweep", f"parent run {known} is gone from {self.settings.tracking_uri}; starting a new one")
        run = client.create_run(exp_id, run_name=f"sweep-{self.study_name}", tags={
            "visionops.stage": "sweep", "visionops.profile": self.profile, "sweep.study": self.study_name,
            "dataset.name": self.dataset.name, "dataset.version": self.dataset.version, "git.commit": git_commit(),
            "sweep.metric": self.space.metric, "sweep.goal": self.space.goal,
            "sweep.pruning": f"median on {self.space.prune_signal}" if self.pruning else "none",
        })
        parent = run.info.run_id
        client.log_batch(parent, params=_params({f"space.{k}": v for k, v in space_summary(self.space).items()}))
        client.log_dict(parent, self.space.model_dump(mode="json"), "sweep/space.json")
        study.set_user_attr(PARENT_ATTR, parent)
        return parent

    # --- one trial -----------------------------------------------------------------------------
    def objective(self, parent_run_id: str) -> Callable[[Any], float]:
        import mlflow
        import optuna

        def run_trial(trial: Any) -> float:
            params = suggest(trial, self.space)
            spec = trial_spec(self.profile, self.knobs, params, self.task)
            check_model_source(spec)  # a model choice that does not exist fails before training
            pruner = EpochPruner(trial, self.space.prune_signal, task_training(self.task).clean_names,
                                 flip=self.space.prune_goal != self.space.goal)
            self.say("trial", f"{trial.number}: {json.dumps(params, default=str)}")
            data = ref_from_folder(self.runner.local_path(self.dataset), backend=self.settings.backend)
            result = train(
                data, spec, self.settings, profile=self.profile, run_name=f"{self.study_name}-trial-{trial.number}",
                extra_tags={"mlflow.parentRunId": parent_run_id, "sweep.study": self.study_name,
                            "sweep.trial": str(trial.number)},
                # reported without pruning too (NopPruner never prunes): the study keeps every
                # trial's learning curve, for Optuna's intermediate-values plot and for comparisons
                callbacks={"on_fit_epoch_end": pruner},
            )
            folder = self.folder / f"trial-{trial.number:04d}"
            result = _write_trial_folder(result, folder)
            trial.set_user_attr("run_id", result.run_id)
            trial.set_user_attr("folder", str(folder))
            trial.set_user_attr("epochs", result.epochs)
            trial.set_user_attr("duration_s", round(result.duration_s, 2))
            client = mlflow.MlflowClient()
            if pruner.pruned_at is not None:
                client.set_tag(result.run_id, "sweep.state", "pruned")
                self.say("trial", f"{trial.number}: pruned after epoch {pruner.pruned_at} "
                                  f"({self.space.prune_signal} behind the median of the finished trials)")
                raise optuna.TrialPruned(f"pruned after epoch {pruner.pruned_at}")
            if self.space.metric not in result.metrics:
                raise TrainingError(f"trial {trial.number} (MLflow run {result.run_id}) logged no "
                                    f"{self.space.metric}; its metrics: {sorted(result.metrics)}")
            client.set_tag(result.run_id, "sweep.state", "complete")
            value = float(result.metrics[self.space.metric])
            self.say("trial", f"{trial.number}: {self.space.metric} {value:.4f} in {result.epochs} epochs")
            return value

        return run_trial

    # --- the whole sweep -------------------------------------------------------------------------
    def run(self, trials: int, *, gate: bool = True) -> SweepResult:
        """Add `trials` trials to the study, record the best in MLflow, and gate it."""
        import mlflow

        if trials < 1:
            raise VisionOpsError(f"--trials must be at least 1, got {trials}")
        started = time.perf_counter()
        self.runner.validate(self.dataset)  # fails with every problem before any trial
        self.check_models()
        study = self.study()
        # an enqueued baseline is a WAITING trial already: it is one of this run's new trials
        before = sum(1 for t in study.trials if t.state.name != "WAITING")
        parent = self._parent_run(study)
        self.say("sweep", f"study {self.study_name} ({before} trial(s) so far) in {optuna_storage(self.settings)}; "
                          f"MLflow parent run {parent}")
        client = mlflow.MlflowClient()
        try:
            study.optimize(self.objective(parent), n_trials=trials)
        except BaseException:
            client.set_terminated(parent, status="FAILED")
            raise
        records = [_record(t) for t in study.trials]
        done = [r for r in records if r.state == "COMPLETE"]
        if not done:
            client.set_terminated(parent, status="FAILED")
            raise TrainingError(f"study {self.study_name} has no completed trial (all pruned or failed); "
                                "run more trials, or sweep with --no-pruning")
        best = _record(study.best_trial)
        self._record_best(client, parent, best, records)
        result = SweepResult(
            study_name=self.study_name, storage=optuna_storage(self.settings), parent_run_id=parent,
            dataset=self.dataset, profile=self.profile, metric=self.space.metric, goal=self.space.goal,
            new_trials=len(records) - before, trials=records, best=best,
            duration_s=round(time.perf_counter() - started, 2),
        )
        if gate:
            result = self.gate(result)
        client.set_terminated(parent, status="FINISHED")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / SWEEP_JSON).write_text(result.model_dump_json(indent=2))
        client.log_dict(parent, json.loads(result.model_dump_json()), f"sweep/{SWEEP_JSON}")
        return result

    def _record_best(self, client: Any, parent: str, best: TrialRecord, records: list[TrialRecord]) -> None:
        tags = {"best.trial": str(best.number), "best.run_id": best.run_id or "",
                **{f"best.{k}": str(v) for k, v in best.params.items()}}
        for key, value in tags.items():
            client.set_tag(parent, key, value)
        client.log_metric(parent, f"best_{self.space.metric}", float(best.value or 0.0), step=len(records))
        client.log_metric(parent, "trials_pruned", sum(r.state == "PRUNED" for r in records), step=len(records))
        client.log_dict(parent, [r.model_dump(mode="json") for r in records], "sweep/trials.json")
        self.say("sweep", f"best trial {best.number}: {self.space.metric} {best.value:.4f} "
                          f"{json.dumps(best.params, default=str)}")

    def gate(self, result: SweepResult) -> SweepResult:
        """The best trial through evaluate (against the champion, frozen test split) and register
        (only on promote), like any training; a registered version names the sweep's parent run."""
        if not result.best.folder:
            raise TrainingError(f"best trial {result.best.number} has no folder recorded in the study")
        trained = TrainResult.model_validate_json((Path(result.best.folder) / TRAIN_JSON).read_text())
        outcome = self.runner.evaluate(self.dataset, trained)
        registration = self.runner.register(self.dataset, trained, outcome)
        if registration.registered and registration.version is not None:
            registration = self._tag_lineage(registration, result)
        return result.model_copy(update={"evaluation": outcome.summary(), "registration": registration})

    def _tag_lineage(self, registration: RegistrationResult, result: SweepResult) -> RegistrationResult:
        import mlflow

        from visionops.tracking import configure_mlflow

        configure_mlflow(self.settings)
        client = mlflow.MlflowClient()
        lineage = {"sweep.parent_run_id": result.parent_run_id, "sweep.study": result.study_name,
                   "sweep.trial": str(result.best.number)}
        for key, value in lineage.items():
            client.set_model_version_tag(registration.model_name, registration.version, key, value)
        return registration.model_copy(update={"tags": {**registration.tags, **lineage}})


def run_sweep(settings: Settings, trials: int | None = None, *, gate: bool = True, **options: Any) -> SweepResult:
    """`LocalSweep(settings, **options).run(trials)`: the notebook's and the CLI's one call.
    `trials` None: the profile's sweep budget (profiles.py: smoke 3, quick 4 short ones, full 20)."""
    sweep = LocalSweep(settings, **options)
    return sweep.run(trials or sweep.budget.trials, gate=gate)


def _record(trial: Any) -> TrialRecord:
    return TrialRecord(
        number=trial.number, state=trial.state.name, params=dict(trial.params), value=trial.value,
        run_id=trial.user_attrs.get("run_id"), epochs=trial.user_attrs.get("epochs"),
        duration_s=trial.user_attrs.get("duration_s"), folder=trial.user_attrs.get("folder"),
        baseline=bool(trial.user_attrs.get("baseline", False)),
    )


def _params(values: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in values.items()]

"""The search space: the shipped default loads, every bad entry fails naming file, line and entry,
drawn values become profile knobs, and each type maps onto the Optuna call that draws it."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from visionops.errors import ConfigError
from visionops.profiles import get_profile
from visionops.sweep.space import (
    KNOBS,
    ChoiceParam,
    LogUniformParam,
    RandintParam,
    UniformParam,
    default_space_path,
    load_space,
    parse_space,
    parse_value,
    profile_knobs,
    space_summary,
)


def _write(tmp_path, body: str):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_the_default_detect_space_loads_and_names_only_known_knobs():
    space = load_space()
    assert default_space_path("detect").is_file()
    assert space.task == "detect" and space.metric == "map50_95" and space.goal == "maximize"
    assert set(space.parameters) <= set(KNOBS)
    assert isinstance(space.parameters["lr0"], LogUniformParam)
    assert isinstance(space.parameters["batch"], ChoiceParam) and space.parameters["batch"].values == [8, 16]
    assert space_summary(space)["lr0"] == "loguniform(0.0005, 0.02)"


def test_an_unknown_task_has_no_default_space():
    with pytest.raises(ConfigError, match="no default search space for task 'segment'"):
        default_space_path("segment")


def test_a_misspelled_knob_names_file_line_and_suggests_the_knob(tmp_path):
    path = _write(tmp_path, """\
        parameters:
          lr0: {type: loguniform, low: 0.001, high: 0.01}
          momentun: {type: uniform, low: 0.8, high: 0.9}
    """)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert f"{path}:3: parameters.momentun: unknown knob (did you mean 'momentum'?)" in str(err.value)
    assert "lr0" not in str(err.value).split("knobs:")[0]  # the good entry is not blamed


@pytest.mark.parametrize(("entry", "expected"), [
    ("lr0: {type: uniform, low: 0.1, high: 0.01}", "parameters.lr0: low 0.1 must be below high 0.01"),
    ("lr0: {type: loguniform, low: 0.0, high: 0.01}", "parameters.lr0: loguniform low 0 must be > 0"),
    ("batch: {type: choice, values: []}", "parameters.batch.values: empty choice: list at least one value"),
    ("batch: {type: choice, values: [8, 8]}", "parameters.batch: choice values [8, 8] repeat a value"),
    ("batch: {type: normal, low: 1, high: 3}", "parameters.batch: type must be one of choice, uniform"),
    ("batch: {type: randint, upper: 0}", "parameters.batch.upper: Input should be greater than or equal to 1"),
    ("imgsz: {type: uniform, low: 64, high: 128}", "parameters.imgsz: uniform draws fractions but imgsz is int"),
    ("batch: {type: randint, upper: 16}", "parameters.batch: 0 is below 1 (batch size); randint starts at 0"),
    ("mosaic: {type: uniform, low: 0.5, high: 1.5}", "parameters.mosaic: 1.5 is above 1"),
    ("model: {type: randint, upper: 3}", "parameters.model: randint draws whole numbers but model is str"),
    ("imgsz: {type: choice, values: [96, big]}", "parameters.imgsz: 'big' is not a number"),
    ("lr0: {type: uniform, low: 0.01, high: 0.1, step: 0.01}", "parameters.lr0.step: Extra inputs"),
])
def test_each_bad_entry_fails_with_its_line_and_what_to_do(tmp_path, entry, expected):
    path = _write(tmp_path, f"metric: map50_95\nparameters:\n  {entry}\n")
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert f"{path}:3: {expected}" in str(err.value)


def test_every_problem_of_one_kind_is_reported_at_once(tmp_path):
    path = _write(tmp_path, """\
        parameters:
          lr0: {type: uniform, low: 0.1, high: 0.01}
          batch: {type: choice, values: []}
    """)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert f"{path}:2: parameters.lr0" in str(err.value) and f"{path}:3: parameters.batch" in str(err.value)


def test_a_metric_training_does_not_log_is_refused(tmp_path):
    path = _write(tmp_path, "metric: map50-95\nparameters:\n  lr0: {type: uniform, low: 0.001, high: 0.01}\n")
    with pytest.raises(ConfigError, match=r"space.yaml:1: metric: 'map50-95' is not logged per epoch by detect "
                                          r"training \(did you mean 'map50_95'\?\)"):
        load_space(path)


def test_each_task_has_a_default_space_with_its_own_metric(tmp_path):
    assert (load_space(task="detect").metric, load_space(task="classify").metric) == ("map50_95", "top1")
    assert load_space(task="classify").task == "classify" and "mosaic" not in load_space(task="classify").parameters
    path = _write(tmp_path, "task: classify\nmetric: map50_95\n"
                            "parameters:\n  lr0: {type: uniform, low: 0.001, high: 0.01}\n")
    with pytest.raises(ConfigError, match=r"'map50_95' is not logged per epoch by classify training.*top1"):
        load_space(path)


def test_broken_yaml_and_missing_files_say_where(tmp_path):
    path = _write(tmp_path, "parameters:\n  lr0: {type: uniform, low: 0.1\n")
    with pytest.raises(ConfigError, match=r"space.yaml:\d+: not valid YAML"):
        load_space(path)
    with pytest.raises(ConfigError, match="search space .*nope.yaml not found"):
        load_space(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no parameters"):
        parse_space({"parameters": {}})
    with pytest.raises(ConfigError, match="a search space is a mapping"):
        parse_space(["lr0"])


def test_drawn_values_become_profile_knobs_and_keep_the_profiles_extra():
    base = get_profile("smoke", extra={"plots": False}).train
    knobs = profile_knobs({"lr0": 0.004, "batch": 16.0, "momentum": 0.9, "mosaic": 0.3, "model": "yolo11s.yaml"},
                          base)
    assert knobs == {"lr0": 0.004, "batch": 16, "model": "yolo11s.yaml",
                     "extra": {"plots": False, "momentum": 0.9, "mosaic": 0.3}}
    spec = get_profile("smoke", **knobs).train
    args = spec.ultralytics_args()
    assert args["lr0"] == 0.004 and args["batch"] == 16 and args["momentum"] == 0.9 and args["plots"] is False


def test_command_line_values_are_typed_and_checked():
    assert parse_value("batch", "16.0") == 16 and isinstance(parse_value("batch", "16"), int)
    assert parse_value("lr0", "0.003") == pytest.approx(0.003)
    assert parse_value("model", "yolo11n.yaml") == "yolo11n.yaml"
    with pytest.raises(ConfigError, match="knob mosaic: 2.0 is above 1"):
        parse_value("mosaic", "2")
    with pytest.raises(ConfigError, match="knob batch: 'many' is not a number"):
        parse_value("batch", "many")
    with pytest.raises(ConfigError, match="unknown knob 'weight_decy' \\(did you mean 'weight_decay'\\?\\)"):
        parse_value("weight_decy", "0.1")


# --- the Optuna mapping, one test per type ----------------------------------------------------------
optuna = pytest.importorskip("optuna", reason="optuna comes with the full extra")


def _drawn(param, name="knob"):
    from visionops.sweep.local import suggest

    space = parse_space({"parameters": {name: param.model_dump()}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    value = suggest(trial, space)[name]
    return value, trial.distributions[name]


def test_choice_maps_to_suggest_categorical():
    value, dist = _drawn(ChoiceParam(type="choice", values=[96, 128]), "imgsz")
    assert isinstance(dist, optuna.distributions.CategoricalDistribution) and dist.choices == (96, 128)
    assert value in (96, 128)


def test_uniform_maps_to_suggest_float():
    value, dist = _drawn(UniformParam(type="uniform", low=0.6, high=0.9), "momentum")
    assert isinstance(dist, optuna.distributions.FloatDistribution)
    assert (dist.low, dist.high, dist.log) == (0.6, 0.9, False) and 0.6 <= value <= 0.9


def test_loguniform_maps_to_a_log_scaled_float_over_the_values_themselves():
    value, dist = _drawn(LogUniformParam(type="loguniform", low=1e-4, high=1e-1), "lr0")
    assert isinstance(dist, optuna.distributions.FloatDistribution)
    assert (dist.low, dist.high, dist.log) == (1e-4, 1e-1, True) and 1e-4 <= value <= 1e-1


def test_randint_maps_to_suggest_int_below_upper_like_azure():
    value, dist = _drawn(RandintParam(type="randint", upper=5), "close_mosaic")
    assert isinstance(dist, optuna.distributions.IntDistribution)
    assert (dist.low, dist.high) == (0, 4) and 0 <= value <= 4


def test_the_epoch_pruner_reports_each_epoch_once_and_stops_a_losing_trial():
    """Ultralytics calls on_fit_epoch_end after every epoch and once more after the final
    validation (same epoch number); the pruner reports the metric per epoch and sets
    trainer.stop when the median pruner says so."""
    from visionops.sweep.local import EpochPruner

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    for epoch in (1, 2, 3):
        good.report(0.5 + epoch / 10, epoch)
    study.tell(good, 0.8)

    trial = study.ask()
    pruner = EpochPruner(trial, "map50_95")
    trainer = SimpleNamespace(epoch=0, metrics={"metrics/mAP50-95(B)": 0.01}, stop=False)
    pruner(trainer)  # epoch 1: far below the median of the finished trial
    assert trainer.stop is True and pruner.pruned_at == 1
    pruner(trainer)  # the final validation's call: not reported twice
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {1: 0.01}

    winner = study.ask()
    keep = EpochPruner(winner, "map50_95")
    for epoch in range(3):
        running = SimpleNamespace(epoch=epoch, metrics={"metrics/mAP50-95(B)": 0.9}, stop=False)
        keep(running)
        assert running.stop is False
    assert keep.reported == {1, 2, 3}


# --- what the pruner compares, the baseline trial, the optimizer a trial trains with ---------------
def test_the_pruning_signal_is_checked_like_the_metric_and_a_loss_is_lower_is_better(tmp_path):
    space = load_space(task="detect")
    assert (space.prune_signal, space.prune_goal, space.goal) == ("val_loss", "minimize", "maximize")
    classify = load_space(task="classify")
    assert (classify.prune_signal, classify.prune_goal) == ("top1", "maximize")  # none given: the metric
    path = _write(tmp_path, "prune_on: val_los\nparameters:\n  lr0: {type: uniform, low: 0.001, high: 0.01}\n")
    with pytest.raises(ConfigError, match=r"space.yaml:1: prune_on: 'val_los' is not logged per epoch by detect "
                                          r"training \(did you mean 'val_loss'\?\)"):
        load_space(path)


def test_detection_logs_loss_totals_so_both_tasks_have_a_val_loss_per_epoch():
    from visionops.training import clean_metrics, task_training

    raw = {"val/box_loss": 1.0, "val/cls_loss": 2.0, "val/dfl_loss": 0.5, "train/box_loss": 1.5,
           "train/cls_loss": 1.0, "train/dfl_loss": 1.0, "metrics/mAP50-95(B)": 0.0}
    metrics = clean_metrics(raw)
    assert metrics["val_loss"] == pytest.approx(3.5) and metrics["train_loss"] == pytest.approx(3.5)
    assert "val_loss" not in clean_metrics({"val/box_loss": 1.0})  # a partial loss makes no total
    assert {"val_loss", "train_loss"} <= task_training("detect").epoch_metrics
    assert {"val_loss", "train_loss", "top1"} <= task_training("classify").epoch_metrics


def test_a_loss_signal_is_reported_negated_to_a_maximising_study_and_prunes_the_worse_loss():
    optuna = pytest.importorskip("optuna")
    from visionops.sweep.local import EpochPruner

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    reference = study.ask()
    for epoch in (1, 2):
        reference.report(-2.0, epoch)  # a val_loss of 2.0, negated
    study.tell(reference, 0.5)

    better = study.ask()
    keep = EpochPruner(better, "val_loss", flip=True)
    keep(SimpleNamespace(epoch=0, metrics={"val/box_loss": 0.5, "val/cls_loss": 0.5, "val/dfl_loss": 0.5}, stop=False))
    assert keep.pruned_at is None
    assert better.storage.get_trial(better._trial_id).intermediate_values == {1: -1.5}

    worse = study.ask()
    cut = EpochPruner(worse, "val_loss", flip=True)
    trainer = SimpleNamespace(epoch=0, metrics={"val/box_loss": 2.0, "val/cls_loss": 2.0, "val/dfl_loss": 1.0},
                              stop=False)
    cut(trainer)
    assert cut.pruned_at == 1 and trainer.stop is True


def test_the_baseline_trial_is_the_profiles_own_configuration_as_a_point_of_the_space():
    pytest.importorskip("ultralytics")
    from visionops.sweep.local import baseline_params

    space = load_space(task="detect")
    params, why = baseline_params("smoke", {"extra": {"mosaic": 0.0}}, space, "detect")
    assert why == ""
    smoke = get_profile("smoke").train
    # the profile's values where it sets them, Ultralytics' defaults where it does not
    assert params == {"lr0": smoke.lr0, "momentum": 0.937, "weight_decay": 0.0005, "mosaic": 0.0,
                      "batch": smoke.batch, "imgsz": smoke.imgsz}
    # a value outside the space: no baseline, and the reason names the knob and the choices
    params, why = baseline_params("smoke", {"imgsz": 640}, space, "detect")
    assert params is None and "imgsz 640 is not one of the choices [96, 128, 160]" in why
    # optimizer=auto picks lr0 and momentum itself: the configuration is not a point of this space
    params, why = baseline_params("full", {}, space, "detect")
    assert params is None and "optimizer=auto" in why


def test_a_trial_that_draws_the_learning_rate_never_trains_with_optimizer_auto():
    """Ultralytics' optimizer=auto ignores lr0 and momentum: every draw would train the same."""
    from visionops.sweep.local import SWEEP_OPTIMIZER, trial_spec

    assert get_profile("full").train.optimizer == "auto"
    assert trial_spec("full", {}, {"lr0": 0.003}).optimizer == SWEEP_OPTIMIZER
    assert trial_spec("full", {}, {"imgsz": 160}).optimizer == "auto"  # nothing it would ignore
    assert trial_spec("smoke", {}, {"lr0": 0.003}).optimizer == get_profile("smoke").train.optimizer


def test_the_baseline_reads_ultralytics_defaults_without_importing_it():
    """Importing Ultralytics before visionops.offline has set it up makes it look for the network
    (DNS lookups, a font download): a sweep's first step must not do that."""
    import subprocess
    import sys

    code = ("import sys; from visionops.sweep.local import baseline_params, ultralytics_defaults; "
            "from visionops.sweep.space import load_space; "
            "p, why = baseline_params('smoke', {}, load_space(task='detect'), 'detect'); "
            "assert p and p['momentum'] == ultralytics_defaults()['momentum'], (p, why); "
            "assert 'ultralytics' not in sys.modules, 'ultralytics was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

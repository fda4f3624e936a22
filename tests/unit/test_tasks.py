"""The task as a first-class input: `visionops.tasks`, per-task profiles, per-task current data
sets, and the runner adopting (or refusing) a data set's task. Data sets are real and tiny; no
training runs here (tests/integration/test_run_classify.py trains)."""

from __future__ import annotations

import json

import pytest

from visionops.errors import ConfigError
from visionops.pipeline import steps
from visionops.profiles import PROFILES_BY_TASK, get_profile
from visionops.runner import Runner
from visionops.tasks import TASK_NAMES, get_task
from visionops.workspace.current import current_path, read_current, write_current

SMALL_DETECT = {"n_train": 4, "n_val": 2, "n_test": 2, "image_size": 64}
SMALL_CLASSIFY = {"per_class_train": 3, "per_class_val": 1, "per_class_test": 1, "image_size": 48}


# --- the Task objects ----------------------------------------------------------------------------
def test_tasks_know_their_names_models_and_metrics():
    assert TASK_NAMES == ("detect", "classify")
    detect, classify = get_task("detect"), get_task("classify")
    assert get_task(None) is detect and get_task(" Classify ") is classify and get_task(classify) is classify
    assert (detect.model_name("parts"), classify.model_name("parts")) == ("parts-detector", "parts-classifier")
    assert (detect.decision_metric, classify.decision_metric) == ("map50_95", "top1")
    assert classify.default_model == "yolo11n-cls.yaml"
    assert detect.synthetic_name("shapes") != classify.synthetic_name("shapes")


def test_an_unknown_task_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown task 'clasify'; did you mean 'classify'\?"):
        get_task("clasify")
    with pytest.raises(ConfigError, match="tasks: detect, classify"):
        get_task("segment")


# --- profiles --------------------------------------------------------------------------------------
def test_each_task_has_the_same_three_profiles_with_its_own_model_and_metric():
    for task, profiles in PROFILES_BY_TASK.items():
        assert list(profiles) == ["smoke", "quick", "full"]
        for p in profiles.values():
            assert p.task == task
            assert p.decision.metric == get_task(task).decision_metric
            assert p.train.model == get_task(task).default_model
    assert get_profile("quick") == PROFILES_BY_TASK["detect"]["quick"]  # detection stays the default


def test_classify_knobs_override_and_detection_knobs_are_refused_with_the_known_ones():
    p = get_profile("smoke", "classify", epochs=5, per_class_train=7)
    assert (p.train.epochs, p.data.per_class_train) == (5, 7)
    with pytest.raises(ConfigError, match="unknown profile knob 'n_train'.*per_class_train"):
        get_profile("smoke", "classify", n_train=16)


# --- the current data set, one per task ------------------------------------------------------------
def test_each_task_keeps_its_own_current_data_set(tmp_path):
    write_current(tmp_path, "parts", "v1", "detect")
    write_current(tmp_path, "flowers", "v9", "classify")
    assert read_current(tmp_path) == ("flowers", "v9")  # the last one made current, any task
    assert read_current(tmp_path, "detect") == ("parts", "v1")
    assert read_current(tmp_path, "classify") == ("flowers", "v9")


def test_a_pointer_written_before_tasks_existed_is_a_detection_data_set(tmp_path):
    current_path(tmp_path).write_text(json.dumps({"name": "old", "version": "abc"}))
    assert read_current(tmp_path, "detect") == ("old", "abc")
    assert read_current(tmp_path, "classify") is None
    write_current(tmp_path, "flowers", "v1", "classify")  # the old pointer is kept as detection's
    assert read_current(tmp_path, "detect") == ("old", "abc")


# --- the runner ----------------------------------------------------------------------------------
def test_classify_with_nothing_current_generates_a_classification_set_and_names_its_model(fresh_settings):
    r = Runner(fresh_settings, "smoke", SMALL_CLASSIFY, task="classify")
    ref = r.dataset()
    assert ref.task == "classify" and ref.name == "shapes-cls"
    assert ref.counts["train"]["images"] == 3 * len(ref.classes)
    assert r.settings_for(ref).model_name == "shapes-cls-classifier"
    assert r.profile.decision.metric == "top1" and r.profile.train.model == "yolo11n-cls.yaml"
    assert r.workspace.current_dataset("classify") == ref


def test_the_two_tasks_current_sets_live_side_by_side(fresh_settings):
    detect = Runner(fresh_settings, "smoke", SMALL_DETECT, task="detect").dataset()
    classify = Runner(fresh_settings, "smoke", SMALL_CLASSIFY, task="classify").dataset()
    assert Runner(fresh_settings, "smoke", task="detect").dataset() == detect
    assert Runner(fresh_settings, "smoke", task="classify").dataset() == classify
    # not told a task: the data set made current last, and its task is adopted with its profile
    adopting = Runner(fresh_settings, "smoke")
    assert adopting.dataset() == classify
    assert adopting.task.name == "classify" and adopting.profile.task == "classify"


def test_an_explicit_task_refuses_a_data_set_of_the_other_task(fresh_settings):
    detect = Runner(fresh_settings, "smoke", SMALL_DETECT).dataset()
    with pytest.raises(ConfigError, match=r"'detect' data set but task 'classify' was asked for; pass task='detect'"):
        Runner(fresh_settings, "smoke", task="classify").dataset(f"{detect.name}:{detect.version}")


def test_steps_check_the_task_against_the_data_folder(fresh_settings, tmp_path):
    ref = Runner(fresh_settings, "smoke", SMALL_CLASSIFY, task="classify").dataset()
    assert steps.data_task(ref.path).name == "classify"
    assert steps.data_task(ref.path, "classify").name == "classify"
    with pytest.raises(ConfigError, match="'classify' data set but task 'detect'"):
        steps.validate_step(ref.path, tmp_path / "out", task="detect")
    assert steps.validate_step(ref.path, tmp_path / "out").ok
    assert steps.model_name_for(fresh_settings, "parts", "classify") == "parts-classifier"
    assert steps.model_name_for(fresh_settings.with_overrides(model_name="mine"), "parts", "classify") == "mine"


def test_the_cli_names_a_mistyped_task_in_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).with_name("visionops"))
    proc = subprocess.run([cli, "run", "--profile", "smoke", "--task", "clasify"], capture_output=True, text=True,
                          env=dict(os.environ, VISIONOPS_ROOT=str(tmp_path)), timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "unknown task 'clasify'; did you mean 'classify'?" in proc.stderr.strip().splitlines()[0]
    assert not (tmp_path / "data" / "catalog").exists()  # failed before any work

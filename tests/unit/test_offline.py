"""Thread choice and the offline switches."""

from __future__ import annotations

import os

from visionops import offline


def test_threads_use_every_free_core():
    assert offline.choose_threads(cores=2, busy=0) == 2  # the fix: Ultralytics alone would use 1
    assert offline.choose_threads(cores=2, busy=1) == 1  # a busy neighbour: no spinning on its core
    assert offline.choose_threads(cores=2, busy=5) == 1
    assert offline.choose_threads(cores=16, busy=3) == 13
    assert offline.choose_threads(cores=1, busy=0) == 1


def test_busy_cpus_reads_the_machine():
    busy = offline.busy_cpus(samples=3, interval_s=0.0)
    assert 0 <= busy <= 1000


def test_explicit_threads_win():
    import torch

    before = torch.get_num_threads()
    try:
        assert offline.set_threads(1) == 1 and torch.get_num_threads() == 1
        import ultralytics.utils.torch_utils as tu

        assert tu.NUM_THREADS == 1
    finally:
        torch.set_num_threads(before)


def test_configure_sets_the_offline_switches_and_fonts(tmp_path, monkeypatch):
    for key in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "MLFLOW_DISABLE_TELEMETRY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(offline, "_configured_dir", None)
    offline.configure(tmp_path, threads=1)
    assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["YOLO_AUTOINSTALL"] == "0"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert (tmp_path / "Ultralytics" / "Arial.ttf").stat().st_size > 100_000
    from ultralytics import settings

    assert settings["sync"] is False and settings["mlflow"] is False
    import ultralytics.engine.trainer as trainer

    assert trainer.check_amp is offline._offline_check_amp


def test_unreadable_images_still_raise_pil_errors_after_ultralytics_is_loaded(tmp_path, smoke_settings):
    """Ultralytics patches PIL.Image.open to pip-install pi-heif on unknown files; after configure()
    a garbage file must still raise PIL's UnidentifiedImageError (what validation and serving catch)."""
    import pytest
    from PIL import Image, UnidentifiedImageError

    offline.configure(smoke_settings.yolo_config_dir)
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"definitely not an image")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)


def test_importing_visionops_has_no_side_effect(tmp_path):
    """`import visionops` (and its core modules) reads no .env, builds no settings and leaves the
    environment alone; the offline switches apply where a function needs them."""
    import subprocess
    import sys

    (tmp_path / ".env").write_text("VISIONOPS_PROFILE=full\n")
    code = (
        "import os, json; before = dict(os.environ)\n"
        "import visionops, visionops.runner, visionops.settings, visionops.serving.score\n"
        "from visionops.settings import _cached\n"
        "print(json.dumps({'changed': sorted(k for k in set(os.environ) | set(before)\n"
        "                                    if os.environ.get(k) != before.get(k)),\n"
        "                  'settings_built': _cached.cache_info().currsize}))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("YOLO_", "MLFLOW_", "DO_NOT"))}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=True)
    import json

    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"changed": [], "settings_built": 0}


def test_mlflow_switches_apply_before_mlflow_is_used(fresh_settings, monkeypatch):
    import os

    from visionops.tracking import configure_mlflow

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    configure_mlflow(fresh_settings)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"

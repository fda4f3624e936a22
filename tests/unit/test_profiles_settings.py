"""Profiles define each knob once; settings come from defaults, .env, env vars and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionops.errors import ConfigError
from visionops.profiles import PROFILES, get_profile
from visionops.settings import Settings, find_project_root


def test_profiles_exist_and_grow():
    smoke, quick, full = (PROFILES[n] for n in ("smoke", "quick", "full"))
    assert smoke.data.n_train < quick.data.n_train < full.data.n_train
    assert smoke.train.epochs < quick.train.epochs <= full.train.epochs
    for p in PROFILES.values():
        assert p.train.model.endswith(".yaml")  # from scratch: nothing to download
        assert p.train.weights is None


def test_override_routes_knobs_to_their_section():
    p = get_profile("quick", epochs=3, n_train=10, floor=0.1, imgsz=96)
    assert (p.train.epochs, p.train.imgsz, p.data.n_train, p.decision.floor) == (3, 96, 10, 0.1)
    assert PROFILES["quick"].train.epochs != 3  # the table itself is untouched
    assert get_profile("quick", epochs=None) == PROFILES["quick"]


def test_unknown_knob_and_profile_are_named():
    with pytest.raises(ConfigError, match="epochz"):
        get_profile("quick", epochz=3)
    with pytest.raises(ConfigError, match="smoke, quick, full"):
        get_profile("huge")


def test_invalid_knob_value_is_rejected():
    with pytest.raises(ValueError, match="epochs"):
        get_profile("quick", epochs=0)


def test_settings_defaults_live_under_root(tmp_path):
    s = Settings(_env_file=None, root=tmp_path)
    assert s.backend == "local"
    assert s.outputs_dir == tmp_path / "outputs" and s.data_dir == tmp_path / "data"
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


def test_env_vars_and_env_file_and_overrides(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VISIONOPS_MODEL_NAME=from-dotenv\nVISIONOPS_EXPERIMENT_NAME=dotenv-exp\n")
    monkeypatch.setenv("VISIONOPS_EXPERIMENT_NAME", "from-env")
    s = Settings(_env_file=tmp_path / ".env", root=tmp_path)
    assert s.model_name == "from-dotenv"
    assert s.experiment_name == "from-env"  # env var beats .env
    o = s.with_overrides(model_name="override", root=tmp_path / "other")
    assert o.model_name == "override"
    assert o.outputs_dir == (tmp_path / "other" / "outputs")  # derived paths follow a new root


def test_bad_backend_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        Settings(_env_file=None, root=tmp_path, backend="gcp")


def test_project_root_is_found_from_a_subfolder(repo_root, monkeypatch):
    monkeypatch.delenv("VISIONOPS_ROOT", raising=False)
    assert find_project_root(repo_root / "notebooks") == repo_root
    assert find_project_root(Path("/")) == Path("/")


def test_env_example_documents_every_setting(repo_root):
    text = (repo_root / ".env.example").read_text()
    missing = [f for f in Settings.model_fields if f"VISIONOPS_{f.upper()}" not in text]
    assert missing == [], f".env.example does not document: {missing}"

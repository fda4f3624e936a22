"""The CLI contract: help for every command and option, exit 0 on success, non-zero with one
line (no traceback) on failure, the traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from visionops.cli import app

CLI = str(Path(sys.executable).with_name("visionops"))


def _run(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def _walk(cmd, path: tuple[str, ...] = ()):
    yield path, cmd
    if hasattr(cmd, "commands"):  # typer ships its own click; duck-type groups
        for name, sub in cmd.commands.items():
            yield from _walk(sub, (*path, name))


def test_every_command_and_option_has_help():
    root = typer.main.get_command(app)
    missing = []
    for path, cmd in _walk(root):
        if path and not (cmd.help or "").strip():
            missing.append(" ".join(path))
        for p in cmd.params:
            if p.param_type_name == "option" and not (p.help or "").strip() and p.name != "help":
                missing.append(f"{' '.join(path)} {p.opts[0]}")
            if p.param_type_name == "argument" and not getattr(p, "help", None):
                missing.append(f"{' '.join(path)} <{p.name}>")
    assert missing == [], f"undocumented commands/options: {missing}"
    names = {" ".join(p) for p, _ in _walk(root)}
    for expected in ("data generate", "data import", "data validate", "data register", "data export",
                     "data stats", "train", "evaluate", "register", "run"):
        assert expected in names


def test_help_exits_zero(tmp_path):
    proc = _run("--help", root=tmp_path)
    assert proc.returncode == 0 and "run" in proc.stdout and "data" in proc.stdout


def test_bad_data_fails_with_one_line_and_registers_nothing(tmp_path):
    from visionops.data.synthetic import SyntheticSpec, generate

    data = generate(SyntheticSpec(n_train=3, n_val=2, n_test=2, image_size=64), tmp_path / "d")
    (data / "labels" / "train" / "train_00001.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    proc = _run("data", "register", str(data), root=tmp_path)
    assert proc.returncode == 1
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error:") and "labels/train/train_00001.txt:1" in first and "class id 7" in first
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "catalog" / "catalog.json").exists()

    proc = _run("data", "validate", str(data), root=tmp_path)
    assert proc.returncode == 1 and "class_out_of_range" not in proc.stderr  # messages, not codes
    assert "use an id from data.yaml" in proc.stderr

    proc = _run("--debug", "data", "register", str(data), root=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_training_on_an_unknown_data_set_lists_the_registered_ones(tmp_path):
    assert _run("data", "generate", "--profile", "smoke", "--out", str(tmp_path / "g"), root=tmp_path).returncode == 0
    assert _run("data", "register", str(tmp_path / "g"), root=tmp_path).returncode == 0
    proc = _run("train", "--profile", "smoke", "--dataset", "nope:3", root=tmp_path)
    assert proc.returncode == 1
    first = proc.stderr.strip().splitlines()[0]
    assert "no data set 'nope:3'" in first and "registered: shapes:" in first, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing ran


def test_evaluate_without_a_training_says_what_to_run(tmp_path):
    assert _run("data", "generate", "--profile", "smoke", "--out", str(tmp_path / "g"), root=tmp_path).returncode == 0
    assert _run("data", "register", str(tmp_path / "g"), root=tmp_path).returncode == 0
    proc = _run("evaluate", "--profile", "smoke", root=tmp_path)
    assert proc.returncode == 1 and "no training of shapes:" in proc.stderr and "visionops train" in proc.stderr


def test_unknown_profile_and_usage_errors(tmp_path):
    proc = _run("run", "--profile", "huge", root=tmp_path)
    assert proc.returncode == 1 and "unknown profile 'huge'" in proc.stderr
    proc = _run("run", "--no-such-option", root=tmp_path)
    assert proc.returncode == 2 and "No such option" in proc.stderr


@pytest.mark.parametrize("fmt", ["coco", "voc", "automl"])
def test_generate_then_export(tmp_path, fmt):
    assert _run("data", "generate", "--profile", "smoke", "--n-train", "2", "--n-val", "1", "--n-test", "1",
                "--out", str(tmp_path / "g"), root=tmp_path).returncode == 0
    proc = _run("data", "export", str(tmp_path / "g"), "--format", fmt, "--out", str(tmp_path / fmt), root=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any((tmp_path / fmt).rglob("*"))


def test_stats_prints_tables_and_writes_plots(tmp_path):
    assert _run("data", "generate", "--profile", "smoke", "--n-train", "3", "--n-val", "1", "--n-test", "1",
                "--out", str(tmp_path / "g"), root=tmp_path).returncode == 0
    proc = _run("data", "stats", str(tmp_path / "g"), "--plots", str(tmp_path / "plots"), root=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "circle" in proc.stdout
    assert {p.name for p in (tmp_path / "plots").glob("*.png")} == {"class_counts.png", "box_sizes.png",
                                                                     "samples.png"}


def test_lifecycle_on_broken_import_registers_nothing(tmp_path):
    """A data set with errors stops the run at the data stage: no catalog entry, no MLflow run, no model."""
    from visionops.data.synthetic import SyntheticSpec, generate

    src = generate(SyntheticSpec(n_train=4, n_val=2, n_test=2, image_size=64), tmp_path / "src")
    (src / "images" / "val" / "val_00000.jpg").write_bytes(b"not a jpeg")
    (src / "labels" / "test" / "test_00001.txt").write_text("0 1.4 0.5 0.2 0.2\n")
    proc = _run("run", "--profile", "smoke", "--source", str(src), "--format", "yolo", root=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "val_00000.jpg" in proc.stderr or "test_00001.txt" in proc.stderr
    assert not (tmp_path / "data" / "catalog" / "catalog.json").exists()
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_missing_pretrained_weights_fail_before_any_run(tmp_path):
    assert _run("data", "generate", "--profile", "smoke", "--out", str(tmp_path / "g"), root=tmp_path).returncode == 0
    assert _run("data", "register", str(tmp_path / "g"), root=tmp_path).returncode == 0
    proc = _run("train", "--profile", "smoke", "--model", str(tmp_path / "nope.pt"), root=tmp_path)
    assert proc.returncode == 1 and "nope.pt not found" in proc.stderr and "nothing is downloaded" in proc.stderr

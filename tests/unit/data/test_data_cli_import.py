"""`visionops data import|validate` through the real CLI: the report is printed, names follow the
data, bad input gives one named error line and no traceback, and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from data_exports import CLASSES, yolo_split

CLI = str(Path(sys.executable).with_name("visionops"))


def _run(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def _export(root: Path) -> Path:
    src = root / "Bolt Export"
    yolo_split(src / "train" / "images", src / "train" / "labels", 8)
    yolo_split(src / "valid" / "images", src / "valid" / "labels", 3, start=8)
    (src / "data.yaml").write_text(yaml.safe_dump({"train": "../train/images", "val": "../valid/images",
                                                   "names": CLASSES}))
    return src


def test_import_prints_the_report_and_names_the_data_set_after_the_source(tmp_path: Path) -> None:
    src = _export(tmp_path)
    r = _run("data", "import", str(src), root=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "import report: yolo" in r.stdout
    assert "detected: Ultralytics YOLO yaml (data.yaml) (--format auto)" in r.stdout
    assert "carved test: 1 of 8 images taken from train (seed 0)" in r.stdout
    assert "as data set 'bolt-export'" in r.stdout
    assert (tmp_path / "data" / "work" / "bolt-export-import" / "manifest.json").is_file()
    v = _run("data", "validate", str(tmp_path / "data" / "work" / "bolt-export-import"), root=tmp_path)
    assert v.returncode == 0 and "OK" in v.stdout


def test_lost_labels_fail_with_one_line_and_nothing_written(tmp_path: Path) -> None:
    src = _export(tmp_path)
    for label in (src / "valid" / "labels").iterdir():
        label.unlink()
    (src / "valid" / "labels").rmdir()
    r = _run("data", "import", str(src), "--name", "bolts", root=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "split 'val': 3 images and not one label file" in r.stderr and "--unlabeled" in r.stderr
    assert not (tmp_path / "data" / "work" / "bolts-import").exists()


def test_validate_on_a_yaml_syntax_error_is_a_named_error(tmp_path: Path) -> None:
    src = _export(tmp_path)
    assert _run("data", "import", str(src), "--out", str(tmp_path / "ds"), root=tmp_path).returncode == 0
    (tmp_path / "ds" / "data.yaml").write_text("names: [bolt, nut\n")
    r = _run("data", "validate", str(tmp_path / "ds"), root=tmp_path)
    assert r.returncode == 1 and "unexpected" not in r.stderr and "Traceback" not in r.stderr
    assert "data.yaml:2: is not valid YAML" in r.stderr


def test_bad_options_are_named(tmp_path: Path) -> None:
    src = _export(tmp_path)
    r = _run("data", "import", str(src), "--name", "Bad Name!", root=tmp_path)
    assert r.returncode == 1 and "--name 'Bad Name!'" in r.stderr
    r = _run("data", "import", str(src), "--difficult", "maybe", root=tmp_path)
    assert r.returncode == 1 and "--difficult 'maybe': choose keep or skip" in r.stderr

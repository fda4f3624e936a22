"""`visionops data import|validate|register|stats` on classification data, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from foreign_classify import CLASSES, build_bad_corpus, build_class_folders

CLI = str(Path(sys.executable).with_name("visionops"))


def _run(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=180)


def test_import_validate_register_and_stats_a_class_folder(tmp_path: Path) -> None:
    src = build_class_folders(tmp_path / "Plant Photos")
    r = _run("data", "import", str(src), "--seed", "1", root=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "import report: folders" in r.stdout and "(--format auto)" in r.stdout
    assert "skipped 1: hidden file" in r.stdout and "carved test" in r.stdout
    work = tmp_path / "data" / "work" / "plant-photos-import"
    v = _run("data", "validate", str(work), "--report", str(tmp_path / "v.json"), root=tmp_path)
    assert v.returncode == 0 and f"in {len(CLASSES)} classes" in v.stdout, v.stderr
    assert json.loads((tmp_path / "v.json").read_text())["task"] == "classify"
    g = _run("data", "register", str(work), root=tmp_path)
    assert g.returncode == 0 and "registered plant-photos:" in g.stdout, g.stderr
    index = json.loads(next((tmp_path / "data").rglob("catalog.json")).read_text())
    assert [(e["name"], e["task"]) for e in index] == [("plant-photos", "classify")]
    s = _run("data", "stats", str(work), "--plots", str(tmp_path / "plots"), root=tmp_path)
    assert s.returncode == 0, s.stderr
    assert '"task": "classify"' in s.stdout
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["class_counts.png", "samples.png"]


def test_validate_names_the_bad_class_folder_without_a_traceback(tmp_path: Path) -> None:
    bad = build_bad_corpus(tmp_path / "bad")["class_missing_from_split"]
    r = _run("data", "validate", str(bad), root=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "val/cow" in r.stderr and "test/cow" in r.stderr


def test_explicit_formats_and_a_multi_label_error(tmp_path: Path) -> None:
    r = _run("data", "import", str(tmp_path), "--format", "parquet", root=tmp_path)
    assert r.returncode == 1 and "folders, csv, jsonl" in r.stderr
    line = {"image_url": "a.jpg", "label": ["cat", "dog"]}
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ml.jsonl").write_text(json.dumps(line) + "\n")
    from foreign_classify import photo

    photo(tmp_path / "src" / "a.jpg", 0, 0)
    m = _run("data", "import", str(tmp_path / "src" / "ml.jsonl"), "--format", "jsonl", root=tmp_path)
    assert m.returncode == 1 and "multi-label classification is not supported" in m.stderr
    assert "Traceback" not in m.stderr


def test_export_of_a_classification_set_is_refused_with_the_reason(tmp_path: Path) -> None:
    ok = build_bad_corpus(tmp_path / "c")["unicode_ok"]
    r = _run("data", "export", str(ok), root=tmp_path)
    assert r.returncode == 1 and "is a classification data set" in r.stderr and "Traceback" not in r.stderr


def test_generate_the_synthetic_classification_set(tmp_path: Path) -> None:
    out = tmp_path / "g"
    r = _run("data", "generate", "--task", "classify", "--profile", "smoke", "--n-train", "3", "--n-val", "2",
             "--n-test", "2", "--out", str(out), root=tmp_path)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "classify" and manifest["source"]["spec"]["per_class_train"] == 3
    n = len(manifest["classes"])
    assert f"{3 * n}/{2 * n}/{2 * n} images" in r.stdout
    assert _run("data", "validate", str(out), root=tmp_path).returncode == 0

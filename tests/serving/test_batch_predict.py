"""`visionops predict` and visionops.serving.batch on the real small detector (ONNX Runtime).

What a user relies on: every image gets exactly one record (its detections, or the reason it could
not be read), a rerun scores only what is new, the COCO results load with pycocotools, the boxes
are the endpoint's boxes, and the failures say what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from visionops.errors import ConfigError
from visionops.serving.batch import (
    COCO_IMAGES,
    COCO_RESULTS,
    PREDICTIONS,
    BatchRunner,
    NoImagesError,
    image_source,
    predict_folder,
    read_image,
)
from visionops.serving.predictor import load_predictor

CLI = str(Path(sys.executable).with_name("visionops"))
UNICODE = "sub/ünïcödé 写真/фото 1.jpg"


@pytest.fixture(scope="module")
def runner(detector) -> BatchRunner:
    return BatchRunner(load_predictor(detector.model_dir, "onnx", threads=1, name=detector.ref.name,
                                      version=detector.ref.version))


def _folder(detector, dst: Path) -> dict[str, Path]:
    """Real test images at the top, in a sub-folder and under a unicode name, plus a truncated
    JPEG and a text file named .png: {relative name: path}."""
    images = detector.test_images
    layout = {"a.jpg": images[0], "b.jpg": images[1], "sub/c.jpg": images[2], "sub/deeper/d.jpg": images[3],
              UNICODE: images[4]}
    out = {}
    for rel, src in layout.items():
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        out[rel] = target
    data = images[5].read_bytes()
    (dst / "sub" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (dst / "notes.png").write_text("not an image")
    (dst / "readme.txt").write_text("ignored: not an image suffix")
    return out


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / PREDICTIONS).read_text(encoding="utf-8").splitlines()]


def test_corrupt_unicode_and_nested_images_each_get_one_record(detector, runner, tmp_path):
    good = _folder(detector, tmp_path / "in")
    summary = predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out", batch_size=4)

    records = {r["file"]: r for r in _records(tmp_path / "out")}
    assert sorted(records) == sorted([*good, "sub/truncated.jpg", "notes.png"])
    assert (summary.scored, summary.failed, summary.skipped, summary.total) == (5, 2, 0, 7)
    assert records["sub/truncated.jpg"]["error"]["code"] == "invalid_image"
    assert records["notes.png"]["error"]["code"] == "not_an_image"
    assert sorted(r["image_id"] for r in records.values()) == list(range(1, 8))
    # the batched scores are the endpoint predictor's, image by image (one image per call)
    single = load_predictor(detector.model_dir, "onnx", threads=1)
    for rel, path in good.items():
        rec = records[rel]
        want = single.predict([read_image(path)])[0].to_dict()
        assert (rec["width"], rec["height"]) == (want["width"], want["height"])
        assert rec["labels"] == want["labels"] and rec["class_ids"] == want["class_ids"]
        np.testing.assert_allclose(rec["boxes"], want["boxes"], atol=0.02)
        np.testing.assert_allclose(rec["confidences"], want["confidences"], atol=1e-3)
    assert summary.detections == sum(len(r.get("boxes", [])) for r in records.values()) > 0


def test_resumed_run_scores_only_new_images(detector, runner, tmp_path):
    images = detector.test_images
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for p in images[:6]:
        shutil.copyfile(p, src / p.name)
    first = predict_folder(runner, image_source(src), out, batch_size=4)
    assert (first.scored, first.skipped) == (6, 0)
    (src / "new").mkdir()
    for p in images[6:9]:
        shutil.copyfile(p, src / "new" / p.name)
    # a run killed mid-write leaves half a line: it is dropped and that image scored again
    text = (out / PREDICTIONS).read_text(encoding="utf-8")
    (out / PREDICTIONS).write_text(text[: len(text) - 40], encoding="utf-8")

    second = predict_folder(runner, image_source(src), out, batch_size=4)
    assert (second.scored, second.skipped, second.failed) == (4, 5, 0)
    records = _records(out)
    files = [r["file"] for r in records]
    assert len(files) == len(set(files)) == 9
    assert sorted(r["image_id"] for r in records) == list(range(1, 10))
    third = predict_folder(runner, image_source(src), out)
    assert (third.scored, third.skipped) == (0, 9)
    # a whole record that lost only its newline is scored again too (appending would join two lines)
    (out / PREDICTIONS).write_text((out / PREDICTIONS).read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    fourth = predict_folder(runner, image_source(src), out)
    assert (fourth.scored, fourth.skipped) == (1, 8)
    assert len(_records(out)) == 9
    # any other unreadable line is an error naming it: skipping it would drop its image silently
    lines = (out / PREDICTIONS).read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "{not json\n"
    (out / PREDICTIONS).write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"predictions.jsonl:3: not a prediction record"):
        predict_folder(runner, image_source(src), out)


def test_coco_results_load_with_pycocotools(detector, runner, tmp_path):
    from pycocotools.coco import COCO

    _folder(detector, tmp_path / "in")
    summary = predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out")
    gt = COCO(str(tmp_path / "out" / COCO_IMAGES))
    dt = gt.loadRes(str(tmp_path / "out" / COCO_RESULTS))
    assert len(dt.getAnnIds()) == summary.detections
    assert len(gt.getImgIds()) == summary.scored  # error records have no image entry
    names = {c["name"] for c in gt.loadCats(gt.getCatIds())}
    assert names == set(runner.predictor.names)
    by_file = {r["file"]: r for r in _records(tmp_path / "out")}
    img = next(i for i in gt.loadImgs(gt.getImgIds()) if i["file_name"] == UNICODE)
    rec = by_file[UNICODE]
    anns = dt.loadAnns(dt.getAnnIds(imgIds=[img["id"]]))
    assert [a["score"] for a in anns] == rec["confidences"]
    x0, y0, x1, y1 = rec["boxes"][0]
    assert anns[0]["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=0.02)


def test_glob_selects_files_and_names_them_relative_to_its_folder(detector, runner, tmp_path):
    _folder(detector, tmp_path / "in")
    summary = predict_folder(runner, image_source(str(tmp_path / "in" / "sub" / "**" / "*.jpg")), tmp_path / "out")
    assert sorted(r["file"] for r in _records(tmp_path / "out")) == sorted(
        ["c.jpg", "deeper/d.jpg", "truncated.jpg", UNICODE.removeprefix("sub/")])
    assert summary.failed == 1


def test_symlinked_folders_are_followed_once(tmp_path, detector):
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(detector.test_images[0], tmp_path / "elsewhere" / "x.jpg")
    (tmp_path / "in").mkdir()
    shutil.copyfile(detector.test_images[1], tmp_path / "in" / "y.jpg")
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)
    assert sorted(i.key for i in image_source(tmp_path / "in")) == ["linked/x.jpg", "y.jpg"]


def test_another_model_setting_is_refused_on_resume(detector, runner, tmp_path):
    _folder(detector, tmp_path / "in")
    predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"conf: 0.25 there, 0.5 now.*--overwrite"):
        predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out", conf=0.5)
    again = predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out", conf=0.5, overwrite=True)
    assert again.skipped == 0 and again.scored == 5


def test_a_model_without_onnx_export_is_refused_with_what_to_do(detector, tmp_path):
    from visionops.errors import ModelNotFoundError
    from visionops.serving.batch import load_runner

    folder = tmp_path / "model"
    shutil.copytree(detector.model_dir, folder)
    for onnx in folder.rglob("*.onnx"):
        onnx.unlink()
    with pytest.raises(ModelNotFoundError, match=r"has no ONNX export.*export_onnx.*--model name:version"):
        load_runner(folder)


def test_empty_folder_is_a_clear_error(tmp_path, runner):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "labels.txt").write_text("0 0.5 0.5 0.1 0.1")
    with pytest.raises(NoImagesError, match=r"no images under .*empty.*sub-folders"):
        predict_folder(runner, image_source(tmp_path / "empty"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(NoImagesError, match="neither a folder"):
        image_source(tmp_path / "missing")


def _cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    env.pop("VISIONOPS_MODEL_NAME", None)
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def test_cli_scores_the_production_model_and_resumes(detector, tmp_path):
    _folder(detector, tmp_path / "in")
    out = tmp_path / "out"
    ref = f"{detector.ref.name}:{detector.ref.version}"
    first = _cli("predict", str(tmp_path / "in"), "--out", str(out), "--model", ref, root=detector.settings.root)
    assert first.returncode == 0, first.stderr
    assert "scored         5 image(s)" in first.stdout and "2 image(s) could not be read" in first.stdout
    assert "sub/truncated.jpg: invalid_image" in first.stdout
    second = _cli("predict", str(tmp_path / "in"), "--out", str(out), root=detector.settings.root)
    assert second.returncode == 0, second.stderr
    assert "scored         0 image(s)" in second.stdout and "skipped        7" in second.stdout


def test_cli_without_a_production_model_says_how_to_get_one(tmp_path, detector):
    _folder(detector, tmp_path / "in")
    (tmp_path / "empty-project").mkdir()
    res = _cli("predict", str(tmp_path / "in"), root=tmp_path / "empty-project")
    assert res.returncode == 1
    assert "no production version" in res.stderr and "visionops run" in res.stderr
    assert "Traceback" not in res.stderr
    missing = _cli("predict", str(tmp_path / "in"), "--model", f"{detector.ref.name}:999", root=detector.settings.root)
    assert missing.returncode == 1 and "has no version '999'" in missing.stderr


def test_azure_batch_scoring_script_returns_one_row_per_file(detector, tmp_path, monkeypatch):
    """batch_score.py as Azure ML's batch driver calls it: init() once, run(mini_batch of paths)."""
    from visionops.serving import batch_score
    from visionops.settings import reset_settings_cache

    files = _folder(detector, tmp_path / "in")
    mini_batch = [str(p) for p in files.values()] + [str(tmp_path / "in" / "sub" / "truncated.jpg")]
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(detector.model_dir))
    monkeypatch.setenv("VISIONOPS_SERVING_MODEL_VERSION", detector.ref.version)
    monkeypatch.setenv("VISIONOPS_BATCH_SIZE", "2")
    reset_settings_cache()
    try:
        batch_score.init()
        rows = [json.loads(r) for r in batch_score.run(mini_batch)]
    finally:
        reset_settings_cache()
    assert [r["file"] for r in rows] == mini_batch
    assert all(r["model"].endswith(f":{detector.ref.version}") for r in rows)
    assert rows[-1]["error"]["code"] == "invalid_image"
    assert all("boxes" in r for r in rows[:-1]) and sum(len(r["boxes"]) for r in rows[:-1]) > 0


# --- a classifier: labels with probabilities per image, no COCO files ----------------------------------
def _classify_folder(classifier, dst: Path) -> dict[str, str]:
    """Test images at the top, in a sub-folder and under a unicode name, plus a corrupt JPEG:
    {relative name: true class} of the good ones."""
    cases = classifier.test_images
    layout = {"a.jpg": cases[0], "sub/b.jpg": cases[4], UNICODE: cases[8]}
    for rel, (src, _) in layout.items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst / rel)
    data = cases[1][0].read_bytes()
    (dst / "sub" / "broken.jpg").write_bytes(data[: len(data) // 3])
    return {rel: truth for rel, (_, truth) in layout.items()}


def test_classifier_records_hold_labels_and_probabilities(classifier, tmp_path):
    from visionops.serving.batch import load_runner

    truth = _classify_folder(classifier, tmp_path / "in")
    runner = load_runner(classifier.model_dir, threads=1)
    assert runner.predictor.task == "classify"
    summary = predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out", batch_size=2, top_k=2)
    assert (summary.scored, summary.failed, summary.task) == (3, 1, "classify")
    assert summary.coco_results is None and summary.coco_images is None
    assert not (tmp_path / "out" / COCO_RESULTS).exists() and not (tmp_path / "out" / COCO_IMAGES).exists()
    records = {r["file"]: r for r in _records(tmp_path / "out")}
    assert records["sub/broken.jpg"]["error"]["code"] == "invalid_image"
    single = load_predictor(classifier.model_dir, "onnx", threads=1)
    for rel, label in truth.items():
        rec = records[rel]
        assert sorted(rec) == ["class_ids", "file", "height", "image_id", "labels", "probabilities", "width"]
        assert rec["labels"][0] == label and len(rec["labels"]) == 2
        want = single.predict([read_image(tmp_path / "in" / rel)], top_k=2)[0].to_dict()
        assert rec["labels"] == want["labels"]
        np.testing.assert_allclose(rec["probabilities"], want["probabilities"], atol=1e-3)
    manifest = json.loads((tmp_path / "out" / "predict.json").read_text(encoding="utf-8"))
    assert (manifest["task"], manifest["top_k"]) == ("classify", 2) and "conf" not in manifest
    # resuming with another top_k would mix records: refused
    with pytest.raises(ConfigError, match=r"top_k: 2 there, 3 now"):
        predict_folder(runner, image_source(tmp_path / "in"), tmp_path / "out", top_k=3)


def test_cli_scores_a_classifier_and_says_why_there_is_no_coco(classifier, tmp_path):
    _classify_folder(classifier, tmp_path / "in")
    out = tmp_path / "out"
    ref = f"{classifier.ref.name}:{classifier.ref.version}"
    res = _cli("predict", str(tmp_path / "in"), "--out", str(out), "--model", ref, "--top-k", "1",
               root=classifier.settings.root)
    assert res.returncode == 0, res.stderr
    assert "(classify, onnx" in res.stdout and "scored         3 image(s), " in res.stdout
    assert "detection(s)" not in res.stdout and "1 image(s) could not be read" in res.stdout
    assert "coco results   not written: classify model (COCO results are for detection" in res.stdout
    assert all(len(r["labels"]) == 1 for r in _records(out) if "error" not in r)


def test_azure_batch_scoring_script_classifies(classifier, tmp_path, monkeypatch):
    from visionops.serving import batch_score
    from visionops.settings import reset_settings_cache

    truth = _classify_folder(classifier, tmp_path / "in")
    mini_batch = [str(tmp_path / "in" / rel) for rel in truth]
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(classifier.model_dir))
    reset_settings_cache()
    try:
        batch_score.init()
        rows = [json.loads(r) for r in batch_score.run(mini_batch)]
    finally:
        reset_settings_cache()
    assert [r["labels"][0] for r in rows] == list(truth.values())
    assert all(len(r["probabilities"]) == 3 for r in rows)

"""`visionops label export` and `visionops data import --into` as a user runs them, on the smoke
lifecycle's registered champion: its real baseline and class list, records written by the real
Scorer and collector (simulated traffic: the data set's train/val images, half of them darkened),
then a simulated labeler and the merge into a fresh project's copy of the data set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("visionops"))
N_NORMAL, N_DARK, LIMIT = 8, 8, 10


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def production(smoke_run, smoke_settings, tmp_path_factory):
    """(collection folder, truth by `<correlation id>-0`): the champion's answers to 8 normal and
    8 darker frames, every image sampled."""
    from visionops import registry
    from visionops.monitoring.simulate import production_scorer, send, traffic

    folder = tmp_path_factory.mktemp("label-cli") / "production"
    champion = registry.get_version(smoke_settings, smoke_run.result.registration.version,
                                    smoke_run.result.registration.model_name)
    scorer = production_scorer(smoke_settings, champion, folder, sample_rate=1.0)
    dataset = Path(smoke_run.result.dataset.path)
    truth = send(scorer, traffic(dataset, N_NORMAL), conf=0.01)
    truth |= send(scorer, traffic(dataset, N_DARK, seed=1, brightness=0.35), conf=0.01)
    scorer.collector.close()
    return folder, truth


@pytest.fixture(scope="module")
def batch(production, session_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch") / "batch"
    proc = _cli(session_root, "label", "export", "--records", str(production[0]), "--out", str(folder),
                "--limit", str(LIMIT))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder


def test_export_ranks_unsure_and_unusual_images_with_prelabels_in_pixels(batch, production, smoke_run):
    from visionops.data.layout import read_class_names
    from visionops.monitoring.collect import read_records

    meta = json.loads((batch / "batch.json").read_text())
    coco = json.loads((batch / "annotations.json").read_text())
    assert 0 < len(meta["images"]) <= LIMIT and meta["considered"] == N_NORMAL + N_DARK
    assert meta["missing_samples"] == 0  # every image was sampled
    scores = [e["score"] for e in meta["images"]]
    assert scores == sorted(scores, reverse=True)  # most uncertain first
    names = sorted(p.name for p in (batch / "images").iterdir())
    assert names == sorted(e["file_name"] for e in meta["images"]) == sorted(i["file_name"] for i in coco["images"])
    classes = read_class_names(Path(smoke_run.result.dataset.path))
    assert [c["name"] for c in coco["categories"]][:len(classes)] == classes
    records = {f"{r.correlation_id}-{r.index}": r for r in read_records(production[0])[0]}
    for image in coco["images"]:
        rec = records[Path(image["file_name"]).stem]
        boxes = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert len(boxes) == rec.prediction.count
        for (x, y, w, h), (x0, y0, x1, y1) in zip(boxes, rec.raw["boxes"], strict=True):
            assert (x, y, x + w, y + h) == pytest.approx((x0, y0, x1, y1), abs=0.02)
        assert (image["width"], image["height"]) == (rec.image.width, rec.image.height)


def test_labeled_batch_comes_back_as_a_new_version_with_test_untouched(batch, production, tmp_path):
    from visionops.data.catalog import LocalDatasetCatalog
    from visionops.data.layout import iter_images
    from visionops.hashing import file_digest
    from visionops.monitoring.simulate import label_with_truth
    from visionops.runner import Runner
    from visionops.settings import Settings

    assert label_with_truth(batch, production[1]) > 0
    settings = Settings(_env_file=None, root=tmp_path)
    base = Runner(settings, "smoke").generate()  # the same synthetic data set, in another project
    proc = _cli(tmp_path, "data", "import", str(batch), "--into", base.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = next(v for v in LocalDatasetCatalog(settings.catalog_dir).list(base.name) if v.version != base.version)

    def digests(ref, split):
        return {file_digest(p) for p in iter_images(Path(ref.path), split)}

    assert digests(new, "test") == digests(base, "test")  # the gate's split is frozen
    added = sum(len(digests(new, s) - digests(base, s)) for s in ("train", "val"))
    meta = json.loads((batch / "batch.json").read_text())
    assert 0 < added <= len(meta["images"])  # darkened frames are new; normal ones are the data set's own
    assert f"{new.name}:{new.version}" in proc.stdout + proc.stderr

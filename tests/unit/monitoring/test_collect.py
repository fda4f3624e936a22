"""Local production data collection: one record per image, rotation, sampling, the reader's
tolerance of bad lines, and the promise that collection never fails or blocks a request."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from unwritable import blocked_folder

from visionops.monitoring.collect import (
    LocalCollector,
    NullCollector,
    QueuedCollector,
    correlation_id,
    make_collector,
    read_records,
)
from visionops.monitoring.records import ModelRef, ProductionRecord

MODEL = ModelRef(name="shapes-detector", version="3", task="detect", runtime="onnx")


def photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def prediction(n: int = 2) -> dict:
    return {"width": 64, "height": 48, "boxes": [[1.0, 2.0, 30.0, 40.0]] * n, "class_ids": [0] * n,
            "labels": ["circle"] * n, "confidences": [0.9, 0.3][:n] + [0.8] * max(0, n - 2)}


def send(collector, requests: int, images: int = 1, prefix: str = "req") -> None:
    for i in range(requests):
        collector.record([photo(seed=i)] * images, [prediction()] * images, MODEL, f"{prefix}-{i}")


@pytest.fixture
def collector(tmp_path):
    c = LocalCollector(tmp_path / "production")
    yield c
    c.close()


def test_one_record_per_image_with_model_and_prediction(collector, tmp_path):
    collector.record([photo(seed=1), photo(80, 40, seed=2)], [prediction(2), prediction(1)], MODEL, "abc-1")
    collector.record([photo(seed=3)], [prediction(0)], MODEL, "abc-2")
    assert collector.flush()
    records, skipped = read_records(tmp_path / "production")
    assert skipped == 0 and len(records) == 3
    first, second, third = sorted(records, key=lambda r: (r.correlation_id, r.index))
    assert (first.correlation_id, first.index, second.correlation_id, second.index) == ("abc-1", 0, "abc-1", 1)
    assert first.model == MODEL and first.image.width == 64 and second.image.width == 80
    assert first.prediction.count == 2 and first.prediction.low_conf_frac == 0.5
    assert second.prediction.labels == ["circle"] and third.prediction.count == 0
    assert first.raw == prediction(2) and first.sample is None
    assert collector.stats()["records_written"] == 3
    [path] = (tmp_path / "production" / "records").glob("*.jsonl")
    assert path.name.startswith(f"records-{datetime.now(UTC):%Y%m%d}") and f"-{os.getpid()}-" in path.name


def test_rotation_by_size_keeps_the_newest_files(tmp_path):
    c = LocalCollector(tmp_path, max_file_bytes=2048, max_files=3)
    for i in range(40):  # one request per batch: the writer sees them one by one
        send(c, 1, prefix=f"r{i:02d}")
        assert c.flush()
    c.close()
    files = sorted((tmp_path / "records").glob("*.jsonl"))
    assert len(files) == 3
    line = len((files[0].read_text().splitlines()[0] + "\n").encode())
    assert all(f.stat().st_size <= 2048 for f in files) and line * 2 <= 2048
    records, skipped = read_records(tmp_path)
    assert skipped == 0 and 0 < len(records) < 40
    ids = sorted(r.correlation_id for r in records)
    assert ids[-1] == "r39-0" and ids == [f"r{i:02d}-0" for i in range(40 - len(ids), 40)]  # the newest survive
    assert c.stats()["files_deleted"] >= 1


def test_sampling_saves_every_image_at_rate_one_and_none_at_zero(tmp_path):
    c = LocalCollector(tmp_path / "all", sample_rate=1.0)
    c.record([photo(64, 48, seed=1), photo(40, 30, seed=2)], [prediction(), prediction()], MODEL, "s:1")
    c.flush()
    records, _ = read_records(tmp_path / "all")
    assert len(records) == 2 and all(r.sample for r in records)
    for r in records:
        assert r.sample.startswith("samples/") and ":" not in Path(r.sample).name
        with Image.open(tmp_path / "all" / r.sample) as img:  # the path is relative to the collection folder
            assert img.size == (r.image.width, r.image.height)
    none = LocalCollector(tmp_path / "none")
    send(none, 5)
    none.flush()
    assert not (tmp_path / "none" / "samples").exists()
    assert all(r.sample is None for r in read_records(tmp_path / "none")[0])
    c.close()
    none.close()


def test_sampling_rate_and_size_cap(tmp_path):
    half = LocalCollector(tmp_path / "half", sample_rate=0.5, rng=random.Random(7))
    send(half, 200)
    half.flush()
    saved = half.stats()["samples_saved"]
    assert 70 <= saved <= 130, saved
    assert len(list((tmp_path / "half" / "samples").rglob("*.jpg"))) == saved
    capped = LocalCollector(tmp_path / "capped", sample_rate=1.0, sample_max_bytes=200)
    send(capped, 3)
    capped.flush()
    assert capped.stats().get("samples_too_large") == 3 and capped.stats().get("samples_saved") is None
    assert all(r.sample is None for r in read_records(tmp_path / "capped")[0])
    half.close()
    capped.close()


def test_sampled_raw_bytes_are_saved_as_sent(tmp_path):
    buf = io.BytesIO()
    photo(seed=5).save(buf, "PNG")
    c = LocalCollector(tmp_path, sample_rate=1.0)
    c.record([photo(seed=5)], [prediction()], MODEL, "raw", raw=[buf.getvalue()])
    c.flush()
    [rec] = read_records(tmp_path)[0]
    assert rec.sample.endswith(".png") and (tmp_path / rec.sample).read_bytes() == buf.getvalue()
    c.close()


def test_reader_skips_and_counts_corrupt_and_truncated_lines(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    good = ProductionRecord(model=MODEL, image={"width": 4, "height": 4, "aspect": 1, "brightness": 1, "contrast": 1,
                                                "sharpness": 1},
                            prediction={"task": "detect", "count": 0, "labels": [], "confidences": []})
    line = good.model_dump_json()
    (folder / "records-2026010100-1-0000.jsonl").write_bytes(
        (line + "\n"                                      # good
         + "this is not json\n"                           # garbage
         + json.dumps({"hello": "world"}) + "\n"          # JSON, not a record
         + "\n"                                           # empty: ignored, not counted
         + line + "\n").encode()
        + b"\xff\xfe\x00bad bytes\n"                      # not UTF-8
        + line[: len(line) // 2].encode()                 # truncated by a kill mid-write (no newline)
    )
    records, skipped = read_records(tmp_path)
    assert (len(records), skipped) == (2, 4)
    assert read_records(folder) == (records, skipped)  # the collection folder or its records/ folder


def test_reader_window_and_missing_folder(tmp_path):
    now = datetime.now(UTC)
    stats = {"width": 4, "height": 4, "aspect": 1, "brightness": 1, "contrast": 1, "sharpness": 1}
    pred = {"task": "detect", "count": 0, "labels": [], "confidences": []}
    lines = [ProductionRecord(model=MODEL, image=stats, prediction=pred, time=now - timedelta(hours=h),
                              correlation_id=f"h{h}").model_dump_json() for h in (0, 2, 30)]
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    recent, _ = read_records(tmp_path, since=now - timedelta(hours=3))
    assert [r.correlation_id for r in recent] == ["h2", "h0"]  # oldest first
    naive = (now - timedelta(hours=1)).replace(tzinfo=None)  # naive means UTC
    assert [r.correlation_id for r in read_records(tmp_path, until=naive)[0]] == ["h30", "h2"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_records(tmp_path / "nowhere")


def test_unwritable_folder_never_raises_and_counts_once(tmp_path, caplog):
    c = LocalCollector(blocked_folder(tmp_path), sample_rate=1.0)
    with caplog.at_level(logging.WARNING, logger="azmlinfsrv.visionops.collect"):
        started = time.perf_counter()
        for i in range(5):
            send(c, 1, images=2, prefix=f"u{i}")
            assert c.flush()
        record_s = time.perf_counter() - started
    stats = c.stats()
    assert stats["write_errors"] == 10 and stats["sample_errors"] == 10 and "records_written" not in stats
    assert record_s < 10
    warnings = [r for r in caplog.records if "write_errors" in r.getMessage()]
    assert len(warnings) == 1 and "VISIONOPS_COLLECT_DIR" in warnings[0].getMessage()
    c.close()


class Stalled(QueuedCollector):
    """A writer stuck on a slow disk."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.release = threading.Event()
        self.emitted = 0

    def emit(self, built):
        self.release.wait(10)
        self.emitted += len(built)


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    c = Stalled(queue_requests=2)
    started = time.perf_counter()
    send(c, 20)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"record() blocked for {elapsed:.2f} s"
    dropped = c.stats()["dropped_queue_full"]
    assert 15 <= dropped <= 18  # 1 taken by the stalled writer, 2 queued, the rest dropped
    c.release.set()
    assert c.flush()
    assert c.emitted + dropped == 20
    c.close()


def test_pixel_budget_drops_huge_backlogs():
    c = Stalled(queue_pixels=64 * 48 * 3)
    send(c, 10)
    assert c.stats()["dropped_queue_full"] >= 6
    c.release.set()
    c.close()


def _child(collector: LocalCollector, n: int, tag: str) -> None:
    send(collector, n, prefix=tag)
    collector.close()


def test_several_processes_write_their_own_files(tmp_path):
    """gunicorn workers: the same collector object forked (preload) and used in each worker."""
    c = LocalCollector(tmp_path, max_file_bytes=64 * 1024)
    send(c, 3, prefix="parent")
    assert c.flush()
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_child, args=(c, 40, f"w{k}")) for k in range(3)]
    for p in children:
        p.start()
    send(c, 3, prefix="parent-again")  # the parent goes on writing while the children do
    for p in children:
        p.join(60)
        assert p.exitcode == 0
    c.close()
    records, skipped = read_records(tmp_path)
    assert skipped == 0 and len(records) == 6 + 3 * 40
    assert len({r.correlation_id for r in records}) == 6 + 3 * 40
    pids = {f.name.split("-")[2] for f in (tmp_path / "records").glob("*.jsonl")}
    assert len(pids) == 4  # one writer per file: the parent and each worker


def test_correlation_id_from_headers_or_generated():
    assert correlation_id({"x-request-id": "abc-123"}) == "abc-123"
    assert correlation_id([("X-MS-Client-Request-Id", "c1"), ("X-Request-Id", "r1")]) == "r1"  # x-request-id first
    assert correlation_id({"X-Ms-Client-Request-Id": "client:7"}) == "client:7"
    odd = correlation_id({"x-request-id": "../../etc/passwd"})  # not plain: a new one
    fresh = correlation_id(None)
    assert len(odd) == len(fresh) == 32 and odd != fresh and int(fresh, 16) >= 0


def test_make_collector_follows_settings_and_environment(tmp_path, monkeypatch):
    from visionops.settings import get_settings

    s = get_settings(root=tmp_path)
    assert isinstance(make_collector(s.with_overrides(collect=False), {}), NullCollector)
    local = make_collector(s.with_overrides(collect_sample_rate=0.25, collect_max_files=7), {})
    assert isinstance(local, LocalCollector)
    assert (local.folder, local.sample_rate, local.max_files) == (tmp_path / "outputs" / "production", 0.25, 7)
    azure = s.with_overrides(backend="azure")
    # an azure-backend process outside a deployment with a data collector writes locally
    assert isinstance(make_collector(azure, {"AZUREML_MODEL_DIR": "/m"}), LocalCollector)
    pytest.importorskip("azureml.ai.monitoring")
    from visionops.monitoring.azure_collect import AzureCollector

    chosen = make_collector(azure, {"AZUREML_MODEL_DIR": "/m", "AZUREML_MDC_CONFIG_PATH": "/cfg.json"})
    assert isinstance(chosen, AzureCollector)
    assert isinstance(make_collector(s, {"AZUREML_MODEL_DIR": "/m", "AZUREML_MDC_ENABLED": "true"}), LocalCollector)


def test_the_scorer_answers_even_when_the_collector_raises():
    from visionops.serving.detect import Detections
    from visionops.serving.protocol import Limits
    from visionops.serving.score import Scorer

    class Fake:
        name, version, runtime, task, names = "m", "1", "onnx", "detect", ["a"]

        class head:  # noqa: N801 - stands in for the Head the scorer describes predictions with
            @staticmethod
            def describe(predictions):
                return "fake"

        def predict(self, images, **kwargs):
            return [Detections(width=i.width, height=i.height) for i in images]

    class Broken(NullCollector):
        def record(self, *args, **kwargs):
            raise OSError("disk on fire")

    buf = io.BytesIO()
    photo().save(buf, "PNG")
    import base64

    body = {"image": base64.b64encode(buf.getvalue()).decode()}
    status, answer = Scorer(Fake(), Limits(10**6, 10**7, 4), collector=Broken()).score(
        body, {"X-Request-Id": "join-me"})
    assert status == 200 and answer["correlation_id"] == "join-me" and answer["predictions"][0]["width"] == 64

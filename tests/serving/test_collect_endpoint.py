"""Production data collection on the real local endpoint (azmlinfsrv + score.py on loopback):
one record per scored image with the served model and what it answered, joined to the request
by its correlation id; and a collection folder nobody can write slows or fails no request."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from visionops.monitoring.collect import read_records

pytestmark = pytest.mark.slow


def wait_for(folder: Path, cid: str, n: int, timeout: float = 20.0) -> list:
    """The records of one request, once the server's writer thread has written all `n`."""
    deadline = time.monotonic() + timeout
    found: list = []
    while time.monotonic() < deadline:
        if folder.is_dir():
            found = [r for r in read_records(folder)[0] if r.correlation_id == cid]
            if len(found) >= n:
                return sorted(found, key=lambda r: r.index)
        time.sleep(0.1)
    raise AssertionError(f"{len(found)} of {n} records for {cid} under {folder} after {timeout} s")


def test_each_image_is_recorded_with_the_model_and_its_prediction(client, detector):
    from visionops.serving.endpoint import encode_image

    cid = f"test-{uuid.uuid4().hex}"
    images = detector.test_images[:3]
    r = client.post({"images": [encode_image(p) for p in images], "conf": 0.25}, headers={"X-Request-Id": cid})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["correlation_id"] == cid  # the client can join its logs with the records
    records = wait_for(detector.settings.production_dir, cid, 3)
    assert [rec.index for rec in records] == [0, 1, 2]
    for rec, sent in zip(records, answer["predictions"], strict=True):
        assert (rec.model.name, rec.model.version, rec.model.task, rec.model.runtime) == (
            detector.ref.name, detector.ref.version, "detect", "onnx")
        assert rec.raw == sent
        assert rec.prediction.count == len(sent["boxes"]) and rec.prediction.labels == sent["labels"]
        assert rec.prediction.confidences == sent["confidences"]
        assert (rec.image.width, rec.image.height) == (sent["width"], sent["height"])
        assert 0 < rec.image.brightness < 255 and rec.sample is None  # sampling is off by default
    assert any(rec.prediction.count for rec in records), "the detector found nothing on three test images"


def test_a_request_without_an_id_gets_one(client, detector):
    from visionops.serving.endpoint import encode_image

    answer = client.score({"image": encode_image(detector.known.path)})
    cid = answer["correlation_id"]
    assert len(cid) == 32 and int(cid, 16) >= 0
    [rec] = wait_for(detector.settings.production_dir, cid, 1)
    assert rec.prediction.count == len(answer["predictions"][0]["boxes"])


def test_classifier_records_the_top_label(classify_endpoint, classifier):
    from visionops.serving.endpoint import EndpointClient, encode_image

    cid = f"cls-{uuid.uuid4().hex}"
    path, path2 = classifier.test_images[0][0], classifier.test_images[-1][0]
    with EndpointClient(classify_endpoint.info, timeout=30) as c:
        r = c.post({"images": [encode_image(path), encode_image(path2)]}, headers={"x-ms-client-request-id": cid})
    assert r.status_code == 200, r.text
    sent = r.json()["predictions"]
    records = wait_for(classifier.settings.production_dir, cid, 2)
    assert all(rec.model.task == "classify" and rec.model.name == classifier.ref.name for rec in records)
    for rec, pred in zip(records, sent, strict=True):
        assert rec.prediction.count == 1 and rec.prediction.labels == pred["labels"][:1]
        assert rec.prediction.max_conf == pred["probabilities"][0]


@pytest.fixture(scope="module")
def blocked(tmp_path_factory) -> Path:
    """A collection folder the server cannot create (tests/support/unwritable.py)."""
    from unwritable import blocked_folder

    return blocked_folder(tmp_path_factory.mktemp("unwritable"))


@pytest.fixture(scope="module")
def unwritable_endpoint(detector, blocked):
    from visionops.serving.local_endpoint import LocalEndpoint

    settings = detector.settings.with_overrides(collect_dir=blocked, collect_sample_rate=1.0)
    with LocalEndpoint(detector.model_dir, settings, name="tests-collect-unwritable", runtime="onnx",
                       model_name=detector.ref.name, model_version=detector.ref.version) as ep:
        yield ep


def test_an_unwritable_collection_folder_fails_no_request(unwritable_endpoint, detector, blocked):
    from visionops.serving.endpoint import EndpointClient, encode_image

    log = unwritable_endpoint.log_path
    offset = log.stat().st_size  # the log is appended to when a developer reuses the detector's root
    payload = {"images": [encode_image(p) for p in detector.test_images[:2]]}
    with EndpointClient(unwritable_endpoint.info, timeout=30) as c:
        answers = [c.post(payload) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 6
    assert all(len(a.json()["predictions"]) == 2 and a.json()["correlation_id"] for a in answers)
    assert not blocked.exists()
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline and "cannot write production records" not in text:
        time.sleep(0.1)
        text = log.read_bytes()[offset:].decode(errors="replace")
    assert text.count("cannot write production records") == 1, "logged once, then counted"
    assert "VISIONOPS_COLLECT_DIR" in text

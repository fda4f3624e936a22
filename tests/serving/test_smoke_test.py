"""The post-deployment smoke test passes on a good endpoint and fails, naming the check, on a bad one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_smoke_test_passes_on_the_endpoint(endpoint, detector):
    from visionops.serving.smoke_test import run_smoke_test

    report = run_smoke_test(endpoint.info, detector.known)
    assert report.ok, report.summary()
    assert [c.name for c in report.checks] == ["health", "known image", "invalid request", "healthy afterwards"]
    assert report.model == {"name": detector.ref.name, "version": detector.ref.version, "runtime": "onnx",
                            "task": "detect"}
    assert "IoU" in report.checks[1].detail
    assert report.checks[2].detail.startswith("400 ")
    assert report.to_dict()["ok"] is True


def test_smoke_test_fails_with_a_wrong_key_and_on_missed_objects(endpoint, detector):
    from visionops.serving.smoke_test import KnownImage, run_smoke_test

    wrong = endpoint.info.with_key("not-the-key")
    report = run_smoke_test(wrong, detector.known)
    assert not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["known image"] and "401" in failed[0].detail
    # ground truth that is not in the image: the known-image check must fail, and say why
    phantom = KnownImage(path=detector.known.path, boxes=[("rectangle", [0.0, 0.0, 3.0, 3.0])])
    report = run_smoke_test(endpoint.info, phantom)
    assert not report.ok and "expected one of [rectangle]" in report.checks[1].detail
    assert "FAILED" in report.summary()

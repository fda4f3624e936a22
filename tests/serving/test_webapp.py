"""The web page in front of the real endpoint: Flask's test client for the API, and Debian's
chromium driven by Playwright for what a person sees (boxes and labels drawn, model version,
latency, a screenshot under the session's outputs/screenshots/)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def app(endpoint):
    from visionops.webapp import create_app

    return create_app(endpoint.settings, endpoint.info)


def test_api_detects_and_never_exposes_the_key(app, endpoint, detector):
    key = endpoint.info.key.get_secret_value()
    web = app.test_client()
    page = web.get("/")
    assert page.status_code == 200 and b"upload-form" in page.data
    assert key.encode() not in page.data
    with open(detector.known.path, "rb") as fh:
        r = web.post("/api/detect", data={"image": (fh, "known.jpg"), "conf": "0.25"})
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert body["model"]["version"] == detector.ref.version
    assert set(body["prediction"]["labels"]) & detector.known.labels
    assert body["latency_ms"] > 0 and key.encode() not in r.data
    # errors: the endpoint's 4xx is passed on with its reason; a missing file is named
    bad = web.post("/api/detect", data={"image": (io.BytesIO(b"not an image"), "x.jpg")})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "not_an_image"
    missing = web.post("/api/detect", data={})
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "image"


def _chromium() -> str:
    """Debian's chromium, installed by scripts/ensure-chromium.sh when missing; skip if impossible."""
    if not os.access(CHROMIUM, os.X_OK):
        script = Path(__file__).resolve().parents[2] / "scripts" / "ensure-chromium.sh"
        proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
            pytest.skip(f"Debian chromium is missing and could not be installed: {proc.stderr.strip()[-300:]}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return CHROMIUM


@pytest.fixture
def live_app(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.mark.browser
def test_browser_upload_draws_boxes_and_labels(live_app, endpoint, detector, session_root, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    key = endpoint.info.key.get_secret_value()
    shots = session_root / "outputs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.on("request", lambda req: requested.append(req.url))
            page.goto(live_app + "/")
            assert page.title() == "VisionOps detector"
            page.set_input_files("#file", str(detector.known.path))
            page.click("#detect")
            page.wait_for_selector("body[data-state=done]", timeout=30_000)

            detections = page.locator("svg#overlay g.detection")
            n = detections.count()
            assert n >= 1
            labels = detections.evaluate_all("els => els.map(e => e.dataset.label)")
            assert set(labels) <= {"circle", "rectangle"} and set(labels) & detector.known.labels
            captions = page.locator("svg#overlay g.detection text.label").all_text_contents()
            assert len(captions) == n and all(re.fullmatch(r"(circle|rectangle) \d+%", c) for c in captions)
            # each box is drawn inside the image, at a visible size
            viewbox = page.locator("svg#overlay").get_attribute("viewBox")
            w, h = (float(v) for v in viewbox.split()[2:])
            for i in range(n):
                rect = detections.nth(i).locator("rect.box")
                x, y = float(rect.get_attribute("x")), float(rect.get_attribute("y"))
                bw, bh = float(rect.get_attribute("width")), float(rect.get_attribute("height"))
                assert 0 <= x and 0 <= y and x + bw <= w + 0.5 and y + bh <= h + 0.5 and bw > 2 and bh > 2
                assert rect.bounding_box()["width"] > 10  # rendered on screen, not just in the DOM
            assert page.locator("#model-version").inner_text() == (
                f"{detector.ref.name} v{detector.ref.version} (onnx)")
            assert re.match(r"\d+ ms round trip, [\d.]+ ms inference", page.locator("#latency").inner_text())
            assert page.locator("#detections tbody tr").count() == n
            page.screenshot(path=str(shots / "webapp.png"), full_page=True)
            assert key not in page.content()

            # a file that is not an image: the endpoint's reason reaches the page
            bad = tmp_path / "notes.jpg"
            bad.write_text("not an image at all")
            page.set_input_files("#file", str(bad))
            page.click("#detect")
            page.wait_for_selector("#status.error", timeout=30_000)
            assert "not_an_image" in page.locator("#status").inner_text()
            page.screenshot(path=str(shots / "webapp-error.png"))
        finally:
            browser.close()
    assert (shots / "webapp.png").stat().st_size > 10_000
    # the page loaded nothing from outside this app (no CDN, no fonts, no telemetry)
    outside = [u for u in requested if not (u.startswith(live_app) or u.startswith(("blob:", "data:")))]
    assert not outside


@pytest.fixture
def classify_app(classify_endpoint):
    from visionops.webapp import create_app

    return create_app(classify_endpoint.settings, classify_endpoint.info)


def test_api_classifies_with_top_k(classify_app, classifier):
    web = classify_app.test_client()
    with open(classifier.known.path, "rb") as fh:
        r = web.post("/api/detect", data={"image": (fh, "known.jpg"), "conf": "0.25", "top_k": "2"})
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert body["model"]["task"] == "classify"
    pred = body["prediction"]
    assert pred["labels"][0] == classifier.known.label and len(pred["probabilities"]) == 2
    bad = web.post("/api/detect", data={"image": (io.BytesIO(classifier.known.path.read_bytes()), "k.jpg"),
                                        "top_k": "9"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "top_k"
    typo = web.post("/api/detect", data={"image": (io.BytesIO(b"x"), "k.jpg"), "top_k": "two"})
    assert typo.status_code == 400 and typo.get_json()["error"]["field"] == "top_k"


@pytest.fixture
def live_classify_app(classify_app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, classify_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.mark.browser
def test_browser_upload_lists_labels_with_probabilities(live_classify_app, classify_endpoint, classifier,
                                                        session_root):
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    shots = session_root / "outputs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(live_classify_app + "/")
            page.set_input_files("#file", str(classifier.known.path))
            page.click("#detect")
            page.wait_for_selector("body[data-state=done]", timeout=30_000)
            items = page.locator("#classes li.class-label")
            assert items.count() == 3  # default top 5, capped at the 3 classes
            labels = items.evaluate_all("els => els.map(e => e.dataset.label)")
            probs = [float(v) for v in items.evaluate_all("els => els.map(e => e.dataset.probability)")]
            assert labels[0] == classifier.known.label and sorted(labels) == ["bar", "disc", "square"]
            assert probs == sorted(probs, reverse=True) and 0.99 <= sum(probs) <= 1.01
            texts = items.locator(".probability").all_text_contents()
            assert all(re.fullmatch(r"\d+\.\d%", t) for t in texts)
            assert page.locator("#classes").is_visible() and not page.locator("#detections").is_visible()
            assert page.locator("svg#overlay g.detection").count() == 0
            caption = page.locator("svg#overlay text.caption").text_content()
            assert caption.startswith(f"{classifier.known.label} ")
            assert page.locator("#count-title").inner_text() == "Top class"
            assert page.locator("#count").inner_text().startswith(classifier.known.label)
            assert page.locator("#model-version").inner_text() == (
                f"{classifier.ref.name} v{classifier.ref.version} (onnx)")
            assert f"classified as {classifier.known.label}" in page.locator("#status").inner_text()
            page.screenshot(path=str(shots / "webapp-classify.png"), full_page=True)
        finally:
            browser.close()
    assert (shots / "webapp-classify.png").stat().st_size > 10_000


def test_page_follows_the_local_deployment(detector):
    """Without a fixed endpoint the page looks up the running local deployment on each request."""
    from visionops.serving.local_endpoint import deploy_local, stop_local
    from visionops.webapp import create_app

    web = create_app(detector.settings, name="web").test_client()
    r = web.get("/")
    assert r.status_code == 503 and "visionops deploy --target local" in r.get_json()["error"]["message"]
    try:
        info = deploy_local(detector.settings, name="web")
        page = web.get("/")
        assert page.status_code == 200 and info.scoring_uri.encode() in page.data
        with open(detector.known.path, "rb") as fh:
            assert web.post("/api/detect", data={"image": (fh, "k.jpg")}).get_json()["prediction"]["boxes"]
    finally:
        stop_local(detector.settings, "web")
    assert web.post("/api/detect", data={"image": (io.BytesIO(b"x"), "k.jpg")}).status_code == 503

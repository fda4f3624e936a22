"""The real azmlinfsrv + score.py on loopback: good requests, the bad-request corpus, auth,
binding, secrets, and process hygiene. No mocks: every request crosses a socket."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import psutil
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def jpeg_bytes(size: tuple[int, int] = (160, 120), seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_bytes(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A 70-byte PNG whose IHDR claims width x height (the pixel data is a few zero bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def jpeg_header_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 frame header is patched to claim width x height."""
    data = bytearray(jpeg_bytes((32, 32)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# (id, body, request kwargs, expected status, expected error code, expected field)
def corpus(known_b64: str, settings) -> list[tuple[str, object, dict, int, str, str | None]]:
    max_bytes = settings.max_payload_bytes
    too_many = [known_b64] * (settings.max_images_per_request + 1)
    return [
        ("empty body", b"", {}, 400, "empty_body", "body"),
        ("not JSON", b"hello, this is not json", {}, 400, "invalid_json", "body"),
        ("raw JPEG bytes instead of JSON", jpeg_bytes(), {}, 400, "invalid_json", "body"),
        ("JSON array", b"[1, 2]", {}, 400, "invalid_json", "body"),
        ("JSON without an image", {"conf": 0.5}, {}, 400, "missing_image", "image"),
        ("empty image list", {"images": []}, {}, 400, "missing_image", "images"),
        ("unknown field", {"image": known_b64, "confidence": 0.5}, {}, 400, "unknown_field", "confidence"),
        ("image is a number", {"image": 42}, {}, 400, "invalid_image", "image"),
        ("invalid base64", {"image": "this is *not* base64!"}, {}, 400, "invalid_base64", "image"),
        ("base64 of non-image bytes", {"image": b64(b"just some text, not an image" * 10)}, {}, 400,
         "not_an_image", "image"),
        ("truncated JPEG", {"image": b64(jpeg_bytes((256, 256))[:3000])}, {}, 400, "invalid_image", "image"),
        ("1x1 image", {"image": b64(png_bytes((1, 1)))}, {}, 400, "image_too_small", "image"),
        ("PNG header claims 20000x20000", {"image": b64(png_header_claiming(20000, 20000))}, {}, 413,
         "image_too_large", "image"),
        ("JPEG header claims 20000x20000", {"images": [known_b64, b64(jpeg_header_claiming(20000, 20000))]}, {},
         413, "image_too_large", "images[1]"),
        ("PNG header over the pixel limit, under PIL's bomb check", {"image": b64(png_header_claiming(5000, 5000))},
         {}, 413, "image_too_large", "image"),
        ("conf out of range", {"image": known_b64, "conf": 2}, {}, 400, "invalid_parameter", "conf"),
        ("max_det not an integer", {"image": known_b64, "max_det": 2.5}, {}, 400, "invalid_parameter", "max_det"),
        ("payload over the limit", b"{" + b" " * max_bytes + b"}", {}, 413, "payload_too_large", "body"),
        ("payload over the limit, chunked (no Content-Length)",
         (part for part in [b'{"image": "', b"A" * max_bytes, b'"}']), {}, 413, "payload_too_large", "body"),
        ("too many images", {"images": too_many}, {}, 413, "too_many_images", "images"),
        ("wrong key", {"image": known_b64}, {"headers": {"Authorization": "Bearer not-the-key"}}, 401, "invalid_key",
         "Authorization"),
        ("no key", {"image": known_b64}, {"auth": False}, 401, "missing_key", "Authorization"),
        ("not a Bearer header", {"image": known_b64}, {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, 401,
         "invalid_authorization", "Authorization"),
    ]


def test_known_image_is_detected_with_model_identity(client, detector):
    from visionops.serving.endpoint import encode_image
    from visionops.serving.smoke_test import iou

    answer = client.score({"image": encode_image(detector.known.path), "conf": 0.25})
    assert answer["model"] == {"name": detector.ref.name, "version": detector.ref.version, "runtime": "onnx",
                               "task": "detect"}
    pred = answer["predictions"][0]
    w, h = Image.open(detector.known.path).size
    assert (pred["width"], pred["height"]) == (w, h)
    assert pred["boxes"], "the detector found nothing on its easiest test image"
    assert len(pred["boxes"]) == len(pred["labels"]) == len(pred["class_ids"]) == len(pred["confidences"])
    for box in pred["boxes"]:
        assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
    assert all(0.25 < c <= 1 for c in pred["confidences"])
    best = max(iou(b, gt) for b, lab in zip(pred["boxes"], pred["labels"], strict=True)
               for gl, gt in detector.known.boxes if gl == lab)
    assert best >= 0.5
    assert answer["inference_ms"] > 0


def test_several_images_and_parameters(client, detector):
    from visionops.serving.endpoint import encode_image

    images = detector.test_images[:3]
    answer = client.detect(images, conf=0.05, max_det=2, iou=0.5)
    assert len(answer["predictions"]) == 3
    assert all(len(p["boxes"]) <= 2 for p in answer["predictions"])
    # PNG and a data URL work too, and a non-square image keeps its own size
    img = Image.open(images[0]).resize((150, 90))
    answer = client.score({"image": "data:image/png;base64," + encode_image(img, fmt="PNG")})
    assert (answer["predictions"][0]["width"], answer["predictions"][0]["height"]) == (150, 90)


def test_bad_request_corpus_gets_named_4xx_errors_and_server_stays_healthy(client, endpoint, detector):
    from visionops.serving.endpoint import encode_image

    known_b64 = encode_image(detector.known.path)
    failures = []
    for name, body, kwargs, status, code, field in corpus(known_b64, endpoint.settings):
        r = client.post(body, **kwargs)
        try:
            err = r.json()["error"]
        except (ValueError, KeyError, TypeError):
            failures.append(f"{name}: {r.status_code} without a JSON error: {r.text[:120]!r}")
            continue
        if (r.status_code, err.get("code"), err.get("field")) != (status, code, field) or not err.get("message"):
            failures.append(f"{name}: got {r.status_code} {err}, expected {status} {code} field={field}")
    assert not failures, "\n".join(failures)
    # still healthy, same worker, and a good request still works
    assert client.health() == (True, "200 Healthy")
    assert endpoint.running
    answer = client.score({"image": known_b64})
    assert answer["predictions"][0]["boxes"]


def test_get_and_unknown_route_are_refused_as_json(client, endpoint):
    r = client.session.get(endpoint.info.scoring_uri, headers=endpoint.info.auth_headers())
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = client.session.get(endpoint.info.scoring_uri.replace("/score", "/nope"), headers=endpoint.info.auth_headers())
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    r = client.session.get(endpoint.info.scoring_uri.replace("/score", "/swagger.json"))
    assert r.status_code == 401  # everything but the liveness probe needs the key


def test_server_listens_on_loopback_only(endpoint):
    master = psutil.Process(endpoint.pid)
    procs = [master, *master.children(recursive=True)]
    listening = {(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening == {("127.0.0.1", endpoint.port)}


def test_key_is_never_logged_or_shown(endpoint, client, detector):
    info = endpoint.info
    key = info.key.get_secret_value()
    assert len(key) >= 40
    assert key not in repr(info) and key not in str(info) and key not in info.model_dump_json()
    assert key not in repr(endpoint) and key not in repr(client)
    client.post({"image": "x"}, headers={"Authorization": "Bearer wrong"})  # log a refused request too
    log = endpoint.log_path.read_text()
    assert "Worker with pid" in log  # the log is the server's
    assert key not in log
    # the key is not on the server's command line either (ps shows it to every user)
    procs = [psutil.Process(endpoint.pid), *psutil.Process(endpoint.pid).children(recursive=True)]
    assert all(key not in " ".join(p.cmdline()) for p in procs)


def test_stop_leaves_no_process(detector):
    from visionops.serving.local_endpoint import LocalEndpoint

    with LocalEndpoint(detector.model_dir, detector.settings, name="stop-test", auth=False) as ep:
        assert ep.invoke({"image": base64.b64encode(detector.known.path.read_bytes()).decode()})["predictions"]
        pids = [ep.pid, *(c.pid for c in psutil.Process(ep.pid).children(recursive=True))]
        assert len(pids) == 2  # gunicorn master + one worker
    time.sleep(0.2)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


CRASHING_PARENT = """
import os, signal, sys
from visionops.settings import get_settings
from visionops.serving.local_endpoint import LocalEndpoint
ep = LocalEndpoint(sys.argv[1], get_settings(root=sys.argv[2]), name="orphan-test", auth=False)
ep.start()
print(ep.pid, *[c.pid for c in __import__("psutil").Process(ep.pid).children()], flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no __exit__: only the server's watchdog is left
"""


def test_server_dies_with_a_crashed_parent(detector):
    proc = subprocess.run([sys.executable, "-c", CRASHING_PARENT, str(detector.model_dir),
                           str(detector.settings.root)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, proc.stderr[-2000:]
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 20
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"server processes {alive} outlived their crashed parent"


def test_workspace_seam_deploys_invokes_and_deletes(detector):
    from visionops.serving.endpoint import EndpointError, encode_image
    from visionops.serving.local_endpoint import endpoints_dir, load_deployment
    from visionops.workspace import get_workspace

    ws = get_workspace(detector.settings)
    info = ws.deploy_endpoint(name="seam", runtime="onnx")
    try:
        assert (info.backend, info.auth, info.model_version) == ("local", True, detector.ref.version)
        folder = endpoints_dir(detector.settings) / "seam"
        key_file = folder / "key"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert key_file.read_text() == info.key.get_secret_value()
        record = json.loads((folder / "endpoint.json").read_text())
        assert info.key.get_secret_value() not in json.dumps(record)
        assert load_deployment(detector.settings, "seam").info.key.get_secret_value() == key_file.read_text()
        answer = ws.invoke_endpoint(info, {"image": encode_image(detector.known.path)})
        assert answer["predictions"][0]["boxes"]
        with pytest.raises(EndpointError) as exc:
            ws.invoke_endpoint(info, {"image": "???"})
        assert exc.value.status == 400 and exc.value.body["error"]["code"] == "invalid_base64"
    finally:
        ws.delete_endpoint(info)
    assert load_deployment(detector.settings, "seam") is None
    assert not (endpoints_dir(detector.settings) / "seam" / "key").exists()
    ws.delete_endpoint(info)  # idempotent


def _cli(args: list[str], settings, **kw) -> subprocess.CompletedProcess[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "visionops")
    env = dict(os.environ, VISIONOPS_ROOT=str(settings.root))
    env.pop("VISIONOPS_ENDPOINT_URL", None)
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300, **kw)


def test_cli_deploy_smoke_test_and_stop(detector):
    from visionops.serving.local_endpoint import load_deployment

    s = detector.settings
    try:
        dep = _cli(["deploy", "--target", "local", "--name", "cli", "--runtime", "pytorch"], s)
        assert dep.returncode == 0, dep.stdout + dep.stderr
        record = load_deployment(s, "cli")
        assert record is not None and record.info.runtime == "pytorch"
        key = record.info.key.get_secret_value()
        assert "scoring URI" in dep.stdout and "(0600)" in dep.stdout
        smoke = _cli(["smoke-test", "--name", "cli"], s)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "PASSED" in smoke.stdout
        report = json.loads((s.outputs_dir / "endpoints" / "cli" / "smoke_test.json").read_text())
        assert report["ok"] and report["model"]["runtime"] == "pytorch"
        for out in (dep.stdout, dep.stderr, smoke.stdout, smoke.stderr, json.dumps(report),
                    (s.outputs_dir / "endpoints" / "cli" / "server.log").read_text()):
            assert key not in out
    finally:
        stop = _cli(["deploy", "--stop", "--name", "cli"], s)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert load_deployment(s, "cli") is None
    again = _cli(["smoke-test", "--name", "cli"], s)
    assert again.returncode == 1 and "visionops deploy --target local" in again.stderr

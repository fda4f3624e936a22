"""Request parsing without a server or a model: defaults, tolerated encodings, EXIF, key checks."""

from __future__ import annotations

import base64
import io
import json
import tracemalloc

import pytest
from PIL import Image

from visionops.serving.auth import FrontDoor, check_authorization, generate_key
from visionops.serving.protocol import Limits, RequestError, parse_request

LIMITS = Limits(max_payload_bytes=1_000_000, max_image_pixels=4096 * 4096, max_images=4, min_image_side=8)


def encoded(img: Image.Image, fmt: str = "PNG", **save) -> str:
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return base64.b64encode(buf.getvalue()).decode()


def test_defaults_and_parameters():
    req = parse_request({"image": encoded(Image.new("RGB", (40, 30)))}, LIMITS)
    assert (req.conf, req.iou, req.max_det) == (0.25, 0.7, 300)
    assert req.images[0].size == (40, 30) and req.images[0].mode == "RGB"
    body = json.dumps({"images": [encoded(Image.new("L", (9, 9)))], "conf": 1, "iou": 0.5, "max_det": 5})
    req = parse_request(body, LIMITS)
    assert (req.conf, req.iou, req.max_det, req.images[0].mode) == (1.0, 0.5, 5, "RGB")


def test_line_wrapped_base64_and_data_urls_are_accepted():
    b64 = encoded(Image.new("RGB", (64, 64), "red"), "JPEG")
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))  # what `base64` prints
    assert parse_request({"image": wrapped}, LIMITS).images[0].size == (64, 64)
    assert parse_request({"image": "data:image/jpeg;base64," + b64}, LIMITS).images[0].size == (64, 64)


def test_exif_orientation_is_applied_so_boxes_match_what_a_browser_shows():
    img = Image.new("RGB", (60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    req = parse_request({"image": encoded(img, "JPEG", exif=exif.tobytes())}, LIMITS)
    assert req.images[0].size == (20, 60)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"image": "", "conf": 0.3}, "missing_image", "image"),
        ({"image": "x", "images": ["x"]}, "ambiguous_input", "images"),
        ({"images": "x"}, "invalid_parameter", "images"),
        ({"image": "x", "conf": True}, "invalid_parameter", "conf"),
        ({"image": "x", "conf": 0}, "invalid_parameter", "conf"),
        ({"image": "x", "iou": "high"}, "invalid_parameter", "iou"),
        ({"image": "x", "max_det": 0}, "invalid_parameter", "max_det"),
        ({"image": "x", "max_det": 1001}, "invalid_parameter", "max_det"),
    ],
)
def test_parameter_errors_name_the_field(body, code, field):
    with pytest.raises(RequestError) as exc:
        parse_request(body, LIMITS)
    assert (exc.value.status, exc.value.code, exc.value.field) == (400, code, field)


@pytest.mark.parametrize(
    ("top_k", "num_classes", "message"),
    [
        (0, 3, r"top_k must be in \[1, 3\] \(the model has 3 classes\), got 0"),
        (4, 3, r"top_k must be in \[1, 3\] \(the model has 3 classes\), got 4"),
        (2.5, 3, "top_k must be an integer, got 2.5"),
        ("3", 3, 'top_k must be an integer, got "3"'),
        (True, 3, "top_k must be an integer, got true"),
        (1001, None, r"top_k must be in \[1, 1000\], got 1001"),
    ],
)
def test_top_k_is_validated_like_the_other_parameters(top_k, num_classes, message):
    with pytest.raises(RequestError, match=message) as exc:
        parse_request({"image": encoded(Image.new("RGB", (16, 16))), "top_k": top_k}, LIMITS, num_classes=num_classes)
    assert (exc.value.status, exc.value.code, exc.value.field) == (400, "invalid_parameter", "top_k")


def test_top_k_defaults_to_the_models_choice_and_accepts_the_class_count():
    image = encoded(Image.new("RGB", (16, 16)))
    assert parse_request({"image": image}, LIMITS, num_classes=3).top_k is None
    assert parse_request({"image": image, "top_k": 3}, LIMITS, num_classes=3).top_k == 3
    assert parse_request({"image": image, "top_k": 1, "conf": 0.5}, LIMITS).top_k == 1


def test_over_limit_image_is_refused_from_its_header_without_decoding():
    big = Image.new("L", (5000, 4000))  # 20 Mpx over a 16.7 Mpx limit; compresses to a few KB
    b64 = encoded(big)
    tracemalloc.start()
    with pytest.raises(RequestError) as exc:
        parse_request({"image": b64}, LIMITS)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (exc.value.status, exc.value.code) == (413, "image_too_large")
    assert "5000x4000" in exc.value.message
    assert peak < 5_000_000  # decoding would have allocated 20 MB (60 MB as RGB)


def test_key_check_and_front_door():
    key = generate_key()
    assert len(key) >= 40 and key != generate_key()
    check_authorization({"Authorization": f"Bearer {key}"}, key)
    check_authorization({"authorization": f"bearer {key}"}, key)  # header names and scheme are case-insensitive
    for headers, code in [({}, "missing_key"), ({"Authorization": key}, "invalid_authorization"),
                          ({"Authorization": "Bearer " + key[:-1] + "x"}, "invalid_key")]:
        with pytest.raises(RequestError) as exc:
            check_authorization(headers, key)
        assert (exc.value.status, exc.value.code) == (401, code) and key not in exc.value.message
    door = FrontDoor(lambda env, start: [b"inner"], key=key, max_payload_bytes=100)
    assert key not in repr(door)
    statuses = []

    def call(env):
        body = b"".join(door({"REQUEST_METHOD": "POST", "PATH_INFO": "/score", "wsgi.input": io.BytesIO(b"x" * 10),
                              **env}, lambda status, headers: statuses.append(status)))
        return statuses[-1] if statuses else "200 inner", body

    assert call({"HTTP_AUTHORIZATION": f"Bearer {key}", "CONTENT_LENGTH": "10"})[1] == b"inner"
    assert call({"CONTENT_LENGTH": "10"})[0].startswith("401")
    assert call({"HTTP_AUTHORIZATION": f"Bearer {key}", "CONTENT_LENGTH": "101"})[0].startswith("413")
    assert door({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None) == [b"inner"]  # liveness stays open


def test_a_failing_model_answers_500_in_the_error_format():
    from visionops.serving.score import Scorer

    class Broken:
        name, version, runtime, task, names = "m", "1", "onnx", "detect", ["a"]

        def predict(self, *args, **kwargs):
            raise RuntimeError("boom")

    status, body = Scorer(Broken(), LIMITS).score({"image": encoded(Image.new("RGB", (16, 16)))})
    assert status == 500 and body["error"]["code"] == "internal_error" and "boom" not in body["error"]["message"]

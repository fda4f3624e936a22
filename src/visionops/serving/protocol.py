"""The scoring request/response contract, checked before any pixel is decoded.

Request (JSON):  {"image": "<base64>"}  or  {"images": ["<base64>", ...]}
                 optional "conf" (0-1], "iou" (0-1], "max_det" [1, 1000]   (detection)
                 optional "top_k" [1, number of classes], default min(5, classes)  (classification)
Response (JSON): {"model": {"name", "version", "runtime", "task"}, "predictions": [per image],
                 "inference_ms", "decode_ms"}; per image, for a detector: width, height,
                 boxes [[x0, y0, x1, y1] in pixels], class_ids, labels, confidences; for a
                 classifier: width, height, labels (top-k, best first), class_ids, probabilities
Error (4xx):     {"error": {"code": "...", "message": "... what to do", "field": "images[1]"}}

Every parameter is validated whatever the model's task (a typo or a bad value is a 400 naming the
field); a parameter the task does not use (conf/iou/max_det on a classifier, top_k on a detector)
is then ignored, so one client can talk to both kinds of model.

Every limit is enforced as early as it can be: body size before parsing, image count before
decoding, image dimensions from the header before the pixels are decompressed (a 20000x20000
PNG of a few bytes is refused without allocating 1.2 GB).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from visionops.serving.detect import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET

ALLOWED_KEYS = frozenset({"image", "images", "conf", "iou", "max_det", "top_k"})
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF", "MPO"})
MAX_DET_LIMIT = 1000
TOP_K_LIMIT = 1000  # when the number of classes is not known (no model at hand)
_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)


class RequestError(Exception):
    """A request the server refuses; becomes a 4xx JSON error naming the field and the fix."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


@dataclass(frozen=True)
class Limits:
    """The server's limits (from Settings: VISIONOPS_MAX_PAYLOAD_BYTES and friends)."""

    max_payload_bytes: int
    max_image_pixels: int
    max_images: int
    min_image_side: int = 8

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(
            max_payload_bytes=settings.max_payload_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_images=settings.max_images_per_request,
            min_image_side=getattr(settings, "min_image_side", 8),
        )


@dataclass
class ScoreRequest:
    images: list[Image.Image]
    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU
    max_det: int = DEFAULT_MAX_DET
    top_k: int | None = None  # None: the model's default (5, capped at its number of classes)


def payload_too_large(size: int, limits: Limits) -> RequestError:
    return RequestError(
        413, "payload_too_large",
        f"request body is {size} bytes, over the limit of {limits.max_payload_bytes} bytes; "
        "send fewer or smaller images (or raise VISIONOPS_MAX_PAYLOAD_BYTES on the server)",
        "body",
    )


def parse_body(body: bytes | str, limits: Limits) -> dict[str, Any]:
    """Size, UTF-8 and JSON-object checks; returns the parsed object."""
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    if size > limits.max_payload_bytes:
        raise payload_too_large(size, limits)
    if not body or not body.strip():
        raise RequestError(
            400, "empty_body", 'request body is empty; send JSON such as {"image": "<base64 JPEG or PNG>"}', "body"
        )
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(
                400, "invalid_json",
                f"request body is not UTF-8 text (byte {exc.start}); send JSON with the image base64-encoded, "
                "not the raw image bytes",
                "body",
            ) from None
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, "invalid_json",
            f"request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            'send {"image": "<base64>"}',
            "body",
        ) from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise RequestError(
            400, "invalid_json", f'request body must be a JSON object, not {kind}; send {{"image": ...}}', "body"
        )
    return data


def _number(data: dict[str, Any], key: str, default: float | None, lo: float, hi: float, *, integer: bool = False,
            lo_open: bool = False, why: str = "") -> Any:
    if key not in data or data[key] is None:
        return default
    value = data[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise RequestError(400, "invalid_parameter", f"{key} must be {kind}, got {json.dumps(value)[:40]}", key)
    low_ok = value > lo if lo_open else value >= lo
    if not (low_ok and value <= hi):
        bounds = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise RequestError(400, "invalid_parameter", f"{key} must be in {bounds}{why}, got {value}", key)
    return int(value) if integer else float(value)


def decode_image(b64: Any, field: str, limits: Limits) -> Image.Image:
    """Base64 -> a loaded RGB image, refusing anything malformed or over a limit, with the reason."""
    if not isinstance(b64, str):
        raise RequestError(
            400, "invalid_image", f"{field} must be a base64 string, got {type(b64).__name__}", field
        )
    text = _DATA_URL.sub("", b64.strip(), count=1)
    if "\n" in text or "\r" in text or " " in text:
        text = "".join(text.split())  # tolerate line-wrapped base64 (the `base64` tool wraps at 76)
    if not text:
        raise RequestError(400, "missing_image", f"{field} is an empty string; put the base64 image there", field)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(
            400, "invalid_base64", f"{field} is not valid base64 ({exc}); encode the image file's bytes with base64",
            field,
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(
            413, "image_too_large",
            f"{field}: the image header claims more pixels than allowed ({limits.max_image_pixels} max); "
            "resize it before sending",
            field,
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError(
            400, "not_an_image",
            f"{field}: the {len(raw)} decoded bytes are not an image this server reads "
            f"({', '.join(sorted(ALLOWED_FORMATS - {'MPO'}))})",
            field,
        ) from None
    if img.format not in ALLOWED_FORMATS:
        raise RequestError(
            415, "unsupported_image_format",
            f"{field} is a {img.format} image; send one of {', '.join(sorted(ALLOWED_FORMATS - {'MPO'}))}", field,
        )
    w, h = img.size
    if w * h > limits.max_image_pixels:
        raise RequestError(
            413, "image_too_large",
            f"{field} is {w}x{h} = {w * h} pixels, over the limit of {limits.max_image_pixels}; resize it before "
            "sending",
            field,
        )
    if min(w, h) < limits.min_image_side:
        raise RequestError(
            400, "image_too_small",
            f"{field} is {w}x{h}; each side must be at least {limits.min_image_side} pixels", field,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()  # decompresses; a truncated or corrupt file fails here
            img = ImageOps.exif_transpose(img)  # boxes match what a browser shows
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise RequestError(
            400, "invalid_image",
            f"{field}: the {img.format} image is truncated or corrupt ({exc}); send the complete file", field,
        ) from None


def parse_request(
    body: bytes | str | dict[str, Any], limits: Limits, *, num_classes: int | None = None
) -> ScoreRequest:
    """The whole validation: body, fields, parameters, then each image (count checked first).
    `num_classes` (the served model's) bounds top_k."""
    data = body if isinstance(body, dict) else parse_body(body, limits)
    unknown = sorted(set(data) - ALLOWED_KEYS)
    if unknown:
        raise RequestError(
            400, "unknown_field", f"unknown field(s) {unknown}; allowed: {sorted(ALLOWED_KEYS)}", unknown[0]
        )
    if "image" in data and "images" in data:
        raise RequestError(400, "ambiguous_input", 'send either "image" or "images", not both', "images")
    if "image" in data:
        items, names = [data["image"]], ["image"]
    elif "images" in data:
        items = data["images"]
        if not isinstance(items, list):
            raise RequestError(400, "invalid_parameter", '"images" must be a list of base64 strings', "images")
        if not items:
            raise RequestError(400, "missing_image", '"images" is empty; put at least one base64 image in it', "images")
        if len(items) > limits.max_images:
            raise RequestError(
                413, "too_many_images",
                f"{len(items)} images in one request, over the limit of {limits.max_images}; split the request",
                "images",
            )
        names = [f"images[{i}]" for i in range(len(items))]
    else:
        raise RequestError(
            400, "missing_image", 'no image in the request; send {"image": "<base64>"} or {"images": [...]}', "image"
        )
    conf = _number(data, "conf", DEFAULT_CONF, 0.0, 1.0, lo_open=True)
    iou = _number(data, "iou", DEFAULT_IOU, 0.0, 1.0, lo_open=True)
    max_det = _number(data, "max_det", DEFAULT_MAX_DET, 1, MAX_DET_LIMIT, integer=True)
    top_k = _number(data, "top_k", None, 1, num_classes or TOP_K_LIMIT, integer=True,
                    why=f" (the model has {num_classes} classes)" if num_classes else "")
    images = [decode_image(item, name, limits) for item, name in zip(items, names, strict=True)]
    return ScoreRequest(images=images, conf=conf, iou=iou, max_det=max_det, top_k=top_k)

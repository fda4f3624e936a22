"""What a deployed endpoint is (`EndpointInfo`) and how to call it (`EndpointClient`).

Backend-neutral: the local endpoint (azmlinfsrv on loopback) and an Azure ML online endpoint
are described and called the same way, so the smoke test, the web page and the notebooks never
branch on the backend. The key is a `SecretStr` excluded from dumps: it never reaches a repr,
a log line, a JSON record or the browser; callers get it only through `auth_headers()`.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import requests
from PIL import Image
from pydantic import BaseModel, Field, SecretStr

from visionops.errors import VisionOpsError


class EndpointError(VisionOpsError):
    """The endpoint answered with an error status, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class EndpointInfo(BaseModel):
    """A scoring endpoint: where it is, what it serves, whether it wants a key."""

    name: str
    scoring_uri: str
    health_uri: str | None = None
    model_name: str
    model_version: str
    runtime: str
    backend: str = "local"
    auth: bool = True
    key: SecretStr | None = Field(None, exclude=True, repr=False)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header, when this endpoint has a key (Azure's format: Bearer <key>)."""
        if self.key is None:
            return {}
        return {"Authorization": f"Bearer {self.key.get_secret_value()}"}

    def with_key(self, key: str | None) -> EndpointInfo:
        return self.model_copy(update={"key": SecretStr(key) if key else None})


def encode_image(image: bytes | str | Path | Image.Image, fmt: str = "JPEG") -> str:
    """Base64 of an image file's bytes (a path, raw bytes, or a PIL image encoded as `fmt`)."""
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format=fmt, quality=95) if fmt == "JPEG" else image.save(buf, format=fmt)
        data = buf.getvalue()
    elif isinstance(image, bytes):
        data = image
    else:
        data = Path(image).read_bytes()
    return base64.b64encode(data).decode("ascii")


class EndpointClient:
    """HTTP client for one endpoint; one instance per thread (it keeps a requests.Session)."""

    def __init__(self, endpoint: EndpointInfo, *, timeout: float = 60.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self.session = requests.Session()

    def __repr__(self) -> str:
        return f"EndpointClient({self.endpoint.name!r}, {self.endpoint.scoring_uri})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> tuple[bool, str]:
        """(healthy, detail) from the health URI; (False, reason) when there is none or it fails."""
        if not self.endpoint.health_uri:
            return False, "this endpoint has no health URI"
        try:
            r = self.session.get(self.endpoint.health_uri, timeout=min(self.timeout, 10))
        except requests.RequestException as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return r.status_code == 200, f"{r.status_code} {r.text.strip()[:80]}"

    def post(
        self,
        body: bytes | str | dict[str, Any] | None,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """A raw POST to the scoring URI (bad-request tests use this to send anything at all)."""
        h = {"Content-Type": "application/json"}
        if auth:
            h.update(self.endpoint.auth_headers())
        h.update(headers or {})
        kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"data": body}
        return self.session.post(self.endpoint.scoring_uri, headers=h, timeout=self.timeout, **kwargs)

    def score(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The endpoint's JSON answer; raises EndpointError (with the server's error) on a non-2xx."""
        try:
            r = self.post(payload)
        except requests.RequestException as exc:
            raise EndpointError(f"cannot reach {self.endpoint.scoring_uri}: {type(exc).__name__}: {exc}") from exc
        try:
            body = r.json()
        except ValueError:
            body = r.text
        if r.status_code >= 300:
            err = body.get("error", body) if isinstance(body, dict) else body
            raise EndpointError(f"{self.endpoint.scoring_uri} answered {r.status_code}: {err}", r.status_code, body)
        return body

    def detect(self, images: list[bytes | str | Path | Image.Image], **params: Any) -> dict[str, Any]:
        """Score images (paths, bytes or PIL images) with optional conf / iou / max_det."""
        payload: dict[str, Any] = {"images": [encode_image(im) for im in images]}
        payload.update({k: v for k, v in params.items() if v is not None})
        return self.score(payload)

"""Key authentication like Azure ML managed online endpoints: `Authorization: Bearer <key>`.

In Azure the key is checked by the endpoint's front end before a request reaches score.py.
Locally, `FrontDoor` plays that part: a WSGI middleware that the local endpoint's gunicorn
config wraps around the inference server's app. It answers 401 before the body is parsed and
413 from the Content-Length header before the body is buffered. score.py checks the key too
(`check_authorization`) whenever VISIONOPS_SERVING_KEY is set, so the key is enforced even if
the server were started without our gunicorn config.

The key reaches the server only through the environment (never the command line, where `ps`
shows it) and is never logged: error messages say that a key was missing or wrong, not what it was.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from visionops.serving.protocol import Limits, RequestError, payload_too_large

KEY_ENV = "VISIONOPS_SERVING_KEY"
HEALTH_PATHS = frozenset({"/"})  # liveness probe stays open, as a container probe would be
_DRAIN_CAP = 64 * 1024 * 1024  # read (and drop) at most this much of a refused body


def generate_key() -> str:
    """A new endpoint key: 256 bits, URL-safe (Azure's keys are of the same order)."""
    return secrets.token_urlsafe(32)


def _header(headers: Any, name: str) -> str | None:
    if hasattr(headers, "get"):
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            lower = {str(k).lower(): v for k, v in headers.items()}
            value = lower.get(name.lower())
        return value
    return None


def check_authorization(headers: Any, key: str) -> None:
    """Raise a 401 RequestError unless the headers carry `Authorization: Bearer <key>`."""
    value = _header(headers, "Authorization")
    if not value:
        raise RequestError(
            401, "missing_key",
            "this endpoint needs a key: send the header 'Authorization: Bearer <key>' "
            "(the key file path is printed by `visionops deploy`)",
            "Authorization",
        )
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RequestError(
            401, "invalid_authorization",
            "the Authorization header must be 'Bearer <key>'", "Authorization",
        )
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise RequestError(401, "invalid_key", "the endpoint key is not valid for this endpoint", "Authorization")


StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FrontDoor:
    """WSGI middleware: key check and body-size limit before the inference server sees a request."""

    def __init__(self, app: WSGIApp, *, key: str | None, max_payload_bytes: int):
        self.app = app
        self._key = key or None
        self.max_payload_bytes = max_payload_bytes

    def __repr__(self) -> str:  # never show the key
        return f"FrontDoor(auth={'on' if self._key else 'off'}, max_payload_bytes={self.max_payload_bytes})"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path in HEALTH_PATHS and method in ("GET", "HEAD"):
            return self.app(environ, start_response)
        try:
            if self._key is not None and method != "OPTIONS":
                check_authorization({"Authorization": environ.get("HTTP_AUTHORIZATION")}, self._key)
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > self.max_payload_bytes:
                raise payload_too_large(length, Limits(self.max_payload_bytes, 1, 1))
        except ValueError:
            return self._refuse(environ, start_response, RequestError(
                400, "invalid_header", "Content-Length is not a number", "Content-Length"))
        except RequestError as exc:
            return self._refuse(environ, start_response, exc)
        return self.app(environ, start_response)

    def _refuse(self, environ: dict[str, Any], start_response: StartResponse, exc: RequestError) -> list[bytes]:
        self._drain(environ)
        body = json.dumps(exc.to_dict()).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if exc.status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="visionops"'))
        start_response(f"{exc.status} {_REASONS.get(exc.status, 'Error')}", headers)
        return [body]

    @staticmethod
    def _drain(environ: dict[str, Any]) -> None:
        """Read what the client sent before answering: closing a socket with unread data makes the
        kernel reset the connection, and the client would see a reset instead of our 4xx."""
        stream = environ.get("wsgi.input")
        try:
            remaining = min(int(environ.get("CONTENT_LENGTH") or 0), _DRAIN_CAP)
        except ValueError:
            remaining = 0
        while stream is not None and remaining > 0:
            chunk = stream.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 413: "Content Too Large"}

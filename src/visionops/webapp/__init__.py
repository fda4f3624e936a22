"""The demo web page: upload an image, see the endpoint's boxes and labels drawn on it (a detector)
or its top-k labels with probabilities (a classifier).

The browser only ever talks to this Flask app. The app calls the scoring endpoint server-side
with the key from settings (VISIONOPS_ENDPOINT_URL / VISIONOPS_ENDPOINT_KEY) or from the local
deployment record (`visionops deploy --target local`), so the key never reaches the browser:
not in the page, not in a response, not in a redirect. Boxes are drawn client-side as SVG over
the image, one `<g class="detection" data-label=...>` per box, so they can be inspected (and
are checked by the browser test) in the DOM; a classification is a list of
`<li class="class-label" data-label=... data-probability=...>`, best first, and the top-1 label as
a caption on the image. The page tells them apart by the response (`probabilities`), so one page
serves either kind of model.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from visionops.errors import VisionOpsError
from visionops.serving.endpoint import EndpointClient, EndpointError, EndpointInfo
from visionops.serving.local_endpoint import resolve_endpoint
from visionops.settings import Settings, get_settings


def create_app(settings: Settings | None = None, endpoint: EndpointInfo | None = None, *,
               name: str = "local") -> Flask:
    """The Flask app. Without `endpoint`, each request looks up `resolve_endpoint(settings, name)`
    (VISIONOPS_ENDPOINT_URL, else the running local deployment), so a redeploy on another port
    or with a new key needs no restart of the page."""
    settings = settings or get_settings()
    app = Flask(__name__)
    # an upload becomes ~4/3 bigger once base64-encoded for the endpoint
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes * 3 // 4

    def current() -> EndpointInfo:
        return endpoint or resolve_endpoint(settings, name)

    @app.errorhandler(VisionOpsError)
    def no_endpoint(exc: VisionOpsError) -> Any:
        return _error(503, "no_endpoint", str(exc), None)

    @app.get("/")
    def index() -> str:
        endpoint = current()
        return render_template(
            "index.html",
            endpoint_name=endpoint.name,
            endpoint_backend=endpoint.backend,
            scoring_uri=endpoint.scoring_uri,
            model_name=endpoint.model_name,
            model_version=endpoint.model_version,
            max_mb=f"{app.config['MAX_CONTENT_LENGTH'] / 1e6:.1f}",
        )

    @app.post("/api/detect")
    def detect() -> Any:
        upload = request.files.get("image")
        if upload is None or not upload.filename:
            return _error(400, "missing_image", "choose an image file to upload", "image")
        data = upload.read()
        if not data:
            return _error(400, "empty_image", f"{upload.filename} is empty", "image")
        endpoint = current()
        payload: dict[str, Any] = {"image": base64.b64encode(data).decode("ascii")}
        if conf := request.form.get("conf"):
            try:
                payload["conf"] = float(conf)
            except ValueError:
                return _error(400, "invalid_parameter", f"conf must be a number, got {conf!r}", "conf")
        if top_k := request.form.get("top_k"):
            try:
                payload["top_k"] = int(top_k)
            except ValueError:
                return _error(400, "invalid_parameter", f"top_k must be a whole number, got {top_k!r}", "top_k")
        started = time.perf_counter()
        try:
            with EndpointClient(endpoint, timeout=60) as client:
                answer = client.score(payload)
        except EndpointError as exc:
            latency = (time.perf_counter() - started) * 1e3
            if exc.status is not None and isinstance(exc.body, dict) and "error" in exc.body:
                # the endpoint's own 4xx (a bad image...): pass it on, it names the problem
                return jsonify({**exc.body, "latency_ms": round(latency, 1)}), exc.status
            return _error(502, "endpoint_unavailable", f"the scoring endpoint failed: {exc}", None)
        latency = (time.perf_counter() - started) * 1e3
        prediction = (answer.get("predictions") or [{}])[0]
        return jsonify(
            {
                "model": answer.get("model"),
                "prediction": prediction,
                "latency_ms": round(latency, 1),
                "inference_ms": answer.get("inference_ms"),
                "filename": upload.filename,
            }
        )

    @app.get("/healthz")
    def healthz() -> Any:
        with EndpointClient(current(), timeout=5) as client:
            healthy, detail = client.health()
        return jsonify({"webapp": "ok", "endpoint": detail, "endpoint_healthy": healthy})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            return _error(413, "payload_too_large", f"the upload is over {limit} bytes; send a smaller image", "image")
        return _error(exc.code or 500, "http_error", exc.description or str(exc), None)

    return app


def _error(status: int, code: str, message: str, field: str | None) -> Any:
    return jsonify({"error": {"code": code, "message": message, "field": field}}), status


def serve(settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 8000,
          endpoint: EndpointInfo | None = None, name: str = "local") -> None:
    """Run the page with Werkzeug's threaded server (a local demo, not a production server)."""
    app = create_app(settings, endpoint, name=name)
    app.run(host=host, port=port, threaded=True, debug=False, use_reloader=False)

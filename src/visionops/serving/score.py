"""Scoring script for the Azure ML inference server (azmlinfsrv locally, online endpoints in Azure).

Azure ML's contract: the server imports this file, calls `init()` once per worker, then `run()`
per request. `run` is decorated with `@rawhttp` so that every answer, errors included, has our
JSON shape (`{"error": {"code", "message", "field"}}`) and a proper 4xx status: without it the
server hands `run` a UTF-8 string and answers non-UTF-8 bodies itself with its own format.

Environment (all optional):
    AZUREML_MODEL_DIR                set by the server (--model_dir) or by Azure: the model folder
    VISIONOPS_SERVING_RUNTIME        onnx | pytorch | auto (default: onnx when best.onnx exists)
    VISIONOPS_SERVING_MODEL_NAME     name/version reported in responses (default: model_info.json,
    VISIONOPS_SERVING_MODEL_VERSION  then the folder name, which Azure sets to the version)
    VISIONOPS_SERVING_KEY            when set, requests need `Authorization: Bearer <key>` (the
                                     local endpoint sets it; Azure checks keys in front of us)
    VISIONOPS_MAX_PAYLOAD_BYTES, VISIONOPS_MAX_IMAGE_PIXELS, VISIONOPS_MAX_IMAGES_PER_REQUEST,
    VISIONOPS_MIN_IMAGE_SIDE, VISIONOPS_THREADS, VISIONOPS_DEVICE   (see visionops.settings)

In Azure the deployment's environment needs the visionops package installed (this file
imports it); the model folder is the registered MLflow model (weights under artifacts/).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

from visionops.monitoring.collect import Collector, NullCollector, correlation_id, make_collector
from visionops.monitoring.records import ModelRef
from visionops.serving.auth import KEY_ENV, check_authorization
from visionops.serving.predictor import Predictor, find_model, load_predictor, resolve_runtime
from visionops.serving.protocol import Limits, RequestError, parse_request, payload_too_large
from visionops.settings import get_settings

# A child of the server's "azmlinfsrv" logger, so lines land in the server log (and Azure's).
log = logging.getLogger("azmlinfsrv.visionops")


class Scorer:
    """The request -> response logic, independent of the HTTP server, so benchmarks and tests
    can call exactly what the endpoint runs without a socket in between."""

    def __init__(self, predictor: Predictor, limits: Limits, key: str | None = None,
                 collector: Collector | None = None):
        self.predictor = predictor
        self.limits = limits
        self._key = key or None
        # production data collection (visionops.monitoring.collect): queued, never fails a request
        self.collector = collector or NullCollector()
        self._model_ref = ModelRef(name=predictor.name, version=predictor.version, task=predictor.task,
                                   runtime=predictor.runtime)

    def model_info(self) -> dict[str, str]:
        p = self.predictor
        return {"name": p.name, "version": p.version, "runtime": p.runtime, "task": p.task}

    def score(self, body: bytes | str | dict[str, Any], headers: Any = None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one request; never raises for a bad request."""
        started = time.perf_counter()
        try:
            if self._key is not None:
                check_authorization(headers or {}, self._key)
            req = parse_request(body, self.limits, num_classes=len(self.predictor.names) or None)
        except RequestError as exc:
            log.info("refused %s %s (field %s)", exc.status, exc.code, exc.field)
            return exc.status, exc.to_dict()
        decoded = time.perf_counter()
        try:
            predictions = self.predictor.predict(req.images, conf=req.conf, iou=req.iou, max_det=req.max_det,
                                                 top_k=req.top_k)
        except Exception:  # a bug or a broken model, not the client's fault: log it, answer in our format
            log.exception("prediction failed")
            return 500, {"error": {"code": "internal_error", "field": None,
                                   "message": "prediction failed on the server; see the server log"}}
        done = time.perf_counter()
        log.info("scored %d image(s), %s, %.1f ms", len(predictions), self.predictor.head.describe(predictions),
                 (done - started) * 1e3)
        sent = [d.to_dict() for d in predictions]
        cid = correlation_id(headers)
        try:  # the collector queues and returns; a broken one must still not fail the request
            self.collector.record(req.images, sent, self._model_ref, cid)
        except Exception:
            log.exception("production data collection failed (the request is answered anyway)")
        return 200, {
            "model": self.model_info(),
            "predictions": sent,
            "inference_ms": round((done - decoded) * 1e3, 2),
            "decode_ms": round((decoded - started) * 1e3, 2),
            "correlation_id": cid,
        }


_scorer: Scorer | None = None


def build_scorer(model_dir: str | os.PathLike[str] | None = None, *, warmup: bool = True) -> Scorer:
    """A Scorer for a model folder (default: AZUREML_MODEL_DIR), with limits from settings."""
    settings = get_settings()
    model_dir = model_dir or os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; start the server with --model_dir <registered model folder>")
    runtime = resolve_runtime(find_model(model_dir), settings.serving_runtime)
    device = "cpu"  # ONNX Runtime runs on the CPU execution provider
    if runtime == "pytorch":
        from visionops.training import resolve_device

        device = resolve_device(settings.device)  # auto: the GPU when torch sees one
    predictor = load_predictor(model_dir, runtime, threads=settings.threads, device=device)
    if warmup:
        predictor.warmup()
    return Scorer(predictor, Limits.from_settings(settings), key=os.environ.get(KEY_ENV),
                  collector=make_collector(settings))


def init() -> None:
    """Load the model once per server worker (called by azmlinfsrv before it takes traffic)."""
    global _scorer
    started = time.perf_counter()
    _scorer = build_scorer()
    p = _scorer.predictor
    log.info(
        "%s model %s version %s loaded with %s (imgsz %s, %d classes, auth %s) in %.1f s",
        p.task, p.name, p.version, p.runtime, p.imgsz, len(p.names), "on" if _scorer._key else "off",
        time.perf_counter() - started,
    )


def _response(status: int, body: dict[str, Any]) -> AMLResponse:
    return AMLResponse(body, status, json_str=True)


@rawhttp
def run(raw_data: Any) -> AMLResponse:
    """One request. `raw_data` is the server's request object (via @rawhttp); in-process callers
    may pass the JSON body (str, bytes or an already-parsed dict) instead."""
    if _scorer is None:
        return _response(503, {"error": {"code": "not_ready", "message": "init() has not run", "field": None}})
    if hasattr(raw_data, "get_data"):  # a Flask request from the server
        method = raw_data.method
        if method == "OPTIONS":
            return AMLResponse("", 200)
        if method != "POST":
            err = RequestError(405, "method_not_allowed", f"{method} /score is not supported; POST the JSON body")
            return _response(err.status, err.to_dict())
        length = raw_data.content_length
        if length is not None and length > _scorer.limits.max_payload_bytes:
            err = payload_too_large(length, _scorer.limits)
            return _response(err.status, err.to_dict())
        status, body = _scorer.score(raw_data.get_data(cache=False), raw_data.headers)
    else:
        status, body = _scorer.score(raw_data)
    return _response(status, body)

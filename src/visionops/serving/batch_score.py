"""Scoring script of the Azure ML batch deployment: `visionops predict`'s scorer behind init()/run().

Azure ML's batch contract: each worker process calls `init()` once, then `run(mini_batch)` with a
list of file paths (`batch_mini_batch_size` of them); every item of the returned list becomes one
line of the job's predictions.jsonl (output_action append_row). Here each line is the JSON record
`visionops predict` writes for that image, so a batch job's output reads like a local run's:

    {"file", "width", "height", "boxes", "class_ids", "labels", "confidences", "model"}   (a detector)
    {"file", "width", "height", "labels", "class_ids", "probabilities", "model"}        (a classifier: top 5)
    {"file", "error": {"code", "message"}, "model"}          (an image that cannot be read)

A corrupt image is a record, not a failed mini-batch: failing the mini-batch would retry and then
drop its other images too. `error_threshold` therefore counts mini-batches that crash (a broken
model, a node lost), and the error records say which images were unreadable and why.

Records carry `file` as the path the job saw (the input's mount path) and the model's
`name:version`, since records of several mini-batches and processes land in one file in any order.

Environment: AZUREML_MODEL_DIR (set by Azure: the registered model), VISIONOPS_SERVING_MODEL_NAME /
_VERSION, VISIONOPS_BATCH_SIZE, VISIONOPS_BATCH_MAX_CONCURRENCY (processes per node: each gets
cores / concurrency ONNX Runtime threads), VISIONOPS_MAX_IMAGE_PIXELS (see visionops.settings).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

try:
    import visionops  # noqa: F401
except ImportError:  # the deployment's code folder is src/; the driver may only put this file's folder on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from visionops.serving.batch import BatchRunner, ImageItem, load_runner, score_items  # noqa: E402
from visionops.settings import get_settings  # noqa: E402

log = logging.getLogger("visionops.batch_score")

_runner: BatchRunner | None = None


def threads_per_process(concurrency: int, cores: int | None = None) -> int:
    """ONNX Runtime threads of each of the node's `concurrency` scoring processes: the node's cores
    shared out, so that processes do not oversubscribe the CPU (at least one each)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, concurrency))


def init() -> None:
    """Load the model once per worker process (Azure ML calls this before any run())."""
    global _runner
    started = time.perf_counter()
    settings = get_settings()
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; this script runs inside an Azure ML batch deployment")
    threads = settings.threads or threads_per_process(settings.batch_max_concurrency)
    _runner = load_runner(model_dir, threads=threads)
    p = _runner.predictor
    log.info("model %s version %s loaded (onnx, %s, %d thread(s)) in %.1f s", p.name, p.version,
             "batched" if _runner.batched else "one image per call", threads, time.perf_counter() - started)


def run(mini_batch: list[str]) -> list[str]:
    """One JSON record per file of the mini-batch, in its order."""
    if _runner is None:
        raise RuntimeError("init() has not run")
    settings = get_settings()
    model = f"{_runner.predictor.name}:{_runner.predictor.version}"
    items = [ImageItem(Path(f), str(f)) for f in mini_batch]
    rows = [
        json.dumps({**record, "model": model}, ensure_ascii=False)
        for _, record in score_items(_runner, items, batch_size=settings.batch_size,
                                     max_pixels=settings.max_image_pixels, readers=1)
    ]
    log.info("scored %d file(s)", len(rows))
    return rows

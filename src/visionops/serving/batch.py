"""Batch scoring: a folder (or glob) of images -> one JSONL record per image (and, for a detector,
COCO results).

Why a separate path from the endpoint: scoring thousands of files one HTTP request at a time pays
base64, JSON and a loopback round trip per image, and runs the model on one image per call. Here
the files are read and decoded in a small thread pool while the previous batch runs, and ONNX
Runtime scores a whole batch in one call (see `BatchRunner`), with the endpoint's own pre- and
post-processing (the model's task head, visionops.serving.heads), so the records hold the
endpoint's predictions.

The contract, shared by `visionops predict` and the Azure ML batch deployment (batch_score.py):

- one record per image, in the order scored: `{"image_id", "file", "width", "height", "boxes",
  "class_ids", "labels", "confidences"}` for a detector, `{"image_id", "file", "width", "height",
  "labels", "class_ids", "probabilities"}` (top-k, best first) for a classifier, or
  `{"image_id", "file", "error": {"code", "message"}}` for an image that cannot be read (a
  corrupt file is a record, never a crash);
- memory does not grow with the folder: paths are walked lazily, at most two batches are in
  flight, each record is written when made; only the set of already-scored names is kept, for
  resuming;
- resumable: a second run into the same output skips the files recorded there and appends the
  new ones; a run with another model, source or parameters is refused (its records would mix);
- for a detector, `coco_results.json` (the COCO detection results list, for `COCO.loadRes`) and
  `coco_images.json` (the images and categories those results refer to) are rebuilt from the JSONL
  after each run. COCO results are a detection format: a classifier's run writes the JSONL only.

Core only: no CLI imports (`visionops.cli.predict` is the command).
"""

from __future__ import annotations

import glob
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from visionops.errors import ConfigError, VisionOpsError
from visionops.serving.heads import Params, Prediction
from visionops.serving.predictor import (
    DEFAULT_CONF,
    DEFAULT_IOU,
    DEFAULT_MAX_DET,
    OnnxPredictor,
    Predictor,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
PREDICTIONS = "predictions.jsonl"
MANIFEST = "predict.json"
COCO_RESULTS = "coco_results.json"
COCO_IMAGES = "coco_images.json"
DEFAULT_BATCH = 16
_GLOB_CHARS = frozenset("*?[")


class NoImagesError(VisionOpsError):
    """The source named no image files."""


# --- which files ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageItem:
    """One file to score and the name it is recorded under (its path relative to the source root,
    with '/' separators, so records read the same on every OS)."""

    path: Path
    key: str


@dataclass(frozen=True)
class ImageSource:
    """A folder (walked recursively) or a glob pattern; iterating walks it again, lazily."""

    root: Path
    pattern: str | None = None

    def __iter__(self) -> Iterator[ImageItem]:
        if self.pattern is None:
            yield from _walk(self.root)
            return
        for hit in glob.iglob(self.pattern, recursive=True):  # lazily, in the file system's order
            p = Path(os.path.abspath(hit))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                yield ImageItem(p, Path(os.path.relpath(p, self.root)).as_posix())

    def count(self) -> int:
        """How many images (a second lazy walk: nothing is kept)."""
        return sum(1 for _ in self)

    def describe(self) -> str:
        return self.pattern if self.pattern is not None else str(self.root)


def _walk(root: Path) -> Iterator[ImageItem]:
    """Depth-first, sorted per folder (a stable order across runs), one folder listing at a time.
    Symlinked folders are followed (skipping them would leave their images out without a word),
    each real folder once, so a link cycle cannot loop."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        base = Path(folder)
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                p = base / name
                yield ImageItem(p, p.relative_to(root).as_posix())


def image_source(source: str | os.PathLike[str]) -> ImageSource:
    """A folder, one image file, or a glob (`photos/**/*.jpg`, quoted so the shell leaves it)."""
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageSource(Path(os.path.abspath(path)))
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise NoImagesError(f"{path} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
        full = Path(os.path.abspath(path))
        return ImageSource(full.parent, glob.escape(str(full)))
    if _GLOB_CHARS & set(text):
        pattern = Path(os.path.abspath(path))
        return ImageSource(Path(*_prefix(pattern.parts)), str(pattern))
    raise NoImagesError(f"{text} is neither a folder, an image file nor a glob pattern; check the path")


def _prefix(parts: tuple[str, ...]) -> Iterator[str]:
    """The leading path parts without glob characters (the folder a glob's names are relative to)."""
    for part in parts[:-1]:  # parts[0] is the anchor ('/'), never a pattern
        if _GLOB_CHARS & set(part):
            return
        yield part


def require_images(src: ImageSource) -> int:
    """The number of images, or NoImagesError saying what was looked for and where."""
    n = src.count()
    if n == 0:
        raise NoImagesError(
            f"no images under {src.describe()} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, in sub-folders "
            "too); point at a folder of images or a quoted glob such as 'photos/**/*.jpg'"
        )
    return n


# --- reading one image ---------------------------------------------------------------------------
class ImageReadError(Exception):
    """An image file that cannot be scored; becomes that image's error record."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def read_image(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """The file as an HxWx3 RGB array, decoded as the endpoint decodes a request's image (EXIF
    orientation applied, so boxes match what a viewer shows); ImageReadError with a reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageReadError("image_too_large", f"{w}x{h} = {w * h} pixels, over the limit of "
                                         f"{max_pixels} (VISIONOPS_MAX_IMAGE_PIXELS); resize it")
                img.load()
                return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError("image_too_large", f"{exc}; resize it") from None
    except UnidentifiedImageError:
        raise ImageReadError("not_an_image", "not an image Pillow can read (corrupt, or another file type)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError("invalid_image", f"truncated or corrupt image ({exc})") from None


# --- scoring batches -----------------------------------------------------------------------------
def scoring_threads(cores: int | None = None) -> tuple[int, int]:
    """(ONNX Runtime threads, reader threads) for batch scoring on `cores` cores (default: this
    machine's). One core reads and decodes the next batch while the others run the model: on the
    shared 2-core development machine, 1 + 1 scored about 560 images/s where ONNX Runtime on both
    cores, with the reader competing for them, scored about 330 (96x96 JPEGs, batches of 32)."""
    cores = cores or os.cpu_count() or 1
    readers = 1 if cores <= 4 else 2
    return max(1, cores - readers), readers


class BatchRunner:
    """Many images per ONNX Runtime call with an `OnnxPredictor`'s model.

    A model exported with a dynamic batch axis is called as is. A static export ([1, 3, H, W],
    what Ultralytics writes by default) is made batch-dynamic in memory when the `onnx` package is
    present: each Reshape whose target shape starts with the fixed batch 1 gets 0 there ("copy the
    input's batch size"), and the result is checked on load against the original model, image by
    image, before it is used. Otherwise (the lean inference image has no `onnx`, or the check
    fails) images go through the original model one per call; the records are the same either way.
    """

    def __init__(self, predictor: Predictor):
        if not isinstance(predictor, OnnxPredictor):
            raise ConfigError(
                f"batch scoring runs on ONNX Runtime; the model {predictor.name}:{predictor.version} was loaded "
                f"with {predictor.runtime}. Export it to ONNX (the training pipeline's register step does)"
            )
        self.predictor = predictor
        self.session, self.batched = _batched_session(predictor)

    def predict(
        self, images: list[np.ndarray], *, conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET, top_k: int | None = None,
    ) -> list[Prediction]:
        if not images:
            return []
        p = self.predictor
        head = p.head
        params = Params(conf=conf, iou=iou, max_det=max_det, top_k=top_k)
        blobs, frames = zip(*(head.preprocess(img, p.imgsz) for img in images), strict=True)
        if self.batched:
            outputs = self.session.run(None, {p.input_name: np.concatenate(blobs)})[0]
        else:
            outputs = np.concatenate([p.session.run(None, {p.input_name: b})[0] for b in blobs])
        return [head.from_onnx(out[None], frame, p.names, params) for out, frame in zip(outputs, frames, strict=True)]


def _batched_session(predictor: OnnxPredictor) -> tuple[Any, bool]:
    """(session, batched): the predictor's own session when its batch axis is dynamic, a patched
    copy when that can be made and checked, else the original with batched=False."""
    shape = predictor.session.get_inputs()[0].shape
    if not isinstance(shape[0], int):
        return predictor.session, True
    try:
        import onnx  # noqa: F401  (the full/dev environments have it; the lean inference image does not)
    except ImportError:
        return predictor.session, False
    try:
        session = _dynamic_batch_session(predictor)
        if _agrees(predictor, session):
            return session, True
    except Exception:  # noqa: BLE001 - any failure here means: score one image per call, as the endpoint does
        pass
    return predictor.session, False


def _dynamic_batch_session(predictor: OnnxPredictor) -> Any:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    assert predictor.bundle.onnx is not None
    model = onnx.load(str(predictor.bundle.onnx))
    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    for node in model.graph.node:
        if node.op_type != "Reshape" or any(a.name == "allowzero" and a.i for a in node.attribute):
            continue
        target = node.input[1]
        if target in inits:
            arr = numpy_helper.to_array(inits[target]).copy()
            if arr.size and arr[0] == 1:
                arr[0] = 0
                inits[target].CopyFrom(numpy_helper.from_array(arr, target))
        elif target in consts:
            tensor = next(a for a in consts[target].attribute if a.name == "value").t
            arr = numpy_helper.to_array(tensor).copy()
            if arr.size and arr[0] == 1:
                arr[0] = 0
                tensor.CopyFrom(numpy_helper.from_array(arr, tensor.name))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]  # the static intermediate shapes no longer hold
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = predictor.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def _agrees(predictor: OnnxPredictor, session: Any) -> bool:
    """The patched model's outputs for a batch of 3 distinct inputs equal the original's, one by one."""
    rng = np.random.default_rng(0)
    size = predictor.imgsz
    x = rng.random((3, 3, size, size), dtype=np.float32)
    batched = session.run(None, {predictor.input_name: x})[0]
    single = np.concatenate([predictor.session.run(None, {predictor.input_name: x[i:i + 1]})[0] for i in range(3)])
    return batched.shape == single.shape and bool(np.allclose(batched, single, rtol=1e-4, atol=1e-4))


def _load(item: ImageItem, max_pixels: int | None) -> np.ndarray | ImageReadError:
    try:
        return read_image(item.path, max_pixels)
    except ImageReadError as exc:
        return exc


def _chunks(items: Iterable[ImageItem], size: int) -> Iterator[list[ImageItem]]:
    chunk: list[ImageItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_items(
    runner: BatchRunner,
    items: Iterable[ImageItem],
    *,
    batch_size: int = DEFAULT_BATCH,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    max_det: int = DEFAULT_MAX_DET,
    top_k: int | None = None,
    max_pixels: int | None = None,
    readers: int = 1,
) -> Iterator[tuple[ImageItem, dict[str, Any]]]:
    """(item, record without image_id) for each item, in order. The next batch's files are read
    and decoded in `readers` threads while the current batch is scored; nothing else is kept."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    params = Params(conf=conf, iou=iou, max_det=max_det, top_k=top_k)
    with ThreadPoolExecutor(max_workers=max(readers, 1), thread_name_prefix="visionops-read") as pool:
        pending: tuple[list[ImageItem], list[Future]] | None = None
        for chunk in _chunks(items, batch_size):
            futures = [pool.submit(_load, item, max_pixels) for item in chunk]
            if pending is not None:
                yield from _score_chunk(runner, *pending, params=params)
            pending = (chunk, futures)
        if pending is not None:
            yield from _score_chunk(runner, *pending, params=params)


def _score_chunk(
    runner: BatchRunner, chunk: list[ImageItem], futures: list[Future], *, params: Params,
) -> Iterator[tuple[ImageItem, dict[str, Any]]]:
    loaded = [f.result() for f in futures]
    good = [(i, arr) for i, arr in enumerate(loaded) if isinstance(arr, np.ndarray)]
    scored = runner.predict([arr for _, arr in good], conf=params.conf, iou=params.iou, max_det=params.max_det,
                            top_k=params.top_k)
    by_index = {i: d for (i, _), d in zip(good, scored, strict=True)}
    for i, item in enumerate(chunk):
        if i in by_index:
            yield item, {"file": item.key, **by_index[i].to_dict()}
        else:
            err = loaded[i]
            assert isinstance(err, ImageReadError)
            yield item, {"file": item.key, "error": {"code": err.code, "message": str(err)}}


# --- the output folder ---------------------------------------------------------------------------
@dataclass
class PredictSummary:
    """What one run did: scored now, failed now (error records), skipped (already in the output).
    `coco_results`/`coco_images` are None for a classifier (COCO results are a detection format)."""

    out_dir: Path
    predictions: Path
    coco_results: Path | None
    coco_images: Path | None
    model: str
    task: str = "detect"
    total: int = 0
    scored: int = 0
    failed: int = 0
    skipped: int = 0
    detections: int = 0  # boxes found (detection only)
    batched: bool = False
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)  # the first few, for the report

    @property
    def images_per_s(self) -> float:
        done = self.scored + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0


def _manifest(src: ImageSource, model: str, run_params: dict[str, Any]) -> dict[str, Any]:
    """What must match for a rerun to append: source, model and the parameters that change the
    task's output (a detector's thresholds; a classifier's task and top_k)."""
    return {"source": src.describe(), "model": model, **run_params}


def check_manifest(out_dir: Path, wanted: dict[str, Any]) -> None:
    """Refuse to append to an output made by another model, source or thresholds: its records and
    these would mix without a trace of which is which."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return
    try:
        have = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); delete {out_dir} or choose another --out") from None
    diff = [f"{k}: {have.get(k)!r} there, {v!r} now" for k, v in wanted.items() if have.get(k) != v]
    if diff:
        raise ConfigError(
            f"{out_dir} holds predictions of another run ({'; '.join(diff)}); choose another --out, or --overwrite "
            "to start it over"
        )


def read_done(predictions: Path) -> tuple[set[str], int]:
    """(files recorded, last image_id) of an existing predictions file. A last line cut short (a
    run killed mid-write) is removed so that image is scored again; any other unreadable line is
    an error naming the line, since skipping it would drop its image silently."""
    done: set[str] = set()
    last_id = 0
    if not predictions.is_file():
        return done, last_id
    good_end = 0
    with predictions.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                break  # the last line, cut off before its newline (even if it parses, the next append would join it)
            try:
                rec = json.loads(raw)
                key, image_id = rec["file"], int(rec["image_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f"{predictions}:{lineno}: not a prediction record ({exc}); fix or delete that line, or "
                    "--overwrite to start over"
                ) from None
            done.add(key)
            last_id = max(last_id, image_id)
            good_end = fh.tell()
    if good_end != predictions.stat().st_size:
        with predictions.open("r+b") as fh:
            fh.truncate(good_end)
    return done, last_id


def predict_folder(
    runner: BatchRunner,
    source: ImageSource,
    out_dir: Path,
    *,
    batch_size: int = DEFAULT_BATCH,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    max_det: int = DEFAULT_MAX_DET,
    top_k: int | None = None,
    max_pixels: int | None = None,
    overwrite: bool = False,
    readers: int = 1,
    on_start: Callable[[PredictSummary], None] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> PredictSummary:
    """Score every image of `source` not yet in `out_dir`, appending to predictions.jsonl (flushed
    per batch), then (detection) rebuild the COCO files. `on_start` sees the summary once the
    skipped files are counted, `on_record` each new record (progress bars)."""
    import time

    p = runner.predictor
    model = f"{p.name}:{p.version}"
    out_dir = Path(out_dir)
    predictions = out_dir / PREDICTIONS
    total = require_images(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    head = p.head
    wanted = _manifest(source, model, head.run_params(Params(conf=conf, iou=iou, max_det=max_det, top_k=top_k)))
    if overwrite:
        for name in (PREDICTIONS, MANIFEST, COCO_RESULTS, COCO_IMAGES):
            (out_dir / name).unlink(missing_ok=True)
    check_manifest(out_dir, wanted)
    (out_dir / MANIFEST).write_text(
        json.dumps({"task": head.task, **wanted, "classes": list(p.names),
                    "updated": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2, ensure_ascii=False),
        encoding="utf-8")
    done, last_id = read_done(predictions)
    summary = PredictSummary(out_dir=out_dir, predictions=predictions,
                             coco_results=out_dir / COCO_RESULTS if head.coco else None,
                             coco_images=out_dir / COCO_IMAGES if head.coco else None,
                             model=model, task=head.task, total=total, batched=runner.batched)
    todo = (item for item in source if item.key not in done)
    summary.skipped = sum(1 for item in source if item.key in done)
    if on_start is not None:
        on_start(summary)
    started = time.perf_counter()
    with predictions.open("a", encoding="utf-8") as fh:
        for n, (_, record) in enumerate(score_items(runner, todo, batch_size=batch_size, conf=conf, iou=iou,
                                                    max_det=max_det, top_k=top_k, max_pixels=max_pixels,
                                                    readers=readers), 1):
            last_id += 1
            record = {"image_id": last_id, **record}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            if "error" in record:
                summary.failed += 1
                if len(summary.errors) < 10:
                    summary.errors.append({"file": record["file"], **record["error"]})
            else:
                summary.scored += 1
                summary.detections += len(record.get("boxes", ()))
            if n % batch_size == 0:
                fh.flush()
            if on_record is not None:
                on_record(record)
    summary.seconds = time.perf_counter() - started
    if summary.coco_results is not None and summary.coco_images is not None:
        write_coco(predictions, p.names, summary.coco_results, summary.coco_images)
    return summary


def write_coco(predictions: Path, classes: list[str], results: Path, images: Path) -> None:
    """The COCO detection results (`[{image_id, category_id, bbox [x, y, w, h], score}]`, category
    ids = class index + 1 as in our COCO export) and the images/categories file they refer to,
    streamed from the JSONL record by record. Error records have no image entry."""
    tmp_results, tmp_images = results.with_suffix(".json.partial"), images.with_suffix(".json.partial")
    with predictions.open(encoding="utf-8") as src, tmp_results.open("w", encoding="utf-8") as res, \
            tmp_images.open("w", encoding="utf-8") as img:
        res.write("[")
        img.write('{"images": [')
        first_det = first_img = True
        for line in src:
            rec = json.loads(line)
            if "error" in rec:
                continue
            entry = {"id": rec["image_id"], "file_name": rec["file"], "width": rec["width"], "height": rec["height"]}
            img.write(("" if first_img else ",\n") + json.dumps(entry, ensure_ascii=False))
            first_img = False
            for box, cls, score in zip(rec["boxes"], rec["class_ids"], rec["confidences"], strict=True):
                x0, y0, x1, y1 = box
                det = {"image_id": rec["image_id"], "category_id": int(cls) + 1,
                       "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)], "score": score}
                res.write(("" if first_det else ",\n") + json.dumps(det))
                first_det = False
        res.write("]\n")
        categories = [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(classes)]
        img.write('], "categories": ' + json.dumps(categories, ensure_ascii=False) + "}\n")
    tmp_results.replace(results)
    tmp_images.replace(images)


# --- which model ---------------------------------------------------------------------------------
def load_runner(model_dir: Path | str, *, threads: int | None = None, name: str | None = None,
                version: str | None = None) -> BatchRunner:
    """The BatchRunner for a model folder, refusing one without an ONNX export with what to do
    (batch scoring runs ONNX Runtime only: the lean inference image has no torch)."""
    from visionops.errors import ModelNotFoundError
    from visionops.serving.predictor import find_model, load_predictor

    bundle = find_model(model_dir, name=name, version=version)
    if bundle.onnx is None:
        raise ModelNotFoundError(
            f"model {bundle.name}:{bundle.version} has no ONNX export ({bundle.root} holds no .onnx file); batch "
            "scoring runs ONNX Runtime. Export and register it again (the training pipeline's register step does "
            "both; or visionops.serving.export.export_onnx), or pick a version that has one with --model name:version"
        )
    return BatchRunner(load_predictor(model_dir, "onnx", threads=threads, name=name, version=version))


def resolve_model(settings: Any, spec: str | None = None) -> tuple[Any, Path]:
    """(registry ref, downloaded folder) for `name:version`, `name` (its production version), or
    (None) the production version of the settings' model. Without one, the registry's error says
    to run the lifecycle (`visionops run`)."""
    from visionops import registry

    ref = registry.resolve(settings, spec)
    return ref, registry.download(settings, ref)

"""Production data collection: what the endpoint saw and answered, one record per scored image.

The scoring path calls `Collector.record(...)` after a successful prediction. That call only
puts a reference on a bounded in-memory queue (microseconds); a daemon thread computes the image
statistics, builds the `ProductionRecord`s and writes them. So a request never waits on disk,
and a full queue drops the request's records and counts them instead of blocking. Anything that
fails in collection (an unwritable folder, a full disk, an odd image) is logged once per kind and
counted (`stats()`): collection never raises into a request.

Locally (`LocalCollector`), records go to JSONL files under `<production_dir>/records/`, one file
per process at a time (gunicorn workers never share a file), rotated by size and by hour, the
oldest deleted beyond `collect_max_files`. A share of the images (`collect_sample_rate`, at most
`collect_sample_max_bytes` each) is saved under `<production_dir>/samples/<hour>/`; a record's
`sample` is that path relative to `production_dir`. The saved image is the decoded, EXIF-rotated
RGB image the model saw (JPEG), so the boxes in the record are in its coordinates.

On Azure ML online deployments `make_collector` picks `azure_collect.AzureCollector` instead
(azureml-ai-monitoring's `model_inputs` / `model_outputs` collections).

`read_records` is the one reader: the drift report and the labeling export call it.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import random
import re
import shutil
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import ValidationError

from visionops.monitoring.records import ModelRef, ProductionRecord, image_stats, summarize

# A child of the inference server's logger, so that collection problems land in the server log.
log = logging.getLogger("azmlinfsrv.visionops.collect")

RECORDS_DIR = "records"
SAMPLES_DIR = "samples"
HOUR_FORMAT = "%Y%m%d%H"
# Headers a caller (or Azure's front end) sets to identify a request; the first one present wins.
CORRELATION_HEADERS = ("x-request-id", "x-ms-client-request-id")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RECORDS_NAME = re.compile(r"^records-(\d{10})-\d+-\d+\.jsonl$")
QUEUE_REQUESTS = 512  # requests waiting for the writer thread before new ones are dropped
# Decoded pixels the queue may hold (about 3 bytes each): bounds memory when images are large
QUEUE_PIXELS = 64_000_000
BATCH = 64  # requests the writer takes from the queue at once (one write() per batch)
POLL_S = 0.02  # the writer looks at the queue this often when it is empty


def correlation_id(headers: Any = None) -> str:
    """The request's id from `x-request-id` / `x-ms-client-request-id` (any case) when present
    and plain (letters, digits, `._:-`, at most 128 characters), else a new one: a client can join
    its own logs with the records, and Azure's front end sets `x-request-id` on every call."""
    if headers:
        items = headers.items() if hasattr(headers, "items") else headers
        wanted = {}
        for key, value in items:
            k = str(key).lower()
            if k in CORRELATION_HEADERS and k not in wanted:
                wanted[k] = str(value).strip()
        for name in CORRELATION_HEADERS:
            value = wanted.get(name)
            if value and _SAFE_ID.match(value):
                return value
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Scored:
    """One successful request as the scoring path hands it over (references, no copies)."""

    images: Sequence[Image.Image]
    predictions: Sequence[Mapping[str, Any]]
    model: ModelRef
    correlation_id: str
    time: datetime
    raw: Sequence[bytes | None] | None = None

    @property
    def pixels(self) -> int:
        return sum(img.width * img.height for img in self.images)


@dataclass
class Built:
    """One image's record, with the image (and its encoded bytes, when the caller had them) for
    a collector that saves samples."""

    record: ProductionRecord
    image: Image.Image
    raw: bytes | None = None


class Collector(ABC):
    """Where the scoring path sends what it saw. `record` must return at once and never raise."""

    @abstractmethod
    def record(
        self,
        images: Sequence[Image.Image],
        predictions: Sequence[Mapping[str, Any]],
        model: ModelRef,
        correlation_id: str,
        raw: Sequence[bytes | None] | None = None,
    ) -> None:
        """Hand over one request: its decoded images, the per-image prediction dicts as sent in the
        response, the model, the request's correlation id and (optionally) each image's encoded bytes."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed over so far is written (tests, benchmarks, shutdown);
        True when it was within `timeout` seconds."""
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to `timeout` seconds) and stop."""
        return None

    def stats(self) -> dict[str, int]:
        """Counters: records written, drops and failures by kind."""
        return {}


class NullCollector(Collector):
    """Collection switched off (VISIONOPS_COLLECT=false)."""

    def record(self, images, predictions, model, correlation_id, raw=None) -> None:
        return None


_LIVE: weakref.WeakSet[QueuedCollector] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # pragma: no cover - runs at interpreter exit
    for collector in list(_LIVE):
        collector.close(timeout=2.0)


class QueuedCollector(Collector):
    """A bounded queue and one daemon thread per process: `record` appends, the thread builds
    the records (image statistics, prediction summary) and calls `emit`. Subclasses say where
    records go. The thread starts on first use and again after a fork (gunicorn preloading), so
    each process has its own.

    The writer polls the queue (every `poll_s`) instead of being woken per request: a wake-up
    hands the interpreter to the writer in the middle of the request (measured: about 0.1 ms, up
    to 1.5 ms, per request), while an append alone costs a few microseconds."""

    def __init__(self, *, queue_requests: int = QUEUE_REQUESTS, queue_pixels: int = QUEUE_PIXELS,
                 poll_s: float = POLL_S):
        self._queue_requests = queue_requests
        self._queue_pixels = queue_pixels
        self._poll_s = poll_s
        self._counts: Counter[str] = Counter()
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._queue: deque[Scored] = deque()
        self._pending_pixels = 0
        self._pending = 0
        self._closed = False
        self._stopping = False

    # --- the request thread ----------------------------------------------------------------
    def record(self, images, predictions, model, correlation_id, raw=None) -> None:
        try:
            if self._closed:
                return
            if self._pid != os.getpid():
                self._start()
            item = Scored(images=tuple(images), predictions=tuple(predictions), model=model,
                          correlation_id=correlation_id, time=datetime.now(UTC), raw=raw)
            pixels = item.pixels
            with self._lock:
                full = self._pending >= self._queue_requests or (
                    self._pending and self._pending_pixels + pixels > self._queue_pixels)
                if full:
                    self._counts["dropped_queue_full"] += len(item.images)
                    self._log_once("dropped_queue_full", "collection queue full (%d requests, %d pixels); dropping "
                                   "records until the writer catches up", self._pending, self._pending_pixels)
                    return
                self._pending_pixels += pixels
                self._pending += 1
                self._queue.append(item)
        except Exception as exc:  # collection never fails a request
            self._fail("record_errors", len(images) if images is not None else 1, "could not queue records: %s", exc)

    # --- the writer thread -----------------------------------------------------------------
    def _start(self) -> None:
        """(Re)create the queue and the thread in this process (first call, or after a fork)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = deque()
            self._pending_pixels = self._pending = 0
            self._after_fork()
            self._thread = threading.Thread(target=self._run, name="visionops-collect", daemon=True)
            self._pid = os.getpid()
            self._thread.start()
        _LIVE.add(self)

    def _after_fork(self) -> None:
        """Subclasses drop per-process state (an open file) here; called under the lock."""
        return None

    def _run(self) -> None:
        # No lower priority for this thread: it holds the GIL while it computes, and a writer
        # descheduled with the GIL in hand would stall the request thread longer than it saves.
        q = self._queue
        while True:
            items: list[Scored] = []
            with contextlib.suppress(IndexError):
                while len(items) < BATCH:
                    items.append(q.popleft())
            if not items:
                if self._stopping:
                    return
                time.sleep(self._poll_s)
                continue
            try:
                built = [b for item in items for b in self._build(item)]
                if built:
                    self.emit(built)
            except Exception as exc:
                self._fail("write_errors", sum(len(i.images) for i in items), "collection failed: %s", exc)
            finally:
                with self._lock:
                    self._pending_pixels -= sum(i.pixels for i in items)
                    self._pending -= len(items)
                    self._idle.notify_all()

    def _build(self, item: Scored) -> list[Built]:
        out = []
        for index, (img, pred) in enumerate(zip(item.images, item.predictions, strict=False)):
            try:
                record = ProductionRecord(
                    time=item.time, correlation_id=item.correlation_id, index=index, model=item.model,
                    image=image_stats(img), prediction=summarize(item.model.task, dict(pred)), raw=dict(pred),
                )
            except Exception as exc:
                self._fail("image_errors", 1, "could not summarise an image (%s); its record is skipped", exc)
                continue
            raw = item.raw[index] if item.raw is not None and index < len(item.raw) else None
            out.append(Built(record=record, image=img, raw=raw))
        return out

    @abstractmethod
    def emit(self, built: list[Built]) -> None:
        """Write these records (called on the writer thread only)."""

    # --- bookkeeping -------------------------------------------------------------------------
    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] += n

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning(message + " (further %s are counted, not logged)", *args, kind)

    def _fail(self, kind: str, n: int, message: str, *args: Any) -> None:
        with self._lock:
            self._counts[kind] += n
            self._log_once(kind, message, *args)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def flush(self, timeout: float = 10.0) -> bool:
        if self._pid != os.getpid():
            return True
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        self._stopping = True  # the writer empties the queue, then returns
        if self._pid == os.getpid() and self._thread is not None:
            self._thread.join(timeout)
        self._release()

    def _release(self) -> None:
        """Subclasses close files here."""
        return None


class LocalCollector(QueuedCollector):
    """Records to rotating JSONL files and sampled images under one folder (see the module doc).
    Nothing touches the disk before the first record, so building one never fails."""

    def __init__(
        self,
        folder: Path | str,
        *,
        sample_rate: float = 0.0,
        sample_max_bytes: int = 2 * 1024 * 1024,
        max_file_bytes: int = 16 * 1024 * 1024,
        max_files: int = 50,
        rng: random.Random | None = None,
        **queue_options: int,
    ):
        super().__init__(**queue_options)
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate} (VISIONOPS_COLLECT_SAMPLE_RATE)")
        if max_files < 1:
            raise ValueError(f"max_files must be at least 1, got {max_files} (VISIONOPS_COLLECT_MAX_FILES)")
        self.folder = Path(folder)
        self.sample_rate = sample_rate
        self.sample_max_bytes = sample_max_bytes
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self._rng = rng or random.Random()
        self._fd: int | None = None
        self._path: Path | None = None
        self._hour = ""
        self._bytes = 0
        self._seq = 0

    @property
    def records_dir(self) -> Path:
        return self.folder / RECORDS_DIR

    @property
    def current_file(self) -> Path | None:
        """The file this process writes now (None before the first record)."""
        return self._path

    def emit(self, built: list[Built]) -> None:
        for b in built:
            if self.sample_rate and self._rng.random() < self.sample_rate:
                b.record.sample = self._save_sample(b)
        lines = [(b.record.model_dump_json() + "\n").encode("utf-8") for b in built]
        try:
            self._write(lines)
        except OSError as exc:
            self._close_file()
            self._fail("write_errors", len(lines), "cannot write production records under %s (%s); requests are "
                       "still answered. Make the folder writable or set VISIONOPS_COLLECT_DIR", self.records_dir, exc)
            return
        self._count("records_written", len(lines))

    def _write(self, lines: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        hour = datetime.now(UTC).strftime(HOUR_FORMAT)
        for line in lines:
            full = self._bytes + size > 0 and self._bytes + size + len(line) > self.max_file_bytes
            if self._fd is None or hour != self._hour or full:
                if chunk:
                    self._append(b"".join(chunk))
                    chunk, size = [], 0
                self._rotate(hour)
            chunk.append(line)
            size += len(line)
        if chunk:
            self._append(b"".join(chunk))

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        if os.fstat(self._fd).st_nlink == 0:  # another process pruned it: start a new file
            self._rotate(self._hour)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._bytes += len(data)

    def _rotate(self, hour: str) -> None:
        """Close the current file and create a new one only this process writes (O_EXCL: a pid
        reused after a restart never appends to a dead process's file), then prune the oldest."""
        self._close_file()
        self.records_dir.mkdir(parents=True, exist_ok=True)
        if hour != self._hour:
            self._seq = 0
        while True:
            path = self.records_dir / f"records-{hour}-{os.getpid()}-{self._seq:04d}.jsonl"
            self._seq += 1
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                break
            except FileExistsError:
                continue
        self._path, self._hour, self._bytes = path, hour, 0
        self._prune()

    def _prune(self) -> None:
        """Keep the newest `max_files` records files (all processes'), and the sample folders of
        the hours they cover."""
        try:
            files = []
            for p in self.records_dir.glob("records-*.jsonl"):
                with contextlib.suppress(FileNotFoundError):
                    files.append((p.stat().st_mtime, p.name, p))
            files.sort()
            excess = len(files) - self.max_files
            for _, _, path in files[:max(excess, 0)]:
                if path != self._path:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        self._count("files_deleted")
            kept = [m.group(1) for _, name, _ in files[max(excess, 0):] if (m := _RECORDS_NAME.match(name))]
            samples = self.folder / SAMPLES_DIR
            if kept and samples.is_dir():
                oldest = min(kept)
                for folder in samples.iterdir():
                    if folder.is_dir() and folder.name.isdigit() and folder.name < oldest:
                        shutil.rmtree(folder, ignore_errors=True)
        except OSError as exc:
            self._fail("prune_errors", 1, "could not delete old production records under %s: %s", self.records_dir,
                       exc)

    def _save_sample(self, b: Built) -> str | None:
        """Save the image; returns its path relative to the collection folder, or None when it is
        over the size cap or cannot be written (counted)."""
        try:
            if b.raw is not None:
                data, ext = b.raw, _extension(b.raw)
            else:
                buf = io.BytesIO()
                b.image.save(buf, "JPEG", quality=95)
                data, ext = buf.getvalue(), ".jpg"
            if len(data) > self.sample_max_bytes:
                self._count("samples_too_large")
                return None
            hour = b.record.time.astimezone(UTC).strftime(HOUR_FORMAT)
            name = f"{b.record.correlation_id.replace(':', '_')}-{b.record.index}{ext}"
            rel = Path(SAMPLES_DIR) / hour / name
            path = self.folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except Exception as exc:
            self._fail("sample_errors", 1, "cannot save a sampled image under %s (%s)", self.folder / SAMPLES_DIR,
                       exc)
            return None
        self._count("samples_saved")
        return rel.as_posix()

    def _close_file(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _after_fork(self) -> None:
        self._fd = None  # the parent's descriptor: never write to it from here
        self._path, self._hour, self._bytes, self._seq = None, "", 0, 0

    def _release(self) -> None:
        self._close_file()


def _extension(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"


# --- choosing one ------------------------------------------------------------------------------
def make_collector(settings: Any, environ: Mapping[str, str] | None = None) -> Collector:
    """The collector for this process, from settings: none when `collect` is off; Azure ML's data
    collector inside an Azure ML online deployment (backend azure, AZUREML_MODEL_DIR set,
    azureml-ai-monitoring installed, and the deployment's data collector configured: without it
    the SDK drops everything); local JSONL files under `production_dir` otherwise."""
    env = os.environ if environ is None else environ
    if not settings.collect:
        return NullCollector()
    if settings.backend == "azure" and env.get("AZUREML_MODEL_DIR"):
        from visionops.monitoring import azure_collect

        if not azure_collect.available():
            log.warning("backend azure but azureml-ai-monitoring is not installed: production records go to %s "
                        "(add the package to the inference environment to use Azure ML's data collector)",
                        settings.production_dir)
        elif not azure_collect.configured(env):
            log.warning("backend azure but this deployment has no data collector (no %s): production records go "
                        "to %s", " or ".join(azure_collect.MDC_ENV), settings.production_dir)
        else:
            return azure_collect.AzureCollector()
    return LocalCollector(
        settings.production_dir,
        sample_rate=settings.collect_sample_rate,
        sample_max_bytes=settings.collect_sample_max_bytes,
        max_file_bytes=settings.collect_max_file_bytes,
        max_files=settings.collect_max_files,
    )


# --- reading them back -------------------------------------------------------------------------
def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _file_may_hold(path: Path, since: datetime | None, until: datetime | None) -> bool:
    """A file named for hour H was written during H, so it holds records from before H+1h (and,
    allowing for a queue that lagged, from after H-1h). Files named otherwise are always read."""
    m = _RECORDS_NAME.match(path.name)
    if not m:
        return True
    start = datetime.strptime(m.group(1), HOUR_FORMAT).replace(tzinfo=UTC)
    if since is not None and start + timedelta(hours=1) <= since:
        return False
    return not (until is not None and start - timedelta(hours=1) > until)


def read_records(
    folder: Path | str, since: datetime | None = None, until: datetime | None = None
) -> tuple[list[ProductionRecord], int]:
    """Every production record under `folder` (the collection folder, or its `records/`) with
    `since <= time < until` (naive datetimes are UTC), oldest first, and the number of lines
    skipped because they were corrupt or truncated (a process killed mid-write, a disk that
    filled up). Bad lines are counted, never fatal; a missing folder is an error naming it."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no production records at {root}: the folder does not exist (the endpoint writes to "
            "<outputs>/production, or VISIONOPS_COLLECT_DIR when set)"
        )
    records_dir = root / RECORDS_DIR if (root / RECORDS_DIR).is_dir() else root
    lo, hi = _utc(since), _utc(until)
    records: list[ProductionRecord] = []
    skipped = 0
    for path in sorted(records_dir.glob("*.jsonl")):
        if not _file_may_hold(path, lo, hi):
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s (%s); its records are skipped", path, exc)
            skipped += 1
            continue
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = ProductionRecord.model_validate_json(line)
            except (ValidationError, ValueError) as exc:
                skipped += 1
                log.debug("%s:%d: skipped, not a production record (%s)", path, number, str(exc).splitlines()[0])
                continue
            t = rec.time if rec.time.tzinfo else rec.time.replace(tzinfo=UTC)
            if (lo is None or t >= lo) and (hi is None or t < hi):
                records.append(rec)
    records.sort(key=lambda r: (r.time, r.correlation_id, r.index))
    return records, skipped

"""The smoke test run after every deployment, local or Azure: is the endpoint up, does it find
what we know is in a known image, and does it refuse a bad request with a 4xx JSON error?

It talks to the endpoint only through `EndpointClient` (HTTP + key), so the same code checks
`visionops deploy --target local` and an Azure ML online endpoint. The known image is a test
image of the data set the model was trained on, with its ground truth, and it checks itself
against the endpoint's answer:

- detection (`KnownImage`, a `images/test/...` image with its label file): passes when at least
  one predicted box has a ground-truth label and IoU >= 0.5 with a box of that label;
- classification (`KnownLabel`, a `test/<class>/<image>` image, its class from the folder):
  passes when the top-1 label is that class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel

from visionops.data.layout import IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from visionops.data.layout import iter_images
from visionops.data.truth import labelled_image
from visionops.errors import VisionOpsError
from visionops.serving.endpoint import EndpointClient, EndpointError, EndpointInfo, encode_image


@dataclass(frozen=True)
class KnownImage:
    """An image and its ground truth: (label, [x0, y0, x1, y1] in pixels) per object."""

    path: Path
    boxes: list[tuple[str, list[float]]]

    @property
    def labels(self) -> set[str]:
        return {label for label, _ in self.boxes}

    def check(self, pred: dict[str, Any], *, conf: float, min_iou: float) -> tuple[bool, str]:
        """(passed, why) for the endpoint's prediction of this image."""
        match = _best_match(pred, self)
        n = len(pred.get("boxes", []))
        if match is not None and match[0] >= min_iou:
            return True, (f"{n} box(es); {match[1]} matches the ground truth with IoU {match[0]:.2f} at "
                          f"confidence {match[2]:.2f}")
        best = f"best same-label IoU {match[0]:.2f}" if match else "no box with a ground-truth label"
        truth = ", ".join(sorted(self.labels))
        return False, f"{n} box(es) at conf {conf}, expected one of [{truth}] with IoU >= {min_iou}; {best}"


@dataclass(frozen=True)
class KnownLabel:
    """An image and its true class (a classification data set's `test/<class>/<image>`)."""

    path: Path
    label: str

    @property
    def labels(self) -> set[str]:
        return {self.label}

    def check(self, pred: dict[str, Any], *, conf: float, min_iou: float) -> tuple[bool, str]:
        """(passed, why): the top-1 label must be the true class (conf and min_iou do not apply)."""
        labels, probs = pred.get("labels") or [], pred.get("probabilities") or []
        if "probabilities" not in pred:
            return False, (f"expected a classification (labels with probabilities) for class {self.label}, got "
                           f"keys {sorted(pred)}: is a classifier deployed?")
        if labels and labels[0] == self.label:
            return True, f"top-1 {labels[0]} ({probs[0]:.2f}) is the true class"
        top = ", ".join(f"{lb} {p:.2f}" for lb, p in zip(labels, probs, strict=False)) or "no labels"
        return False, f"expected top-1 {self.label}; got {top}"


Known = KnownImage | KnownLabel


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    ms: float | None = None
    skipped: bool = False


class SmokeReport(BaseModel):
    endpoint: str
    scoring_uri: str
    backend: str
    model: dict[str, Any] | None = None
    image: str | None = None
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def summary(self) -> str:
        lines = [f"smoke test of {self.endpoint} ({self.scoring_uri}): {'PASSED' if self.ok else 'FAILED'}"]
        for c in self.checks:
            mark = "skip" if c.skipped else ("ok" if c.ok else "FAIL")
            ms = f" [{c.ms:.0f} ms]" if c.ms is not None else ""
            lines.append(f"  {mark:>4}  {c.name}: {c.detail}{ms}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "ok": self.ok}


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ground_truth(dataset: Path, split: str, image: Path) -> KnownImage:
    """An image of a data set in our layout, with its labels converted to pixel boxes."""
    truth = labelled_image(dataset, split, image)
    return KnownImage(path=Path(image), boxes=list(zip(truth.labels, truth.boxes, strict=True)))


def class_folders(dataset: Path, split: str) -> list[Path]:
    """The class folders of a classification data set's split (`<split>/<class>/`), sorted; empty
    for a detection data set (`images/<split>/`)."""
    if (dataset / "images").is_dir() or not (dataset / split).is_dir():
        return []
    return sorted(p for p in (dataset / split).iterdir() if p.is_dir())


def known_label_from_dataset(dataset: Path | str, split: str = "test") -> KnownLabel:
    """The first image (sorted) of the first class of a classification data set's split: its
    class is known from the folder. Deterministic for a data set version."""
    dataset = Path(dataset)
    for folder in class_folders(dataset, split):
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
        if images:
            return KnownLabel(path=images[0], label=folder.name)
    raise VisionOpsError(f"no {split}/<class>/<image> in {dataset}; pass --dataset with a classification data set")


def known_image_from_dataset(dataset: Path | str, split: str = "test") -> Known:
    """For a detection data set, the split's image whose largest object (not cut by the border)
    is biggest: the one a working model should not miss. For a classification data set, an image
    of `<split>/<class>/` (`known_label_from_dataset`). Deterministic for a data set version."""
    dataset = Path(dataset)
    if class_folders(dataset, split):
        return known_label_from_dataset(dataset, split)
    best: tuple[float, KnownImage] | None = None
    for image in iter_images(dataset, split):
        known = ground_truth(dataset, split, image)
        w, h = Image.open(image).size
        inside = [b for _, b in known.boxes if b[0] > 1 and b[1] > 1 and b[2] < w - 1 and b[3] < h - 1]
        area = max(((b[2] - b[0]) * (b[3] - b[1]) / (w * h) for b in inside), default=0.0)
        if area > 0 and (best is None or area > best[0]):
            best = (area, known)
    if best is None:
        raise VisionOpsError(f"no {split} image with a labelled object in {dataset}; pass --image and --labels")
    return best[1]


def known_image_for_champion(settings) -> Known:
    """A test image of the data set the champion was trained on (local catalog)."""
    from visionops import registry
    from visionops.data.catalog import LocalDatasetCatalog

    champ = registry.require_champion(settings)
    name, version = champ.tags.get("dataset.name"), champ.tags.get("dataset.version")
    if not name:
        raise VisionOpsError(f"model {champ.name} v{champ.version} has no dataset.name tag; pass --image and --labels")
    ref = LocalDatasetCatalog(settings.catalog_dir).get(name, version)
    return known_image_from_dataset(Path(ref.path))


def _best_match(pred: dict[str, Any], known: KnownImage) -> tuple[float, str, float] | None:
    """(IoU, label, confidence) of the predicted box that best matches a same-label truth box."""
    best = None
    for box, label, conf in zip(pred.get("boxes", []), pred.get("labels", []), pred.get("confidences", []),
                                strict=False):
        for gt_label, gt_box in known.boxes:
            if gt_label == label:
                v = iou(box, gt_box)
                if best is None or v > best[0]:
                    best = (v, label, float(conf))
    return best


def run_smoke_test(
    endpoint: EndpointInfo,
    known: Known,
    *,
    conf: float = 0.25,
    min_iou: float = 0.5,
    timeout: float = 60.0,
) -> SmokeReport:
    """Health, one known image with the expected detections or label, one invalid request answered
    with a 4xx."""
    checks: list[Check] = []
    model: dict[str, Any] | None = None
    with EndpointClient(endpoint, timeout=timeout) as client:
        # 1. health
        if endpoint.health_uri:
            t = time.perf_counter()
            healthy, detail = client.health()
            checks.append(Check(name="health", ok=healthy, detail=f"GET {endpoint.health_uri} -> {detail}",
                                ms=(time.perf_counter() - t) * 1e3))
        else:
            checks.append(Check(name="health", ok=True, skipped=True,
                                detail="no health URI for this endpoint; the scoring call below checks liveness"))
        # 2. a known image
        t = time.perf_counter()
        try:
            answer = client.score({"image": encode_image(known.path), "conf": conf})
            ms = (time.perf_counter() - t) * 1e3
            model = answer.get("model")
            pred = (answer.get("predictions") or [{}])[0]
            ok, detail = known.check(pred, conf=conf, min_iou=min_iou)
            checks.append(Check(name="known image", ok=ok, detail=detail, ms=ms))
            if not (model and model.get("name") and model.get("version")):
                checks.append(Check(name="model identity", ok=False,
                                    detail=f"response has no model name/version: {model}"))
        except EndpointError as exc:
            checks.append(Check(name="known image", ok=False, detail=str(exc), ms=(time.perf_counter() - t) * 1e3))
        # 3. an invalid request must be refused with a 4xx JSON error
        t = time.perf_counter()
        try:
            r = client.post({"image": "this is not base64!"})
            body: Any
            try:
                body = r.json()
            except ValueError:
                body = r.text[:100]
            err = body.get("error") if isinstance(body, dict) else None
            ok = 400 <= r.status_code < 500 and isinstance(err, dict) and bool(err.get("message"))
            code = err.get("code") if isinstance(err, dict) else body
            checks.append(Check(name="invalid request", ok=ok, ms=(time.perf_counter() - t) * 1e3,
                                detail=f"{r.status_code} {code}" + ("" if ok else " (expected a 4xx JSON error)")))
        except Exception as exc:  # the endpoint died on a bad request: that is the failure we look for
            checks.append(Check(name="invalid request", ok=False, detail=f"{type(exc).__name__}: {exc}"))
        # 4. still healthy after the bad request
        if endpoint.health_uri:
            healthy, detail = client.health()
            checks.append(Check(name="healthy afterwards", ok=healthy, detail=detail))
    return SmokeReport(endpoint=endpoint.name, scoring_uri=endpoint.scoring_uri, backend=endpoint.backend,
                       model=model, image=str(known.path), checks=checks)

"""Serving fixtures: a small detector that really detects, a small classifier that really
classifies, and a real azmlinfsrv serving each.

The smoke profile's two-epoch model finds next to nothing, and the serving tests need real
detections (expected boxes on a known image, boxes drawn in the browser, ONNX/PyTorch parity
on non-empty predictions). `detector` trains one in its own project root in well under a
minute of CPU on an easy variant of the synthetic set (two classes, one or two large shapes,
little noise), exports it to ONNX and registers it as the champion there, through the same
functions the lifecycle uses.

Developers iterating on serving code can skip the training: set VISIONOPS_TEST_DETECTOR_ROOT to
a project root whose champion was made by this fixture (its folder is printed as
`fast-detector0` under pytest's temporary directory, or keep one with --basetemp).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# An easy task and a short schedule that give confident boxes (see the issue #4 report).
FAST_DETECTOR = {
    # data: two classes, one or two large shapes per image, little noise, nothing cut by the border
    "n_train": 160, "n_val": 8, "n_test": 16, "image_size": 96, "min_objects": 1, "max_objects": 2,
    "min_size": 0.3, "max_size": 0.55, "truncate_prob": 0.0, "noise": 4.0, "classes": ["circle", "rectangle"],
    # training: yolo11n from scratch, AdamW, no warm-up, no mosaic, light augmentation, no per-epoch val
    "epochs": 16, "imgsz": 96, "batch": 8, "lr0": 0.004,
    "extra": {"mosaic": 0.0, "val": False, "scale": 0.2, "translate": 0.05, "hsv_s": 0.3, "hsv_v": 0.2},
}


@dataclass
class Detector:
    settings: object
    ref: object  # registry.ModelVersionRef
    model_dir: Path
    dataset: Path
    known: object  # smoke_test.KnownImage
    train_s: float

    @property
    def test_images(self) -> list[Path]:
        return sorted((self.dataset / "images" / "test").glob("*.jpg"))


@pytest.fixture(scope="session")
def detector(tmp_path_factory) -> Detector:
    from visionops import registry
    from visionops.data.catalog import LocalDatasetCatalog
    from visionops.data.dataset import generate_synthetic
    from visionops.evaluation.decision import DecisionRule, decide
    from visionops.profiles import get_profile
    from visionops.serving.export import export_onnx
    from visionops.serving.smoke_test import known_image_from_dataset
    from visionops.settings import get_settings
    from visionops.training import train

    reuse = os.environ.get("VISIONOPS_TEST_DETECTOR_ROOT")
    if reuse:
        settings = get_settings(root=Path(reuse))
        ref = registry.require_champion(settings)
        dataset = LocalDatasetCatalog(settings.catalog_dir).get(ref.tags["dataset.name"], ref.tags["dataset.version"])
        return Detector(settings=settings, ref=ref, model_dir=registry.download(settings, ref),
                        dataset=Path(dataset.path), known=known_image_from_dataset(dataset.path), train_s=0.0)
    root = tmp_path_factory.mktemp("fast-detector")
    # One thread, always: the same weights on every machine whatever its load (a float reduction
    # split over another number of threads rounds differently), and torch with one thread per core
    # collapses when another process already holds a core (100+ s per epoch instead of ~3 s on 2 cores).
    settings = get_settings(root=root, threads=1)
    profile = get_profile("smoke", **FAST_DETECTOR)
    folder = generate_synthetic(profile.data, settings.data_dir / "work" / "shapes-easy", settings.dataset_name)
    dataset = LocalDatasetCatalog(settings.catalog_dir).register(folder, settings.dataset_name)
    started = time.perf_counter()
    trained = train(dataset, profile.train, settings, profile="fast-detector")
    train_s = time.perf_counter() - started
    imgsz = profile.train.imgsz
    onnx = export_onnx(trained.weights, settings, imgsz=imgsz, dst=root / "export" / "best.onnx")
    decision = decide({"map50_95": trained.metrics.get("map50_95", 0.0)}, None, DecisionRule(floor=0.0))
    ref = registry.register(
        settings, decision=decision, weights=trained.weights, train_run_id=trained.run_id,
        tags={"dataset.name": dataset.name, "dataset.version": dataset.version, "imgsz": imgsz},
        info={"classes": dataset.classes, "imgsz": imgsz, "dataset": f"{dataset.name}:{dataset.version}",
              "metrics": trained.metrics, "train_run_id": trained.run_id},
        extra_artifacts={"onnx": onnx},
    )
    model_dir = registry.download(settings, ref)
    (root / "fast_detector.json").write_text(
        json.dumps({"train_s": train_s, "threads": trained.threads, "metrics": trained.metrics}))
    return Detector(settings=settings, ref=ref, model_dir=model_dir, dataset=Path(dataset.path),
                    known=known_image_from_dataset(dataset.path), train_s=train_s)


# --- a small classifier that really classifies -----------------------------------------------------
# Three classes anyone can tell apart at 64 px (a red disc, a green bar, a blue square on grey
# noise, varied in size and place), a short schedule: yolo11n-cls from scratch learns them in a
# few epochs. Augmentations that could erase the object or its colour (random erasing,
# RandAugment, small crops) are off. Test images are non-square (both orientations) so serving's
# resize + center crop runs.
CLASSIFY_CLASSES = ("bar", "disc", "square")  # sorted: Ultralytics' class order
FAST_CLASSIFIER = {"per_class": {"train": 30, "val": 6, "test": 4}, "image_size": 64, "imgsz": 64, "epochs": 10,
                   "batch": 16, "lr0": 0.002,
                   "extra": {"erasing": 0.0, "auto_augment": None, "scale": 0.2, "hsv_s": 0.2, "hsv_v": 0.2}}
_TEST_SIZES = ((96, 64), (64, 88), (80, 64), (72, 100))


def _classify_image(kind: str, size: tuple[int, int], rng) -> object:
    """One image of a class: its object near the centre (inside any center crop), on grey noise."""
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = size
    base = rng.integers(90, 160)
    pixels = np.clip(rng.normal(base, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    side = min(w, h)
    r = side * rng.uniform(0.22, 0.34)
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * side, h / 2 + rng.uniform(-0.1, 0.1) * side
    if kind == "disc":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(220, 40, 40))
    elif kind == "bar":
        draw.rectangle([cx - r, cy - r * 0.35, cx + r, cy + r * 0.35], fill=(40, 190, 60))
    else:
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=(40, 80, 230))
    return img


def make_classify_dataset(dst: Path, seed: int = 0) -> Path:
    """<dst>/{train,val,test}/<class>/*.jpg, deterministic per seed; test images are non-square."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = FAST_CLASSIFIER["image_size"]
    for split, n in FAST_CLASSIFIER["per_class"].items():
        for kind in CLASSIFY_CLASSES:
            folder = dst / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                wh = _TEST_SIZES[i % len(_TEST_SIZES)] if split == "test" else (size, size)
                _classify_image(kind, wh, rng).save(folder / f"{kind}_{i:03d}.jpg", quality=95)
    return dst


@dataclass
class Classifier:
    settings: object
    ref: object  # registry.ModelVersionRef
    model_dir: Path
    dataset: Path
    known: object  # smoke_test.KnownLabel
    train_s: float

    @property
    def test_images(self) -> list[tuple[Path, str]]:
        """(image, true class) of every test image."""
        return [(p, p.parent.name) for p in sorted((self.dataset / "test").glob("*/*.jpg"))]


@pytest.fixture(scope="session")
def classifier(tmp_path_factory) -> Classifier:
    """yolo11n-cls trained from scratch with plain Ultralytics on the easy set above, exported to
    ONNX and registered as `<data set>-classifier` champion in its own project root (its own
    MLflow store), through visionops.registry as the lifecycle registers. Set
    VISIONOPS_TEST_CLASSIFIER_ROOT to such a root (`fast-classifier0` under pytest's temporary
    directory) to skip the training."""
    from visionops import offline, registry, tracking
    from visionops.evaluation.decision import DecisionRule, decide
    from visionops.serving.export import export_onnx
    from visionops.serving.smoke_test import known_label_from_dataset
    from visionops.settings import get_settings

    reuse = os.environ.get("VISIONOPS_TEST_CLASSIFIER_ROOT")
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("fast-classifier")
    settings = get_settings(root=root, threads=1)  # one thread: same weights everywhere (see `detector`)
    dataset = root / "data" / "signs"
    name = "signs-classifier"
    if reuse:
        ref = registry.require_champion(settings, name)
        return Classifier(settings=settings, ref=ref, model_dir=registry.download(settings, ref), dataset=dataset,
                          known=known_label_from_dataset(dataset), train_s=0.0)
    make_classify_dataset(dataset)
    offline.configure(settings.yolo_config_dir, settings.threads)
    from ultralytics import YOLO

    imgsz = FAST_CLASSIFIER["imgsz"]
    started = time.perf_counter()
    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(dataset), epochs=FAST_CLASSIFIER["epochs"], imgsz=imgsz, batch=FAST_CLASSIFIER["batch"],
                lr0=FAST_CLASSIFIER["lr0"], optimizer="AdamW", warmup_epochs=0, device="cpu", workers=0, seed=0,
                deterministic=True, plots=False, amp=False, project=str(root / "runs"), name="train",
                exist_ok=True, verbose=False, **FAST_CLASSIFIER["extra"])
    train_s = time.perf_counter() - started
    weights = Path(model.trainer.best)
    top1 = float(model.trainer.metrics.get("metrics/accuracy_top1", 0.0))
    onnx = export_onnx(weights, settings, imgsz=imgsz, dst=root / "export" / "best.onnx")
    import mlflow

    tracking.configure_mlflow(settings)
    with mlflow.start_run(run_name="fast-classifier") as run:
        mlflow.log_metrics({"top1": top1, "train_s": train_s})
    decision = decide({"top1": top1}, None, DecisionRule(metric="top1", floor=0.0))
    ref = registry.register(
        settings, decision=decision, weights=weights, train_run_id=run.info.run_id, name=name,
        tags={"dataset.name": "signs", "dataset.version": "1", "imgsz": imgsz, "task": "classify"},
        info={"classes": list(CLASSIFY_CLASSES), "imgsz": imgsz, "task": "classify", "dataset": "signs:1",
              "metrics": {"top1": top1}, "train_run_id": run.info.run_id},
        extra_artifacts={"onnx": onnx},
    )
    (root / "fast_classifier.json").write_text(json.dumps({"train_s": train_s, "top1": top1}))
    return Classifier(settings=settings, ref=ref, model_dir=registry.download(settings, ref), dataset=dataset,
                      known=known_label_from_dataset(dataset), train_s=train_s)


@pytest.fixture(scope="session")
def classify_endpoint(classifier):
    """The classifier behind a real azmlinfsrv on loopback (ONNX Runtime, key auth), for the session."""
    from visionops.serving.local_endpoint import LocalEndpoint

    settings = classifier.settings.with_overrides(**ENDPOINT_LIMITS)
    with LocalEndpoint(classifier.model_dir, settings, name="tests-cls", runtime="onnx",
                       model_name=classifier.ref.name, model_version=classifier.ref.version) as ep:
        yield ep


# Small limits so that over-limit requests stay small and fast.
ENDPOINT_LIMITS = {"max_payload_bytes": 300_000, "max_images_per_request": 4}


@pytest.fixture(scope="session")
def endpoint(detector):
    """The detector behind a real azmlinfsrv on loopback (ONNX Runtime, key auth), for the session."""
    from visionops.serving.local_endpoint import LocalEndpoint

    settings = detector.settings.with_overrides(**ENDPOINT_LIMITS)
    with LocalEndpoint(detector.model_dir, settings, name="tests", runtime="onnx", model_name=detector.ref.name,
                       model_version=detector.ref.version) as ep:
        yield ep


@pytest.fixture
def client(endpoint):
    from visionops.serving.endpoint import EndpointClient

    with EndpointClient(endpoint.info, timeout=30) as c:
        yield c

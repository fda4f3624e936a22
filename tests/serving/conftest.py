"""Serving fixtures: a small detector that really detects, and a real azmlinfsrv serving it.

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

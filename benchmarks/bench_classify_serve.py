"""Classification serving benchmark: ONNX Runtime vs PyTorch throughput on CPU, side by side.

Both runtimes run the serving `Predictor` (visionops.serving.predictor) on the same decoded,
non-square images, one image per call as the endpoint scores them: the shared pre-processing
(Ultralytics' classify_transforms without torch), the model, and the top-k reading. The two
alternate in rounds (A B A B ...) and are pooled, so that a moment when another process takes a
core of a shared machine does not flatter one side. Batched ONNX Runtime (what `visionops
predict` runs) is measured too, for reference.

Target (issue 12): ONNX Runtime >= 1.5x PyTorch images/s on CPU.

    .venv/bin/python benchmarks/bench_classify_serve.py                 # imgsz 224, the Ultralytics default
    .venv/bin/python benchmarks/bench_classify_serve.py --imgsz 64 --images 100 --rounds 2   # quicker

The model: yolo11n-cls from scratch, trained one epoch on the serving tests' easy three-class set
(speed does not depend on how well it is trained), exported to ONNX, kept in
outputs/benchmarks/classify-serve-model-<imgsz>/ and reused. Writes
outputs/benchmarks/classify_serve.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine  # noqa: E402

TARGET = 1.5


def _fixture_module():
    """tests/serving/conftest.py, for its data set generator (one definition of the easy set)."""
    spec = importlib.util.spec_from_file_location("serving_conftest", REPO / "tests" / "serving" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def build_model(folder: Path, imgsz: int, settings) -> Path:
    """best.pt + best.onnx + model_info.json in `folder` (trained and exported once, then reused)."""
    if (folder / "best.onnx").is_file() and (folder / "best.pt").is_file():
        return folder
    from visionops import offline
    from visionops.serving.export import export_onnx

    fixtures = _fixture_module()
    data = fixtures.make_classify_dataset(folder / "data")
    offline.configure(settings.yolo_config_dir, settings.threads)
    from ultralytics import YOLO

    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(data), epochs=1, imgsz=imgsz, batch=16, device="cpu", workers=0, plots=False, amp=False,
                project=str(folder / "runs"), name="train", exist_ok=True, verbose=False)
    weights = Path(model.trainer.best)
    (folder / "best.pt").write_bytes(weights.read_bytes())
    export_onnx(folder / "best.pt", settings, imgsz=imgsz, dst=folder / "best.onnx")
    (folder / "model_info.json").write_text(json.dumps({
        "name": "bench-classifier", "version": 1, "task": "classify", "imgsz": imgsz,
        "classes": list(fixtures.CLASSIFY_CLASSES)}))
    return folder


def test_images(n: int, seed: int = 0) -> list:
    """n decoded non-square RGB images of a few sizes (camera-like 4:3 and 3:4, and wider)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = [(640, 480), (480, 640), (800, 450), (320, 240)]
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in
            (sizes[i % len(sizes)] for i in range(n))]


def measure(predictor, images: list) -> list[float]:
    """Per-image latencies (ms) of one pass, one image per call."""
    out = []
    for img in images:
        t = time.perf_counter()
        predictor.predict([img])
        out.append((time.perf_counter() - t) * 1e3)
    return out


def summary(latencies: list[float]) -> dict[str, float]:
    total_s = sum(latencies) / 1e3
    return {"images": len(latencies), "images_per_s": round(len(latencies) / total_s, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p90_ms": round(statistics.quantiles(latencies, n=10)[-1], 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgsz", type=int, default=224)
    ap.add_argument("--images", type=int, default=200, help="images per round and runtime")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="threads per runtime (default: every core)")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "classify_serve.json")
    args = ap.parse_args(argv)

    from visionops.serving.batch import BatchRunner
    from visionops.serving.predictor import load_predictor
    from visionops.settings import get_settings

    threads = args.threads or os.cpu_count() or 1
    settings = get_settings(root=REPO, threads=threads)
    folder = build_model(REPO / "outputs" / "benchmarks" / f"classify-serve-model-{args.imgsz}", args.imgsz, settings)
    onnx = load_predictor(folder, "onnx", threads=threads)
    torch_ = load_predictor(folder, "pytorch", threads=threads, yolo_config_dir=settings.yolo_config_dir)
    assert onnx.task == torch_.task == "classify", (onnx.task, torch_.task)
    images = test_images(args.images)
    for p in (onnx, torch_):  # warm-up: lazy initialisation, allocations
        measure(p, images[:10])
    lat: dict[str, list[float]] = {"onnx": [], "pytorch": []}
    for _ in range(args.rounds):
        lat["onnx"] += measure(onnx, images)
        lat["pytorch"] += measure(torch_, images)
    runner = BatchRunner(onnx)
    arrays = [__import__("numpy").asarray(im) for im in images]
    t = time.perf_counter()
    for i in range(0, len(arrays), 16):
        runner.predict(arrays[i:i + 16])
    batched_s = time.perf_counter() - t

    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "model": "yolo11n-cls (3 classes)", "imgsz": args.imgsz, "threads": threads,
        "input": "decoded non-square RGB images (640x480, 480x640, 800x450, 320x240), one per call",
        "onnx": summary(lat["onnx"]),
        "pytorch": summary(lat["pytorch"]),
        "onnx_batched_16": {"images_per_s": round(len(arrays) / batched_s, 1), "batched": runner.batched},
    }
    ratio = result["onnx"]["images_per_s"] / result["pytorch"]["images_per_s"]
    result["onnx_vs_pytorch"] = round(ratio, 2)
    result["target"] = f"ONNX Runtime >= {TARGET}x PyTorch images/s"
    result["target_met"] = ratio >= TARGET
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("imgsz", "threads", "onnx", "pytorch", "onnx_batched_16",
                                             "onnx_vs_pytorch", "target_met")}, indent=2))
    print(f"wrote {args.out}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

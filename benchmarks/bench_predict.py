"""Batch scoring benchmark: `visionops predict` vs one-image requests to the local endpoint, and
memory over a large folder.

Measured:
- throughput: the same images (the model's data set, copied to N files in a temp folder) scored
  by `predict_folder` (what `visionops predict` runs: reader threads + batched ONNX Runtime + JSONL)
  and by one-image requests to the local endpoint (azmlinfsrv + score.py, key auth, one client, as
  a script calling it image by image would), same model, same thread count. The two alternate in
  rounds (A B A B) and are pooled, so background load on a shared machine hits both alike. Each
  predict round runs in a fresh process into a fresh output folder.
- memory: peak RSS of a `predict_folder` process over a small and a large folder of small
  images (default 500 and 5,000): flat means it does not grow with the folder.

Targets (issue #14): predict >= 3x the endpoint's images/s; peak RSS over 5,000 images within
10% (or 20 MB) of the one over 500.

    make bench-predict
    .venv/bin/python benchmarks/bench_predict.py --images 300 --large 2000     # quicker

The model: the one bench_serve.py uses (the project's champion with an ONNX export, else its small
detector, trained once into outputs/benchmarks/serve-model/). Writes outputs/benchmarks/predict.json
and the "Batch scoring" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, publish  # noqa: E402
from bench_serve import load_average, pick_or_train  # noqa: E402

# Runs in a fresh process: its peak RSS is the scorer's alone. argv: model dir, source, out, batch, cores.
# The thread split is the one `visionops predict` uses (scoring_threads).
WORKER = r"""
import json, resource, sys, time
from visionops.serving.batch import BatchRunner, image_source, predict_folder, scoring_threads
from visionops.serving.predictor import load_predictor
model, source, out, batch, cores = sys.argv[1:6]
threads, readers = scoring_threads(int(cores))
started = time.perf_counter()
runner = BatchRunner(load_predictor(model, "onnx", threads=threads))
loaded = time.perf_counter()
s = predict_folder(runner, image_source(source), out, batch_size=int(batch), readers=readers)
print(json.dumps({"images": s.scored + s.failed, "failed": s.failed, "scoring_s": s.seconds,
                  "images_per_s": s.images_per_s, "load_s": loaded - started, "batched": runner.batched,
                  "wall_s": time.perf_counter() - started, "threads": threads, "readers": readers,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fill(folder: Path, sources: list[Path], n: int) -> list[Path]:
    """n image files (the sources, copied round-robin) under folder, 500 per sub-folder."""
    out = []
    for i in range(n):
        dst = folder / f"part{i // 500:03d}" / f"img{i:05d}{sources[i % len(sources)].suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[i % len(sources)], dst)
        out.append(dst)
    return out


def run_worker(model: Path, source: Path, out: Path, batch: int, threads: int) -> dict:
    res = subprocess.run([sys.executable, "-c", WORKER, str(model), str(source), str(out), str(batch), str(threads)],
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"predict worker failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=500, help="images per throughput round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (predict, endpoint, ...)")
    ap.add_argument("--small", type=int, default=500, help="folder size of the small memory run")
    ap.add_argument("--large", type=int, default=5000, help="folder size of the large memory run")
    ap.add_argument("--batch", type=int, default=None, help="images per ONNX Runtime call (default: the setting)")
    ap.add_argument("--threads", type=int, default=None, help="cores per side (default: VISIONOPS_THREADS or all)")
    ap.add_argument("--out", type=Path, default=None, help="JSON (default: outputs/benchmarks/predict.json)")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--no-doc", action="store_true", help="do not touch docs/benchmarks.md")
    args = ap.parse_args()

    from visionops.serving.endpoint import EndpointClient
    from visionops.serving.local_endpoint import LocalEndpoint
    from visionops.settings import get_settings

    settings = get_settings(threads=args.threads)
    threads = settings.threads or os.cpu_count() or 1
    batch = args.batch or settings.batch_size
    s, ref, folder, test_images = pick_or_train(settings)
    s = s.with_overrides(threads=threads)
    dataset_images = sorted(test_images[0].parents[1].rglob("*.jpg")) or test_images
    load_start = load_average()
    print(f"model {ref.name} v{ref.version}; {len(dataset_images)} distinct images; {threads} thread(s), "
          f"batch {batch}", flush=True)

    with tempfile.TemporaryDirectory(prefix="visionops-bench-predict-") as tmp:
        tmp_dir = Path(tmp)
        images = fill(tmp_dir / "throughput", dataset_images, args.images)
        predict_rounds, endpoint_rounds = [], []
        with LocalEndpoint(folder, s, name="bench-predict", runtime="onnx", model_name=ref.name,
                           model_version=ref.version) as ep, EndpointClient(ep.info, timeout=60) as client:
            for p in images[:20]:  # warm-up: connection, lazy init
                client.detect([p])
            for r in range(args.rounds):
                row = run_worker(folder, tmp_dir / "throughput", tmp_dir / f"out-{r}", batch, threads)
                predict_rounds.append(row)
                print(f"  round {r + 1}: predict  {row['images_per_s']:.1f} images/s "
                      f"(batched={row['batched']}, {row['failed']} failed)", flush=True)
                started, errors = time.perf_counter(), 0
                for p in images:
                    try:
                        client.detect([p])
                    except Exception:  # noqa: BLE001 - counted, reported
                        errors += 1
                dt = time.perf_counter() - started
                endpoint_rounds.append({"images": len(images), "seconds": dt, "errors": errors})
                print(f"  round {r + 1}: endpoint {len(images) / dt:.1f} images/s ({errors} errors)", flush=True)
        predict_ips = sum(x["images"] for x in predict_rounds) / sum(x["scoring_s"] for x in predict_rounds)
        endpoint_ips = sum(x["images"] for x in endpoint_rounds) / sum(x["seconds"] for x in endpoint_rounds)

        memory = []
        for n in (args.small, args.large):
            src = tmp_dir / f"memory-{n}"
            fill(src, dataset_images, n)
            row = run_worker(folder, src, tmp_dir / f"memory-out-{n}", batch, threads)
            memory.append({"images": n, **row})
            print(f"  memory: {n} images -> peak RSS {row['peak_rss_mb']:.1f} MB "
                  f"({row['images_per_s']:.1f} images/s)", flush=True)

    small, large = memory
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    ratio = predict_ips / endpoint_ips
    targets = [
        {"target": "visionops predict >= 3 x the endpoint's images/s (one-image requests)",
         "value": f"{ratio:.2f} x ({predict_ips:.1f} vs {endpoint_ips:.1f} images/s)", "ok": ratio >= 3.0},
        {"target": f"peak RSS flat from {small['images']} to {large['images']} images (<= +10% or +20 MB)",
         "value": f"{small['peak_rss_mb']:.1f} -> {large['peak_rss_mb']:.1f} MB ({growth:+.1f} MB)",
         "ok": growth <= max(20.0, 0.10 * small["peak_rss_mb"])},
    ]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "command": "make bench-predict", "model": {"name": ref.name, "version": ref.version},
        "threads": threads, "batch": batch, "rounds": args.rounds, "images": args.images,
        "load_average": {"start": load_start, "end": load_average()},
        "predict": predict_rounds, "endpoint": endpoint_rounds, "memory": memory,
        "predict_images_per_s": round(predict_ips, 1), "endpoint_images_per_s": round(endpoint_ips, 1),
        "targets": targets, "json": "predict.json",
    }
    out = args.out or settings.outputs_dir / "benchmarks" / "predict.json"
    publish(report, out, None if args.no_doc else args.doc, "predict", markdown(report))
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    batched = all(x["batched"] for x in r["predict"])
    calls = f"batches of {r['batch']} per ONNX Runtime call" if batched else "one image per ONNX Runtime call"
    lines = [
        "## Batch scoring",
        "",
        f"`{r['command']}` on {r['date'][:10]}: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average "
        f"{r['load_average']['start']} at the start, {r['load_average']['end']} at the end (other work on the "
        "machine inflates these figures).",
        f"Model {r['model']['name']} v{r['model']['version']}, ONNX Runtime on {r['threads']} core(s) each side "
        f"(predict: {r['predict'][0]['threads']} inference thread(s) + {r['predict'][0]['readers']} reader; the "
        f"endpoint: {r['threads']} inference thread(s)); "
        f"{r['images']} JPEG files per round (the data set's 96x96 images, copied). `visionops predict`'s scorer "
        f"(`predict_folder`: reader threads, {calls}, "
        "JSONL written as it goes; a fresh process per round, model load not counted) against one-image requests "
        "to the local endpoint (azmlinfsrv + score.py, key auth, one client, one server worker), alternating in "
        f"{r['rounds']} rounds and pooled.",
        "",
        "| path | images/s | rounds |",
        "|---|---:|---|",
        f"| visionops predict | {r['predict_images_per_s']:.1f} | "
        + ", ".join(f"{x['images_per_s']:.1f}" for x in r["predict"]) + " |",
        f"| endpoint, one image per request | {r['endpoint_images_per_s']:.1f} | "
        + ", ".join(f"{x['images'] / x['seconds']:.1f}" for x in r["endpoint"]) + " |",
        "",
        "| folder | peak RSS MB | images/s |",
        "|---:|---:|---:|",
    ]
    for x in r["memory"]:
        lines.append(f"| {x['images']} images | {x['peak_rss_mb']:.1f} | {x['images_per_s']:.1f} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {'yes' if t['ok'] else '**no**'} |")
    lines += ["", f"Raw figures: `outputs/benchmarks/{r['json']}`."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Training benchmark: `visionops train` vs plain Ultralytics, and our thread fix vs Ultralytics' default.

Same data set, config, seed and thread count; each run is a fresh process (as a user runs it),
and the variants alternate (A B A B ...) so drift on a shared, noisy machine hits both alike.
Reports the wall-time ratio ours/plain (target <= 1.03), both test mAP50-95 (target: ours >=
0.98 x plain), and separately what using every core gains over Ultralytics' cpu_count-1 default.

    make bench-train                      # quick profile, 2 rounds
    .venv/bin/python benchmarks/bench_train.py --profile smoke --rounds 1 --epochs 3

Writes outputs/benchmarks/train.json and the "Training" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEVICE = "cpu"  # resolved in main(): the GPU when there is one, as `visionops train` does
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, write_section  # noqa: E402

PLAIN = r"""
import json, os, sys, time
cfg = json.loads(sys.argv[1])
import ultralytics.utils.torch_utils as tu
if cfg["threads"]:
    tu.NUM_THREADS = cfg["threads"]          # the same thread count as ours
from ultralytics import YOLO
t = time.perf_counter()
m = YOLO(cfg["model"])
m.train(data=cfg["data"], project=cfg["project"], name="plain", exist_ok=True, device=cfg["device"],
        workers=0 if cfg["device"] == "cpu" else 8,
        seed=cfg["seed"], deterministic=True, plots=True, verbose=True, **cfg["args"])
print("TRAIN_SECONDS", time.perf_counter() - t)
"""

SCORE = r"""
import json, sys
from ultralytics import YOLO
cfg = json.loads(sys.argv[1])
m = YOLO(cfg["weights"]).val(data=cfg["data"], split="test", imgsz=cfg["imgsz"], batch=16, device=cfg["device"],
                             workers=0, plots=False, verbose=False)
print("SCORE", json.dumps({"map50_95": float(m.box.map), "map50": float(m.box.map50)}))
"""


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed: {' '.join(cmd[:4])}...\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def _score(python: str, env: dict[str, str], weights: Path, data: Path, imgsz: int) -> dict[str, float]:
    cfg = {"weights": str(weights), "data": str(data), "imgsz": imgsz, "device": DEVICE}
    _, out = _run([python, "-c", SCORE, json.dumps(cfg)], env)
    line = next(ln for ln in out.splitlines() if ln.startswith("SCORE "))
    return json.loads(line.removeprefix("SCORE "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--rounds", type=int, default=2, help="A/B pairs (ours, plain) to alternate")
    ap.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    ap.add_argument("--skip-default-threads", action="store_true", help="skip the Ultralytics-threads run")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "train.json")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--section", default=None, help="docs section name (default: train, or train-gpu on a GPU)")
    args = ap.parse_args()

    from visionops.data.dataset import generate_synthetic
    from visionops.profiles import get_profile
    from visionops.settings import get_settings
    from visionops.workspace import get_workspace

    global DEVICE
    from visionops.training import resolve_device

    DEVICE = resolve_device(get_settings().device)
    python = sys.executable
    visionops_cli = [python, "-m", "visionops.cli"]  # the `visionops` command, also where it is not installed
    root = Path(tempfile.mkdtemp(prefix="visionops-bench-train-"))
    settings = get_settings(root=root)
    prof = get_profile(args.profile, epochs=args.epochs)
    threads = os.cpu_count() or 1
    data_dir = generate_synthetic(prof.data, root / "data" / "work" / "bench", "bench")
    ref = get_workspace(settings).register_dataset(data_dir, "bench")
    data_yaml = str(Path(ref.path) / "data.yaml")
    env = dict(os.environ, VISIONOPS_ROOT=str(root), YOLO_CONFIG_DIR=str(settings.yolo_config_dir))
    # The same offline configuration for every variant (fonts present, no hub, no Ultralytics MLflow callback):
    from visionops import offline

    offline.configure(settings.yolo_config_dir)
    # The workspace's MLflow store exists, as for every training after a workspace's first: its one-time
    # creation is not a per-process cost (bench_overhead.py measures it, and the template that cuts it).
    from visionops.tracking import configure_mlflow

    configure_mlflow(settings)

    plain_cfg = {
        "device": DEVICE,
        "model": prof.train.model, "data": data_yaml, "project": str(root / "plain"), "seed": settings.seed,
        "threads": threads, "args": prof.train.ultralytics_args(),
    }
    def run_ours(i: int) -> dict:
        meta = root / f"ours-{i}.json"
        cmd = [*visionops_cli, "train", "--profile", args.profile, "--dataset", f"bench:{ref.version}",
               "--no-reuse", "--metadata", str(meta)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        wall, _ = _run(cmd, env)  # the whole command: the runner, validation, MLflow and training
        result = json.loads(meta.read_text())
        score = _score(python, env, Path(result["weights"]), Path(data_yaml), prof.train.imgsz)
        return {"variant": "visionops", "round": i, "wall_s": wall, "train_s": result["duration_s"],
                "threads": result["threads"], **score}

    def run_plain(i: int, cfg: dict, variant: str = "plain", n_threads: int = threads) -> dict:
        wall, out = _run([python, "-c", PLAIN, json.dumps(cfg)], env)
        train_s = float(next(ln.split()[1] for ln in out.splitlines() if ln.startswith("TRAIN_SECONDS")))
        score = _score(python, env, root / "plain" / "plain" / "weights" / "best.pt", Path(data_yaml),
                       prof.train.imgsz)
        shutil.rmtree(root / "plain", ignore_errors=True)
        return {"variant": variant, "round": i, "wall_s": wall, "train_s": train_s, "threads": n_threads, **score}

    # Untimed warm-up: the first process pays for cold file caches (images, wheels), whoever it is.
    _run([python, "-c", PLAIN, json.dumps({**plain_cfg, "args": {**plain_cfg["args"], "epochs": 1}})], env)
    shutil.rmtree(root / "plain", ignore_errors=True)
    runs: list[dict] = []
    for i in range(args.rounds):  # A B, then B A: order effects cancel out
        pair = [lambda i=i: run_ours(i), lambda i=i: run_plain(i, plain_cfg)]
        for fn in pair if i % 2 == 0 else reversed(pair):
            runs.append(fn())
            print(json.dumps(runs[-1]), flush=True)

    if not args.skip_default_threads and DEVICE == "cpu":  # threads only matter on the CPU
        default_threads = max(1, min(8, threads - 1))
        runs.append(run_plain(0, {**plain_cfg, "threads": None}, "plain-default-threads", default_threads))
        print(json.dumps(runs[-1]), flush=True)

    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["variant"] == variant)

    summary = {
        "wall_ratio_ours_over_plain": med("visionops", "wall_s") / med("plain", "wall_s"),
        "train_ratio_ours_over_plain": med("visionops", "train_s") / med("plain", "train_s"),
        "map50_95_ours": med("visionops", "map50_95"),
        "map50_95_plain": med("plain", "map50_95"),
        "map_ratio_ours_over_plain": med("visionops", "map50_95") / max(med("plain", "map50_95"), 1e-9),
    }
    if any(r["variant"] == "plain-default-threads" for r in runs):
        summary["thread_fix_speedup"] = med("plain-default-threads", "train_s") / med("plain", "train_s")
    summary["targets_met"] = {
        "wall_ratio<=1.03": summary["wall_ratio_ours_over_plain"] <= 1.03,
        "map_ratio>=0.98": summary["map_ratio_ours_over_plain"] >= 0.98,
    }
    doc = {
        "benchmark": "train",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/bench_train.py", *sys.argv[1:]]),
        "machine": machine(),
        "profile": args.profile,
        "device": DEVICE,
        "epochs": prof.train.epochs,
        "train_images": prof.data.n_train,
        "imgsz": prof.train.imgsz,
        "runs": runs,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(summary, indent=2))
    if not args.no_docs:
        section = args.section or ("train" if DEVICE == "cpu" else "train-gpu")
        write_section(REPO / "docs" / "benchmarks.md", section, _markdown(doc))
    shutil.rmtree(root, ignore_errors=True)


def _markdown(doc: dict) -> str:
    s = doc["summary"]
    m = doc["machine"]
    lines = [
        "## Training: `visionops train` vs plain Ultralytics",
        "",
        f"Measured {doc['when']} on {m['cpu']} ({m['cores']} cores{', ' + m['gpu'] if m.get('gpu') else ''}), "
        f"profile `{doc['profile']}` ({doc['train_images']} train images, {doc['imgsz']} px, "
        f"{doc['epochs']} epochs, device {doc['device']}). Command: `{doc['command']}`"
        + (" (`make bench-train`)." if doc["command"] == "python benchmarks/bench_train.py" else "."),
        "",
        "| variant | round | threads | process wall s | train s | test mAP50-95 | test mAP50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        lines.append(
            f"| {r['variant']} | {r['round']} | {r['threads']} | {r['wall_s']:.1f} | {r['train_s']:.1f} | "
            f"{r['map50_95']:.3f} | {r['map50']:.3f} |"
        )
    lines += [
        "",
        f"- wall-time ratio ours/plain: **{s['wall_ratio_ours_over_plain']:.3f}** (target <= 1.03); "
        f"training-only ratio {s['train_ratio_ours_over_plain']:.3f}",
        f"- test mAP50-95: ours **{s['map50_95_ours']:.3f}**, plain {s['map50_95_plain']:.3f} "
        f"(ratio {s['map_ratio_ours_over_plain']:.3f}, target >= 0.98)",
    ]
    ours = [r for r in doc["runs"] if r["variant"] == "visionops"]
    if doc["profile"] == "quick" and ours:
        slowest = max(r["train_s"] for r in ours)
        lines.append(
            f"- quick profile target (test mAP50-95 >= 0.6 in <= 5 minutes of training on this machine): "
            f"**{s['map50_95_ours']:.3f}** after at most {slowest:.0f} s "
            f"({'met' if s['map50_95_ours'] >= 0.6 and slowest <= 300 else 'missed'})"
        )
    if "thread_fix_speedup" in s:
        lines.append(
            f"- every core vs Ultralytics' default (cpu_count-1 threads): **{s['thread_fix_speedup']:.2f}x** faster "
            "training"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

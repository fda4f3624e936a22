"""Classification benchmark (issue 12): the quick profile's classifier, and the smoke walkthrough.

Targets: the quick classification profile reaches top-1 >= 0.95 on its synthetic test split with
<= 3 minutes of training on 2 cores; notebooks 00-05 with `task=classify` and the smoke profile
take <= 3 minutes in all. (ONNX Runtime vs PyTorch classification throughput is measured by
benchmarks/bench_serve.py, side by side in one process.)

Each part runs in its own fresh project root (own catalog, MLflow store, registry) through the
same entry points a user runs: `Runner.run` (what `visionops run --task classify` calls) and
`visionops notebooks --profile smoke --param task=classify`.

    make bench-classify
    .venv/bin/python benchmarks/bench_classify.py [--skip-notebooks] [--profile quick]

Writes outputs/benchmarks/classify.json and the "Classification" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, write_section  # noqa: E402

NOTEBOOKS = ("00_environment_setup", "01_dataset_setup", "02_model_training", "03_model_evaluation",
             "04_model_deployment", "05_training_pipeline")
TARGET_TOP1, TARGET_TRAIN_S, TARGET_NOTEBOOKS_S = 0.95, 180.0, 180.0


def train_quick(profile: str) -> dict:
    """The whole lifecycle on the profile's synthetic classification set, in a fresh root."""
    from visionops.runner import Runner
    from visionops.settings import get_settings

    root = Path(tempfile.mkdtemp(prefix="visionops-bench-classify-"))
    settings = get_settings(root=root)
    started = time.perf_counter()
    result = Runner(settings, profile, task="classify").run()
    return {
        "profile": profile,
        "root": str(root),
        "dataset": f"{result.dataset.name}:{result.dataset.version}",
        "classes": result.dataset.classes,
        "images": {s: c["images"] for s, c in result.dataset.counts.items()},
        "epochs": result.train.epochs,
        "train_s": round(result.train.duration_s, 1),
        "lifecycle_s": round(time.perf_counter() - started, 1),
        "test_metrics": result.evaluation["challenger"],
        "decision": result.evaluation["decision"],
        "registered": result.registration.registered,
    }


def smoke_notebooks() -> dict:
    """`visionops notebooks --profile smoke --param task=classify` over 00-05, in a fresh root."""
    root = Path(tempfile.mkdtemp(prefix="visionops-bench-classify-nb-"))
    cli = str(Path(sys.executable).with_name("visionops"))
    only = [arg for nb in NOTEBOOKS for arg in ("--only", nb)]
    started = time.perf_counter()
    proc = subprocess.run([cli, "notebooks", "--profile", "smoke", "--param", "task=classify", *only, "--no-html"],
                          cwd=REPO, env={**_env(), "VISIONOPS_ROOT": str(root)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the classification walkthrough failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    run = json.loads((root / "outputs" / "notebooks" / "run.json").read_text())
    return {"root": str(root), "wall_s": round(wall, 1),
            "notebooks_s": {n["name"]: round(n["seconds"], 1) for n in run["notebooks"]},
            "total_s": round(sum(n["seconds"] for n in run["notebooks"]), 1)}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("VISIONOPS_")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--skip-notebooks", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "classify.json")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    quick = train_quick(args.profile)
    print(json.dumps(quick, indent=2), flush=True)
    notebooks = None if args.skip_notebooks else smoke_notebooks()
    if notebooks:
        print(json.dumps(notebooks, indent=2), flush=True)
    top1 = quick["test_metrics"].get("top1", 0.0)
    doc = {
        "benchmark": "classify", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_classify.py " + " ".join(sys.argv[1:]), "machine": machine(),
        "quick": quick, "notebooks": notebooks,
        "targets": {
            "top1": {"value": top1, "target": f">= {TARGET_TOP1}", "met": top1 >= TARGET_TOP1},
            "train_s": {"value": quick["train_s"], "target": f"<= {TARGET_TRAIN_S:.0f}",
                        "met": quick["train_s"] <= TARGET_TRAIN_S},
            "notebooks_s": None if notebooks is None else {
                "value": notebooks["total_s"], "target": f"<= {TARGET_NOTEBOOKS_S:.0f}",
                "met": notebooks["total_s"] <= TARGET_NOTEBOOKS_S},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    if args.no_docs:
        return
    m, t = doc["machine"], doc["targets"]
    lines = [
        "## Classification (issue 12)\n",
        f"`{doc['command'].strip()}` ({doc['when']}, {m['cpu']}, {m['cores']} cores).\n",
        "| what | measured | target | met |", "|---|---|---|---|",
        f"| {args.profile} profile: test top-1 | {top1:.4f} | {t['top1']['target']} | {t['top1']['met']} |",
        f"| {args.profile} profile: training time | {quick['train_s']:.0f} s ({quick['epochs']} epochs, "
        f"{quick['images']['train']} training images) | {t['train_s']['target']} s | {t['train_s']['met']} |",
    ]
    if notebooks:
        per = ", ".join(f"{k[:2]} {v:.0f} s" for k, v in notebooks["notebooks_s"].items())
        lines.append(f"| smoke notebooks 00-05, task=classify | {notebooks['total_s']:.0f} s ({per}) | "
                     f"{t['notebooks_s']['target']} s | {t['notebooks_s']['met']} |")
    write_section(REPO / "docs" / "benchmarks.md", "classify", "\n".join(lines))


if __name__ == "__main__":
    main()

"""Sweep benchmark: 8 trials with median pruning vs the same 8 trials without, and the best trial
vs the profile's default config on the same test split.

Targets (issue 13): the pruned sweep takes <= 60 % of the unpruned one's time, and its best trial
scores at least the default config's test mAP50-95. Each variant runs in its own fresh project
root (own MLflow store and Optuna study) on the same synthetic data set (same seed, same
content-hash version), with the same sampler seed, so both sweeps draw the same first trials.

The smoke data set (16 tiny images) leaves every smoke model at mAP 0, and a median pruner has
nothing to prune among equal zeros. `--data easy` (the default) trains on the easy shapes the
serving tests use (tests/serving/conftest.py's FAST_DETECTOR: two classes, one or two large
shapes per image), where a few epochs separate good draws from bad ones, so pruning is real;
`--data profile` keeps the profile's own data set. torch runs on one thread (settings.threads=1)
so a busy core slows every variant alike instead of collapsing one of them.

    make bench-sweep                                          # easy data, 8 trials, 8 epochs
    .venv/bin/python benchmarks/bench_sweep.py --trials 8 --epochs 8 --profile smoke --data easy

Writes outputs/benchmarks/sweep.json and the "Sweep" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, write_section  # noqa: E402

# the easy data set and schedule of tests/serving/conftest.py (FAST_DETECTOR), with per-epoch
# validation kept on: the pruner needs a metric after every epoch
EASY = {
    "n_train": 160, "n_val": 8, "n_test": 16, "image_size": 96, "min_objects": 1, "max_objects": 2,
    "min_size": 0.3, "max_size": 0.55, "truncate_prob": 0.0, "noise": 4.0, "classes": ["circle", "rectangle"],
    "imgsz": 96, "batch": 8, "lr0": 0.004,
    "extra": {"mosaic": 0.0, "scale": 0.2, "translate": 0.05, "hsv_s": 0.3, "hsv_v": 0.2},
}


def _settings(root: Path):
    from visionops.settings import get_settings

    return get_settings(root=root, threads=1)


def _knobs(args: argparse.Namespace) -> dict:
    """The knobs every variant trains with: the epochs, and the easy data set unless --data profile."""
    return {**(EASY if args.data == "easy" else {}), "epochs": args.epochs}


def _sweep(root: Path, args: argparse.Namespace, *, pruning: bool) -> dict:
    from visionops.sweep.local import LocalSweep

    sweep = LocalSweep(_settings(root), profile=args.profile, knobs=_knobs(args), pruning=pruning,
                       pruner_startup_trials=args.startup, pruner_warmup_epochs=args.warmup)
    t = time.perf_counter()
    result = sweep.run(args.trials, gate=False)
    seconds = time.perf_counter() - t
    gated = sweep.gate(result)  # the best trial on the frozen test split (first model: vs the floor)
    return {
        "seconds": round(seconds, 1),
        "pruned": result.pruned,
        "epochs_trained": sum(t.epochs or 0 for t in result.trials),
        "best_val": result.best.value,
        "best_params": result.best.params,
        "best_test_map50_95": gated.evaluation["challenger"]["map50_95"] if gated.evaluation else None,
    }


def _default(root: Path, args: argparse.Namespace) -> dict:
    from visionops.runner import Runner

    t = time.perf_counter()
    result = Runner(_settings(root), args.profile, _knobs(args)).run()
    return {"seconds": round(time.perf_counter() - t, 1), "test_map50_95": result.evaluation["challenger"]["map50_95"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--data", choices=("easy", "profile"), default="easy",
                    help="easy: the serving tests' easy shapes (pruning has differences to act on); "
                         "profile: the profile's own synthetic data set")
    ap.add_argument("--startup", type=int, default=2, help="trials before the median pruner may prune")
    ap.add_argument("--warmup", type=int, default=2, help="epochs of each trial before it may be pruned")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        base = Path(tmp)
        default = _default(base / "default", args)
        pruned = _sweep(base / "pruned", args, pruning=True)
        full = _sweep(base / "unpruned", args, pruning=False)
    ratio = pruned["seconds"] / full["seconds"]
    quality_ok = (pruned["best_test_map50_95"] or 0.0) >= default["test_map50_95"]
    doc = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "profile": args.profile,
        "trials": args.trials, "epochs": args.epochs, "data": args.data,
        "pruner": {"startup": args.startup, "warmup": args.warmup},
        "default": default, "pruned": pruned, "unpruned": full, "time_ratio": round(ratio, 3),
        "targets": {"time_ratio_le_0.60": ratio <= 0.60, "best_ge_default": quality_ok},
    }
    out = REPO / "outputs" / "benchmarks" / "sweep.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))
    if not args.no_doc:
        write_section(REPO / "docs" / "benchmarks.md", "sweep", _markdown(doc))


def _markdown(doc: dict) -> str:
    m = doc["machine"]
    p, u, d = doc["pruned"], doc["unpruned"], doc["default"]
    return "\n".join([
        "## Sweep",
        "",
        f"`make bench-sweep` ({doc['when']}; {m['cpu']}, {m['cores']} cores, GPU {m['gpu'] or 'none'}): "
        f"profile {doc['profile']} on the {doc['data']} data set, {doc['trials']} trials of {doc['epochs']} epochs, "
        f"median pruner after "
        f"{doc['pruner']['startup']} trials and {doc['pruner']['warmup']} epochs.",
        "",
        "| variant | time (s) | trials pruned | epochs trained | best val mAP50-95 | test mAP50-95 |",
        "|---|---|---|---|---|---|",
        f"| sweep, median pruning | {p['seconds']} | {p['pruned']} | {p['epochs_trained']} | {p['best_val']:.4f} | "
        f"{p['best_test_map50_95']:.4f} |",
        f"| sweep, no pruning | {u['seconds']} | {u['pruned']} | {u['epochs_trained']} | {u['best_val']:.4f} | "
        f"{u['best_test_map50_95']:.4f} |",
        f"| profile default config | {d['seconds']} | - | {doc['epochs']} | - | {d['test_map50_95']:.4f} |",
        "",
        f"Time ratio pruned / unpruned: **{doc['time_ratio']}** (target <= 0.60: "
        f"{'met' if doc['targets']['time_ratio_le_0.60'] else 'NOT met'}); best trial >= default config: "
        f"{'met' if doc['targets']['best_ge_default'] else 'NOT met'}.",
    ])


if __name__ == "__main__":
    main()

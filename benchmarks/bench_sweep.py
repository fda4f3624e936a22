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

The variants run one after the other, so on a shared machine their wall times carry whatever
else ran meanwhile (a first run here saw the same trial take 5 min in one sweep and 2.5 min in
the other). Each sweep therefore also reports its process CPU time and epochs trained, which
the load barely moves, and every trial's draw, fate and per-epoch metric.

    make bench-sweep                                          # easy data, 8 trials, 8 epochs
    .venv/bin/python benchmarks/bench_sweep.py --trials 8 --epochs 8 --profile smoke --data easy

Writes outputs/benchmarks/sweep.json and the "Sweep" section of docs/benchmarks.md
(`--doc-from outputs/benchmarks/sweep.json` rewrites that section from a saved run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (torch runs on one, data loading in-process):
    unlike wall time it barely changes when other people's jobs share the two cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _trials(storage: str, study_name: str) -> list[dict]:
    """Each trial's draw, fate and per-epoch validation metric, read back from the Optuna study:
    the numbers that say why pruning saved what it saved (the temporary root is gone afterwards)."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    return [{
        "number": t.number, "state": t.state.name, "epochs": t.user_attrs.get("epochs"),
        "duration_s": t.user_attrs.get("duration_s"), "value": t.value,
        "imgsz": t.params.get("imgsz"), "batch": t.params.get("batch"),
        "per_epoch": {int(step): round(v, 4) for step, v in sorted(t.intermediate_values.items())},
    } for t in study.trials]


def _sweep(root: Path, args: argparse.Namespace, *, pruning: bool) -> dict:
    from visionops.sweep.local import LocalSweep

    sweep = LocalSweep(_settings(root), profile=args.profile, knobs=_knobs(args), pruning=pruning,
                       pruner_startup_trials=args.startup, pruner_warmup_epochs=args.warmup)
    load_before = os.getloadavg()[0]
    t, cpu = time.perf_counter(), _cpu_seconds()
    result = sweep.run(args.trials, gate=False)
    seconds, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    gated = sweep.gate(result)  # the best trial on the frozen test split (first model: vs the floor)
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "pruned": result.pruned,
        "epochs_trained": sum(t.epochs or 0 for t in result.trials),
        "best_val": result.best.value,
        "best_params": result.best.params,
        "best_test_map50_95": gated.evaluation["challenger"]["map50_95"] if gated.evaluation else None,
        # the machine is shared: a busier stretch slows one variant, so say how busy it was
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "trials": _trials(result.storage, result.study_name),
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
    ap.add_argument("--doc-from", type=Path, metavar="JSON",
                    help="run nothing: rewrite the docs section from a saved sweep.json")
    args = ap.parse_args()
    if args.doc_from:
        render(args.doc_from)
        return

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        base = Path(tmp)
        default = _default(base / "default", args)
        pruned = _sweep(base / "pruned", args, pruning=True)
        full = _sweep(base / "unpruned", args, pruning=False)
    ratio = pruned["seconds"] / full["seconds"]
    cpu_ratio = pruned["cpu_seconds"] / full["cpu_seconds"]
    # the same ratio in epochs trained: what the time ratio would be on an idle machine, overheads aside
    epoch_ratio = pruned["epochs_trained"] / max(full["epochs_trained"], 1)
    quality_ok = (pruned["best_test_map50_95"] or 0.0) >= default["test_map50_95"]
    doc = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "profile": args.profile,
        "trials": args.trials, "epochs": args.epochs, "data": args.data,
        "pruner": {"startup": args.startup, "warmup": args.warmup},
        "default": default, "pruned": pruned, "unpruned": full, "time_ratio": round(ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "epoch_ratio": round(epoch_ratio, 3),
        "targets": {"time_ratio_le_0.60": ratio <= 0.60, "cpu_time_ratio_le_0.60": cpu_ratio <= 0.60,
                    "best_ge_default": quality_ok},
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
    lines = [
        "## Sweep",
        "",
        f"`make bench-sweep` ({doc['when']}; {m['cpu']}, {m['cores']} cores, GPU {m['gpu'] or 'none'}): "
        f"profile {doc['profile']} on the {doc['data']} data set, {doc['trials']} trials of {doc['epochs']} epochs, "
        f"median pruner after "
        f"{doc['pruner']['startup']} trials and {doc['pruner']['warmup']} epochs.",
        "",
        "| variant | time (s) | CPU time (s) | trials pruned | epochs trained | best val mAP50-95 | test mAP50-95 |",
        "|---|---|---|---|---|---|---|",
        f"| sweep, median pruning | {p['seconds']} | {p.get('cpu_seconds', '-')} | {p['pruned']} | "
        f"{p['epochs_trained']} | {p['best_val']:.4f} | {p['best_test_map50_95']:.4f} |",
        f"| sweep, no pruning | {u['seconds']} | {u.get('cpu_seconds', '-')} | {u['pruned']} | "
        f"{u['epochs_trained']} | {u['best_val']:.4f} | {u['best_test_map50_95']:.4f} |",
        f"| profile default config | {d['seconds']} | - | - | {doc['epochs']} | - | {d['test_map50_95']:.4f} |",
        "",
        f"Time ratio pruned / unpruned: **{doc['time_ratio']}** wall"
        + (f", **{doc['cpu_ratio']}** CPU" if "cpu_ratio" in doc else "")
        + f" (target <= 0.60: wall {'met' if doc['targets']['time_ratio_le_0.60'] else 'NOT met'}"
        + (f", CPU {'met' if doc['targets']['cpu_time_ratio_le_0.60'] else 'NOT met'}"
           if "cpu_time_ratio_le_0.60" in doc["targets"] else "")
        + f"); best trial >= default config: {'met' if doc['targets']['best_ge_default'] else 'NOT met'}.",
    ]
    if "epoch_ratio" in doc:
        lines += ["", f"Epochs trained pruned / unpruned: {doc['epoch_ratio']}. The variants run one after the "
                      f"other on a shared machine, so wall time carries the other jobs' load (1-min load average "
                      f"before/after: pruned {p.get('load_1min')}, unpruned {u.get('load_1min')}); CPU time and "
                      "epochs do not."]
    if p.get("trials") and u.get("trials"):
        lines += ["", *_trial_table(p["trials"], u["trials"], doc["pruner"]["startup"])]
    if doc["data"] == "easy":
        lines += ["", "The default config is the easy set's hand-picked schedule (lr0 0.004, no mosaic, imgsz 96, "
                      "batch 8). Optuna's TPE sampler draws its first 10 trials at random, so 8 trials are a "
                      "random search of the space (mosaic anywhere in 0..1), and the best one is picked on "
                      f"{EASY['n_val']} validation images."]
    return "\n".join(lines)


def _trial_table(pruned: list[dict], full: list[dict], startup: int) -> list[str]:
    """Trial by trial (both sweeps draw the same values): what pruning cut, and the unpruned
    trial's validation mAP50-95 per epoch, which is what the median pruner compares."""
    rows = ["| trial | imgsz | batch | pruned sweep: state, epochs, s | unpruned: epochs, s | "
            "unpruned val mAP50-95 per epoch |", "|---|---|---|---|---|---|"]
    for p, u in zip(pruned, full, strict=False):
        curve = " ".join(f"{v:.3f}" for _, v in sorted(u["per_epoch"].items(), key=lambda kv: int(kv[0])))
        rows.append(f"| {p['number']} | {p['imgsz']} | {p['batch']} | {p['state'].lower()}, {p['epochs']}, "
                    f"{p['duration_s']} | {u['epochs']}, {u['duration_s']} | {curve} |")
    first = sum(t["duration_s"] or 0 for t in full[:startup])
    total = sum(t["duration_s"] or 0 for t in full) or 1.0
    rows += ["", f"The first {startup} trials cannot be pruned (the pruner's startup): "
                 f"{first / total:.0%} of the unpruned sweep's training time."]
    live = _first_live_epoch(full[:startup])
    if live is not None:
        rows[-1] += (f" The median pruner prunes a trial whose best so far is below the median of the finished "
                     f"trials at the same epoch (strictly below, so never at a median of 0); trained from scratch, "
                     f"the {startup} startup trials' median val mAP50-95 stays exactly 0 until epoch {live}, so the "
                     f"next trial cannot be pruned before epoch {live} of {max(t['epochs'] or 0 for t in full)}, "
                     f"whatever the warm-up.")
    return rows


def _first_live_epoch(trials: list[dict]) -> int | None:
    """The first epoch at which the median of these trials' metric is above 0: before it, a
    median pruner (`best < median`) cannot prune anything."""
    curves = [{int(k): v for k, v in t["per_epoch"].items()} for t in trials if t["per_epoch"]]
    if not curves:
        return None
    for step in sorted(set().union(*curves)):
        values = sorted(c[step] for c in curves if step in c)
        mid = len(values) // 2
        median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        if median > 0:
            return step
    return None


def render(json_path: Path) -> None:
    """Rewrite the docs section from a saved sweep.json (after a run that used --no-doc)."""
    write_section(REPO / "docs" / "benchmarks.md", "sweep", _markdown(json.loads(json_path.read_text())))


if __name__ == "__main__":
    main()

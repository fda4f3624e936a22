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

The two sweeps alternate trial by trial (pruned trial k, then unpruned trial k), so on a shared
machine both see the same stretches of other people's load; each also reports its process CPU
time and epochs trained, which the load barely moves, and every trial's draw, fate and per-epoch
pruning signal. Trial 0 of both is the profile's own configuration (the sweep's baseline).

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


class _Variant:
    """One sweep (its own project root, MLflow store and study) driven a trial at a time, so two
    variants can alternate: each then sees the same stretches of a shared machine's load."""

    def __init__(self, root: Path, args: argparse.Namespace, *, pruning: bool):
        from visionops.sweep.local import LocalSweep

        self.sweep = LocalSweep(_settings(root), profile=args.profile, knobs=_knobs(args), pruning=pruning,
                                pruner_startup_trials=args.startup, pruner_warmup_epochs=args.warmup,
                                baseline=not args.no_baseline)
        self.sweep.runner.validate(self.sweep.dataset)
        self.study = self.sweep.study()
        self.objective = self.sweep.objective(self.sweep._parent_run(self.study))
        self.seconds = self.cpu = 0.0

    def one_trial(self) -> None:
        t, cpu = time.perf_counter(), _cpu_seconds()
        self.study.optimize(self.objective, n_trials=1)
        self.seconds += time.perf_counter() - t
        self.cpu += _cpu_seconds() - cpu

    def result(self) -> dict:
        from visionops.sweep.local import SweepResult, _record, optuna_storage

        records = [_record(t) for t in self.study.trials]
        best = _record(self.study.best_trial)
        result = SweepResult(
            study_name=self.sweep.study_name, storage=optuna_storage(self.sweep.settings), parent_run_id="",
            dataset=self.sweep.dataset, profile=self.sweep.profile, metric=self.sweep.space.metric,
            goal=self.sweep.space.goal, new_trials=len(records), trials=records, best=best, duration_s=self.seconds)
        gated = self.sweep.gate(result)  # the best trial on the frozen test split (first model: vs the floor)
        baseline = next((r for r in records if r.baseline), None)
        return {
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu, 1),
            "pruned": result.pruned,
            "epochs_trained": sum(t.epochs or 0 for t in records),
            "best_trial": best.number,
            "best_val": best.value,
            "baseline_val": baseline.value if baseline else None,
            "best_params": best.params,
            "best_test_map50_95": gated.evaluation["challenger"]["map50_95"] if gated.evaluation else None,
            "trials": _trials(result.storage, result.study_name),
        }


def _sweeps(root: Path, args: argparse.Namespace) -> tuple[dict, dict, list[float]]:
    """Both variants, trial by trial in turn (pruned first, then unpruned, for each trial number)."""
    pruned, full = _Variant(root / "pruned", args, pruning=True), _Variant(root / "unpruned", args, pruning=False)
    load = []
    for _ in range(args.trials):
        for variant in (pruned, full):
            variant.one_trial()
        load.append(round(os.getloadavg()[0], 2))
    return pruned.result(), full.result(), load


def _default(root: Path, args: argparse.Namespace) -> dict:
    from visionops.runner import Runner

    t = time.perf_counter()
    result = Runner(_settings(root), args.profile, _knobs(args)).run()
    return {"seconds": round(time.perf_counter() - t, 1), "test_map50_95": result.evaluation["challenger"]["map50_95"]}


def _space_signal() -> str:
    from visionops.sweep.space import load_space

    return load_space(task="detect").prune_signal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--data", choices=("easy", "profile"), default="easy",
                    help="easy: the serving tests' easy shapes (pruning has differences to act on); "
                         "profile: the profile's own synthetic data set")
    ap.add_argument("--startup", type=int, default=1, help="finished trials before the median pruner may prune")
    ap.add_argument("--warmup", type=int, default=1, help="epochs of each trial before it may be pruned")
    ap.add_argument("--no-baseline", action="store_true", help="draw trial 0 too (default: the profile's config)")
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
        pruned, full, load = _sweeps(base, args)
    ratio = pruned["seconds"] / full["seconds"]
    cpu_ratio = pruned["cpu_seconds"] / full["cpu_seconds"]
    # the same ratio in epochs trained: what the time ratio would be on an idle machine, overheads aside
    epoch_ratio = pruned["epochs_trained"] / max(full["epochs_trained"], 1)
    # the sweep optimises the validation split: its best against the profile's own configuration
    # there (trial 0), and on the frozen test split against a plain training run of that config
    val_ok = pruned["baseline_val"] is not None and pruned["best_val"] >= pruned["baseline_val"]
    quality_ok = (pruned["best_test_map50_95"] or 0.0) >= default["test_map50_95"]
    doc = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "profile": args.profile,
        "trials": args.trials, "epochs": args.epochs, "data": args.data,
        "pruner": {"startup": args.startup, "warmup": args.warmup, "signal": _space_signal(),
                   "baseline": not args.no_baseline},
        "interleaved": True, "load_1min_per_round": load,
        "default": default, "pruned": pruned, "unpruned": full, "time_ratio": round(ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "epoch_ratio": round(epoch_ratio, 3),
        "targets": {"time_ratio_le_0.60": ratio <= 0.60, "cpu_time_ratio_le_0.60": cpu_ratio <= 0.60,
                    "best_ge_default_val": val_ok, "best_ge_default": quality_ok},
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
    t = doc["targets"]
    pr = doc["pruner"]
    yes = {True: "met", False: "NOT met"}
    lines = [
        "## Sweep",
        "",
        f"`make bench-sweep` ({doc['when']}; {m['cpu']}, {m['cores']} cores, GPU {m['gpu'] or 'none'}): "
        f"profile {doc['profile']} on the {doc['data']} data set, {doc['trials']} trials of {doc['epochs']} epochs; "
        f"median pruner on {pr.get('signal', 'the metric')} after {pr['startup']} finished trial(s) and "
        f"{pr['warmup']} epoch(s); trial 0 {'is the profile config (baseline)' if pr.get('baseline') else 'drawn'}. "
        "The two sweeps alternate trial by trial, so both see the same stretches of the machine's load.",
        "",
        "| variant | time (s) | CPU time (s) | trials pruned | epochs trained | best trial | best val mAP50-95 "
        "| baseline val mAP50-95 | test mAP50-95 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in (("sweep, median pruning", p), ("sweep, no pruning", u)):
        base = f"{v['baseline_val']:.4f}" if v.get("baseline_val") is not None else "-"
        lines.append(f"| {name} | {v['seconds']} | {v['cpu_seconds']} | {v['pruned']} | {v['epochs_trained']} | "
                     f"{v.get('best_trial', '-')} | {v['best_val']:.4f} | {base} | {v['best_test_map50_95']:.4f} |")
    lines += [
        f"| profile default config, plain training run | {d['seconds']} | - | - | {doc['epochs']} | - | - | - | "
        f"{d['test_map50_95']:.4f} |",
        "",
        f"Time ratio pruned / unpruned: **{doc['time_ratio']}** wall, **{doc['cpu_ratio']}** CPU, "
        f"{doc['epoch_ratio']} in epochs (target <= 0.60: wall {yes[t['time_ratio_le_0.60']]}, "
        f"CPU {yes[t['cpu_time_ratio_le_0.60']]}).",
        f"Best trial >= the profile's default config: on the validation split the sweep optimises "
        f"{yes[t.get('best_ge_default_val', False)]}; on the frozen test split {yes[t['best_ge_default']]} "
        f"({p['best_test_map50_95']:.4f} vs {d['test_map50_95']:.4f}).",
        "",
        *_trial_table(p["trials"], u["trials"]),
    ]
    if doc["data"] == "easy":
        lines += ["", "The default config is the easy set's hand-picked schedule (lr0 0.004, no mosaic, imgsz 96, "
                      "batch 8). Optuna's TPE sampler draws its first 10 trials at random, so after the baseline "
                      "the trials are a random search of the space (mosaic anywhere in 0..1); the best is picked on "
                      f"{EASY['n_val']} validation images."]
    return "\n".join(lines)


def _trial_table(pruned: list[dict], full: list[dict]) -> list[str]:
    """Trial by trial (both sweeps draw the same values): what pruning cut, and each trial's
    per-epoch pruning signal in the unpruned sweep (negated losses: higher is better)."""
    rows = ["| trial | imgsz | batch | pruned sweep: state, epochs, s | unpruned: epochs, s, val mAP50-95 | "
            "unpruned: pruning signal per epoch |", "|---|---|---|---|---|---|"]
    for p, u in zip(pruned, full, strict=False):
        curve = " ".join(f"{v:.3f}" for _, v in sorted(u["per_epoch"].items(), key=lambda kv: int(kv[0])))
        value = f"{u['value']:.3f}" if u.get("value") is not None else "-"
        rows.append(f"| {p['number']} | {p['imgsz']} | {p['batch']} | {p['state'].lower()}, {p['epochs']}, "
                    f"{p['duration_s']} | {u['epochs']}, {u['duration_s']}, {value} | {curve} |")
    return rows


def render(json_path: Path) -> None:
    """Rewrite the docs section from a saved sweep.json (after a run that used --no-doc)."""
    write_section(REPO / "docs" / "benchmarks.md", "sweep", _markdown(json.loads(json_path.read_text())))


if __name__ == "__main__":
    main()

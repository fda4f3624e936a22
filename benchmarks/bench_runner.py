"""What the one lifecycle runner costs on top of the step it runs (issue 10: "the runner costs
nothing measurable").

Alternates, in one process and on one registered data set, `Runner.train(reuse=False)` (the path
of the notebooks, `visionops run|train` and the pipeline) with a direct call of the train step
(`pipeline.steps.train_step`, what `visionops train` called before the runner), A B then B A, and
compares the time each spends *outside* Ultralytics' training loop (wall time minus the training's
own duration): resolving the request, hashing it, the step folder, validation (reused once done),
the model check. Both sides pay the same MLflow run, weight copy and result file. The training
itself is the smoke profile's, so the fixed cost is large relative to it: a ratio on a 1-epoch run
would be meaningless, the absolute milliseconds are what matter.

    make bench-runner            # or: .venv/bin/python benchmarks/bench_runner.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "runner.json")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    from visionops.pipeline import steps
    from visionops.runner import Runner
    from visionops.settings import get_settings

    root = Path(tempfile.mkdtemp(prefix="visionops-bench-runner-"))
    settings = get_settings(root=root, threads=1)
    knobs = {"epochs": 1}
    runner = Runner(settings, "smoke", knobs)
    dataset = runner.dataset()  # generated, registered and current
    runner.validate(dataset)  # validated once, as every later training finds it
    runs: list[dict] = []

    def with_runner(i: int) -> dict:
        t = time.perf_counter()
        result = runner.train(dataset, reuse=False)
        wall = time.perf_counter() - t
        return {"variant": "runner", "round": i, "wall_s": wall, "train_s": result.duration_s}

    def direct(i: int) -> dict:
        t = time.perf_counter()
        result = steps.train_step(Path(dataset.path), root / "direct" / str(i), runner.settings_for(dataset),
                                  profile="smoke", knobs=knobs)
        wall = time.perf_counter() - t
        return {"variant": "direct", "round": i, "wall_s": wall, "train_s": result.duration_s}

    direct(-1)  # untimed warm-up: imports, the first MLflow store, cold caches
    for i in range(args.rounds):
        pair = [with_runner, direct] if i % 2 == 0 else [direct, with_runner]
        for fn in pair:
            runs.append(fn(i))
            print(json.dumps(runs[-1]), flush=True)

    def overhead(variant: str) -> float:
        return statistics.median(r["wall_s"] - r["train_s"] for r in runs if r["variant"] == variant)

    doc = {
        "benchmark": "runner", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_runner.py " + " ".join(sys.argv[1:]), "machine": machine(),
        "runs": runs,
        "summary": {
            "outside_training_s_runner": round(overhead("runner"), 3),
            "outside_training_s_direct": round(overhead("direct"), 3),
            "runner_cost_s": round(overhead("runner") - overhead("direct"), 3),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc["summary"], indent=2))
    if not args.no_docs:
        s, m = doc["summary"], doc["machine"]
        write_section(REPO / "docs" / "benchmarks.md", "runner", (
            "## The lifecycle runner's own cost (issue 10)\n\n"
            f"`{doc['command'].strip()}` ({doc['when']}, {m['cpu']}, {m['cores']} cores): "
            f"`Runner.train` against a direct call of the train step, {args.rounds} A/B rounds, smoke "
            "profile, 1 epoch, one thread. Time outside Ultralytics' training loop (median):\n\n"
            "| path | outside training |\n|---|---|\n"
            f"| `Runner.train(reuse=False)` | {s['outside_training_s_runner']:.2f} s |\n"
            f"| `steps.train_step` (direct) | {s['outside_training_s_direct']:.2f} s |\n"
            f"| **the runner's cost** | **{s['runner_cost_s'] * 1000:.0f} ms** |\n\n"
            "Both pay the same MLflow run, weight copy and result file; the runner adds the request, its "
            "hash, the step folder and the model check (validation is reused once done). Against a quick-"
            "profile training (about 230 s on 2 cores) that is the share the `make bench-train` ratio sees.\n"
        ))


if __name__ == "__main__":
    main()

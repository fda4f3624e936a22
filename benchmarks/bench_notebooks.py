"""Notebook benchmark: how long each walkthrough notebook takes with papermill, in a fresh project root.

Runs `visionops notebooks --profile smoke` (all six notebooks, in order, papermill, python3 kernel)
in a new temporary VISIONOPS_ROOT per round, as CI does on a clean agent, and reads the time of
each notebook from the runner's run.json (execution only; the HTML copies are not timed).
Target: all six notebooks in the smoke profile take <= 300 s in total on the CI machine (2 cores).
The machine is shared, so the load average at the start of each round is recorded with it.

    make bench-notebooks                                   # smoke profile, 1 round
    .venv/bin/python benchmarks/bench_notebooks.py --rounds 2

Writes outputs/benchmarks/notebooks.json and the "Notebooks" section of docs/benchmarks.md.
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
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import machine, write_section  # noqa: E402

BUDGET_S = 300.0


def one_round(profile: str, keep: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="visionops-bench-notebooks-"))
    env = dict(os.environ, VISIONOPS_ROOT=str(root))
    for key in ("VISIONOPS_BACKEND", "VISIONOPS_PROFILE", "VISIONOPS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    load = os.getloadavg()[0]
    cli = str(Path(sys.executable).with_name("visionops"))
    started = time.perf_counter()
    proc = subprocess.run([cli, "notebooks", "--profile", profile, "--no-html"], env=env, cwd=REPO,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    run_json = root / "outputs" / "notebooks" / "run.json"
    run = json.loads(run_json.read_text()) if run_json.is_file() else {"status": "missing", "notebooks": []}
    if proc.returncode != 0:
        raise SystemExit(f"notebooks failed (root kept: {root}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "load_avg_1m_at_start": round(load, 2),
        "wall_s": round(wall, 1),
        "total_s": round(sum(n["seconds"] for n in run["notebooks"]), 1),
        "notebooks": {n["name"]: n["seconds"] for n in run["notebooks"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--rounds", type=int, default=1, help="full runs of the six notebooks, each in a fresh root")
    ap.add_argument("--keep", action="store_true", help="keep each round's temporary project root")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "notebooks.json")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args()

    rounds = []
    for i in range(args.rounds):
        r = one_round(args.profile, args.keep)
        print(f"round {i + 1}: {r['total_s']:.0f}s in notebooks ({r['wall_s']:.0f}s wall, "
              f"load {r['load_avg_1m_at_start']}): {r['notebooks']}", flush=True)
        rounds.append(r)
    names = list(rounds[0]["notebooks"])
    median = {n: round(statistics.median(r["notebooks"][n] for r in rounds), 1) for n in names}
    total = round(statistics.median(r["total_s"] for r in rounds), 1)
    result = {
        "benchmark": "notebooks",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "profile": args.profile,
        "command": f"visionops notebooks --profile {args.profile} --no-html (fresh VISIONOPS_ROOT per round)",
        "budget_s": BUDGET_S,
        "median_s": median,
        "median_total_s": total,
        "within_budget": total <= BUDGET_S,
        "rounds": rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"median_s": median, "median_total_s": total, "within_budget": total <= BUDGET_S}, indent=2))

    if not args.no_docs:
        m = result["machine"]
        lines = [
            "## Notebooks",
            "",
            f"`make bench-notebooks` ({args.rounds} round(s) of all six notebooks with papermill, profile "
            f"`{args.profile}`, each round in a fresh `VISIONOPS_ROOT`, as on a clean CI agent; "
            f"{result['when']}). Machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}, "
            f"Python {m['python']}; shared with other work (1-minute load average at the start of each "
            f"round: {', '.join(str(r['load_avg_1m_at_start']) for r in rounds)}).",
            "",
            "| notebook | seconds (median) |" + "".join(f" round {i + 1} |" for i in range(len(rounds))),
            "|---|---:|" + "---:|" * len(rounds),
        ]
        for n in names:
            lines.append(f"| {n} | {median[n]:.1f} |" + "".join(f" {r['notebooks'][n]:.1f} |" for r in rounds))
        lines.append(f"| **total** | **{total:.1f}** |" + "".join(f" {r['total_s']:.1f} |" for r in rounds))
        lines += [
            "",
            f"Target: the six notebooks take <= {BUDGET_S:.0f} s in total in the smoke profile: "
            f"**{'met' if total <= BUDGET_S else 'MISSED'}** ({total:.0f} s). Per-notebook time includes the "
            "kernel start and imports (torch, Ultralytics, MLflow: a few seconds each); 02 trains and 05 runs "
            "the whole pipeline as four subprocesses (the second training of the walkthrough), so those two "
            "dominate. Raw data: `outputs/benchmarks/notebooks.json`.",
        ]
        write_section(REPO / "docs" / "benchmarks.md", "notebooks", "\n".join(lines))


if __name__ == "__main__":
    main()

"""One fresh-process measurement for bench_overhead.py (not part of the product).

    python benchmarks/_overhead_probe.py cli [--before] [--exit-now] -- train --profile smoke ...
    python benchmarks/_overhead_probe.py plain CONFIG_JSON
    python benchmarks/_overhead_probe.py component NAME VARIANT ROOT

`cli` runs `visionops ...` in this process with timers around each fixed-cost step, wrapped by
attribute so the code under test runs unchanged: offline set-up (imports Ultralytics and torch),
the MLflow store and experiment, the run's start, params, per-epoch logging, final metrics,
artifacts, the run's end, and Ultralytics' own `Model.train`. `--before` switches off this
issue's cuts (store template, git tags without GitPython), which is what the code did before;
`--exit-now` ends the process with `offline.exit_now` (atexit handlers, flush, no teardown).
`plain` is plain Ultralytics on the same config. `component` times one step alone.

Prints one line `OVERHEAD_PROBE {json}`: seconds per step, and `marks`, seconds since the parent
spawned us (BENCH_SPAWN_TIME, its time.time()); the parent times what follows our last mark
(the interpreter's shutdown).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

T0 = float(os.environ.get("BENCH_SPAWN_TIME", time.time()))
spent: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)
marks: dict[str, float] = {"interpreter_up": time.time() - T0}
extra: dict[str, float] = {}
_active: list[str] = []


def timed(name: str, fn):
    """`fn` with its time added to `spent[name]`; a timed call inside another counts in the outer one
    only, except epoch logging, which runs inside Ultralytics' train() and is reported as part of it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _active and name != "epoch_logging":  # per-epoch logging: also timed inside Ultralytics' train()
            return fn(*args, **kwargs)
        _active.append(name)
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t
            calls[name] += 1
            _active.remove(name)

    return wrapper


def patch(obj, attr: str, name: str) -> None:
    setattr(obj, attr, timed(name, getattr(obj, attr)))


def _report() -> None:
    marks["exit"] = time.time() - T0
    print("OVERHEAD_PROBE " + json.dumps({"spent": spent, "calls": calls, "marks": marks, "extra": extra}),
          flush=True)


def undo_cuts() -> None:
    """The code as it was before this issue: MLflow migrates every new store itself, and
    resolves its git tags with GitPython."""
    from visionops import tracking

    tracking.new_store_from_template = lambda db: False
    tracking.prefill_git_context = lambda: False


def run_cli(argv: list[str], before: bool) -> None:
    import visionops.cli as cli

    marks["cli_imported"] = time.time() - T0
    from visionops import offline, runner, tracking, training

    if before:
        undo_cuts()
    configure = offline.configure

    def configure_then_patch_train(*args, **kwargs):
        out = configure(*args, **kwargs)  # the offline switches come before Ultralytics' import
        from ultralytics.engine.model import Model

        if not hasattr(Model.train, "__wrapped__"):
            patch(Model, "train", "ultralytics_train")
        return out

    offline.configure = timed("offline_configure", configure_then_patch_train)
    store = tracking.configure_mlflow

    def store_then_patch_mlflow(*args, **kwargs):
        out = store(*args, **kwargs)
        import mlflow

        patch(mlflow, "start_run", "run_start")
        patch(mlflow, "log_params", "log_params")
        patch(mlflow, "log_metrics", "final_metrics")
        patch(mlflow, "log_metric", "final_metrics")
        patch(mlflow, "log_artifact", "artifacts")
        patch(mlflow, "log_dict", "artifacts")
        patch(mlflow, "end_run", "run_end")
        patch(mlflow.MlflowClient, "log_batch", "epoch_logging")
        return out

    training.configure_mlflow = timed("store_and_experiment", store_then_patch_mlflow)
    patch(training, "git_commit", "git_commit")
    patch(runner.Runner, "validate", "validate_step")
    atexit.register(_report)
    sys.argv = ["visionops", *argv]
    marks["cli_start"] = time.time() - T0
    try:
        cli.main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    marks["cli_done"] = time.time() - T0


def run_plain(cfg: dict) -> None:
    """Plain Ultralytics: what a user without VisionOps runs, same data, config, seed and threads."""
    atexit.register(_report)
    import ultralytics.utils.torch_utils as tu

    tu.NUM_THREADS = cfg["threads"]
    import torch

    torch.set_num_threads(cfg["threads"])
    from ultralytics import YOLO

    marks["ultralytics_imported"] = time.time() - T0
    model = YOLO(cfg["model"])
    t = time.perf_counter()
    model.train(data=cfg["data"], project=cfg["project"], name="plain", exist_ok=True, device=cfg["device"],
                workers=0 if cfg["device"] == "cpu" else 8, seed=cfg["seed"], deterministic=True, plots=True,
                verbose=True, **cfg["args"])
    spent["ultralytics_train"] = time.perf_counter() - t
    marks["cli_done"] = time.time() - T0


def run_component(name: str, variant: str, root: Path) -> None:
    """One step alone, after its imports (timed separately in `imports`)."""
    atexit.register(_report)
    if name == "imports":
        t = time.perf_counter()
        from ultralytics import YOLO  # noqa: F401

        extra["ultralytics"] = time.perf_counter() - t
        t = time.perf_counter()
        import mlflow  # noqa: F401

        extra["mlflow_after_ultralytics"] = time.perf_counter() - t
        t = time.perf_counter()
        import visionops.cli  # noqa: F401

        extra["visionops_cli_after_both"] = time.perf_counter() - t
        return
    import mlflow

    from visionops import tracking
    from visionops.settings import get_settings

    settings = get_settings(root=root)
    if variant == "before":
        undo_cuts()
    if name in ("store_create", "store_open"):
        t = time.perf_counter()
        tracking.configure_mlflow(settings)
        extra[name] = time.perf_counter() - t
    elif name == "run_start":
        prefill = tracking.prefill_git_context
        tracking.prefill_git_context = lambda: False  # timed below, with the run it serves
        tracking.configure_mlflow(settings)
        t = time.perf_counter()
        prefill()  # "before": the no-op of undo_cuts, so MLflow imports GitPython in start_run
        with mlflow.start_run(tags={"visionops.stage": "bench"}):
            mlflow.log_params({"epochs": 1})
        extra[name] = time.perf_counter() - t
        extra["gitpython_imported"] = float("git" in sys.modules)
    else:
        raise SystemExit(f"unknown component {name!r}")


def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "cli":
        flags = rest[: rest.index("--")] if "--" in rest else []
        argv = rest[len(flags) + 1:] if "--" in rest else rest
        run_cli(argv, "--before" in flags)
        if "--exit-now" in flags:  # what `visionops` does once its main() ends with offline.exit_now
            from visionops import offline

            offline.exit_now(0)
    elif mode == "plain":
        run_plain(json.loads(rest[0]))
    elif mode == "component":
        run_component(rest[0], rest[1], Path(rest[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: cli, plain or component")


if __name__ == "__main__":
    main()

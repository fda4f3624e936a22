"""Make Ultralytics, MLflow and torch behave offline and use the whole machine, set in code.

Ultralytics reaches for the network in several places even when everything it needs is on
disk: a DNS probe at import, a HEAD request for Arial.ttf when it checks a data set or draws a
plot, pip installs of missing packages, an AMP check that downloads yolo26n.pt on a GPU, hub
sync and its own MLflow callback (which sends MLflow telemetry). Each switch below turns one of
these off. Nothing happens at import: every path that imports Ultralytics calls `configure()`
(or `set_threads()`) first, and `tracking.configure_mlflow` applies the MLflow switches before
MLflow is used (they are read when MLflow first needs them, not when it is imported).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

_ENV_DEFAULTS = {
    "YOLO_OFFLINE": "1",  # skip the is_online() DNS probe; disables hub events and AutoUpdate
    "YOLO_AUTOINSTALL": "0",  # never pip-install missing requirements at run time
    "YOLO_VERBOSE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # no progress bars for local copies
    "GIT_PYTHON_REFRESH": "quiet",  # mlflow tags the git commit; no warning when git is absent
}

_configured_dir: Path | None = None


def apply_env(yolo_config_dir: Path | None = None) -> None:
    """Environment switches (and Ultralytics' config dir, when given); values the user set
    explicitly are kept."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if yolo_config_dir is not None:
        os.environ.setdefault("YOLO_CONFIG_DIR", str(yolo_config_dir))


def _install_fonts(config_dir: Path) -> None:
    """Ultralytics looks for Arial.ttf in its config dir and downloads it when absent; give it
    matplotlib's DejaVuSans under that name so plots render and nothing is fetched."""
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target = config_dir / "Ultralytics"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        dst = target / name
        if not dst.exists():
            shutil.copyfile(src, dst)


_AMP_BAD_GPUS = re.compile(
    r"(nvidia|geforce|quadro|tesla).*?(1660|1650|1630|t400|t550|t600|t1000|t1200|t2000|k40m)", re.IGNORECASE
)


def _offline_check_amp(model) -> bool:
    """Ultralytics' check_amp downloads yolo26n.pt to compare fp32 and fp16 outputs; we keep its
    list of GPUs known to break AMP and skip the download."""
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False
    return not _AMP_BAD_GPUS.search(torch.cuda.get_device_name(device))


def _keep_pil_errors() -> None:
    """Importing Ultralytics replaces PIL.Image.open process-wide with a wrapper that, on the
    first file PIL cannot identify, tries to pip-install pi-heif and then raises ImportError
    instead of PIL's UnidentifiedImageError. Our validators and the scoring server rely on that
    error to say "this is not an image"; without pi-heif (HEIC support we do not ship) we tell the
    wrapper its plugins are registered, so it calls PIL's own open directly."""
    import importlib.util

    apply_env()  # before Ultralytics' first import: no DNS probe, no auto-install
    import ultralytics.utils.patches as patches

    if importlib.util.find_spec("pi_heif") is None:
        patches._pil_plugins_registered = True


def configure(yolo_config_dir: Path, threads: int | None = None) -> int:
    """Idempotent: environment, fonts, Ultralytics settings, thread count, AMP check. Returns the
    thread count set, so a caller need not call set_threads again (each call samples the load
    for 0.2 s)."""
    global _configured_dir
    yolo_config_dir = Path(yolo_config_dir)
    apply_env(yolo_config_dir)
    config_dir = Path(os.environ["YOLO_CONFIG_DIR"])
    if _configured_dir != config_dir:
        _install_fonts(config_dir)
        from ultralytics import settings

        # Ultralytics' own MLflow callback is on whenever mlflow is importable; we log ourselves
        # (clean metric names, our run, our artifacts), so it stays off.
        wanted = {
            "sync": False,
            "mlflow": False,
            "clearml": False,
            "comet": False,
            "dvc": False,
            "raytune": False,
            "wandb": False,
            "tensorboard": False,
            "vscode_msg": False,
            "openvino_msg": False,
        }
        if any(settings.get(k) != v for k, v in wanted.items()):
            settings.update(wanted)
        import ultralytics.engine.trainer as trainer

        trainer.check_amp = _offline_check_amp
        _configured_dir = config_dir
    return set_threads(threads)


def choose_threads(cores: int, busy: int) -> int:
    """Every core nobody else is using, at least one.

    Ultralytics uses cpu_count-1 threads: 1 on a 2-core laptop, where both cores train an epoch
    1.7x faster. But torch's OpenMP threads spin while they wait for each other, so a thread
    that shares its core with another busy process stalls the whole step: measured here, 2
    threads next to one busy process took 9.7 s per epoch against 4.3 s with 1 thread.
    """
    return max(1, cores - max(0, busy))


def busy_cpus(samples: int = 5, interval_s: float = 0.05) -> int:
    """Processes running right now besides this one (median of a few reads of /proc/loadavg's
    runnable count; the 1-minute load average lags too much to decide a thread count on)."""
    counts = []
    for i in range(samples):
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0  # not Linux: assume an idle machine
        counts.append(running - 1)  # the reader itself is running
        if i + 1 < samples:
            time.sleep(interval_s)
    return sorted(counts)[len(counts) // 2]


def set_threads(threads: int | None = None) -> int:
    """Set torch's (and Ultralytics') thread count: `threads` when given (VISIONOPS_THREADS),
    else every core that is free right now (see choose_threads)."""
    import ultralytics.utils.torch_utils as torch_utils

    _keep_pil_errors()  # every path that loads Ultralytics passes here
    n = threads or choose_threads(os.cpu_count() or 1, busy_cpus())
    torch_utils.NUM_THREADS = n
    import torch

    torch.set_num_threads(n)
    return n


def exit_now(code: int = 0) -> None:
    """End a finished command without the interpreter's teardown, keeping everything that matters.

    After a training, Python spends seconds at exit freeing ~400,000 objects of torch, MLflow and
    pandas module by module (measured: 13 s under load on 2 cores vs 0.5 s this way; plain
    Ultralytics pays a smaller share, having imported less). Nothing needs that teardown: the
    atexit handlers (MLflow ends an open run and flushes its async queues, logging flushes) run
    here first, then stdout/stderr are flushed, then the process exits with `code`. For command
    entry points only, never inside a library call or a notebook kernel."""
    import atexit
    import sys

    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed or broken pipe: nothing left to write
                pass
        os._exit(code)

"""Which inference environment serves which runtime, and whether a registered model can be served by it.

Each runtime has its own environment (environments/conda/deployment*.yml, environments/azureml/
inference*.yml, environments/docker/inference*/, pyproject extras `onnx` and `pytorch`), because
the ONNX one is a few hundred MB without torch or Ultralytics while the PyTorch one is several GB
with both. A deployment therefore has to know its runtime *before* it picks the environment, and
a model that lacks the runtime's weights file must be refused before anything is created: the
ONNX image cannot fall back to best.pt (there is no torch in it), and Azure would only tell after
a 10-minute deployment that never became healthy.

Pure functions over file names (no I/O), so both backends and the tests share them: the Azure
backend lists the registered version's artifacts in the workspace's MLflow registry and calls
`choose_runtime` on that listing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from visionops.errors import ConfigError, ModelNotFoundError

# runtime -> environments/azureml/<kind>.yml (its conda file and Dockerfile are named alike)
ENVIRONMENTS: dict[str, str] = {"onnx": "inference", "pytorch": "inference-pytorch"}
# runtime -> the weights file suffix it loads (what serving.predictor.find_model looks for)
WEIGHTS: dict[str, str] = {"onnx": ".onnx", "pytorch": ".pt"}


def inference_environment(runtime: str) -> str:
    """The environment kind (environments/azureml/<kind>.yml) that serves `runtime`."""
    try:
        return ENVIRONMENTS[runtime]
    except KeyError:
        raise ConfigError(
            f"unknown serving runtime {runtime!r}; choose one of {sorted(ENVIRONMENTS)} (or auto)"
        ) from None


def _weights(files: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {r: [] for r in WEIGHTS}
    for f in files:
        suffix = PurePosixPath(f).suffix.lower()
        for runtime, wanted in WEIGHTS.items():
            if suffix == wanted:
                found[runtime].append(f)
    return found


def choose_runtime(runtime: str | None, files: Iterable[str], model: str) -> str:
    """The runtime to deploy `model` (`name:version`) with, given the names of its artifact files.

    'auto' (or None): onnx when the model has an ONNX export, else pytorch. An explicit runtime
    whose weights file is missing raises ModelNotFoundError saying how to export or which runtime
    to choose, so nothing is created for a deployment that could never load its model."""
    files = list(files)
    found = _weights(files)
    wanted = (runtime or "auto").lower()
    if wanted == "auto":
        if found["onnx"]:
            return "onnx"
        if found["pytorch"]:
            return "pytorch"
        raise ModelNotFoundError(
            f"model {model} has neither a .onnx nor a .pt file among its artifacts ({_listing(files)}); "
            "it is not a VisionOps model: register it with visionops.registry.register"
        )
    inference_environment(wanted)  # unknown runtime -> ConfigError naming the choices
    if found[wanted]:
        return wanted
    if wanted == "onnx":
        raise ModelNotFoundError(
            f"model {model} has no ONNX export (no .onnx file among its artifacts: {_listing(files)}), so the ONNX "
            "environment (visionops-inference: no torch, no Ultralytics) cannot serve it. Either export it and "
            "register it again with the export (visionops.serving.export.export_onnx(best.pt, settings), then "
            "visionops.registry.register(..., extra_artifacts={'onnx': <best.onnx>}); the training pipeline's "
            "register step does both), or deploy with --runtime pytorch (environment visionops-inference-pytorch, "
            "several GB, Ultralytics AGPL-3.0: see docs/licenses.md). Nothing was created."
        )
    raise ModelNotFoundError(
        f"model {model} has no PyTorch weights (no .pt file among its artifacts: {_listing(files)}); "
        "deploy it with --runtime onnx. Nothing was created."
    )


def _listing(files: list[str], limit: int = 8) -> str:
    if not files:
        return "none"
    names = sorted(files)
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more

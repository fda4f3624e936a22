"""What this environment is: versions, hardware, backend and settings (notebook 00, `visionops info`)."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from visionops.settings import Settings

STACK = (
    "visionops", "torch", "torchvision", "ultralytics", "onnxruntime", "mlflow", "pydantic", "papermill",
    "azureml-inference-server-http", "azure-ai-ml", "azureml-mlflow",
)


def package_versions(names: tuple[str, ...] = STACK) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def hardware() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "cuda_build": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
    }


def describe(settings: Settings) -> dict[str, Any]:
    safe = settings.model_dump(exclude={"endpoint_key"})
    safe["tracking_uri"] = settings.tracking_uri
    return {"hardware": hardware(), "packages": package_versions(), "settings": safe}

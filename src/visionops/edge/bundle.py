"""The edge deployment folder for a registered model: `outputs/edge/<model>-<version>/`.

    deployment.json   the IoT Edge manifest (manifest.py), validated before it is written
    Dockerfile        the module image: the ONNX inference image with this model baked in
    model/            its build context: the ONNX export and model_info.json (no .pt: the
                      ONNX Runtime image never reads it)
    README.md         the commands to build, push and deploy, with this model's values

Reading the model is the registry's: the version's tags and downloaded folder say its name,
version and task and whether it has an ONNX export; the model itself is never loaded.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionops.edge.manifest import (
    CONTAINER_PORT,
    MODEL_DIR_IN_IMAGE,
    RECORDS_DIR_IN_CONTAINER,
    EdgeModel,
    EdgeOptions,
    image_ref,
    require_valid,
)
from visionops.errors import ModelNotFoundError

MANIFEST = "deployment.json"
MODEL_FOLDER = "model"


@dataclass(frozen=True)
class EdgeBundle:
    folder: Path
    manifest: Path
    dockerfile: Path
    readme: Path
    image: str
    model: EdgeModel


def resolve_version(settings: Any, spec: str | None):
    """The registry entry of `name:version`, `name` (its production version) or the production model."""
    from visionops import registry

    return registry.resolve(settings, spec)


def edge_model(ref: Any, model_dir: Path) -> tuple[EdgeModel, Path, Path | None]:
    """(what the module serves, its ONNX file, its model_info.json) from a downloaded version's
    files and tags. A version without an ONNX export is refused: the edge image runs ONNX Runtime
    only (no torch, no Ultralytics)."""
    from visionops.registry import model_files

    found = model_files(model_dir)
    if "onnx" not in found:
        raise ModelNotFoundError(
            f"model {ref.name} v{ref.version} has no ONNX export among its registered files ({model_dir}); the "
            "edge module runs ONNX Runtime only. Register a version that has one: `visionops register` and "
            "`visionops run` export best.onnx at registration, then run `visionops edge manifest` on that version"
        )
    info: dict[str, Any] = {}
    if "info" in found:
        try:
            info = json.loads(found["info"].read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelNotFoundError(f"{found['info']}: not readable JSON ({exc}); download the version again "
                                     f"(delete {model_dir})") from None
    task = str(ref.tags.get("task") or info.get("task") or "detect")
    imgsz = ref.tags.get("imgsz") or info.get("imgsz")
    model = EdgeModel(name=ref.name, version=str(ref.version), task=task, onnx=found["onnx"].name,
                      imgsz=int(imgsz) if imgsz not in (None, "") else None)
    return model, found["onnx"], found.get("info")


def folder_name(model: EdgeModel) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model.name}-{model.version}")


def dockerfile_text(model: EdgeModel, base_image: str) -> str:
    """The module image: FROM the ONNX inference image, plus this model's folder."""
    return f"""# IoT Edge module image for {model.name} v{model.version} ({model.task}, ONNX Runtime), written by
# `visionops edge manifest`. The base is the ONNX inference image built from
# environments/docker/inference/Dockerfile (score.py behind azmlinfsrv on port {CONTAINER_PORT}); this
# layer only adds the model, so the tag names exactly one model version. Build from this folder:
#   docker build --build-arg BASE_IMAGE={base_image} -t <image> .
ARG BASE_IMAGE={base_image}
FROM ${{BASE_IMAGE}}
COPY {MODEL_FOLDER}/ {MODEL_DIR_IN_IMAGE}/
LABEL org.opencontainers.image.title="visionops edge module" \\
      com.visionops.model.name="{model.name}" \\
      com.visionops.model.version="{model.version}" \\
      com.visionops.model.task="{model.task}"
"""


def readme_text(model: EdgeModel, options: EdgeOptions, base_image: str, folder: Path) -> str:
    """What to do with the folder, with this deployment's own values (docs/edge.md has the why)."""
    image = image_ref(model, options)
    registry = options.registry.strip()
    acr = registry.split(".")[0]
    records = (f"- Production records: the module writes them to `{RECORDS_DIR_IN_CONTAINER}`, mounted from "
               f"`{options.records_host_dir}` on the device. Create that folder before the first deployment, "
               "owned by the image's user (uid 1000):\n"
               f"  `sudo mkdir -p {options.records_host_dir} && sudo chown 1000:1000 {options.records_host_dir}`.\n"
               "  Copy it off the device (or sync it to blob storage) and run "
               f"`visionops monitor --model {model.name}:{model.version} --records <copy>` on it.\n"
               if options.collect else "- Production records: off (`--no-collect`).\n")
    creds = ("- `deployment.json` holds the registry password (registryCredentials): keep it out of source "
             "control.\n" if options.registry_username else
             "- No registry credentials in the manifest: the device must be able to pull "
             f"`{image}` anonymously, or rerun with `--registry-username` (password from "
             "VISIONOPS_EDGE_REGISTRY_PASSWORD).\n")
    return f"""# IoT Edge deployment: {model.name} v{model.version}

Written by `visionops edge manifest`; see docs/edge.md for the design and the Kubernetes alternative.

| | |
|---|---|
| model | {model.name} v{model.version} ({model.task}), `{model.onnx}` baked into the image |
| module | `{options.module}`, image `{image}`, restart policy `{options.restart_policy}` |
| scoring | `http://<device>:{options.host_port}/score` (container port {CONTAINER_PORT}) |
| manifest | `{MANIFEST}`: IoT Edge 1.5 (edgeAgent schema 1.1, edgeHub schema 1.2), schema-checked |

## 1. Build and push the module image

From the repository root (skip the first command when the inference image is in the registry already,
e.g. pushed by ado_pipelines/docker_image_pipeline.yml):

```bash
docker build -f environments/docker/inference/Dockerfile -t {base_image} .
docker build --build-arg BASE_IMAGE={base_image} -t {image} {folder}
az acr login --name {acr}        # or: docker login {registry}
docker push {image}
```

## 2. Deploy the manifest

One device:

```bash
az iot edge set-modules --hub-name <hub> --device-id <device> --content {folder / MANIFEST}
```

A fleet (every device whose twin has `tags.visionops = 'edge'`):

```bash
az iot edge deployment create --hub-name <hub> --deployment-id {folder_name(model).lower()} \\
  --content {folder / MANIFEST} --target-condition "tags.visionops='edge'" --priority 10
```

## 3. Check it

```bash
az iot hub module-twin show --hub-name <hub> --device-id <device> --module-id {options.module}
curl -s http://<device>:{options.host_port}/    # on the device's network: the server answers
```

## Notes

{records}{creds}- The route `FROM /messages/modules/{options.module}/outputs/* INTO $upstream` forwards anything
  the module sends to IoT Hub, kept {options.store_forward_ttl_s} s while the device is offline. The scoring
  server answers HTTP and sends no IoT Hub messages itself; the route is where a module that reports (counts,
  alerts) sends them.
"""


def write_bundle(
    out_dir: Path, model: EdgeModel, options: EdgeOptions, manifest: dict[str, Any], onnx: Path,
    info: Path | None, base_image: str,
) -> EdgeBundle:
    """Validate the manifest, then write the folder (replacing an older one of the same version)."""
    require_valid(manifest, "the generated deployment manifest")
    out_dir = Path(out_dir)
    model_out = out_dir / MODEL_FOLDER
    if model_out.exists():
        shutil.rmtree(model_out)
    model_out.mkdir(parents=True)
    shutil.copy2(onnx, model_out / onnx.name)
    if info is not None:
        shutil.copy2(info, model_out / info.name)
    manifest_path = out_dir / MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    dockerfile = out_dir / "Dockerfile"
    dockerfile.write_text(dockerfile_text(model, base_image))
    readme = out_dir / "README.md"
    readme.write_text(readme_text(model, options, base_image, out_dir))
    return EdgeBundle(folder=out_dir, manifest=manifest_path, dockerfile=dockerfile, readme=readme,
                      image=image_ref(model, options), model=model)

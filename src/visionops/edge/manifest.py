"""The IoT Edge 1.5 deployment manifest for one scoring module, as data, and its offline checks.

The manifest (`deployment.json`, what `az iot edge set-modules --content` and `az iot edge
deployment create` take) has two system twins: `$edgeAgent` (the runtime, the system modules and
our module: image, create options, env, restart policy) and `$edgeHub` (routes and store and
forward). Docker's create options travel as a JSON *string*, cut into 512-character pieces
(`createOptions`, `createOptions01`, ... at most 8: edgeAgent joins them back), the way the IoT
Edge tooling writes them (Azure/iotedgedev: TWIN_VALUE_MAX_SIZE 512, TWIN_VALUE_MAX_CHUNKS 8).

The model is baked into the module image (see bundle.py), not mounted: one image tag per model
version makes a rollout or a rollback one manifest change that IoT Hub applies to every device,
with nothing to copy onto devices by hand. The only host folder the module mounts is where it
writes production records, so they survive module restarts and image updates.

Validation is the Azure CLI's own (azext_iot `_validate_payload_schema`): each system twin alone
against the vendored schema of its `schemaVersion`, plus what those draft-04 schemas cannot say
(createOptions pieces join into a JSON object, routes name modules that exist).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal

from visionops.errors import ConfigError, VisionOpsError

AGENT_IMAGE = "mcr.microsoft.com/azureiotedge-agent:1.5"
HUB_IMAGE = "mcr.microsoft.com/azureiotedge-hub:1.5"
AGENT_SCHEMA_VERSION = "1.1"
HUB_SCHEMA_VERSION = "1.2"
SCHEMA_FILES = {
    "$edgeAgent": "azure-iot-edgeagent-deployment-{}.json",
    "$edgeHub": "azure-iot-edgehub-deployment-{}.json",
}
# edgeHub's own listeners (AMQPS, MQTTS, HTTPS/WebSockets), as every reference manifest binds them
HUB_CREATE_OPTIONS = {"HostConfig": {"PortBindings": {p: [{"HostPort": p.split("/")[0]}]
                                                      for p in ("443/tcp", "5671/tcp", "8883/tcp")}}}
CONTAINER_PORT = 5001  # environments/docker/inference/Dockerfile: EXPOSE 5001, azmlinfsrv --port 5001
MODEL_DIR_IN_IMAGE = "/var/azureml-app/model"  # that image's AZUREML_MODEL_DIR
RECORDS_DIR_IN_CONTAINER = "/var/visionops/production"
CREATE_OPTIONS_CHUNK = 512
CREATE_OPTIONS_MAX_CHUNKS = 8
MODULE_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")  # the edgeAgent schema's pattern for module names
# Docker's reference grammar, simplified: lower-case path components, a tag of word characters
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?$")
_ROUTE_SOURCE = re.compile(r"/messages/modules/([^/\s]+)/")
RestartPolicy = Literal["never", "on-failure", "on-unhealthy", "always"]
RESTART_POLICIES: tuple[str, ...] = ("never", "on-failure", "on-unhealthy", "always")


class ManifestError(VisionOpsError):
    """A deployment manifest that IoT Hub (or the Azure CLI) would refuse; lists every problem."""

    def __init__(self, problems: list[str], where: str = "deployment manifest"):
        self.problems = problems
        super().__init__(f"{where} is not valid: " + "; ".join(problems))


@dataclass(frozen=True)
class EdgeModel:
    """What the module serves, read from the registry without loading the model."""

    name: str
    version: str
    task: str
    onnx: str  # file name of the ONNX export inside the model folder
    imgsz: int | None = None


@dataclass(frozen=True)
class EdgeOptions:
    """How the module is built and run; every field is a `visionops edge manifest` option."""

    registry: str
    image: str = "visionops/edge"
    tag: str | None = None  # default: default_tag(model)
    module: str = "visionops"
    host_port: int = CONTAINER_PORT
    collect: bool = True
    records_host_dir: str = "/var/lib/visionops/production"
    restart_policy: str = "always"
    store_forward_ttl_s: int = 7200
    registry_username: str | None = None
    registry_password: str | None = None


def default_tag(model: EdgeModel) -> str:
    """`<model>-v<version>`: one tag per registered version, so a manifest pins exactly one model."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model.name}-v{model.version}").strip(".-")
    return tag[:128]


def check_options(options: EdgeOptions) -> None:
    """Refuse options IoT Edge or Docker would refuse later on the device, naming the option."""
    problems: list[str] = []
    registry = options.registry.strip()
    if not _REGISTRY.match(registry):
        problems.append(f"--registry {options.registry!r}: expected a login server such as myacr.azurecr.io "
                        "(no scheme, no path)")
    if not _REPOSITORY.match(options.image):
        problems.append(f"--image {options.image!r}: expected a lower-case repository path such as visionops/edge")
    if options.tag is not None and not _TAG.match(options.tag):
        problems.append(f"--tag {options.tag!r}: letters, digits, '_', '.', '-' (128 at most, not starting with "
                        "'.' or '-')")
    if not MODULE_NAME.match(options.module) or options.module.startswith("$"):
        problems.append(f"--module {options.module!r}: letters, digits, '_' and '-' only (IoT Edge module names)")
    if not 1 <= options.host_port <= 65535:
        problems.append(f"--port {options.host_port}: a TCP port is 1..65535")
    if options.restart_policy not in RESTART_POLICIES:
        problems.append(f"--restart-policy {options.restart_policy!r}: one of {', '.join(RESTART_POLICIES)}")
    if options.store_forward_ttl_s < 0:
        problems.append(f"--ttl {options.store_forward_ttl_s}: seconds, 0 or more")
    if options.collect and not options.records_host_dir.startswith("/"):
        problems.append(f"--records-dir {options.records_host_dir!r}: an absolute folder on the device")
    if (options.registry_username is None) != (options.registry_password is None):
        problems.append("registry credentials need both a user name and a password (or neither, for a registry "
                        "the device can pull from anonymously)")
    if problems:
        raise ConfigError("; ".join(problems))


def image_ref(model: EdgeModel, options: EdgeOptions) -> str:
    """The module image: `<registry>/<image>:<tag>`."""
    return f"{options.registry.strip()}/{options.image}:{options.tag or default_tag(model)}"


def serving_env(model: EdgeModel, settings: Any, options: EdgeOptions) -> dict[str, str]:
    """The VISIONOPS_* variables score.py reads in the container (see its docstring), from the
    settings in effect where the manifest is generated: the request limits, the model's name and
    version for the responses, and local collection into the mounted records folder. The backend
    is pinned to local: on a device, production records are files (Azure ML's collector exists
    only in Azure ML online deployments)."""
    env = {
        "VISIONOPS_BACKEND": "local",
        "VISIONOPS_SERVING_RUNTIME": "onnx",
        "VISIONOPS_SERVING_MODEL_NAME": model.name,
        "VISIONOPS_SERVING_MODEL_VERSION": model.version,
        "VISIONOPS_MAX_PAYLOAD_BYTES": str(settings.max_payload_bytes),
        "VISIONOPS_MAX_IMAGE_PIXELS": str(settings.max_image_pixels),
        "VISIONOPS_MAX_IMAGES_PER_REQUEST": str(settings.max_images_per_request),
        "VISIONOPS_MIN_IMAGE_SIDE": str(settings.min_image_side),
        "VISIONOPS_COLLECT": "true" if options.collect else "false",
    }
    if options.collect:
        env |= {
            "VISIONOPS_COLLECT_DIR": RECORDS_DIR_IN_CONTAINER,
            "VISIONOPS_COLLECT_SAMPLE_RATE": str(settings.collect_sample_rate),
            "VISIONOPS_COLLECT_SAMPLE_MAX_BYTES": str(settings.collect_sample_max_bytes),
            "VISIONOPS_COLLECT_MAX_FILE_BYTES": str(settings.collect_max_file_bytes),
            "VISIONOPS_COLLECT_MAX_FILES": str(settings.collect_max_files),
        }
    if settings.threads:
        env["VISIONOPS_THREADS"] = str(settings.threads)
    return env


def module_create_options(options: EdgeOptions) -> dict[str, Any]:
    """Docker create options of the scoring module: the scoring port published on the device, the
    records folder mounted (when collecting), and bounded container logs (edge disks are small)."""
    port = f"{CONTAINER_PORT}/tcp"
    host_config: dict[str, Any] = {
        "PortBindings": {port: [{"HostPort": str(options.host_port)}]},
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
    }
    if options.collect:
        host_config["Binds"] = [f"{options.records_host_dir.rstrip('/') or '/'}:{RECORDS_DIR_IN_CONTAINER}"]
    return {"ExposedPorts": {port: {}}, "HostConfig": host_config}


def split_create_options(create_options: Mapping[str, Any]) -> dict[str, str]:
    """`createOptions` (+ `createOptions01`...) as edgeAgent reads them: compact JSON in pieces of
    at most 512 characters. More than 8 pieces is refused (edgeAgent would drop the rest)."""
    text = json.dumps(create_options, separators=(",", ":"), sort_keys=True)
    pieces = [text[i:i + CREATE_OPTIONS_CHUNK] for i in range(0, len(text), CREATE_OPTIONS_CHUNK)] or ["{}"]
    if len(pieces) > CREATE_OPTIONS_MAX_CHUNKS:
        raise ConfigError(f"the module's create options are {len(text)} characters; IoT Edge takes at most "
                          f"{CREATE_OPTIONS_CHUNK * CREATE_OPTIONS_MAX_CHUNKS} (8 pieces of 512)")
    return {("createOptions" if i == 0 else f"createOptions{i:02d}"): p for i, p in enumerate(pieces)}


def join_create_options(module_settings: Mapping[str, Any]) -> str:
    """The inverse of split_create_options: the pieces in order, as one string ('' when none)."""
    keys = sorted(k for k in module_settings if re.fullmatch(r"createOptions(\d\d)?", k))
    return "".join(str(module_settings[k]) for k in keys)


def route_name(module: str) -> str:
    return f"{module}ToUpstream"


def build_manifest(model: EdgeModel, options: EdgeOptions, env: Mapping[str, str]) -> dict[str, Any]:
    """The whole deployment manifest (`{"modulesContent": ...}`) for one scoring module."""
    check_options(options)
    runtime_settings: dict[str, Any] = {"minDockerVersion": "v1.25"}
    if options.registry_username is not None:
        registry = options.registry.strip()
        runtime_settings["registryCredentials"] = {
            re.sub(r"[^A-Za-z0-9_-]", "_", registry.split(".")[0]) or "registry": {
                "username": options.registry_username,
                "password": options.registry_password or "",
                "address": registry,
            }
        }
    module = options.module
    ttl = options.store_forward_ttl_s
    return {
        "modulesContent": {
            "$edgeAgent": {
                "properties.desired": {
                    "schemaVersion": AGENT_SCHEMA_VERSION,
                    "runtime": {"type": "docker", "settings": runtime_settings},
                    "systemModules": {
                        "edgeAgent": {"type": "docker", "settings": {"image": AGENT_IMAGE, "createOptions": "{}"}},
                        "edgeHub": {
                            "type": "docker",
                            "status": "running",
                            "restartPolicy": "always",
                            "settings": {"image": HUB_IMAGE, **split_create_options(HUB_CREATE_OPTIONS)},
                        },
                    },
                    "modules": {
                        module: {
                            "version": model.version,
                            "type": "docker",
                            "status": "running",
                            "restartPolicy": options.restart_policy,
                            "env": {k: {"value": v} for k, v in env.items()},
                            "settings": {
                                "image": image_ref(model, options),
                                **split_create_options(module_create_options(options)),
                            },
                        }
                    },
                }
            },
            "$edgeHub": {
                "properties.desired": {
                    "schemaVersion": HUB_SCHEMA_VERSION,
                    "routes": {
                        route_name(module): {
                            "route": f"FROM /messages/modules/{module}/outputs/* INTO $upstream",
                            "priority": 0,
                            "timeToLiveSecs": ttl,
                        }
                    },
                    "storeAndForwardConfiguration": {"timeToLiveSecs": ttl},
                }
            },
            # The module's own twin: which model the device is meant to run, queryable in IoT Hub
            # (`SELECT * FROM devices.modules WHERE properties.desired.model.version = '3'`).
            module: {
                "properties.desired": {
                    "model": {"name": model.name, "version": model.version, "task": model.task, "runtime": "onnx"}
                }
            },
        }
    }


@lru_cache(maxsize=8)
def load_schema(twin: str, schema_version: str) -> dict[str, Any] | None:
    """The vendored schema of `twin` ($edgeAgent / $edgeHub) at `schema_version`, None when not vendored."""
    name = SCHEMA_FILES[twin].format(schema_version)
    resource = files("visionops.edge").joinpath("schemas", name)
    if not resource.is_file():
        return None
    return json.loads(resource.read_text(encoding="utf-8"))


def _pointer(parts: Any) -> str:
    """A JSON-pointer-like path of a field (`/modulesContent/$edgeAgent/properties.desired/...`)."""
    return "/" + "/".join(str(p) for p in parts)


def schema_problems(manifest: Any) -> list[str]:
    """Every schema violation of the two system twins, as 'path: message' (empty when valid)."""
    try:
        from jsonschema import Draft4Validator  # the schemas say draft-04
    except ImportError:
        raise VisionOpsError("checking an IoT Edge manifest needs the jsonschema package: "
                             "pip install -c requirements/constraints.txt jsonschema") from None

    if not isinstance(manifest, Mapping) or not isinstance(manifest.get("modulesContent"), Mapping):
        return ["/modulesContent: missing (a deployment manifest is {\"modulesContent\": {...}})"]
    content = manifest["modulesContent"]
    problems: list[str] = []
    for twin in SCHEMA_FILES:
        base = ["modulesContent", twin]
        desired = content.get(twin, {}).get("properties.desired") if isinstance(content.get(twin), Mapping) else None
        if not isinstance(desired, Mapping):
            problems.append(f"{_pointer([*base, 'properties.desired'])}: missing")
            continue
        version = str(desired.get("schemaVersion", ""))
        schema = load_schema(twin, version)
        have = AGENT_SCHEMA_VERSION if twin == "$edgeAgent" else HUB_SCHEMA_VERSION
        if load_schema(twin, have) is None:  # an installation without the package data, not a bad manifest
            raise VisionOpsError(f"the vendored IoT Edge schema {SCHEMA_FILES[twin].format(have)} is missing from "
                                 "this installation of visionops (src/visionops/edge/schemas/); reinstall it from "
                                 "the repository (pip install -e .)")
        if schema is None:
            problems.append(f"{_pointer([*base, 'properties.desired', 'schemaVersion'])}: {version!r} has no "
                            f"vendored schema (use {have!r})")
            continue
        validator = Draft4Validator(schema)
        for err in sorted(validator.iter_errors({twin: content[twin]}), key=lambda e: list(e.absolute_path)):
            problems.append(f"{_pointer(['modulesContent', *err.absolute_path])}: {err.message}")
    return problems


def structure_problems(manifest: Any) -> list[str]:
    """What the draft-04 schemas cannot check: every module's createOptions pieces (each at most
    512 characters) join into a JSON object, and every route's source module exists."""
    try:
        desired = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
        modules = dict(desired.get("modules") or {})
        system = dict(desired.get("systemModules") or {})
        routes = dict(manifest["modulesContent"]["$edgeHub"]["properties.desired"].get("routes") or {})
    except (KeyError, TypeError, AttributeError):
        return []  # schema_problems reports the missing parts
    problems: list[str] = []
    for group, entries in (("systemModules", system), ("modules", modules)):
        for name, spec in entries.items():
            settings = spec.get("settings") if isinstance(spec, Mapping) else None
            if not isinstance(settings, Mapping):
                continue
            where = _pointer(["modulesContent", "$edgeAgent", "properties.desired", group, name, "settings"])
            for key, piece in settings.items():
                if key.lower().startswith("createoptions") and isinstance(piece, str) \
                        and len(piece) > CREATE_OPTIONS_CHUNK:
                    problems.append(f"{where}/{key}: {len(piece)} characters, more than {CREATE_OPTIONS_CHUNK}; "
                                    "split it into createOptions01, createOptions02...")
            text = join_create_options(settings)
            if not text:
                continue
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}/createOptions: not a JSON string ({exc.msg} at character {exc.pos})")
                continue
            if not isinstance(parsed, dict):
                problems.append(f"{where}/createOptions: the JSON must be an object, got {type(parsed).__name__}")
    for name, route in routes.items():
        text = route.get("route") if isinstance(route, Mapping) else route
        for source in _ROUTE_SOURCE.findall(str(text)):
            if source not in modules:
                problems.append(f"/modulesContent/$edgeHub/properties.desired/routes/{name}: module {source!r} "
                                f"is not in the deployment (modules: {', '.join(sorted(modules)) or 'none'})")
    return problems


def manifest_problems(manifest: Any) -> list[str]:
    return schema_problems(manifest) + structure_problems(manifest)


def require_valid(manifest: Any, where: str = "deployment manifest") -> None:
    """Raise ManifestError listing every problem (path of the field and why) unless valid."""
    problems = manifest_problems(manifest)
    if problems:
        raise ManifestError(problems, where)


def load_manifest(path: Any) -> dict[str, Any]:
    """A deployment.json from disk; bad JSON is an error naming the file, line and column."""
    from pathlib import Path

    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ManifestError([f"{p}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})"], str(p)) from None

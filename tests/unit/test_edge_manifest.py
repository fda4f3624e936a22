"""The IoT Edge deployment manifest (`visionops edge manifest`), checked offline: its structure,
the Azure CLI's own edgeAgent/edgeHub schemas (vendored), broken manifests refused with the path
of the bad field, and a model without an ONNX export refused with what to do.

The registered models here are registry entries with stand-in weight files: the command reads the
registry (tags, files) and never loads a model, so nothing is trained."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from visionops.edge import manifest as em
from visionops.errors import ConfigError

CLI = str(Path(sys.executable).with_name("visionops"))
SCHEMAS = Path(em.__file__).with_name("schemas")
MODEL = em.EdgeModel(name="shapes-detector", version="3", task="detect", onnx="best.onnx", imgsz=96)
OPTIONS = em.EdgeOptions(registry="myacr.azurecr.io")
AGENT = ("modulesContent", "$edgeAgent", "properties.desired")


def _manifest(options: em.EdgeOptions = OPTIONS) -> dict:
    from visionops.settings import get_settings

    return em.build_manifest(MODEL, options, em.serving_env(MODEL, get_settings(), options))


def _at(data: dict, *path: str):
    for key in path:
        data = data[key]
    return data


def _module(manifest: dict, name: str = "visionops") -> dict:
    return _at(manifest, *AGENT, "modules", name)


def _definitions() -> dict:
    return json.loads((SCHEMAS / "azure-iot-edgeagent-deployment-1.1.json").read_text())["definitions"]


# --- structure -------------------------------------------------------------------------------------

def test_manifest_structure():
    m = _manifest()
    desired = _at(m, *AGENT)
    assert desired["schemaVersion"] == "1.1" and desired["runtime"]["type"] == "docker"
    assert desired["systemModules"]["edgeAgent"]["settings"]["image"] == "mcr.microsoft.com/azureiotedge-agent:1.5"
    assert desired["systemModules"]["edgeHub"]["settings"]["image"] == "mcr.microsoft.com/azureiotedge-hub:1.5"
    [name] = desired["modules"]
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", name)
    module = desired["modules"][name]
    statuses, policies = _definitions()["status"]["enum"], _definitions()["restartPolicy"]["enum"]
    assert module["status"] in statuses and module["restartPolicy"] in policies
    assert desired["systemModules"]["edgeHub"]["restartPolicy"] in policies
    assert module["settings"]["image"] == "myacr.azurecr.io/visionops/edge:shapes-detector-v3"

    raw = module["settings"]["createOptions"]
    assert isinstance(raw, str)  # a JSON *string*, as edgeAgent reads it
    options = json.loads(raw)
    assert options["ExposedPorts"] == {"5001/tcp": {}}
    assert options["HostConfig"]["PortBindings"]["5001/tcp"] == [{"HostPort": "5001"}]
    assert options["HostConfig"]["Binds"] == ["/var/lib/visionops/production:/var/visionops/production"]
    hub_options = json.loads(desired["systemModules"]["edgeHub"]["settings"]["createOptions"])
    assert set(hub_options["HostConfig"]["PortBindings"]) == {"443/tcp", "5671/tcp", "8883/tcp"}

    env = {k: v["value"] for k, v in module["env"].items()}
    assert env["VISIONOPS_SERVING_RUNTIME"] == "onnx" and env["VISIONOPS_BACKEND"] == "local"
    assert env["VISIONOPS_SERVING_MODEL_NAME"] == "shapes-detector" and env["VISIONOPS_SERVING_MODEL_VERSION"] == "3"
    assert env["VISIONOPS_COLLECT"] == "true" and env["VISIONOPS_COLLECT_DIR"] == "/var/visionops/production"
    assert all(isinstance(v, str) for v in env.values())

    hub = _at(m, "modulesContent", "$edgeHub", "properties.desired")
    assert hub["schemaVersion"] == "1.2" and hub["storeAndForwardConfiguration"] == {"timeToLiveSecs": 7200}
    [(route_name, route)] = hub["routes"].items()
    assert route["route"] == f"FROM /messages/modules/{name}/outputs/* INTO $upstream" and name in route_name
    twin = _at(m, "modulesContent", name, "properties.desired", "model")
    assert twin == {"name": "shapes-detector", "version": "3", "task": "detect", "runtime": "onnx"}


def test_options_change_what_they_should():
    m = _manifest(em.EdgeOptions(registry="reg.example.com:5000", image="team/scorer", tag="v3-edge",
                                 module="scorer_1", host_port=8080, collect=False, restart_policy="on-unhealthy",
                                 store_forward_ttl_s=60))
    module = _module(m, "scorer_1")
    assert module["settings"]["image"] == "reg.example.com:5000/team/scorer:v3-edge"
    assert module["restartPolicy"] == "on-unhealthy"
    options = json.loads(module["settings"]["createOptions"])
    assert options["HostConfig"]["PortBindings"]["5001/tcp"] == [{"HostPort": "8080"}]
    assert "Binds" not in options["HostConfig"]  # nothing to mount when collection is off
    env = {k: v["value"] for k, v in module["env"].items()}
    assert env["VISIONOPS_COLLECT"] == "false" and "VISIONOPS_COLLECT_DIR" not in env
    hub = _at(m, "modulesContent", "$edgeHub", "properties.desired")
    assert "scorer_1" in hub["routes"]["scorer_1ToUpstream"]["route"] and hub["storeAndForwardConfiguration"] == {
        "timeToLiveSecs": 60}
    assert em.manifest_problems(m) == []


# --- schema-valid ------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    OPTIONS,
    em.EdgeOptions(registry="myacr.azurecr.io", registry_username="puller", registry_password="s3cret"),
    em.EdgeOptions(registry="myacr.azurecr.io", collect=False, restart_policy="never"),
], ids=["default", "registry-credentials", "no-collect"])
def test_generated_manifest_is_schema_valid(options):
    m = _manifest(options)
    assert em.schema_problems(m) == [] and em.structure_problems(m) == []
    if options.registry_username:
        creds = _at(m, *AGENT, "runtime", "settings", "registryCredentials")
        assert list(creds.values()) == [{"username": "puller", "password": "s3cret", "address": "myacr.azurecr.io"}]


def test_vendored_schemas_are_the_recorded_upstream_files():
    source = (SCHEMAS / "SOURCE.md").read_text()
    rows = re.findall(r"^\| `([^`]+\.json)` \| (https://github\.com/Azure/azure-iot-cli-extension/blob/[0-9a-f]{40}/"
                      r"\S+) \| ([0-9a-f]{40}) \| ([0-9a-f]{64}) \|$", source, re.M)
    assert {r[0] for r in rows} == {p.name for p in SCHEMAS.glob("*.json")} and len(rows) == 2
    for name, url, _blob, sha in rows:
        assert url.endswith(f"/azext_iot/assets/{name}")
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == sha, f"{name} differs from upstream"
    assert "MIT License" in source


# --- broken manifests --------------------------------------------------------------------------------

def _break_status(m):
    _module(m)["status"] = "paused"


def _break_create_options_object(m):
    settings = _module(m)["settings"]
    settings["createOptions"] = json.loads(settings["createOptions"])  # a template's object, not a string


def _break_module_name(m):
    modules = _at(m, *AGENT, "modules")
    modules["bad name"] = modules.pop("visionops")


def _break_image(m):
    del _module(m)["settings"]["image"]


def _break_route(m):
    hub = _at(m, "modulesContent", "$edgeHub", "properties.desired")
    hub["routes"]["ghost"] = "FROM /messages/modules/ghost/outputs/* INTO $upstream"


def _break_create_options_json(m):
    _module(m)["settings"]["createOptions"] = '{"HostConfig": {'


def _break_schema_version(m):
    _at(m, *AGENT)["schemaVersion"] = "9.9"


def _break_ttl(m):
    _at(m, "modulesContent", "$edgeHub", "properties.desired", "storeAndForwardConfiguration")["timeToLiveSecs"] = "2h"


MODULE = "/modulesContent/$edgeAgent/properties.desired/modules"
BROKEN = [
    (_break_status, f"{MODULE}/visionops/status", "'paused' is not one of"),
    (_break_create_options_object, f"{MODULE}/visionops/settings/createOptions", "is not of type 'string'"),
    (_break_module_name, MODULE, "'bad name' does not match any of the regexes: '^[a-zA-Z0-9_-]+$'"),
    (_break_image, f"{MODULE}/visionops/settings", "'image' is a required property"),
    (_break_route, "/modulesContent/$edgeHub/properties.desired/routes/ghost", "module 'ghost' is not in"),
    (_break_create_options_json, f"{MODULE}/visionops/settings/createOptions", "not a JSON string"),
    (_break_schema_version, "/modulesContent/$edgeAgent/properties.desired/schemaVersion", "no vendored schema"),
    (_break_ttl, "/modulesContent/$edgeHub/properties.desired/storeAndForwardConfiguration/timeToLiveSecs",
     "is not of type 'integer'"),
]


@pytest.mark.parametrize(("breaker", "path", "why"), BROKEN, ids=[b[0].__name__.removeprefix("_break_")
                                                                   for b in BROKEN])
def test_broken_manifest_is_refused_naming_the_field(breaker, path, why):
    m = copy.deepcopy(_manifest())
    breaker(m)
    with pytest.raises(em.ManifestError) as info:
        em.require_valid(m)
    assert any(p.startswith(f"{path}: ") and why in p for p in info.value.problems), info.value.problems
    assert path in str(info.value)


def test_an_installation_without_the_schemas_says_so(monkeypatch):
    from visionops.errors import VisionOpsError

    monkeypatch.setattr(em, "load_schema", lambda twin, version: None)
    with pytest.raises(VisionOpsError, match="edgeagent-deployment-1.1.json is missing from this installation"):
        em.schema_problems(_manifest())


def test_not_a_manifest_at_all():
    assert em.manifest_problems({"moduleContent": {}}) == [
        '/modulesContent: missing (a deployment manifest is {"modulesContent": {...}})']


# --- createOptions pieces and option checks ---------------------------------------------------------

def test_long_create_options_are_split_in_512_character_pieces():
    big = {"Env": [f"K{i}={'x' * 40}" for i in range(40)], "HostConfig": {"Privileged": False}}
    pieces = em.split_create_options(big)
    assert list(pieces) == ["createOptions", *(f"createOptions{i:02d}" for i in range(1, len(pieces)))]
    assert len(pieces) > 1 and all(len(p) <= 512 for p in pieces.values())
    assert json.loads(em.join_create_options(pieces)) == big
    m = _manifest()
    settings = _module(m)["settings"]
    del settings["createOptions"]
    settings.update(pieces)
    assert em.manifest_problems(m) == []  # the schema allows createOptionsNN; the pieces join to JSON
    with pytest.raises(ConfigError, match="at most 4096"):
        em.split_create_options({"Env": ["x" * 5000]})


@pytest.mark.parametrize(("field", "value", "option"), [
    ("module", "my module", "--module"), ("module", "$edgeHub", "--module"),
    ("registry", "https://acr.io/x", "--registry"),
    ("image", "Visionops/Edge", "--image"), ("tag", "-bad", "--tag"), ("host_port", 70000, "--port"),
    ("restart_policy", "sometimes", "--restart-policy"), ("records_host_dir", "relative/dir", "--records-dir"),
    ("registry_username", "puller", "registry credentials"),
])
def test_bad_options_are_refused_naming_the_option(field, value, option):
    options = em.EdgeOptions(**{"registry": "myacr.azurecr.io", field: value})
    with pytest.raises(ConfigError, match=re.escape(option)):
        em.build_manifest(MODEL, options, {})


# --- the command, on registry entries -----------------------------------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project root whose registry holds `edgy-detector` v1 (weights + ONNX export, task detect)
    and `pt-only-detector` v1 (no ONNX): stand-in files, registered the way the lifecycle does."""
    import mlflow

    from visionops import registry, tracking
    from visionops.evaluation.decision import DecisionRule, decide
    from visionops.settings import get_settings

    root = tmp_path_factory.mktemp("edge-project")
    settings = get_settings(root=root)
    files = root / "files"
    files.mkdir()
    (files / "best.pt").write_bytes(b"stand-in weights")
    (files / "best.onnx").write_bytes(b"stand-in onnx export")
    decision = decide({"map50_95": 0.5}, None, DecisionRule(floor=0.0))
    tracking.configure_mlflow(settings)
    for name, extra in (("edgy-detector", {"onnx": files / "best.onnx"}), ("pt-only-detector", {})):
        with mlflow.start_run(run_name=name) as run:
            pass
        registry.register(settings, decision=decision, weights=files / "best.pt", train_run_id=run.info.run_id,
                          tags={"dataset.name": "shapes", "dataset.version": "abc", "imgsz": 96, "task": "detect"},
                          info={"classes": ["circle", "square"], "imgsz": 96, "task": "detect"},
                          extra_artifacts=extra, name=name)
    return root


def _cli(*args: str, root: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "VISIONOPS_EDGE_REGISTRY_PASSWORD"}
    return subprocess.run([CLI, *args], env={**environ, "VISIONOPS_ROOT": str(root), **env},
                          capture_output=True, text=True, timeout=300)


def test_command_writes_a_valid_deployment_folder(project):
    proc = _cli("edge", "manifest", "--registry", "myacr.azurecr.io", "--model", "edgy-detector:1", root=project)
    assert proc.returncode == 0, proc.stderr
    folder = project / "outputs" / "edge" / "edgy-detector-1"
    m = em.load_manifest(folder / "deployment.json")
    assert em.manifest_problems(m) == []
    assert _module(m)["settings"]["image"] == "myacr.azurecr.io/visionops/edge:edgy-detector-v1"
    assert _at(m, "modulesContent", "visionops", "properties.desired", "model")["version"] == "1"
    assert sorted(p.name for p in (folder / "model").iterdir()) == ["best.onnx", "model_info.json"]  # no .pt
    dockerfile = (folder / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=myacr.azurecr.io/visionops/inference:latest" in dockerfile
    assert "COPY model/ /var/azureml-app/model/" in dockerfile
    readme = (folder / "README.md").read_text()
    assert "az iot edge set-modules" in readme
    assert "docker push myacr.azurecr.io/visionops/edge:edgy-detector-v1" in readme
    assert "deployment.json" in proc.stdout and "valid" in proc.stdout

    # `edge validate` agrees, and names the bad field once the file is broken by hand
    assert _cli("edge", "validate", str(folder / "deployment.json"), root=project).returncode == 0
    _module(m)["restartPolicy"] = "sometimes"
    broken = folder / "broken.json"
    broken.write_text(json.dumps(m))
    proc = _cli("edge", "validate", str(broken), root=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{MODULE}/visionops/restartPolicy: 'sometimes' is not one of" in proc.stderr
    broken.write_text('{"modulesContent":\n  {,}}')
    proc = _cli("edge", "validate", str(broken), root=project)
    assert proc.returncode == 1 and f"{broken}:2:4: not JSON" in proc.stderr


def test_model_without_onnx_is_refused_with_what_to_do(project):
    proc = _cli("edge", "manifest", "--registry", "myacr.azurecr.io", "--model", "pt-only-detector",
                root=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert "pt-only-detector v1 has no ONNX export" in message and "visionops register" in message
    assert not (project / "outputs" / "edge" / "pt-only-detector-1").exists()


def test_registry_user_needs_the_password_from_the_environment(project):
    args = ("edge", "manifest", "--registry", "myacr.azurecr.io", "--model", "edgy-detector",
            "--registry-username", "puller", "--out")
    proc = _cli(*args, str(project / "creds-missing"), root=project)
    assert proc.returncode == 1 and "VISIONOPS_EDGE_REGISTRY_PASSWORD" in proc.stderr
    proc = _cli(*args, str(project / "creds"), root=project, VISIONOPS_EDGE_REGISTRY_PASSWORD="s3cret")
    assert proc.returncode == 0, proc.stderr
    creds = _at(em.load_manifest(project / "creds" / "deployment.json"), *AGENT, "runtime", "settings",
                "registryCredentials")
    assert list(creds.values())[0]["password"] == "s3cret"

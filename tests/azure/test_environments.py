"""environments/: conda files agree with the project's pins, Azure ML environment YAMLs load with
azure-ai-ml, the Dockerfiles bake in what Ultralytics would otherwise download at run time, and each
inference runtime has its own environment (conda file, Azure ML YAML, Dockerfile, pyproject extra)
that agree with one another; the ONNX one carries no torch, torchvision or Ultralytics."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_environment

from visionops.workspace.azure_entities import environment_asset

pytestmark = pytest.mark.azure

CONDA = ("development", "training", "deployment", "deployment-pytorch")
DOCKER = ("training", "inference", "inference-pytorch", "agent")
# runtime -> (conda file, Azure ML environment YAML, Dockerfile folder, pyproject extra)
INFERENCE = {
    "onnx": ("deployment", "inference", "inference", "onnx"),
    "pytorch": ("deployment-pytorch", "inference-pytorch", "inference-pytorch", "pytorch"),
}
HEAVY = {"torch", "torchvision", "ultralytics", "opencv-python", "opencv-python-headless"}  # not in the ONNX image
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def constraints(repo_root) -> dict[str, str]:
    pins = {}
    for line in (repo_root / "requirements" / "constraints.txt").read_text().splitlines():
        if m := _NAME.match(line.strip()):
            pins[_norm(m.group(1))] = m.group(3)
    return pins


def _pip_lines(path: Path) -> list[str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return [line for d in deps if isinstance(d, dict) for line in d.get("pip", [])]


@pytest.mark.parametrize("name", CONDA)
def test_conda_pins_equal_the_constraints(repo_root, constraints, name):
    path = repo_root / "environments" / "conda" / f"{name}.yml"
    env = yaml.safe_load(path.read_text())
    assert "python=3.11" in env["dependencies"]  # pyproject: requires-python >= 3.11
    pinned = {}
    for line in _pip_lines(path):
        if line.startswith(("-c ", "-e ", "-r ")):
            continue
        m = _NAME.match(line)
        assert m, f"{path.name}: {line!r} is not pinned with =="
        pinned[_norm(m.group(1))] = m.group(3)
    wrong = {k: (v, constraints.get(k)) for k, v in pinned.items() if constraints.get(k) != v}
    assert wrong == {}, f"{path.name} disagrees with requirements/constraints.txt (file, constraints): {wrong}"


def test_conda_files_cover_what_each_stage_imports(repo_root):
    def names(env: str) -> set[str]:
        return {_norm(_NAME.match(x).group(1)) for x in _pip_lines(repo_root / "environments" / "conda" / f"{env}.yml")
                if _NAME.match(x)}

    training, onnx, pytorch = names("training"), names("deployment"), names("deployment-pytorch")
    assert {"torch", "torchvision", "ultralytics", "mlflow", "azureml-mlflow", "onnx", "onnxslim", "pydantic-settings",
            "typer", "matplotlib", "pandas"} <= training
    scorer = {"azureml-inference-server-http", "onnxruntime", "pydantic", "pydantic-settings", "numpy", "pillow"}
    assert scorer <= onnx and onnx & HEAVY == set()
    assert scorer | {"torch", "torchvision", "ultralytics"} <= pytorch
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    dev_lines = _pip_lines(repo_root / "environments" / "conda" / "development.yml")
    assert "-c ../../requirements/constraints.txt" in dev_lines and "-e ../..[dev,azure]" in dev_lines
    assert (repo_root / "environments" / "conda" / "../../requirements/constraints.txt").resolve().is_file()
    assert project["requires-python"] == ">=3.11"


@pytest.mark.parametrize("kind", ["training", "inference", "inference-pytorch"])
def test_azureml_environment_yaml_loads(repo_root, kind):
    path = repo_root / "environments" / "azureml" / f"{kind}.yml"
    env = load_environment(source=str(path))
    assert env.name == f"visionops-{kind}"
    assert env.image.startswith("mcr.microsoft.com/azureml/")
    # conda_file is relative to the YAML (a classic mistake): it resolved and was read
    conda = {"training": "visionops-training", "inference": "visionops-deployment",
             "inference-pytorch": "visionops-deployment-pytorch"}[kind]
    assert isinstance(env.conda_file, dict) and env.conda_file["name"] == conda
    asset = environment_asset(kind, repo_root)
    assert asset.version and len(asset.version) == 12


def test_environment_version_changes_with_the_conda_file(repo_root, tmp_path):
    import shutil

    shutil.copytree(repo_root / "environments", tmp_path / "environments")
    before = environment_asset("training", tmp_path).version
    conda = tmp_path / "environments" / "conda" / "training.yml"
    conda.write_text(conda.read_text().replace("rich==15.0.0", "rich==15.0.1"))
    assert environment_asset("training", tmp_path).version != before  # a changed pin builds a new image


@pytest.mark.parametrize("image", DOCKER)
def test_dockerfiles_bake_everything_in(repo_root, image):
    text = (repo_root / "environments" / "docker" / image / "Dockerfile").read_text()
    instructions = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    assert re.search(r"pip install -c requirements/constraints\.txt", instructions), "installs under the pins"
    if image != "inference":  # every image with Ultralytics in it; the ONNX image has none (checked below)
        assert "Arial.ttf" in text and "DejaVuSans.ttf" in text, "Ultralytics' font is baked in"
        for env in ("YOLO_OFFLINE=1", "YOLO_AUTOINSTALL=0", "YOLO_CONFIG_DIR=/opt/ultralytics"):
            assert env in instructions, env
    for line in instructions.splitlines():
        if line.startswith(("CMD", "ENTRYPOINT")):
            assert not re.search(r"pip install|curl |wget |download", line), f"downloads at run time: {line}"
    for src in re.findall(r"^COPY\s+(\S+)\s", instructions, re.MULTILINE):
        assert (repo_root / src).exists(), f"COPY {src}: not in the build context (the repository root)"


def _extra(repo_root, name: str) -> set[str]:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    return {_norm(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in project["optional-dependencies"][name]}


@pytest.mark.parametrize("runtime", sorted(INFERENCE))
def test_each_runtime_has_one_consistent_environment(repo_root, constraints, runtime):
    """The conda file, the Azure ML YAML, the Dockerfile and the pyproject extra of a runtime name the
    same packages, and every one of them is pinned in requirements/constraints.txt."""
    conda_name, azureml, docker, extra = INFERENCE[runtime]
    conda = {_norm(_NAME.match(x).group(1)) for x in _pip_lines(repo_root / "environments" / "conda" /
                                                               f"{conda_name}.yml") if _NAME.match(x)}
    wanted = _extra(repo_root, extra)
    assert wanted <= conda, f"{conda_name}.yml lacks the {extra!r} extra's {sorted(wanted - conda)}"
    unpinned = sorted(wanted - set(constraints))
    assert not unpinned, f"not pinned in requirements/constraints.txt: {unpinned}"
    env = yaml.safe_load((repo_root / "environments" / "azureml" / f"{azureml}.yml").read_text())
    assert env["conda_file"] == f"../conda/{conda_name}.yml" and env["tags"]["runtime"] == runtime
    dockerfile = (repo_root / "environments" / "docker" / docker / "Dockerfile").read_text()
    assert f'pip install -c requirements/constraints.txt ".[{extra}]"' in dockerfile
    assert f"VISIONOPS_SERVING_RUNTIME={runtime}" in dockerfile
    if runtime == "onnx":
        assert (wanted | conda) & HEAVY == set(), "the ONNX environment must not install torch or Ultralytics"
        assert "apt-get" not in dockerfile, "the ONNX image needs no system libraries (headless OpenCV)"


def test_the_lean_base_and_the_full_stack(repo_root):
    """`pip install visionops[onnx]` must not pull torch in through the base dependencies, and
    `make setup` (-e ".[dev,azure]") must still install the whole stack through `dev`."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    base = {_norm(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in project["dependencies"]}
    assert base & (HEAVY | {"mlflow", "onnxruntime", "pandas", "matplotlib"}) == set()
    assert "visionops[full]" in project["optional-dependencies"]["dev"]
    assert {"torch", "ultralytics", "mlflow", "onnxruntime", "papermill"} <= _extra(repo_root, "full")
    assert '-e ".[dev,azure]"' in (repo_root / "Makefile").read_text()


def test_dockerignore_keeps_the_context_small(repo_root):
    text = (repo_root / ".dockerignore").read_text()
    rules = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "**"  # everything out, then an allow-list of what the images copy
    for allowed in ("!pyproject.toml", "!README.md", "!requirements/constraints.txt", "!src/**"):
        assert allowed in text

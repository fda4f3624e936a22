"""Every third-party package the code imports is declared in pyproject.toml, not merely brought in
by another package (which may drop it in any release)."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "visionops"
# import name -> distribution name, where they differ
DISTRIBUTION = {"PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python", "sklearn": "scikit-learn",
                "azureml_inference_server_http": "azureml-inference-server-http", "pydantic_settings":
                "pydantic-settings", "azure": "azure-ai-ml", "onnxruntime": "onnxruntime",
                "azureml": "azureml-ai-monitoring"}


def _imports() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("visionops", "__future__")}


def _declared(repo_root: Path) -> set[str]:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    names = set()
    for spec in specs:
        name = spec.split(";")[0]
        for sep in ("[", "=", ">", "<", "~", "!", " "):
            name = name.split(sep)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_every_imported_package_is_declared(repo_root):
    declared = _declared(repo_root)
    missing = sorted(m for m in _imports()
                     if DISTRIBUTION.get(m, m).lower().replace("_", "-") not in declared)
    assert missing == [], f"imported but not declared in pyproject.toml: {missing}"

"""Notebook hygiene, checked on the committed files (fast, no kernel):

- the six walkthrough notebooks exist, in order;
- each has exactly one cell tagged `parameters`, near the top, holding `profile` and `backend`
  and nothing but plain assignments of literals (so papermill can replace every value);
- kernelspec `python3` (custom kernel names break CI, see ../shared/research/anchors.md);
- no stored outputs and no execution counts (nbstripout; `.gitattributes` declares the filter);
- thin: no `def` / `class` in any cell, `visionops` imported, a summary recorded;
- the shape of a lesson: a title, "What you will learn", a closing summary with the next step;
- no hard-coded run ids, and Azure calls only under `if backend == "azure":`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
EXPECTED = [
    "00_environment_setup",
    "01_dataset_setup",
    "02_model_training",
    "03_model_evaluation",
    "04_model_deployment",
    "05_training_pipeline",
    "06_hyperparameter_tuning",
    "07_automl_benchmark",
    "08_monitoring_and_retraining",
]
HEX_ID = re.compile(r"\b[0-9a-f]{32}\b")
_TM = TransformerManager()


def _load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)


def _python(source: str) -> ast.Module:
    """A cell as Python: IPython magics (`%matplotlib inline`) become plain calls first."""
    return ast.parse(_TM.transform_cell(source))


def _params(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


def test_the_notebooks_in_order():
    found = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert found == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_hygiene(name):
    nb = _load(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"

    # one parameters cell, near the top, literal assignments only, with profile and backend
    params = _params(nb)
    assert len(params) == 1, f"{name}: {len(params)} cells tagged parameters"
    assert nb.cells.index(params[0]) <= 2
    tree = _python(params[0].source)
    names = []
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.dump(stmt)
        assert isinstance(stmt.targets[0], ast.Name)
        ast.literal_eval(stmt.value)  # papermill replaces literals; anything else would be lost
        names.append(stmt.targets[0].id)
    assert names[:2] == ["profile", "backend"], names
    assert len(names) == len(set(names))
    if name[:2] in {"00", "01", "02", "03", "04", "05"}:  # the lifecycle notebooks take the task (issue 12)
        assert "task" in names, f"{name}: no task parameter"

    code = [c for c in nb.cells if c.cell_type == "code"]
    imports_visionops = records_summary = False
    for c in code:
        assert c.get("outputs", []) == [], f"{name}: stored outputs (run nbstripout)"
        assert c.get("execution_count") is None, f"{name}: stored execution count (run nbstripout)"
        tree = _python(c.source)
        for node in ast.walk(tree):
            assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda), (
                f"{name}: logic belongs in the package, not in a notebook cell:\n{c.source}"
            )
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "visionops":
                imports_visionops = True
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "visionops" for a in node.names):
                imports_visionops = True
            if isinstance(node, ast.Attribute) and node.attr == "record_summary":
                records_summary = True
        assert not HEX_ID.search(c.source), f"{name}: a hard-coded run id"
    assert imports_visionops, f"{name}: does not import visionops"
    assert records_summary, f"{name}: records no summary (session.record_summary)"
    assert all(not c.get("outputs") for c in nb.cells)

    # the shape of a lesson
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {name[:2]} ")
    assert "## What you will learn" in first.source
    assert last.cell_type == "markdown" and "## Summary" in last.source
    if name != EXPECTED[-1]:
        nxt = EXPECTED[EXPECTED.index(name) + 1]
        assert f"({nxt}.ipynb)" in last.source, f"{name}: the summary should link the next notebook"
    prose = sum(c.cell_type == "markdown" for c in nb.cells)
    assert prose >= 5, f"{name}: explain the steps ({prose} markdown cells)"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebooks_never_branch_on_the_backend(name):
    """A notebook chooses the backend (its `backend` parameter) and calls the Workspace interface;
    it never tests which backend it runs on, nor calls a method only one backend has."""
    from visionops.workspace.base import Workspace

    interface = {n for n in dir(Workspace) if not n.startswith("_")}
    for c in _load(name).cells:
        if c.cell_type != "code":
            continue
        tree = _python(c.source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.If, ast.IfExp)):
                assert "backend" not in ast.unparse(node.test), f"{name}: branches on the backend\n{c.source}"
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "workspace" and not node.attr.startswith("_")):
                assert node.attr in interface, f"{name}: workspace.{node.attr} is not in the Workspace interface"


def test_profile_files_name_the_profile_and_only_notebook_parameters():
    from visionops.profiles import PROFILES

    parameters = set()
    for name in EXPECTED:
        for stmt in _python(_params(_load(name))[0].source).body:
            parameters.add(stmt.targets[0].id)
    files = sorted((NOTEBOOKS / "profiles").glob("*.yaml"))
    assert [p.stem for p in files] == sorted(PROFILES)
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert doc["profile"] == path.stem
        assert set(doc) <= parameters, f"{path.name}: {set(doc) - parameters} are not notebook parameters"


def test_git_strips_notebook_outputs():
    attributes = (REPO / ".gitattributes").read_text()
    assert re.search(r"^\*\.ipynb\s+.*filter=nbstripout", attributes, re.M)

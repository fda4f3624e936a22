"""The pipeline definition read without azure-ai-ml: component YAMLs, the graph, command rendering
the way Azure ML does it, and the translation the local runner applies (and nothing more)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from visionops.errors import ConfigError
from visionops.pipeline.components import (
    GRAPH,
    PIPELINE_INPUTS,
    Node,
    check_graph,
    check_knobs,
    load_components,
    pipeline_version,
)
from visionops.pipeline.executors import command_process
from visionops.pipeline.local_pipeline import build
from visionops.pipeline.steps import STEP_NAMES


@pytest.fixture(scope="module")
def specs():
    return load_components()


def test_one_component_per_step_running_the_steps_module(specs, repo_root):
    assert set(specs) == set(STEP_NAMES)
    for step, spec in specs.items():
        assert spec.name == f"visionops_{step}"
        assert spec.code == repo_root / "src"  # the snapshot is src/, filtered by src/.amlignore
        assert spec.command.startswith(f"python -m visionops.cli.steps {step} ")
        assert spec.environment == "azureml:visionops-training@latest"
        assert all(p.type == "uri_folder" for p in spec.outputs.values())


def test_graph_is_sound_and_covers_every_required_input(specs):
    assert check_graph(specs) == []
    assert [n.name for n in GRAPH] == list(STEP_NAMES)


def test_miswired_graphs_are_reported_in_words(specs):
    typo = (Node("validate", "validate", {"data": "pipeline.data"}),
            Node("train", "train", {"data": "pipeline.data", "epochz": "pipeline.epochs"}))
    problems = check_graph(specs, typo)
    assert any("input 'epochz' is not an input of visionops_train" in p for p in problems)
    missing = (Node("evaluate", "evaluate", {"model": "train.model", "data": "pipeline.data"}),)
    problems = check_graph(specs, missing)
    assert any("train.model is not an output of an earlier node" in p for p in problems)
    unbound = (Node("validate", "validate", {}),)
    assert any("required input 'data'" in p for p in check_graph(specs, unbound, PIPELINE_INPUTS))


def test_render_keeps_or_drops_optional_segments_like_azure(specs, tmp_path):
    train = specs["train"]
    data, out = tmp_path / "my data", tmp_path / "model"
    full = train.render({"data": data, "validation": tmp_path / "v", "epochs": 3}, {"model": out})
    assert f"--data {shlex.quote(str(data))}" in full  # quoted: a space in a path stays one word
    assert "--epochs 3" in full and "--validation" in full
    assert "--profile quick" in full  # the component's default
    assert "--imgsz" not in full and "--batch" not in full and "$[[" not in full and "${{" not in full
    bare = train.render({"data": data}, {"model": out})
    assert "--validation" not in bare and "--epochs" not in bare
    with pytest.raises(ConfigError, match="required input 'data'"):
        train.render({}, {"model": out})
    with pytest.raises(ConfigError, match="no port"):
        train.render({"data": data, "epochz": 3}, {"model": out})


def test_command_process_translates_only_python_and_pythonpath(tmp_path):
    argv, env = command_process("PYTHONPATH=src python -m visionops.cli.steps validate --data 'a b'",
                                tmp_path, {"PYTHONPATH": "/elsewhere"})
    assert argv == [sys.executable, "-m", "visionops.cli.steps", "validate", "--data", "a b"]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path / "src"), "/elsewhere"]
    with pytest.raises(ConfigError, match="must run `python"):
        command_process("bash -c 'rm -rf /'", tmp_path, {})


def test_build_binds_the_inputs_and_renders_every_command(tmp_path):
    from visionops.data.catalog import DatasetRef

    data = tmp_path / "data"
    data.mkdir()
    ref = DatasetRef(name="parts", version="abc", path=str(data), created="", counts={}, classes=["a"])
    built = build(ref, "smoke", {"epochs": 1, "imgsz": None})
    nodes = {n.name: n for n in built.nodes}
    assert list(nodes) == ["validate", "train", "evaluate", "register"]
    assert "--validation '<validate.report>'" in nodes["train"].command
    assert "--model '<train.model>'" in nodes["evaluate"].command
    assert "--evaluation '<evaluate.evaluation>'" in nodes["register"].command
    assert "--epochs 1" in nodes["train"].command and "--imgsz" not in nodes["train"].command
    assert "--profile smoke" in nodes["evaluate"].command and built.knobs == {"epochs": 1}
    assert built.version == pipeline_version() and built.dataset == ref
    with pytest.raises(ConfigError, match="not a folder"):
        build(ref.model_copy(update={"path": str(tmp_path / "missing")}), "smoke", {})
    with pytest.raises(ConfigError, match="takes no knob"):
        build(ref, "smoke", {"floor": 0.5})  # a decision knob cannot travel through the components


def test_unknown_knob_is_refused():
    check_knobs({"epochs": 1, "imgsz": 64, "batch": 2})
    with pytest.raises(ConfigError, match="epochz"):
        check_knobs({"epochz": 1})


def test_version_follows_the_definition(tmp_path, specs):
    copy = tmp_path / "components"
    copy.mkdir()
    for spec in specs.values():
        (copy / spec.path.name).write_text(spec.path.read_text())
    assert pipeline_version(copy) == pipeline_version()
    train = copy / "train.yml"
    train.write_text(train.read_text().replace("default: quick", "default: smoke", 1))
    assert pipeline_version(copy) != pipeline_version()


def test_component_yaml_paths_are_relative(specs):
    """A dumped pipeline has absolute paths of the machine that dumped it; the sources never do."""
    for spec in specs.values():
        text = spec.path.read_text()
        assert str(Path.home()) not in text and "/work/" not in text

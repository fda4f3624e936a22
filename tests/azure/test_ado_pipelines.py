"""Azure DevOps pipelines, offline: every file under ado_pipelines/ validates against Microsoft's
schema (relaxed only where the schema contradicts Microsoft's docs), every template reference
names a file, nothing masks a failure, and the validator does catch real mistakes."""

from __future__ import annotations

from pathlib import Path

# scripts/ado_schema.py: a CI tool, not part of the package (tests/conftest.py puts scripts/ on the path)
import ado_schema
import pytest
import yaml

pytestmark = pytest.mark.azure

PIPELINES = ("ci_pipeline", "model_training_pipeline", "model_deployment_pipeline", "docker_image_pipeline",
             "webapp_deployment_pipeline", "model_monitoring_pipeline")


@pytest.fixture(scope="module")
def ado(repo_root) -> Path:
    return repo_root / "ado_pipelines"


def _files(ado: Path) -> list[Path]:
    return ado_schema.pipeline_files(ado)


def test_the_pipelines_and_shared_folders_exist(ado):
    assert {p.stem for p in ado.glob("*.yml")} == set(PIPELINES)
    assert list((ado / "templates").glob("*.yml")) and list((ado / "variables").glob("*.yml"))


@pytest.mark.parametrize("name", [
    *PIPELINES, "templates/install_visionops", "templates/pytest_and_publish", "templates/run_notebooks",
    "templates/azure_ml_step", "templates/publish_model_metadata", "templates/batch_endpoint_stage",
    "variables/pipeline_variables",
])
def test_file_is_valid_against_microsofts_schema(ado, name):
    path = ado / f"{name}.yml"
    assert ado_schema.check_file(path) == []


def test_every_file_is_covered_by_the_list_above(ado):
    assert len(_files(ado)) == 13


def test_every_template_reference_resolves(ado):
    refs = 0
    for path in _files(ado):
        data = ado_schema.load_yaml(path)
        refs += len(ado_schema.template_references(data))
        assert ado_schema.unresolved_templates(path, data) == [], path
    assert refs >= 15  # the pipelines really are built from the shared templates


def test_nothing_masks_a_failure(ado):
    for path in _files(ado):
        code = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
        assert "continueOnError" not in code, path
        assert "|| true" not in code, path
        assert ado_schema.masked_failures(ado_schema.load_yaml(path)) == [], path


def test_only_in_box_tasks(ado):
    """Marketplace tasks (e.g. AzureMLJobWaitTask@1) are not in Microsoft's schema and need an
    extension installed in the organisation; the schema check would reject them, shown here."""
    tasks = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("task"), str):
                tasks.add(node["task"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in _files(ado):
        walk(ado_schema.load_yaml(path))
    assert tasks == {"AzureCLI@2", "PublishTestResults@2", "PublishPipelineArtifact@1", "Docker@2",
                     "AzureWebAppContainer@1"}
    marketplace = {"steps": [{"task": "AzureMLJobWaitTask@1", "inputs": {"experimentName": "x"}}]}
    assert ado_schema.schema_errors(marketplace) != []


def _ci(ado) -> dict:
    return ado_schema.load_yaml(ado / "ci_pipeline.yml")


def test_validator_catches_a_typo_in_a_key(ado):
    data = _ci(ado)
    data["stages"][0]["jobs"][0]["stepz"] = data["stages"][0]["jobs"][0].pop("steps")
    assert ado_schema.schema_errors(data) != []


def test_validator_catches_a_missing_required_task_input():
    step = {"task": "AzureCLI@2", "inputs": {"scriptType": "bash", "scriptLocation": "inlineScript",
                                              "inlineScript": "echo hi"}}
    errors = ado_schema.schema_errors({"steps": [step]})
    assert errors != []
    step["inputs"]["azureSubscription"] = "visionops-arm"
    assert ado_schema.schema_errors({"steps": [step]}) == []  # the same step with the input is valid


def test_validator_catches_a_wrong_enum_and_a_misspelled_input():
    bad_enum = {"task": "AzureCLI@2", "inputs": {"azureSubscription": "c", "scriptType": "zsh"}}
    assert ado_schema.schema_errors({"steps": [bad_enum]}) != []
    typo = {"task": "PublishTestResults@2", "inputs": {"testResultsFormat": "JUnit", "testResultFiles": "x.xml"}}
    assert ado_schema.schema_errors({"steps": [typo]}) != []


def test_relaxation_accepts_yaml_booleans_and_numbers():
    """Microsoft types these as strings; the docs (and every real pipeline) write YAML booleans."""
    data = {"trigger": {"batch": True, "branches": {"include": ["main"]}},
            "jobs": [{"job": "a", "timeoutInMinutes": 30, "steps": [{"checkout": "self", "clean": True}]}]}
    assert ado_schema.schema_errors(data) == []


def test_validator_flags_masked_failures_and_missing_templates(tmp_path):
    data = {"steps": [{"script": "pytest || true", "continueOnError": True}, {"template": "missing.yml"}]}
    problems = ado_schema.masked_failures(data)
    assert any("continueOnError" in p for p in problems) and any("|| true" in p for p in problems)
    assert ado_schema.unresolved_templates(tmp_path / "x.yml", data) == [
        f"template 'missing.yml' not found (looked for {tmp_path / 'missing.yml'})"
    ]


def test_cli_exit_status(ado, tmp_path, capsys):
    assert ado_schema.main([str(ado)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"stepz": [{"script": "echo"}]}))
    assert ado_schema.main([str(bad)]) == 1
    assert "bad.yml" in capsys.readouterr().out


def test_pipeline_wiring(ado):
    """The contracts between the pipelines: CI on PRs and main; deployment triggered by training and
    approved through an environment; training publishes what deployment downloads."""
    ci = _ci(ado)
    assert ci["pr"]["branches"]["include"] == ["main"] and ci["trigger"]["branches"]["include"] == ["main"]
    deploy = ado_schema.load_yaml(ado / "model_deployment_pipeline.yml")
    [res] = deploy["resources"]["pipelines"]
    assert res["pipeline"] == "training" and res["trigger"]["branches"]["include"] == ["main"]
    [promote] = deploy["stages"][1]["jobs"]
    assert promote["deployment"] and promote["environment"] == "visionops-production"
    training_text = (ado / "model_training_pipeline.yml").read_text()
    assert "templates/publish_model_metadata.yml" in training_text
    assert "artifact: model-metadata" in (ado / "templates" / "publish_model_metadata.yml").read_text()
    assert "artifact: model-metadata" in (ado / "model_deployment_pipeline.yml").read_text()
    notebooks = (ado / "templates" / "run_notebooks.yml").read_text()
    assert "condition: always()" in notebooks and "papermill" in notebooks
    assert "visionops.cli notebooks" in notebooks and "args: tests/notebooks" in notebooks  # nbval lives there

"""The Azure ML pipeline, offline: every component loads with azure-ai-ml and validates, the DSL
pipeline builds, validates and dumps, every node's inputs match its component's (the SDK does not
check that for YAML), and the Azure path runs the very commands, inputs and outputs the local
runner runs (parity)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_component, load_job
from azure.ai.ml.entities import CommandComponent, JobSchedule, PipelineJob
from azure_mock import sent

from visionops.pipeline.azure_pipeline import (
    build_pipeline_job,
    build_schedule,
    load_azure_components,
    node_input_problems,
)
from visionops.pipeline.components import (
    GRAPH,
    PIPELINE_OUTPUTS,
    load_components,
    pipeline_version,
    pipeline_yaml_problems,
)

pytestmark = pytest.mark.azure


@pytest.fixture(scope="module")
def job() -> PipelineJob:
    return build_pipeline_job(
        data="azureml:shapes:4112fc229996", profile="smoke", epochs=1, compute="gpu-cluster",
        environment="azureml:visionops-training:0123456789ab", environment_variables={"VISIONOPS_MODEL_NAME": "m"},
    )


def test_every_component_loads_and_validates():
    for step, spec in load_components().items():
        component = load_component(source=str(spec.path))
        assert isinstance(component, CommandComponent), step
        assert component._validate().passed, (step, component._validate().error_messages)
        assert component.name == spec.name
        assert (Path(component._base_path) / component.code).resolve() == spec.code  # relative to the YAML


def test_pipeline_builds_validates_and_dumps(job, tmp_path):
    assert job._validate().passed, job._validate().error_messages
    assert list(job.jobs) == [n.name for n in GRAPH]
    assert job.settings.default_compute == "gpu-cluster" and job.settings.continue_on_step_failure is False
    target = tmp_path / "pipeline_job.yml"  # dumps hold this machine's absolute paths: never committed
    job.dump(str(target))
    dumped = yaml.safe_load(target.read_text())
    assert dumped["type"] == "pipeline" and set(dumped["jobs"]) == {n.name for n in GRAPH}
    assert dumped["inputs"]["data"]["path"] == "azureml:shapes:4112fc229996"
    assert dumped["inputs"]["epochs"] == 1 and dumped["inputs"]["profile"] == "smoke"
    train = dumped["jobs"]["train"]
    assert train["inputs"]["validation"]["path"] == "${{parent.jobs.validate.outputs.report}}"
    assert train["environment_variables"] == {"VISIONOPS_MODEL_NAME": "m"}
    assert train["component"]["environment"] == "azureml:visionops-training:0123456789ab"
    assert set(dumped["outputs"]) == set(PIPELINE_OUTPUTS)


def test_node_inputs_match_component_inputs(job):
    assert node_input_problems(job) == []
    for name, node in job.jobs.items():
        assert set(node.inputs) <= set(node.component.inputs), name


def test_a_misspelled_node_input_in_yaml_is_caught(tmp_path, repo_root):
    """azure-ai-ml accepts `epochz:` on a YAML node without a word; our check does not."""
    components = repo_root / "src" / "visionops" / "pipeline" / "components"
    (tmp_path / "pipeline.yml").write_text(textwrap.dedent(f"""\
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        settings:
          default_compute: azureml:gpu-cluster
        inputs:
          data:
            type: uri_folder
            path: azureml:shapes:1
        jobs:
          validate:
            component: {components / 'validate.yml'}
            inputs:
              data: ${{{{parent.inputs.data}}}}
          train:
            component: {components / 'train.yml'}
            inputs:
              data: ${{{{parent.inputs.data}}}}
              epochz: 3
    """))
    loaded = load_job(source=str(tmp_path / "pipeline.yml"))
    assert loaded._validate().passed  # the SDK sees nothing wrong...
    assert "epochz" not in loaded.jobs["train"].inputs  # ...and silently dropped the input
    assert node_input_problems(loaded) == []  # so the loaded object cannot tell; the raw YAML can:
    assert pipeline_yaml_problems(tmp_path / "pipeline.yml") == [
        "node train: input 'epochz' is not an input of visionops_train "
        "(['batch', 'data', 'epochs', 'imgsz', 'model', 'patience', 'profile', 'task', 'validation'])"
    ]


def test_an_unbound_required_input_is_caught(job):
    """A DSL node whose required input is unbound (a node built by hand, not by our graph)."""
    specs = load_azure_components()
    lonely = specs["evaluate"](profile="smoke")  # model and data left unbound
    assert node_input_problems(job) == []
    job_copy = build_pipeline_job(data="azureml:shapes:1", compute="c")
    job_copy.jobs["evaluate"] = lonely
    assert sorted(node_input_problems(job_copy)) == [
        "node evaluate: required input 'data' of visionops_evaluate is not bound",
        "node evaluate: required input 'model' of visionops_evaluate is not bound",
    ]


def test_parity_with_the_local_components(job, tmp_path):
    """Same command templates, same input and output names and types, same wiring; and the
    local executor renders exactly the template azure-ai-ml sends."""
    specs = load_components()
    azure = load_azure_components()
    for step, spec in specs.items():
        component = azure[step]
        assert " ".join(component.command.split()) == spec.command
        assert {k: v.type for k, v in component.inputs.items()} == {k: p.type for k, p in spec.inputs.items()}
        assert {k: v.type for k, v in component.outputs.items()} == {k: p.type for k, p in spec.outputs.items()}
    dumped = job._to_dict()
    for node in GRAPH:
        bound = {k: v["path"] for k, v in dumped["jobs"][node.name]["inputs"].items()}
        expected = {
            port: ("${{parent.inputs." + name + "}}" if source == "pipeline"
                   else "${{parent.jobs." + source + ".outputs." + name + "}}")
            for port, (source, _, name) in ((p, b.partition(".")) for p, b in node.inputs.items())
        }
        assert bound == expected, node.name
    from visionops.pipeline.executors import Components

    settings = type("S", (), {})()  # Components reads nothing from settings until a step runs
    executor = Components(settings)  # type: ignore[arg-type]
    for step in specs:
        node = job.jobs[step]
        assert set(specs[step].inputs) == set(node.inputs) and set(specs[step].outputs) == set(node.outputs)
    assert executor.components.keys() == specs.keys()


def test_retraining_schedule(job):
    schedule = build_schedule(job, name="visionops-retrain", cron="0 2 * * 1")
    assert isinstance(schedule, JobSchedule)
    d = schedule._to_dict()
    assert d["trigger"] == {"type": "cron", "expression": "0 2 * * 1", "time_zone": "UTC"}
    assert d["create_job"]["type"] == "pipeline"
    with pytest.raises(Exception, match="5 fields"):
        build_schedule(job, name="x", cron="daily")


def test_workspace_submits_and_publishes_the_pipeline(workspace, mock_client, smoke_folder):
    ref = workspace.register_dataset(smoke_folder)
    pipeline = workspace.build_pipeline(ref, "smoke", epochs=1)
    assert pipeline.jobs["train"].component.environment == workspace.environment_id("training")
    info = workspace.submit_pipeline(pipeline, wait=True)
    assert info.succeeded and [s.name for s in info.steps] == [n.name for n in GRAPH]
    [submitted] = sent(mock_client, "jobs.create_or_update")
    assert submitted is pipeline
    assert sent(mock_client, "compute.begin_create_or_update")[0].name == "gpu-cluster"

    mock_client.job_status = "Failed"
    from visionops.errors import TrainingError

    with pytest.raises(TrainingError, match="steps not completed: register"):
        workspace.submit_pipeline(pipeline, wait=True)

    published = workspace.publish_pipeline(cron="0 2 * * 1")
    version = pipeline_version()
    components = sent(mock_client, "components.create_or_update")
    assert {c.name: c.version for c in components} == {
        **{spec.name: version for spec in load_components().values()}, "visionops_training": version,
    }
    [schedule] = sent(mock_client, "schedules.begin_create_or_update")
    assert schedule.trigger.expression == "0 2 * * 1"
    assert schedule.create_job.inputs["data"].path == "azureml:shapes@latest"  # retrains on the newest data
    assert published.version == version and published.schedule == "visionops_training-retrain"

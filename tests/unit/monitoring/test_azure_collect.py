"""Collection through Azure ML's data collector, offline: the real azureml-ai-monitoring SDK with
its sending worker off (its in-memory queue is what would go to Azure), and the online
deployment's data_collector built with azure-ai-ml's own entities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from visionops.monitoring.records import ModelRef

pytest.importorskip("azureml.ai.monitoring", reason="azureml-ai-monitoring (the azure extra) is not installed")

MODEL = ModelRef(name="shapes-detector", version="4", task="detect", runtime="onnx")


def photo(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8))


PRED = {"width": 64, "height": 48, "boxes": [[1.0, 2.0, 3.0, 4.0]], "class_ids": [1], "labels": ["rectangle"],
        "confidences": [0.42]}


@pytest.fixture
def sdk(monkeypatch):
    """The SDK as an Azure deployment with a data collector starts it, minus the sender thread."""
    from azureml.ai.monitoring import init as mdc

    mdc.teardown()
    monkeypatch.delenv("AZUREML_MDC_CONFIG_PATH", raising=False)
    monkeypatch.setenv("AZUREML_MDC_ENABLED", "true")
    monkeypatch.setenv("AZUREML_MDC_WORKER_DISABLED", "true")
    yield mdc
    mdc.teardown()


def drain(mdc) -> list:
    from azureml.ai.monitoring.queue import get_queue

    q = get_queue()
    return [q.dequeue()[0] for _ in range(q.length())]


def test_one_row_per_image_in_inputs_and_outputs_with_the_correlation_id(sdk):
    from visionops.monitoring.azure_collect import INPUTS, OUTPUTS, AzureCollector

    c = AzureCollector()
    c.record([photo(1), photo(2)], [PRED, PRED], MODEL, "req-1")
    c.record([photo(3)], [PRED], MODEL, "req-2")
    assert c.flush()
    payloads = drain(sdk)
    assert sorted((p.designation(), p.correlation_id()) for p in payloads) == [
        (INPUTS, "req-1"), (INPUTS, "req-2"), (OUTPUTS, "req-1"), (OUTPUTS, "req-2")]
    by = {(p.designation(), p.correlation_id()): json.loads(p.content()) for p in payloads}
    inputs, outputs = by[(INPUTS, "req-1")], by[(OUTPUTS, "req-1")]
    assert [row["index"] for row in inputs] == [0, 1] and {r["correlation_id"] for r in inputs} == {"req-1"}
    assert inputs[0]["width"] == 64 and inputs[0]["model_version"] == "4" and 0 < inputs[0]["brightness"] < 255
    assert outputs[0]["labels"] == ["rectangle"] and outputs[0]["max_conf"] == 0.42 and outputs[0]["low_conf_frac"] == 1
    assert c.stats()["records_written"] == 3
    c.close()


def test_a_deployment_without_collector_drops_and_counts(monkeypatch):
    from azureml.ai.monitoring import init as mdc

    from visionops.monitoring.azure_collect import AzureCollector

    mdc.teardown()
    for var in ("AZUREML_MDC_CONFIG_PATH", "AZUREML_MDC_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    c = AzureCollector()
    c.record([photo(1)], [PRED], MODEL, "r")  # never raises into the request
    assert c.flush()
    assert c.stats()["azure_errors"] >= 1
    c.close()
    mdc.teardown()


def test_online_deployment_has_the_data_collector(repo_root, tmp_path):
    pytest.importorskip("azure.ai.ml", reason="azure-ai-ml (the azure extra) is not installed")
    from azure.ai.ml.entities import DataCollector, DeploymentCollection, ManagedOnlineDeployment

    from visionops.monitoring.azure_collect import INPUTS, OUTPUTS
    from visionops.settings import get_settings
    from visionops.workspace.azure_entities import online_deployment

    settings = get_settings(root=tmp_path, backend="azure")
    kwargs = dict(endpoint_name="visionops-shapes", name="blue", model_name="shapes-detector", model_version="4",
                  environment="azureml:visionops-inference:1", runtime="onnx", root=repo_root)
    deployment = online_deployment(settings, **kwargs)
    assert isinstance(deployment, ManagedOnlineDeployment)
    dc = deployment.data_collector
    assert isinstance(dc, DataCollector) and set(dc.collections) == {INPUTS, OUTPUTS}
    assert all(isinstance(c, DeploymentCollection) and c.enabled == "true" for c in dc.collections.values())
    assert (dc.sampling_rate, dc.rolling_rate) == (1.0, "hour")
    env = deployment.environment_variables
    assert (env["VISIONOPS_BACKEND"], env["VISIONOPS_COLLECT"]) == ("azure", "true")
    dumped = deployment._to_dict()  # the SDK's own serialisation (what `az ml` YAML would hold)
    collections = dumped["data_collector"]["collections"]
    assert collections[INPUTS]["enabled"] == "true" and collections[OUTPUTS]["enabled"] == "true"
    rest = dc._to_rest_object().as_dict()  # and what goes over the wire: the rate per collection
    assert rest["rollingRate"] == "hour" and set(rest["collections"]) == {INPUTS, OUTPUTS}
    assert all(c == {"dataCollectionMode": "enabled", "samplingRate": 1.0} for c in rest["collections"].values())

    off = online_deployment(settings.with_overrides(collect=False), **kwargs)
    assert off.data_collector is None and off.environment_variables["VISIONOPS_COLLECT"] == "false"

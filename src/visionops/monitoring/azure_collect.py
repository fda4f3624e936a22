"""Production records through Azure ML's data collector (azureml-ai-monitoring), for online
deployments whose `data_collector` enables the `model_inputs` and `model_outputs` collections.

The collector only logs pandas DataFrames, and Azure ML's monitoring signals compare tables, so
each request becomes one row per image in each collection: the inputs are the image statistics
(size, brightness, contrast, sharpness), the outputs the prediction summary. The correlation id
is both a column (the SDK batches close requests together) and the `BasicCorrelationContext`
id, which Azure writes as the CloudEvent's `correlationid`. Azure lands them as JSONL under
`workspaceblobstore/paths/modelDataCollector/<endpoint>/<deployment>/<collection>/<yyyy>/<MM>/<dd>/<HH>/`.
No pixels are sent: image samples are a local-collection feature.

Imported only when `make_collector` chose Azure (or by tests): pandas and the SDK load lazily.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

from visionops.monitoring.collect import Built, QueuedCollector
from visionops.monitoring.records import ProductionRecord

INPUTS = "model_inputs"
OUTPUTS = "model_outputs"
# What Azure ML sets in a deployment with a data collector; the SDK reads one of them
MDC_ENV = ("AZUREML_MDC_CONFIG_PATH", "AZUREML_MDC_ENABLED")


def available() -> bool:
    """Whether azureml-ai-monitoring is installed."""
    try:
        return importlib.util.find_spec("azureml.ai.monitoring") is not None
    except (ImportError, ValueError):
        return False


def configured(environ: Mapping[str, str]) -> bool:
    """Whether this process runs in a deployment whose data collector is on."""
    return bool(environ.get(MDC_ENV[0])) or environ.get(MDC_ENV[1], "").lower() == "true"


def input_rows(records: list[ProductionRecord]) -> list[dict[str, Any]]:
    """One row per image: what the model was shown."""
    return [
        {"correlation_id": r.correlation_id, "index": r.index, "time": r.time.isoformat(),
         "model_name": r.model.name, "model_version": r.model.version, **r.image.model_dump()}
        for r in records
    ]


def output_rows(records: list[ProductionRecord]) -> list[dict[str, Any]]:
    """One row per image: what the model answered (the drift report's prediction columns)."""
    return [
        {"correlation_id": r.correlation_id, "index": r.index, "model_name": r.model.name,
         "model_version": r.model.version, **r.prediction.model_dump()}
        for r in records
    ]


class AzureCollector(QueuedCollector):
    """The same queue and records as the local collector, sent to the SDK's two collections.
    `make` builds an SDK collector by name (tests pass their own; default: the SDK's)."""

    def __init__(self, *, make: Callable[..., Any] | None = None, **queue_options: int):
        super().__init__(**queue_options)
        self._make = make
        self._inputs: Any = None
        self._outputs: Any = None

    def _collectors(self) -> tuple[Any, Any]:
        if self._inputs is None:
            make = self._make
            if make is None:
                from azureml.ai.monitoring import Collector

                make = Collector
            self._inputs = make(name=INPUTS, on_error=self._on_error)
            self._outputs = make(name=OUTPUTS, on_error=self._on_error)
        return self._inputs, self._outputs

    def _on_error(self, exc: Exception) -> None:
        """The SDK reports drops (collection disabled, its queue full) here: count, log once."""
        self._fail("azure_errors", 1, "Azure ML data collector: %s", exc)

    def emit(self, built: list[Built]) -> None:
        import pandas as pd
        from azureml.ai.monitoring.context import BasicCorrelationContext

        inputs, outputs = self._collectors()
        by_request: dict[str, list[ProductionRecord]] = {}
        for b in built:
            by_request.setdefault(b.record.correlation_id, []).append(b.record)
        for cid, records in by_request.items():
            ctx = BasicCorrelationContext(id=cid, timestamp=int(records[0].time.timestamp()))
            inputs.collect(pd.DataFrame(input_rows(records)), ctx)
            outputs.collect(pd.DataFrame(output_rows(records)), ctx)
        self._count("records_written", len(built))

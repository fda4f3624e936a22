"""What a pipeline submission and a publication return, the same shape on both backends, so a
notebook prints and asserts on them without asking which backend ran the pipeline."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class StepInfo(BaseModel):
    """One node of a pipeline run."""

    name: str
    status: str  # NotStarted, Running, Completed, Failed, Skipped
    command: str | None = None  # the rendered command (local) or None (Azure ML renders it)
    duration_s: float | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    log: str | None = None


class PipelineRunInfo(BaseModel):
    """A submitted pipeline: its id, where to look at it, and its outputs once they exist."""

    backend: str
    run_id: str
    name: str
    status: str  # Completed, Failed, Running, ... (Azure ML's job statuses)
    url: str | None = None  # studio URL (azure) or the run folder (local)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    steps: list[StepInfo] = Field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "Completed"


class PublishedPipeline(BaseModel):
    """A versioned, re-runnable pipeline definition (Azure: registered components and a pipeline
    component; local: a definition file), optionally with a retraining schedule."""

    backend: str
    name: str
    version: str
    components: dict[str, str] = Field(default_factory=dict)  # component name -> version
    location: str  # azureml id or local file
    schedule: str | None = None  # schedule name (azure) when one was created
    cron: str | None = None

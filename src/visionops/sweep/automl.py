"""The AutoML-for-Images benchmark: the job spec, and the comparison with the VisionOps champion.

- **The job** is Azure ML's AutoML for Images YAML (`type: automl`, `task:
  image_object_detection` for a detection data set, `image_classification` for a classification
  one, with that task's primary metric and models) over the MLTables that `formats.export_automl` writes (the same
  files `visionops data export --format automl` writes). It is a plain dict here, so the local
  backend can build and show it without azure-ai-ml; `load_automl_job` hands it to azure-ai-ml's
  own `load_job`, which checks every field against the SDK's schema (offline) and returns the
  `ImageObjectDetectionJob` the azure backend submits.
- **Which images decide.** AutoML reports the metrics of its best child run on the data given as
  `validation_data`. For the comparison to be on the same images as the champion's, the job
  validates on the frozen **test** split by default (`validation_split="test"`); AutoML then also
  picks its best trial on those images, which favours AutoML, and the comparison says so.
- **Which numbers compare.** AutoML's `mean_average_precision` is Pascal VOC mAP at IoU 0.5 by
  default (`metric_type="voc"`, comparable to our `map50`, with `precision` and `recall`);
  `metric_type="coco"` makes it AP@[.5:.95] (our `map50_95`), without precision and recall.
- **The AutoML side** is fetched, not typed in: on the azure backend the parent run's tag
  `automl_best_child_run_id` names the best child run, whose MLflow metrics (the workspace's
  tracking URI) `best_child_metrics` reads and `write_metrics` stores as a metrics JSON
  (`AzureWorkspace.compare_automl` does both, then compares).
- **The comparison** (`compare_files`) reads both metrics JSON files, checks them (a missing or
  non-numeric metric is an error naming the file and the field), and writes one JSON that the
  notebook shows as a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from visionops.data.catalog import DatasetRef
from visionops.errors import ConfigError
from visionops.settings import Settings

SCHEMA = "https://azuremlschemas.azureedge.net/latest/autoMLJob.schema.json"
AUTOML_DIR = "automl"
JOB_YAML = "automl_job.yaml"
COMPARISON_JSON = "comparison.json"
AUTOML_METRICS_JSON = "automl_metrics.json"  # the best child run's metrics, fetched by the azure backend
CHAMPION_METRICS_JSON = "champion_metrics.json"
BEST_CHILD_TAG = "automl_best_child_run_id"  # set on the AutoML parent run once a best trial exists
PRIMARY_METRIC = "mean_average_precision"  # the only primary metric AutoML object detection accepts
CLASSIFY_PRIMARY_METRIC = "accuracy"  # AutoML image classification's (multi-class)
# AutoML's models (research/next_capabilities.md, AutoML for Images): yolov5 is its default detector
DEFAULT_MODELS = ("yolov5", "fasterrcnn_resnet50_fpn")
DEFAULT_CLASSIFY_MODELS = ("mobilenetv2", "resnet50")
# our task -> AutoML's job task, primary metric, default models, default metric type
AUTOML_TASKS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "detect": ("image_object_detection", PRIMARY_METRIC, DEFAULT_MODELS, "voc"),
    "classify": ("image_classification", CLASSIFY_PRIMARY_METRIC, DEFAULT_CLASSIFY_MODELS, "classify"),
}
MetricType = Literal["voc", "coco", "classify"]
# AutoML metric -> our metric, per validation_metric_type (coco reports no precision or recall);
# the first entry is the primary metric, which decides the winner
METRIC_MAP: dict[str, dict[str, str]] = {
    "voc": {PRIMARY_METRIC: "map50", "precision": "precision", "recall": "recall"},
    "coco": {PRIMARY_METRIC: "map50_95"},
    "classify": {CLASSIFY_PRIMARY_METRIC: "top1", "precision_score_macro": "precision",
                 "recall_score_macro": "recall", "f1_score_macro": "f1"},
}


class AutoMLOptions(BaseModel):
    """What the AutoML job tries: models, limits, the split it validates on, the metric type."""

    compute: str | None = None  # default: the settings' training cluster
    models: list[str] | None = None  # None: the task's defaults (DEFAULT_MODELS, DEFAULT_CLASSIFY_MODELS)
    max_trials: int = 4
    max_concurrent_trials: int = 2
    timeout_minutes: int = 120
    metric_type: MetricType | None = None  # None: voc for detection, classify for classification
    validation_split: Literal["val", "test"] = "test"

    def for_task(self, task: str) -> AutoMLOptions:
        """These options with the task's defaults filled in; a detection metric type on a
        classification data set (or the other way round) is an error naming the choices."""
        _, _, models, metric_type = AUTOML_TASKS[task]
        chosen = self.metric_type or metric_type
        allowed = ("classify",) if task == "classify" else ("voc", "coco")
        if chosen not in allowed:
            raise ConfigError(f"AutoML options: metric_type {chosen!r} does not fit a {task} data set; "
                              f"choose {' or '.join(allowed)} (or leave it None)")
        return self.model_copy(update={"models": list(self.models if self.models is not None else models),
                                       "metric_type": chosen})


class AutoMLJobInfo(BaseModel):
    """What `Workspace.submit_automl` did: the spec it built and checked, and the job if submitted."""

    backend: str
    submitted: bool
    validated: bool
    job_name: str | None = None
    status: str
    url: str | None = None
    spec_path: str
    spec: dict[str, Any]
    note: str


class MetricRow(BaseModel):
    automl_metric: str
    visionops_metric: str
    automl: float
    visionops: float
    difference: float  # automl - visionops
    better: Literal["automl", "visionops", "tie"]


class Comparison(BaseModel):
    """The AutoML best model against the VisionOps champion, metric by metric."""

    metric_type: MetricType
    split: str
    automl_source: str
    champion_source: str
    automl_run: str | None = None
    champion: str | None = None
    rows: list[MetricRow]
    winner: Literal["automl", "visionops", "tie"]  # on the primary metric
    note: str


# --- the job ---------------------------------------------------------------------------------------
def automl_folder(settings: Settings, dataset: DatasetRef) -> Path:
    """Where the MLTables and the job YAML of one data set version go (outputs/automl/<name>-<version>)."""
    return settings.outputs_dir / AUTOML_DIR / f"{dataset.name}-{dataset.version}"


def export_mltables(data_dir: Path, folder: Path, *, image_url_prefix: str | None = None) -> dict[str, Path]:
    """The data set as AutoML JSONL + MLTable per split (what `visionops data export --format automl`
    writes). `image_url_prefix`: where AutoML finds the images (a datastore URI on Azure)."""
    from visionops.data import formats

    return formats.export_automl(Path(data_dir), folder, image_url_prefix=image_url_prefix)


def automl_job_dict(settings: Settings, dataset: DatasetRef, options: AutoMLOptions | None = None) -> dict[str, Any]:
    """The AutoML for Images job of the data set's task (object detection or multi-class image
    classification) as Azure ML's YAML writes it; the MLTable paths are relative to the YAML file
    (`./train`, `./test`), which sits beside them."""
    task = getattr(dataset, "task", "detect")
    o = (options or AutoMLOptions()).for_task(task)
    job_task, primary, _, _ = AUTOML_TASKS[task]
    if not o.models:
        raise ConfigError("AutoML options: models is empty; name at least one, e.g. yolov5")
    if o.max_trials < 1 or o.max_concurrent_trials < 1 or o.timeout_minutes < 1:
        raise ConfigError(f"AutoML limits must be at least 1: max_trials={o.max_trials}, "
                          f"max_concurrent_trials={o.max_concurrent_trials}, timeout_minutes={o.timeout_minutes}")
    compute = o.compute or settings.compute_name
    doc: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "automl",
        "task": job_task,
        "experiment_name": f"{settings.experiment_name}-automl",
        "compute": f"azureml:{compute}",
        "log_verbosity": "info",
        "primary_metric": primary,
        "target_column_name": "label",
        "training_data": {"type": "mltable", "path": "./train"},
        "validation_data": {"type": "mltable", "path": f"./{o.validation_split}"},
        "limits": {"max_trials": o.max_trials, "max_concurrent_trials": min(o.max_concurrent_trials, o.max_trials),
                   "timeout_minutes": o.timeout_minutes},
        # detection only: which mAP AutoML reports (classification's accuracy needs no choice)
        "training_parameters": {"validation_metric_type": o.metric_type} if task == "detect" else {},
        "tags": {"dataset.name": dataset.name, "dataset.version": dataset.version,
                 "visionops.validation_split": o.validation_split, "visionops.stage": "automl"},
    }
    if len(o.models) > 1 or o.max_trials > 1:
        # one entry per model: AutoML draws the model, then its own defaults for everything else
        doc["search_space"] = [{"model_name": {"type": "choice", "values": list(o.models)}}]
        doc["sweep"] = {"sampling_algorithm": "random",
                        "early_termination": {"type": "bandit", "evaluation_interval": 2, "slack_factor": 0.2,
                                              "delay_evaluation": 6}}
    else:
        doc["training_parameters"]["model_name"] = o.models[0]
    return doc


def write_job_yaml(doc: dict[str, Any], folder: Path) -> Path:
    """The spec as `az ml job create -f` takes it, beside the MLTable folders it names."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / JOB_YAML
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load_automl_job(path: Path) -> Any:
    """The `ImageObjectDetectionJob` azure-ai-ml's own loader makes of the YAML: every field checked
    against the SDK's schema, offline. Needs the azure extra."""
    try:
        from azure.ai.ml import load_job
    except ImportError as exc:
        raise ConfigError("checking the AutoML job needs azure-ai-ml: pip install -e '.[azure]'") from exc

    try:
        job = load_job(source=path)
    except Exception as exc:
        # the SDK's schema errors (azure-ai-ml's ValidationException, marshmallow's ValidationError)
        # become one error naming the file; anything else is not about the spec and propagates
        if "Validation" not in type(exc).__name__:
            raise
        raise ConfigError(f"{path}: Azure ML rejects the AutoML job spec: {exc}") from exc
    for split in ("training_data", "validation_data"):
        data = getattr(job, split)
        mltable = (path.parent / str(data.path)).resolve() / "MLTable"
        if "://" not in str(data.path) and not mltable.is_file():
            raise ConfigError(f"{path}: {split} {data.path} has no MLTable ({mltable}); export the data set "
                              "with `visionops data export --format automl`")
    return job


# --- the comparison --------------------------------------------------------------------------------
def read_metrics(path: Path) -> tuple[dict[str, Any], str | None]:
    """A metrics JSON: either {metric: value} (an MLflow run's `data.metrics`, as Azure ML reports
    the best child run's) or {"run_id": ..., "metrics": {...}}. Returns (metrics, run id)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such metrics file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object of metric: value, got {type(doc).__name__}")
    if isinstance(doc.get("metrics"), dict):
        return doc["metrics"], doc.get("run_id")
    return doc, None


def best_child_metrics(client: Any, parent_run_id: str, *, status: str | None = None) -> tuple[str, dict[str, float]]:
    """(best child run id, its metrics) of an AutoML job through an `mlflow.MlflowClient` pointed
    at the workspace (the job's name is its MLflow run id). A job without the tag has not picked a
    best trial yet (still running, or failed): the error says which, with the job's `status`."""
    parent = client.get_run(parent_run_id)
    best = parent.data.tags.get(BEST_CHILD_TAG)
    if not best:
        state = f"its status is {status}" if status else "it may still be running"
        raise ConfigError(f"AutoML job {parent_run_id} has no tag {BEST_CHILD_TAG} yet ({state}); compare once it "
                          "has Completed")
    metrics = dict(client.get_run(best).data.metrics)
    primaries = {primary for _, primary, _, _ in AUTOML_TASKS.values()}
    if not primaries & set(metrics):
        raise ConfigError(f"AutoML job {parent_run_id}: its best child run {best} logged none of "
                          f"{sorted(primaries)} (it has {sorted(metrics)}); is it an AutoML for Images job?")
    return best, metrics


def write_metrics(path: Path, metrics: dict[str, float], *, run_id: str | None = None,
                  parent_run_id: str | None = None) -> Path:
    """A metrics JSON in the form `read_metrics` reads ({"run_id", "metrics"}), with the parent job."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"run_id": run_id, "parent_run_id": parent_run_id, "metrics": metrics}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    return path


def _value(metrics: dict[str, Any], key: str, source: str) -> float:
    if key not in metrics:
        raise ConfigError(f"{source}: field {key!r} is missing (it has {sorted(metrics)}); "
                          "pass the metrics of the run as MLflow records them")
    value = metrics[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: field {key!r} is {value!r}, not a number")
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{source}: field {key!r} is {value}, outside 0..1 (a ratio, not a percentage)")
    return float(value)


def compare(automl: dict[str, Any], champion: dict[str, Any], *, metric_type: MetricType = "voc",
            split: str = "test", automl_source: str = "automl metrics", champion_source: str = "champion metrics",
            automl_run: str | None = None, champion_name: str | None = None) -> Comparison:
    """Row by row, the AutoML metric against ours (METRIC_MAP); the winner by the primary metric."""
    if metric_type not in METRIC_MAP:
        raise ConfigError(f"metric_type {metric_type!r}: choose voc (mAP@0.5) or coco (mAP@[.5:.95]) for "
                          "detection, classify (accuracy) for classification")
    rows = []
    for theirs, ours in METRIC_MAP[metric_type].items():
        a, v = _value(automl, theirs, automl_source), _value(champion, ours, champion_source)
        diff = round(a - v, 6)
        rows.append(MetricRow(automl_metric=theirs, visionops_metric=ours, automl=a, visionops=v, difference=diff,
                              better="automl" if diff > 0 else "visionops" if diff < 0 else "tie"))
    primary, ours = next(iter(METRIC_MAP[metric_type].items()))
    note = f"AutoML's {primary} ({metric_type}) against VisionOps' {ours} on the {split} split"
    if split == "test":
        note += "; AutoML validated on that split, so it also chose its best trial on it (in its favour)"
    return Comparison(metric_type=metric_type, split=split, automl_source=automl_source,
                      champion_source=champion_source, automl_run=automl_run, champion=champion_name, rows=rows,
                      winner=rows[0].better, note=note)


def compare_files(automl_json: Path, champion_json: Path, out: Path, *, metric_type: MetricType = "voc",
                  split: str = "test", champion_name: str | None = None) -> Comparison:
    """Read both metrics JSON files, compare them, and write the comparison JSON to `out`."""
    automl, run = read_metrics(automl_json)
    champion, _ = read_metrics(champion_json)
    result = compare(automl, champion, metric_type=metric_type, split=split, automl_source=str(automl_json),
                     champion_source=str(champion_json), automl_run=run, champion_name=champion_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.model_dump_json(indent=2))
    return result


def champion_metrics(settings: Settings, dataset: DatasetRef, path: Path) -> dict[str, Any] | None:
    """The champion's metrics on the frozen test split (the registry's `metric.*` tags, written at
    registration by the evaluate step) as a metrics JSON at `path`; None when there is no champion."""
    from visionops import registry

    champion = registry.get_champion(settings)
    if champion is None:
        return None
    metrics = {k.removeprefix("metric."): float(v) for k, v in champion.tags.items() if k.startswith("metric.")}
    doc = {"run_id": champion.run_id, "model": f"{champion.name}:{champion.version}",
           "dataset": f"{dataset.name}:{dataset.version}", "split": "test", "metrics": metrics}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return doc


def last_comparison(settings: Settings, dataset: DatasetRef) -> Comparison | None:
    """The comparison last written for this data set version, if any."""
    path = automl_folder(settings, dataset) / COMPARISON_JSON
    return Comparison.model_validate_json(path.read_text()) if path.is_file() else None


def comparison_table(comparison: Comparison) -> Any:
    """The comparison as a pandas table (one row per metric)."""
    import pandas as pd

    return pd.DataFrame([r.model_dump() for r in comparison.rows]).set_index("automl_metric")

"""The registration baseline: what "normal" looks like for one registered model version.

At registration the version's test split (the frozen one its promotion was decided on) is scored
by the serving predictor (`load_predictor` on the registered files, ONNX Runtime when exported:
what the endpoint would answer) and turned into production records by the same `image_stats` and
`summarize` the collection path uses. So a drift report compares like with like: the only thing
that can differ between baseline and window is the images (and the model's reaction to them).

The records are stored as `monitoring/baseline.jsonl`, an MLflow artifact of the version's run
(where its weights live, on both backends), and the version is tagged with their count.
`load_baseline` reads them back (cached under `<outputs>/monitoring/baselines/<name>/<version>/`);
`ensure_baseline` builds a missing one from the version's data set (versions registered before
baselines existed, or whose registration could not record one).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps
from pydantic import ValidationError

from visionops.errors import DataValidationError, ModelNotFoundError
from visionops.monitoring.records import ModelRef, ProductionRecord, image_stats, summarize

if TYPE_CHECKING:
    from visionops.registry import ModelVersionRef
    from visionops.serving.predictor import Predictor
    from visionops.settings import Settings

ARTIFACT_DIR = "monitoring"
BASELINE_FILE = "baseline.jsonl"
ARTIFACT_PATH = f"{ARTIFACT_DIR}/{BASELINE_FILE}"
RECORDS_TAG = "monitoring.baseline_records"
BASELINE_SPLIT = "test"


class BaselineMissing(ModelNotFoundError):
    """The model version has no baseline artifact."""


def split_images(dataset: Path) -> list[Path]:
    """The test split's images of a data set folder, either task (its layout says which)."""
    from visionops.data.kinds import data_kind

    root = Path(dataset)
    images = [s.image for s in data_kind(root).samples(root, (BASELINE_SPLIT,))]
    if not images:
        raise DataValidationError(
            f"data set {root} has no {BASELINE_SPLIT} images: the baseline is the test split's statistics; "
            "register a data set with a test split"
        )
    return images


def build_baseline(images: Sequence[Path], predictor: Predictor, *,
                   conf: float | None = None) -> list[ProductionRecord]:
    """One record per image, as collection writes them: the decoded, EXIF-rotated RGB image's
    statistics and the predictor's answer at the endpoint's default parameters."""
    from visionops.serving.predictor import DEFAULT_CONF

    model = ModelRef(name=predictor.name, version=predictor.version, task=predictor.task,  # type: ignore[arg-type]
                     runtime=predictor.runtime)
    now = datetime.now(UTC)
    records = []
    for index, path in enumerate(images):
        with Image.open(path) as raw:
            img = ImageOps.exif_transpose(raw).convert("RGB")
        (prediction,) = predictor.predict([img], conf=DEFAULT_CONF if conf is None else conf)
        records.append(ProductionRecord(
            time=now, correlation_id=f"baseline:{Path(path).name}", index=index, model=model,
            image=image_stats(img), prediction=summarize(predictor.task, prediction.to_dict()),
        ))
    return records


def write_baseline(records: Sequence[ProductionRecord], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return path


def read_baseline(path: Path) -> list[ProductionRecord]:
    """The records of a baseline file; unlike production logs, a bad line is an error (a baseline
    is written once, whole: a damaged one must be rebuilt, not silently thinned)."""
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ProductionRecord.model_validate_json(line))
        except (ValidationError, ValueError) as exc:
            raise DataValidationError(
                f"{path}:{number}: not a production record ({str(exc).splitlines()[0]}); delete the file and "
                "rebuild the baseline (`visionops monitor --rebuild-baseline`)"
            ) from None
    if not records:
        raise DataValidationError(f"{path} holds no records; rebuild it (`visionops monitor --rebuild-baseline`)")
    return records


def cache_path(settings: Settings, ref: ModelVersionRef) -> Path:
    return settings.outputs_dir / "monitoring" / "baselines" / ref.name / ref.version / BASELINE_FILE


def record_baseline(settings: Settings, ref: ModelVersionRef, dataset: Path) -> Path:
    """Build the baseline of a registered version from `dataset`'s test split and store it with
    the version (artifact of its run, count as a version tag). Returns the local copy."""
    import mlflow

    from visionops import registry
    from visionops.serving.predictor import load_predictor

    if not ref.run_id:
        raise ModelNotFoundError(f"model {ref.name} v{ref.version} has no MLflow run to store its baseline in")
    predictor = load_predictor(registry.download(settings, ref), "auto", threads=settings.threads,
                               name=ref.name, version=ref.version)
    records = build_baseline(split_images(dataset), predictor)
    path = write_baseline(records, cache_path(settings, ref))
    client = mlflow.MlflowClient()  # registry.download configured MLflow for these settings
    client.log_artifact(ref.run_id, str(path), artifact_path=ARTIFACT_DIR)
    client.set_model_version_tag(ref.name, ref.version, RECORDS_TAG, str(len(records)))
    return path


def load_baseline(settings: Settings, ref: ModelVersionRef) -> list[ProductionRecord]:
    """The version's baseline records (downloaded once, then read from the cache)."""
    local = cache_path(settings, ref)
    if not local.is_file():
        _download(settings, ref, local)
    return read_baseline(local)


def _download(settings: Settings, ref: ModelVersionRef, local: Path) -> None:
    import mlflow

    from visionops.tracking import configure_mlflow

    configure_mlflow(settings)
    if not ref.run_id or not any(f.path == ARTIFACT_PATH for f in mlflow.MlflowClient().list_artifacts(
            ref.run_id, ARTIFACT_DIR)):
        raise BaselineMissing(
            f"model {ref.name} v{ref.version} has no drift baseline ({ARTIFACT_PATH} in its run); it is written at "
            "registration: run `visionops monitor --rebuild-baseline` to build it from the version's data set"
        )
    staging = local.with_name(local.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    got = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=ARTIFACT_PATH, dst_path=str(staging))
    local.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(got, local)
    shutil.rmtree(staging, ignore_errors=True)


def version_dataset(settings: Settings, ref: ModelVersionRef) -> Path:
    """The local folder of the data set version `ref` was trained and tested on (its tags say which)."""
    from visionops.data.catalog import LocalDatasetCatalog

    name, version = ref.tags.get("dataset.name"), ref.tags.get("dataset.version")
    if not name or not version:
        raise ModelNotFoundError(
            f"model {ref.name} v{ref.version} has no dataset.name/dataset.version tags, so its test split is "
            "unknown; it was not registered by visionops"
        )
    return Path(LocalDatasetCatalog(settings.catalog_dir).get(name, version).path)


def ensure_baseline(settings: Settings, ref: ModelVersionRef, *, rebuild: bool = False
                    ) -> tuple[list[ProductionRecord], bool]:
    """(the version's baseline, whether it was built now): loaded, else (or with `rebuild`) built
    from the version's data set and stored with the version."""
    if not rebuild:
        try:
            return load_baseline(settings, ref), False
        except BaselineMissing:
            pass
    cache_path(settings, ref).unlink(missing_ok=True)
    return read_baseline(record_baseline(settings, ref, version_dataset(settings, ref))), True

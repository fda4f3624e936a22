"""What lets each notebook run on its own: reuse what an earlier notebook left, or build it.

The notebooks run in order (00 -> 05) but each must also run alone in a fresh kernel. So every
stage asks for its inputs with an `ensure_*` call that returns the earlier stage's result when
it exists *for the same profile and inputs*, and otherwise produces it with the very same
functions the pipeline steps use (nothing here trains, scores or registers in its own way):

    ensure_dataset   -> the registered data set version the profile generates
    ensure_trained   -> a training on that version (visionops.pipeline.steps.train_step)
    ensure_evaluated -> its champion/challenger evaluation (evaluate_step)
    ensure_champion  -> the production model (register_step after a promote decision)

Work folders live under `outputs/session/<profile>/{train,evaluate,register}` (the layout of the
pipeline steps' `--out` folders), and each notebook records a small JSON summary of its results
in `outputs/notebooks/<notebook>.json` for tests, CI and `visionops demo-summary`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from visionops.data.catalog import DatasetRef
from visionops.data.manifest import read_manifest
from visionops.errors import ModelNotFoundError
from visionops.evaluation.challenge import EvaluationOutcome
from visionops.pipeline.steps import EVALUATION_JSON, TRAIN_JSON, RegistrationResult
from visionops.profiles import get_profile
from visionops.registry import ModelVersionRef
from visionops.settings import Settings
from visionops.training import TrainResult
from visionops.workspace import Workspace, get_workspace

SUMMARIES_DIR = "notebooks"
REQUEST_JSON = "request.json"


@dataclass(frozen=True)
class SessionPaths:
    """The step folders of one profile's notebook session (same names as the pipeline's steps)."""

    root: Path

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def evaluate(self) -> Path:
        return self.root / "evaluate"

    @property
    def register(self) -> Path:
        return self.root / "register"


def session_paths(settings: Settings, profile: str) -> SessionPaths:
    return SessionPaths(Path(settings.outputs_dir) / "session" / profile)


# --- summaries ----------------------------------------------------------------------------------
def summaries_dir(settings: Settings) -> Path:
    return Path(settings.outputs_dir) / SUMMARIES_DIR


def record_summary(settings: Settings, name: str, data: dict[str, Any]) -> Path:
    """Write `outputs/notebooks/<name>.json`: what the notebook found, for tests and CI to assert on.

    Adds the notebook name and the time; values that are not JSON (paths, numpy numbers) are
    written as strings. The file is replaced atomically, so a reader never sees half of it."""
    folder = summaries_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"notebook": name, "recorded": datetime.now(UTC).isoformat(timespec="seconds"), **data}
    text = json.dumps(doc, indent=2, default=str)
    path = folder / f"{name}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def read_summary(settings: Settings, name: str) -> dict[str, Any] | None:
    path = summaries_dir(settings) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


# --- data ---------------------------------------------------------------------------------------
def profile_data_source(settings: Settings, profile: str, knobs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest `source` of the synthetic data set this profile (and knobs) generates."""
    spec = get_profile(profile, **(knobs or {})).data.model_copy(update={"seed": settings.seed})
    return {"kind": "synthetic", "spec": spec.model_dump(mode="json")}


def find_dataset(
    settings: Settings, profile: str, knobs: dict[str, Any] | None = None, *, workspace: Workspace | None = None
) -> DatasetRef | None:
    """The most recently registered version generated with this profile's data spec, if any."""
    ws = workspace or get_workspace(settings)
    wanted = profile_data_source(settings, profile, knobs)
    for ref in reversed(ws.list_datasets(settings.dataset_name)):
        try:
            if read_manifest(Path(ref.path)).source == wanted:
                return ref
        except (FileNotFoundError, OSError, ValueError):
            continue  # not a local folder (a cloud asset) or an unreadable manifest: not a match
    return None


def ensure_dataset(
    settings: Settings, profile: str, knobs: dict[str, Any] | None = None, *, workspace: Workspace | None = None
) -> DatasetRef:
    """The profile's registered data set: reused when registered before, else generated,
    validated and registered (content-hash version, so this never creates a duplicate)."""
    from visionops.lifecycle import prepare_dataset

    ws = workspace or get_workspace(settings)
    found = find_dataset(settings, profile, knobs, workspace=ws)
    if found is not None:
        return found
    data_knobs = _section_knobs(profile, knobs, "data")
    folder = prepare_dataset(settings, profile, knobs=data_knobs)
    return ws.register_dataset(folder, settings.dataset_name, source=read_manifest(folder).source)


def local_path(settings: Settings, dataset: DatasetRef) -> Path:
    """The data set's folder on this machine: the ref's own path locally; for an Azure ML data
    asset (an azureml:// path) the local catalog's copy of the same version, which the azure
    backend registered (and uploaded) it from."""
    from visionops.data.catalog import LocalDatasetCatalog

    path = Path(dataset.path)
    if "://" not in dataset.path and path.is_dir():
        return path
    return Path(LocalDatasetCatalog(settings.catalog_dir).get(dataset.name, dataset.version).path)


# --- training -----------------------------------------------------------------------------------
def _section_knobs(profile: str, knobs: dict[str, Any] | None, section: str) -> dict[str, Any]:
    """The knobs that belong to one section of the profile (data, train or decision); unknown
    knobs raise ConfigError through get_profile."""
    prof = get_profile(profile, **(knobs or {}))  # validates every knob
    fields = type(getattr(prof, section)).model_fields
    return {k: v for k, v in (knobs or {}).items() if k in fields and v is not None}


def training_request(
    settings: Settings, profile: str, dataset: DatasetRef, knobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What determines a training: profile, data set version, training spec, seed, device, MLflow store."""
    spec = get_profile(profile, **_section_knobs(profile, knobs, "train")).train
    return {
        "profile": profile,
        "dataset": f"{dataset.name}:{dataset.version}",
        "train": spec.model_dump(mode="json"),
        "seed": settings.seed,
        "device": settings.device,
        "tracking_uri": settings.tracking_uri,  # the run must be in the store this session logs to
    }


def find_training(
    settings: Settings, profile: str, dataset: DatasetRef, knobs: dict[str, Any] | None = None
) -> TrainResult | None:
    """The session's training when it was made with exactly this request and its weights exist."""
    folder = session_paths(settings, profile).train
    result_path, request_path = folder / TRAIN_JSON, folder / REQUEST_JSON
    if not (result_path.is_file() and request_path.is_file()):
        return None
    if json.loads(request_path.read_text()) != training_request(settings, profile, dataset, knobs):
        return None
    result = TrainResult.model_validate_json(result_path.read_text())
    return result if Path(result.weights).is_file() else None


def ensure_trained(
    settings: Settings,
    profile: str,
    dataset: DatasetRef,
    knobs: dict[str, Any] | None = None,
    *,
    reuse: bool = True,
) -> TrainResult:
    """A model trained on `dataset` with the profile: the session's earlier training when it
    matches (and `reuse`), else a new one with the pipeline's train step, tracked in MLflow."""
    from visionops.pipeline.steps import train_step

    if reuse and (found := find_training(settings, profile, dataset, knobs)) is not None:
        return found
    folder = session_paths(settings, profile).train
    (folder / REQUEST_JSON).unlink(missing_ok=True)  # a half-finished training must not look reusable
    train_knobs = _section_knobs(profile, knobs, "train")
    result = train_step(local_path(settings, dataset), folder, settings, profile=profile, knobs=train_knobs)
    (folder / REQUEST_JSON).write_text(json.dumps(training_request(settings, profile, dataset, knobs), indent=2))
    return result


# --- evaluation and registration -------------------------------------------------------------
def find_evaluation(settings: Settings, profile: str, trained: TrainResult) -> EvaluationOutcome | None:
    path = session_paths(settings, profile).evaluate / EVALUATION_JSON
    if not path.is_file():
        return None
    outcome = EvaluationOutcome.model_validate_json(path.read_text())
    return outcome if outcome.train_run_id == trained.run_id else None


def ensure_evaluated(
    settings: Settings,
    profile: str,
    dataset: DatasetRef,
    trained: TrainResult,
    knobs: dict[str, Any] | None = None,
    *,
    reuse: bool = True,
) -> EvaluationOutcome:
    """The champion/challenger evaluation of `trained` (reused when the session already has it)."""
    from visionops.pipeline.steps import evaluate_step

    if reuse and (found := find_evaluation(settings, profile, trained)) is not None:
        return found
    paths = session_paths(settings, profile)
    rule = get_profile(profile, **_section_knobs(profile, knobs, "decision")).decision
    return evaluate_step(paths.train, local_path(settings, dataset), paths.evaluate, settings, rule=rule)


def ensure_champion(
    settings: Settings, profile: str, knobs: dict[str, Any] | None = None, *, workspace: Workspace | None = None
) -> ModelVersionRef:
    """The production model: the registry's champion, or (none yet) the session's model taken
    through data -> train -> evaluate -> register. Raises ModelNotFoundError, with the decision's
    reason, when that model was not promoted."""
    from visionops import registry
    from visionops.pipeline.steps import register_step

    champion = registry.get_champion(settings)
    if champion is not None:
        return champion
    dataset = ensure_dataset(settings, profile, knobs, workspace=workspace)
    trained = ensure_trained(settings, profile, dataset, knobs)
    outcome = ensure_evaluated(settings, profile, dataset, trained, knobs)
    paths = session_paths(settings, profile)
    result: RegistrationResult = register_step(paths.train, paths.evaluate, paths.register, settings)
    if not result.registered:
        raise ModelNotFoundError(
            f"no champion: the {profile} model was not promoted ({outcome.decision.reason}); "
            "train longer (more epochs) or lower the floor, then evaluate again (notebook 03)"
        )
    return registry.require_champion(settings)


def champion_dataset(settings: Settings, champion: ModelVersionRef) -> Path:
    """The local folder of the data set version the champion was trained and tested on (the local
    catalog holds it on both backends: the azure backend versions and uploads from there)."""
    from visionops.data.catalog import LocalDatasetCatalog

    name, version = champion.tags.get("dataset.name"), champion.tags.get("dataset.version")
    if not name or not version:
        raise ModelNotFoundError(
            f"model {champion.name} v{champion.version} has no dataset.name/dataset.version tags; "
            "it was not registered by visionops (register_step adds them)"
        )
    return Path(LocalDatasetCatalog(settings.catalog_dir).get(name, version).path)


def pipeline_results(run: Any) -> dict[str, Any]:
    """What a local pipeline run decided: its train result, decision and registration, read from
    the step output folders (an Azure ML run keeps them in the workspace: see its studio URL)."""
    from visionops.evaluation.challenge import DECISION_FILE
    from visionops.pipeline.steps import REGISTRATION_JSON

    def read(output: str, name: str) -> dict[str, Any] | None:
        folder = run.outputs.get(output)
        path = Path(folder) / name if folder else None
        return json.loads(path.read_text()) if path is not None and path.is_file() else None

    return {
        "train": read("model", TRAIN_JSON),
        "decision": read("evaluation", DECISION_FILE),
        "registration": read("registration", REGISTRATION_JSON),
    }

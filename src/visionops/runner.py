"""The one lifecycle runner: data -> validate -> train -> evaluate -> register, on a named data set.

Notebooks 01-05, `visionops run|train|evaluate|register`, `visionops pipeline run` and the tests
all drive the lifecycle through this class; the Azure ML components call the same step
functions (`visionops.pipeline.steps`). Three rules make it the single source of truth:

- **The data set is an input.** Every step takes the data set it works on. Not given, it is the
  workspace's *current* data set (the one notebook 01, `visionops data import|register` or
  `visionops run --source` made current); only when there is none does the profile's synthetic
  data set get generated, registered and made current. Every result records `name:version`.
- **Names follow the data.** The model is registered as `<dataset>-detector` (a classification
  data set: `<dataset>-classifier`) unless the settings name one (`VISIONOPS_MODEL_NAME`), so a
  team's `pcb-defects` data set gives a `pcb-defects-detector` model, never a `shapes-detector`.
- **The task follows the data.** `task` (`detect` | `classify`, `visionops.tasks`) picks the
  profile's data, model and decision metric. Asked for explicitly, a data set of the other task
  is a one-line error; not asked for, the runner takes the task of the data set it works on
  (the settings' task only picks the synthetic data set when there is none).
- **A step is reused when its request is unchanged.** Each step's request (its inputs, the
  profile's knobs, the seed, device, tracking store and code version) is hashed; its folder is
  `outputs/lifecycle/<dataset>/<step>-<hash>/`. A finished folder with the same request is
  reused instead of recomputed (a notebook that runs alone finds what the previous one made),
  and a registration is never repeated for the same evaluation.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.data.catalog import DatasetRef
from visionops.data.naming import derived_name
from visionops.errors import ModelNotFoundError, VisionOpsError
from visionops.evaluation.challenge import EvaluationOutcome
from visionops.hashing import value_digest
from visionops.pipeline.executors import Executor, InProcess
from visionops.pipeline.steps import (
    EVALUATION_JSON,
    REGISTRATION_JSON,
    TRAIN_JSON,
    VALIDATION_JSON,
    RegistrationResult,
    model_name_for,
)
from visionops.profiles import Profile, get_profile
from visionops.settings import Settings
from visionops.tasks import Task, check_same_task, get_task
from visionops.training import TrainResult, check_model_source
from visionops.workspace import Workspace, get_workspace

LIFECYCLE_DIR = "lifecycle"
REQUEST_JSON = "request.json"
LAST_RUN = "last_run.json"

Say = Callable[[str, str], None]


def print_step(step: str, message: str) -> None:
    """An `on_step` for notebooks: each step says what it does, in the cell's output."""
    print(f"{step}: {message}")


def request_key(request: dict[str, Any]) -> str:
    """A short, stable hash of a step's request (sorted JSON)."""
    return value_digest(request)


class RunResult(BaseModel):
    """What one pass of the whole lifecycle did, as `visionops run` prints and saves it."""

    profile: str
    dataset: DatasetRef
    model_name: str
    train: TrainResult
    evaluation: dict[str, Any]
    registration: RegistrationResult
    folders: dict[str, Path]
    duration_s: float
    timings_s: dict[str, float]

    @property
    def decision(self) -> str:
        return self.evaluation["decision"]


class Runner:
    """Runs the lifecycle's steps for one profile (knobs override it) in one workspace."""

    def __init__(
        self,
        settings: Settings,
        profile: str | None = None,
        knobs: dict[str, Any] | None = None,
        *,
        workspace: Workspace | None = None,
        on_step: Say | None = None,
        executor: Executor | None = None,
        task: str | None = None,
    ):
        self.base_settings = settings
        self.profile_name = profile or settings.profile
        self.knobs = {k: v for k, v in (knobs or {}).items() if v is not None}
        # an explicit task is enforced on every data set; otherwise the data set's task is adopted
        self.task_asked: Task | None = get_task(task) if task is not None else None
        self.task: Task = self.task_asked or get_task(settings.task)
        self.profile: Profile = get_profile(self.profile_name, self.task.name, **self.knobs)  # unknown knob: error
        self.workspace = workspace or get_workspace(settings)
        self.say: Say = on_step or (lambda step, msg: None)
        # how each step runs: in this process (default), or as its Azure ML component command
        # (visionops.pipeline.executors.Components: the local pipeline run)
        self.executor: Executor = executor or InProcess()

    # --- task ------------------------------------------------------------------------------
    def adopt(self, dataset: DatasetRef) -> DatasetRef:
        """Work on `dataset`'s task from now on (its profile, model noun and decision metric); a
        task asked for explicitly must be the data set's."""
        found = check_same_task(self.task_asked.name if self.task_asked else None, dataset.task,
                                f"data set {_id(dataset)}")
        if found.name != self.task.name:
            self.task = found
            self.profile = get_profile(self.profile_name, found.name, **self.knobs)
        return dataset

    @property
    def synthetic_name(self) -> str:
        """This task's synthetic data set name (`shapes`, `shapes-cls`)."""
        return self.task.synthetic_name(self.base_settings.dataset_name)

    # --- data ------------------------------------------------------------------------------
    def synthetic_folder(self) -> Path:
        """The profile's synthetic data set, generated into data/work/ (not registered yet)."""
        from visionops.data.dataset import generate_synthetic

        s = self.base_settings
        spec = self.profile.data.model_copy(update={"seed": s.seed})
        return Path(generate_synthetic(spec, s.data_dir / "work" / f"{self.synthetic_name}-{self.profile_name}",
                                       self.synthetic_name))

    def generate(self) -> DatasetRef:
        """The profile's synthetic data set: generated, validated, registered and made current."""
        from visionops.data.dataset import describe_source

        folder = self.synthetic_folder()
        return self.register_folder(folder, self.synthetic_name, source=describe_source(folder))

    def working_copy(self, source: Path | str | None = None, fmt: str = "auto", *, images_dir: Path | None = None,
                     name: str | None = None, **options: Any) -> tuple[Path, str]:
        """(folder, name) of a data set to look at before registering it: `source` imported (its
        name: `name`, else derived from the source), or with no source the synthetic one."""
        if source is None or not str(source).strip():
            return self.synthetic_folder(), self.synthetic_name
        target_name = name or derived_name(Path(source))
        return self.import_folder(Path(source), fmt, images_dir=images_dir, name=target_name, **options), target_name

    def import_source(
        self, source: Path, fmt: str = "auto", *, images_dir: Path | None = None, name: str | None = None,
        **options: Any,
    ) -> DatasetRef:
        """A team's export: imported (checked against its source), validated, registered, current.
        Its name: `name`, else derived from the source (folder or file name, sanitised)."""
        from visionops.data.dataset import describe_source

        target_name = name or derived_name(source)
        folder = self.import_folder(source, fmt, images_dir=images_dir, name=target_name, **options)
        return self.register_folder(folder, target_name, source=describe_source(folder))

    def import_folder(
        self, source: Path, fmt: str = "auto", *, images_dir: Path | None = None, name: str | None = None,
        **options: Any,
    ) -> Path:
        """The imported working copy under data/work/ (not registered yet); a task asked for
        explicitly must be the export's (checked before anything is registered)."""
        from visionops.data.dataset import import_dataset
        from visionops.data.formats.report import read_import_report
        from visionops.data.kinds import folder_task

        s = self.base_settings
        target_name = name or derived_name(source)
        folder = Path(import_dataset(Path(source), s.data_dir / "work" / f"{target_name}-import", target_name,
                                     fmt, images_dir=images_dir, **options))
        report = read_import_report(folder)
        if report is not None:  # what was read and carried, per split: printed wherever the import ran
            self.say("import", report.render())
        check_same_task(self.task_asked.name if self.task_asked else None, folder_task(folder), f"the export {source}")
        return folder

    def register_folder(self, folder: Path, name: str, *, source: dict[str, Any] | None = None) -> DatasetRef:
        """Validate and register a working copy (content-hash version) and make it current."""
        ref = self.workspace.register_dataset(Path(folder), name, source=source)
        self.adopt(ref)
        self.workspace.make_current(ref)
        self.say("data", f"data set {ref.name}:{ref.version} registered and current ({_describe(ref)})")
        return ref

    def dataset(self, spec: str | None = None) -> DatasetRef:
        """`name[:version]`, else the current data set (of the task asked for, when one was),
        else the profile's synthetic one."""
        found = self.workspace.resolve_dataset(spec, self.task_asked.name if self.task_asked else None)
        if found is not None:
            self.adopt(found)
            how = "as asked" if spec else "the current data set"
            self.say("data", f"using {found.name}:{found.version} ({how}; {_describe(found)})")
            return found
        self.say("data", "no data set is current here: generating the profile's synthetic data set")
        return self.generate()

    def local_path(self, dataset: DatasetRef) -> Path:
        """The data set's folder on this machine (an Azure ML asset: the local catalog's copy of
        the same version, which the azure backend registered and uploaded it from)."""
        from visionops.data.catalog import LocalDatasetCatalog

        path = Path(dataset.path)
        if "://" not in dataset.path and path.is_dir():
            return path
        return Path(LocalDatasetCatalog(self.base_settings.catalog_dir).get(dataset.name, dataset.version).path)

    def settings_for(self, dataset: DatasetRef) -> Settings:
        """The settings the steps on `dataset` run with: its model name (see `model_name_for`)."""
        s = self.base_settings
        return s.with_overrides(model_name=model_name_for(s, dataset.name, dataset.task))

    # --- step folders ----------------------------------------------------------------------
    def _folder(self, dataset: DatasetRef, step: str, request: dict[str, Any]) -> Path:
        return self.base_settings.outputs_dir / LIFECYCLE_DIR / dataset.name / f"{step}-{request_key(request)}"

    @staticmethod
    def _done(folder: Path, request: dict[str, Any], result_file: str) -> bool:
        req = folder / REQUEST_JSON
        return (folder / result_file).is_file() and req.is_file() and json.loads(req.read_text()) == _jsonable(
            request)

    @staticmethod
    def _start(folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)  # a half-finished step must never look reusable
        folder.mkdir(parents=True)

    @staticmethod
    def _finish(folder: Path, request: dict[str, Any]) -> None:
        (folder / REQUEST_JSON).write_text(json.dumps(_jsonable(request), indent=2, sort_keys=True))

    # --- steps -----------------------------------------------------------------------------
    def validate(self, dataset: DatasetRef, *, reuse: bool = True) -> Path:
        """Validate the data set (again: the catalog copy is what trains); fails with every problem."""
        request = {"step": "validate", "dataset": _id(dataset), "code": _code_version()}
        folder = self._folder(dataset, "validate", request)
        if not (reuse and self._done(folder, request, VALIDATION_JSON)):
            self._start(folder)
            self.executor.validate(self.local_path(dataset), folder)
            self._finish(folder, request)
        return folder

    def training_request(self, dataset: DatasetRef) -> dict[str, Any]:
        self.adopt(dataset)
        s = self.settings_for(dataset)
        return {
            "step": "train", "profile": self.profile_name, "dataset": _id(dataset),
            "train": self.profile.train.model_dump(mode="json"), "seed": s.seed, "device": s.device,
            "tracking_uri": s.tracking_uri, "code": _code_version(),
        }

    def train_folder(self, dataset: DatasetRef) -> Path:
        return self._folder(dataset, "train", self.training_request(dataset))

    def find_training(self, dataset: DatasetRef) -> TrainResult | None:
        """The training made with exactly this request, when its weights still exist."""
        request = self.training_request(dataset)
        folder = self._folder(dataset, "train", request)
        if not self._done(folder, request, TRAIN_JSON):
            return None
        result = TrainResult.model_validate_json((folder / TRAIN_JSON).read_text())
        return result if Path(result.weights).is_file() else None

    def train(self, dataset: DatasetRef, *, reuse: bool = True) -> TrainResult:
        """Train on `dataset` (validated first), or reuse the training of the same request."""
        if reuse and (found := self.find_training(dataset)) is not None:
            self.say("train", f"reusing MLflow run {found.run_id} (same data set, knobs and code)")
            return found
        check_model_source(self.profile.train)  # a missing yaml or .pt fails before any work
        validation = self.validate(dataset)  # reused when this data set version was validated already
        request = self.training_request(dataset)
        folder = self._folder(dataset, "train", request)
        spec = self.profile.train
        self.say("train", f"training {spec.weights or spec.model} on {_id(dataset)} for {spec.epochs} epochs "
                          f"at {spec.imgsz}px (batch {spec.batch})")
        self._start(folder)
        result = self.executor.train(self.local_path(dataset), folder, self.settings_for(dataset),
                                     profile=self.profile_name, knobs=self.knobs, validation=validation)
        self._finish(folder, request)
        return result

    def evaluation_request(self, dataset: DatasetRef, trained: TrainResult) -> dict[str, Any]:
        from visionops import registry

        self.adopt(dataset)
        s = self.settings_for(dataset)
        champion = registry.get_champion(s)
        return {
            "step": "evaluate", "dataset": _id(dataset), "train_run_id": trained.run_id,
            "rule": self.profile.decision.model_dump(mode="json"), "model_name": s.model_name,
            "champion": champion.version if champion else None, "tracking_uri": s.tracking_uri,
            "code": _code_version(),
        }

    def evaluate(self, dataset: DatasetRef, trained: TrainResult, *, reuse: bool = True) -> EvaluationOutcome:
        """Champion/challenger on the frozen test split (reused for the same model, champion and rule)."""
        _same_data(dataset, trained)
        request = self.evaluation_request(dataset, trained)
        folder = self._folder(dataset, "evaluate", request)
        if reuse and self._done(folder, request, EVALUATION_JSON):
            outcome = EvaluationOutcome.model_validate_json((folder / EVALUATION_JSON).read_text())
            self.say("evaluate", f"reusing the evaluation of run {trained.run_id}: {outcome.decision.reason}")
            return outcome
        self.say("evaluate", f"scoring run {trained.run_id} and the champion of {request['model_name']} "
                             f"on the test split of {_id(dataset)}")
        self._start(folder)
        outcome = self.executor.evaluate(self._train_dir(dataset, trained), self.local_path(dataset), folder,
                                         self.settings_for(dataset), profile=self.profile_name,
                                         rule=self.profile.decision)
        self._finish(folder, request)
        self.say("decide", f"{outcome.decision.outcome.upper()}: {outcome.decision.reason}")
        return outcome

    def register(self, dataset: DatasetRef, trained: TrainResult, outcome: EvaluationOutcome) -> RegistrationResult:
        """Register after a promote decision (once per evaluation); otherwise record why not."""
        _same_data(dataset, trained)
        request = self.registration_request(dataset, trained, outcome)
        folder = self._folder(dataset, "register", request)
        if self._done(folder, request, REGISTRATION_JSON):
            return RegistrationResult.model_validate_json((folder / REGISTRATION_JSON).read_text())
        eval_dir = self._folder(dataset, "evaluate", self.evaluation_request_for(outcome, dataset, trained))
        self._start(folder)
        result = self.executor.register(self._train_dir(dataset, trained), eval_dir, folder, self.settings_for(dataset))
        self._finish(folder, request)
        self.say("register", f"registered {result.model_name} version {result.version} (production)"
                 if result.registered else f"registered nothing: {result.reason}")
        if result.registered:
            self._record_baseline(dataset, result)
        return result

    def _record_baseline(self, dataset: DatasetRef, result: RegistrationResult) -> None:
        """The new version's drift baseline (its test split through the serving predictor,
        visionops.monitoring.baseline). Reported, not raised, when it fails: the version is
        registered either way, and `visionops monitor` builds a missing baseline on first use."""
        from visionops import registry
        from visionops.monitoring.baseline import record_baseline

        s = self.settings_for(dataset)
        try:
            ref = registry.get_version(s, str(result.version), result.model_name)
            path = record_baseline(s, ref, self.local_path(dataset))
        except Exception as exc:  # noqa: BLE001 - any failure here must not undo a registration
            self.say("baseline", f"not recorded ({type(exc).__name__}: {exc}); `visionops monitor` builds it later")
            return
        images = len(path.read_text().splitlines())
        self.say("baseline", f"drift baseline of version {ref.version}: {images} test image(s)")

    def registration_request(self, dataset: DatasetRef, trained: TrainResult,
                             outcome: EvaluationOutcome) -> dict[str, Any]:
        return {"step": "register", "dataset": _id(dataset), "evaluation_run_id": outcome.evaluation_run_id,
                "train_run_id": trained.run_id, "tracking_uri": self.settings_for(dataset).tracking_uri}

    def champion(self, dataset: DatasetRef) -> Any:
        """The production model of this data set's model name: the registry's, or (none yet) this
        profile's model taken through train -> evaluate -> register. Raises ModelNotFoundError,
        with the decision's reason, when that model was not promoted."""
        from visionops import registry

        s = self.settings_for(dataset)
        found = registry.get_champion(s)
        if found is not None:
            return found
        trained = self.train(dataset)
        outcome = self.evaluate(dataset, trained)
        result = self.register(dataset, trained, outcome)
        if not result.registered:
            raise ModelNotFoundError(
                f"no champion for {s.model_name}: the {self.profile_name} model was not promoted "
                f"({outcome.decision.reason}); train longer (more epochs) or lower the floor, then evaluate again"
            )
        return registry.require_champion(s)

    def run(self, dataset: str | DatasetRef | None = None, *, source: Path | None = None, fmt: str = "auto",
            images_dir: Path | None = None, name: str | None = None, reuse: bool = False) -> RunResult:
        """The whole lifecycle in order. `source` imports (and makes current) a team's export
        first; else `dataset` (`name[:version]`), else the current data set, else synthetic.
        A failing step stops the run, so nothing after it (registration included) happens."""
        timings: dict[str, float] = {}
        started = time.perf_counter()

        def timed(step: str, fn: Callable[[], Any]) -> Any:
            t = time.perf_counter()
            value = fn()
            timings[step] = round(time.perf_counter() - t, 2)
            return value

        if source is None and isinstance(dataset, DatasetRef):
            self.adopt(dataset)
        check_model_source(self.profile.train)
        if source is not None:
            ref = timed("data", lambda: self.import_source(source, fmt, images_dir=images_dir, name=name))
        elif isinstance(dataset, DatasetRef):
            ref = dataset
        else:
            ref = timed("data", lambda: self.dataset(dataset))
        timed("validate", lambda: self.validate(ref, reuse=reuse))
        trained = timed("train", lambda: self.train(ref, reuse=reuse))
        outcome = timed("evaluate", lambda: self.evaluate(ref, trained, reuse=reuse))
        registration = timed("register", lambda: self.register(ref, trained, outcome))
        folders = {
            "validate": self.validate(ref),
            "train": self._train_dir(ref, trained),
            "evaluate": self._folder(ref, "evaluate", self.evaluation_request_for(outcome, ref, trained)),
            "register": self._folder(ref, "register", self.registration_request(ref, trained, outcome)),
        }
        result = RunResult(
            profile=self.profile_name, dataset=ref, model_name=model_name_for(self.base_settings, ref.name, ref.task),
            train=trained, evaluation=outcome.summary(), registration=registration, folders=folders,
            duration_s=round(time.perf_counter() - started, 2), timings_s=timings,
        )
        text = result.model_dump_json(indent=2)
        out = self.base_settings.outputs_dir / LIFECYCLE_DIR
        out.mkdir(parents=True, exist_ok=True)
        (out / LAST_RUN).write_text(text)
        return result

    # --- helpers ---------------------------------------------------------------------------
    def _train_dir(self, dataset: DatasetRef, trained: TrainResult) -> Path:
        """The folder of `trained` (its weights sit in <folder>/weights/best.pt)."""
        return Path(trained.weights).parent.parent

    def evaluation_request_for(self, outcome: EvaluationOutcome, dataset: DatasetRef,
                               trained: TrainResult) -> dict[str, Any]:
        """The request `outcome` was made for (the champion may have changed since: a promote
        registers a new one), recovered from the evaluation folder beside it."""
        path = Path(outcome.decision_path).parent / REQUEST_JSON
        if path.is_file():
            return json.loads(path.read_text())
        return self.evaluation_request(dataset, trained)


def champion_dataset(settings: Settings, champion: Any) -> Path:
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

    def read(output: str, name: str) -> dict[str, Any] | None:
        folder = run.outputs.get(output)
        path = Path(folder) / name if folder else None
        return json.loads(path.read_text()) if path is not None and path.is_file() else None

    return {
        "train": read("model", TRAIN_JSON),
        "decision": read("evaluation", DECISION_FILE),
        "registration": read("registration", REGISTRATION_JSON),
    }


def last_run(settings: Settings) -> dict[str, Any] | None:
    path = settings.outputs_dir / LIFECYCLE_DIR / LAST_RUN
    return json.loads(path.read_text()) if path.is_file() else None


def _id(dataset: DatasetRef) -> str:
    return f"{dataset.name}:{dataset.version}"


def _describe(ref: DatasetRef) -> str:
    images = sum(c.get("images", 0) for c in ref.counts.values())
    classes = ", ".join(ref.classes[:6]) + (f" ... ({len(ref.classes)} classes)" if len(ref.classes) > 6 else "")
    return f"{images} images; classes {classes}"


def _same_data(dataset: DatasetRef, trained: TrainResult) -> None:
    if (trained.dataset_name, trained.dataset_version) != (dataset.name, dataset.version):
        raise VisionOpsError(
            f"the model of MLflow run {trained.run_id} was trained on "
            f"{trained.dataset_name}:{trained.dataset_version}, not on {_id(dataset)}; evaluate it on the "
            "data set it was trained on (its test split is the frozen one)"
        )


def _code_version() -> str:
    from visionops import __version__
    from visionops.tracking import git_commit

    return f"{__version__}+{git_commit()}"


def _jsonable(request: dict[str, Any]) -> Any:
    return json.loads(json.dumps(request, sort_keys=True, default=str))

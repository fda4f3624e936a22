"""The MLflow model registry: register a promoted model with its lineage, mark and find the champion.

Production is a model-version *tag* (`stage=production`), not an MLflow alias or stage: Azure
ML's MLflow registry documents tags, while aliases are undocumented there and stages are
deprecated, so the same code works on both backends. Registration refuses anything but a
promote decision, so a failed or losing run can never reach the registry.

Every version records the ordered class list it predicts (model_info.json "classes", and the
tags `classes.sha256`, `classes.count` and, when short enough, `classes`): the champion/
challenger gate compares only models of the same label set, and registration refuses to make a
model of another class list the production version of an existing name (see
evaluation/decision.py for the rule).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionops.errors import ModelNotFoundError, VisionOpsError
from visionops.evaluation.decision import Decision, class_list_reason
from visionops.hashing import value_digest
from visionops.settings import Settings
from visionops.tracking import configure_mlflow

STAGE_TAG = "stage"
PRODUCTION = "production"
ARCHIVED = "archived"
MODEL_INFO = "model_info.json"
CLASSES_TAG = "classes"  # JSON list, only when it fits CLASSES_TAG_MAX (model_info.json always has it)
CLASSES_HASH_TAG = "classes.sha256"
CLASSES_COUNT_TAG = "classes.count"
# Well under MLflow's model-version tag limit, and under the 5,000 characters older registries
# (and, undocumented, maybe Azure ML's) accept; 80 COCO names take about 800.
CLASSES_TAG_MAX = 4000
_PYFUNC_CODE = Path(__file__).with_name("mlflow_model.py")


class RegistrationRefused(VisionOpsError):
    """The decision did not say promote; nothing was registered."""


class ModelVersionRef(BaseModel):
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    created: int

    @property
    def is_production(self) -> bool:
        return self.tags.get(STAGE_TAG) == PRODUCTION

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def metric(self, key: str) -> float | None:
        v = self.tags.get(f"metric.{key}")
        return float(v) if v is not None else None


def _ref(mv) -> ModelVersionRef:
    return ModelVersionRef(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        source=mv.source,
        tags=dict(mv.tags or {}),
        created=int(mv.creation_timestamp or 0),
    )


def _client(settings: Settings):
    import mlflow

    configure_mlflow(settings)
    return mlflow.MlflowClient()


def list_versions(settings: Settings, name: str | None = None) -> list[ModelVersionRef]:
    name = name or settings.registered_model_name
    client = _client(settings)
    versions = client.search_model_versions(f"name='{name}'")
    return sorted((_ref(v) for v in versions), key=lambda r: int(r.version))


def get_version(settings: Settings, version: str, name: str | None = None) -> ModelVersionRef:
    name = name or settings.registered_model_name
    for ref in list_versions(settings, name):
        if ref.version == str(version):
            return ref
    raise ModelNotFoundError(f"model {name!r} has no version {version!r}; list them with `visionops models`")


def get_champion(settings: Settings, name: str | None = None) -> ModelVersionRef | None:
    """The version tagged production (the newest one, should two ever carry the tag)."""
    prod = [r for r in list_versions(settings, name) if r.is_production]
    return prod[-1] if prod else None


def require_champion(settings: Settings, name: str | None = None) -> ModelVersionRef:
    champ = get_champion(settings, name)
    if champ is None:
        n = name or settings.registered_model_name
        raise ModelNotFoundError(
            f"model {n!r} has no production version in {settings.tracking_uri}; "
            "run the lifecycle first (`visionops run --profile smoke`)"
        )
    return champ


def resolve(settings: Settings, spec: str | None = None, option: str = "--model") -> ModelVersionRef:
    """The version a `--model` option names: `name:version`, `name` (its production version), or
    None (the production version of the settings' model). `visionops predict`, `monitor`,
    `label export` and `edge manifest` all read their option through this."""
    if spec is None:
        return require_champion(settings)
    name, _, version = str(spec).strip().partition(":")
    if not name:
        from visionops.errors import ConfigError

        raise ConfigError(f"{option} {spec!r}: expected name:version (e.g. shapes-detector:3) or a name")
    return get_version(settings, version, name) if version else require_champion(settings, name)


def download(settings: Settings, ref: ModelVersionRef, dst: Path | None = None) -> Path:
    """The version's files (weights, model_info.json, MLmodel) in a local folder; cached by version."""
    import mlflow

    configure_mlflow(settings)
    target = Path(dst or settings.outputs_dir / "models" / ref.name / ref.version)
    if (target / MODEL_INFO).is_file() or (target / "artifacts" / MODEL_INFO).is_file():
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(staging))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def model_files(model_dir: Path) -> dict[str, Path]:
    """Weights (.pt and, when exported, .onnx) and model_info.json inside a downloaded version."""
    model_dir = Path(model_dir)
    found: dict[str, Path] = {}
    for key, pattern in (("pt", "*.pt"), ("onnx", "*.onnx"), ("info", MODEL_INFO)):
        hits = sorted(model_dir.rglob(pattern))
        if hits:
            found[key] = hits[0]
    if "pt" not in found and "onnx" not in found:
        raise ModelNotFoundError(f"no .pt or .onnx weights under {model_dir}")
    return found


def classes_digest(classes: Sequence[str]) -> str:
    """sha256 of the ordered class list: order matters, since class ids are positions in it."""
    return value_digest(list(classes), length=None)


def class_tags(classes: Sequence[str]) -> dict[str, str]:
    """The tags that let the registry (and its UI) tell a version's label set without downloading it."""
    tags = {CLASSES_HASH_TAG: classes_digest(classes), CLASSES_COUNT_TAG: str(len(classes))}
    as_json = json.dumps(list(classes), ensure_ascii=False)
    if len(as_json) <= CLASSES_TAG_MAX:
        tags[CLASSES_TAG] = as_json
    return tags


def version_classes(settings: Settings, ref: ModelVersionRef) -> list[str] | None:
    """The ordered class list `ref` was trained on: from its `classes` tag when present, else from
    its model_info.json (versions registered before the tag existed, or with long lists). None
    when neither says (a version not registered by visionops)."""
    raw = ref.tags.get(CLASSES_TAG)
    if raw is not None:
        classes = json.loads(raw)
        digest = ref.tags.get(CLASSES_HASH_TAG)
        if digest is None or digest == classes_digest(classes):
            return [str(c) for c in classes]
    info_path = model_files(download(settings, ref)).get("info")
    if info_path is None:
        return None
    classes = json.loads(Path(info_path).read_text()).get("classes")
    return [str(c) for c in classes] if isinstance(classes, list) else None


def champion_weights(settings: Settings, name: str | None = None) -> tuple[ModelVersionRef, Path] | None:
    champ = get_champion(settings, name)
    if champ is None:
        return None
    return champ, model_files(download(settings, champ))["pt"]


def register(
    settings: Settings,
    *,
    decision: Decision,
    weights: Path,
    train_run_id: str,
    tags: dict[str, Any],
    info: dict[str, Any],
    extra_artifacts: dict[str, Path] | None = None,
    name: str | None = None,
    classes: Sequence[str] | None = None,
) -> ModelVersionRef:
    """Log the model (pyfunc + weights + model_info.json) into the training run, register it,
    and make it the production version. Refuses unless `decision.promote`, and refuses a class
    list (`classes`, default `info["classes"]`) other than the current champion's of `name`."""
    if not decision.promote:
        raise RegistrationRefused(f"not registered: the decision was '{decision.outcome}' ({decision.reason})")
    weights = Path(weights)
    if not weights.is_file():
        raise ModelNotFoundError(f"weights {weights} not found; nothing was registered")
    import mlflow

    name = name or settings.registered_model_name
    classes = _class_list(classes if classes is not None else info.get("classes"), name)
    info = {**info, "classes": classes}
    client = _client(settings)
    champion = get_champion(settings, name)
    if champion is not None:
        champion_classes = version_classes(settings, champion)
        if champion_classes is not None and champion_classes != classes:
            raise RegistrationRefused(
                "not registered: " + class_list_reason(classes, champion_classes, champion.version, name)
            )
    staging = settings.outputs_dir / "models" / ".staging" / train_run_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    info_path = staging / MODEL_INFO
    info_path.write_text(json.dumps({"name": name, **info}, indent=2, default=str))
    artifacts = {"weights": str(weights), "model_info": str(info_path)}
    for key, path in (extra_artifacts or {}).items():
        artifacts[key] = str(path)
    with mlflow.start_run(run_id=train_run_id), warnings.catch_warnings():
        # An input example would make MLflow load and run the detector at logging time; the
        # signature is declared instead, so its reminder about examples is noise here.
        warnings.filterwarnings("ignore", message=".*An input example was not provided")  # MLflow colours it
        model_info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(_PYFUNC_CODE),
            artifacts=artifacts,
            pip_requirements=_pip_requirements(),
            signature=_signature(str(info.get("task", "detect"))),
        )
    str_tags = {**{k: str(v) for k, v in tags.items()}, **class_tags(classes)}
    mv = mlflow.register_model(model_info.model_uri, name, tags=str_tags)
    shutil.rmtree(staging, ignore_errors=True)
    previous = get_champion(settings, name)
    client.set_model_version_tag(name, mv.version, STAGE_TAG, PRODUCTION)
    if previous is not None and previous.version != str(mv.version):
        client.set_model_version_tag(name, previous.version, STAGE_TAG, ARCHIVED)
    client.set_registered_model_tag(name, "production_version", str(mv.version))
    return get_version(settings, str(mv.version), name)


def _class_list(classes: object, name: str) -> list[str]:
    """The class list a version must record, checked: the label-set gate depends on it."""
    if not (isinstance(classes, list | tuple) and classes and all(isinstance(c, str) and c for c in classes)):
        raise VisionOpsError(
            f"not registered: model {name!r} needs its ordered class list (non-empty names), got {classes!r}; "
            "pass classes=[...] or info={'classes': [...]} (the data set's classes)"
        )
    return list(classes)


def _signature(task: str = "detect"):
    """Declared, not inferred: inference would have to load the model and run it on an example.
    The output follows the task (mlflow_model.py): a row per box, or a row per image and rank;
    the params are declared so MLflow passes them through (it drops undeclared ones)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("string", "path", required=False), ColSpec("string", "image", required=False)])
    if task == "classify":
        outputs = Schema([ColSpec("long", "image_index"), ColSpec("long", "rank"), ColSpec("long", "class_id"),
                          ColSpec("string", "label"), ColSpec("double", "probability")])
        params = ParamSchema([ParamSpec("top_k", "long", 5)])
    else:
        outputs = Schema(
            [ColSpec("long", "image_index"), ColSpec("long", "class_id"), ColSpec("string", "label"),
             ColSpec("double", "confidence"), *(ColSpec("double", c) for c in ("x0", "y0", "x1", "y1"))]
        )
        params = ParamSchema([ParamSpec("conf", "double", 0.25)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _pip_requirements() -> list[str]:
    """What the pyfunc needs to load, at the versions we run (not inferred: inference imports the model)."""
    from importlib.metadata import version

    pkgs = ["mlflow", "ultralytics", "torch", "torchvision", "pandas", "pillow"]
    return [f"{p}=={version(p)}" for p in pkgs]

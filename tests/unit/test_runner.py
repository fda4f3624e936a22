"""visionops.runner: which data set a step uses, names that follow the data, and reuse by request.

Training, evaluation and registration are replaced by fakes here (the notebook and lifecycle tests
run the real ones); data sets are real (the smoke profile generates in a fraction of a second).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from visionops import records, runner
from visionops.errors import ConfigError, DatasetNotFoundError, ModelNotFoundError, TrainingError
from visionops.evaluation.challenge import EvaluationOutcome
from visionops.evaluation.decision import DecisionRule, decide
from visionops.evaluation.metrics import EvalResult
from visionops.pipeline import steps
from visionops.runner import Runner
from visionops.training import TrainResult

SMALL = {"n_train": 4, "n_val": 2, "n_test": 2, "image_size": 64}
SRC = Path(__file__).resolve().parents[2] / "src" / "visionops"


# --- records ------------------------------------------------------------------------------------
def test_record_and_read_summary(fresh_settings):
    path = records.record_summary(fresh_settings, "01_x", {"version": "abc", "where": Path("/a/b"), "n": 3})
    assert path == fresh_settings.outputs_dir / "notebooks" / "01_x.json"
    doc = records.read_summary(fresh_settings, "01_x")
    assert doc["notebook"] == "01_x" and doc["version"] == "abc" and doc["where"] == "/a/b" and doc["n"] == 3
    records.record_summary(fresh_settings, "01_x", {"version": "def"})  # replaced, not merged
    assert records.read_summary(fresh_settings, "01_x") == {**records.read_summary(fresh_settings, "01_x"),
                                                           "version": "def"}
    assert "n" not in records.read_summary(fresh_settings, "01_x")
    assert sorted(p.name for p in path.parent.iterdir()) == ["01_x.json"]  # no temp files left
    assert records.read_summary(fresh_settings, "nope") is None


# --- which data set -----------------------------------------------------------------------------
def _foreign(settings, export: Path, name="parts"):
    """The foreign export imported and registered under `name` (other classes, sizes, layout)."""
    r = Runner(settings, "smoke")
    return r.import_source(export, "yolo", name=name), r.workspace


def test_nothing_current_generates_the_profiles_synthetic_set_and_makes_it_current(fresh_settings):
    r = Runner(fresh_settings, "smoke", SMALL)
    assert r.workspace.current_dataset() is None
    ref = r.dataset()
    assert ref.name == "shapes" and ref.counts["train"]["images"] == 4
    assert r.workspace.current_dataset() == ref
    assert r.dataset() == ref  # now current: reused, not generated again
    assert [x.version for x in r.workspace.list_datasets()] == [ref.version]


def test_an_imported_or_registered_set_becomes_current_and_is_used_by_default(fresh_settings, foreign_export):
    said: list[str] = []
    parts, ws = _foreign(fresh_settings, foreign_export)
    assert ws.current_dataset() == parts
    r = Runner(fresh_settings, "smoke", SMALL, on_step=lambda step, msg: said.append(msg))
    assert r.dataset() == parts  # not the synthetic shapes
    assert any("parts:" in m and "current" in m for m in said)  # it says which data set it used
    assert r.dataset(f"parts:{parts.version}") == parts and r.dataset("parts") == parts
    shapes = Runner(fresh_settings, "smoke", SMALL).generate()
    assert ws.current_dataset() == shapes and r.dataset("parts") == parts  # explicit beats current


def test_an_unknown_data_set_is_one_error_listing_the_registered_ones(fresh_settings, foreign_export):
    parts, _ = _foreign(fresh_settings, foreign_export)
    r = Runner(fresh_settings, "smoke")
    with pytest.raises(DatasetNotFoundError, match=rf"no data set 'nope:3'.*parts:{parts.version}"):
        r.dataset("nope:3")
    with pytest.raises(DatasetNotFoundError, match="registered: parts:"):
        r.dataset("parts:0000")


def test_names_follow_the_data(fresh_settings, foreign_export):
    parts, _ = _foreign(fresh_settings, foreign_export)
    r = Runner(fresh_settings, "smoke")
    assert r.settings_for(parts).model_name == "parts-detector"
    assert fresh_settings.registered_model_name == "parts-detector"  # the current data set's model
    named = fresh_settings.with_overrides(model_name="team-model")
    assert Runner(named, "smoke").settings_for(parts).model_name == "team-model"
    assert runner.derived_name(Path("/x/My Export (v2)")) == "my-export-v2"
    assert runner.derived_name(foreign_export) == "fasteners"
    (fresh_settings.root / "pcb").mkdir()
    (fresh_settings.root / "pcb" / "data.yaml").write_text("names: [a]\n")
    assert runner.derived_name(fresh_settings.root / "pcb" / "data.yaml") == "pcb"  # generic file name: folder


def test_unknown_knob_and_missing_model_fail_before_any_work(fresh_settings, tmp_path):
    with pytest.raises(ConfigError, match="unknown profile knob 'epoch'.*epochs"):
        Runner(fresh_settings, "smoke", {"epoch": 3})
    r = Runner(fresh_settings, "smoke", {"model": str(tmp_path / "missing.pt")})
    with pytest.raises(TrainingError, match="missing.pt not found"):
        r.run()
    assert r.workspace.list_datasets() == []  # failed before generating or registering anything
    with pytest.raises(TrainingError, match="yolo99.yaml"):
        Runner(fresh_settings, "smoke", {"model": "yolo99.yaml"}).run()


# --- reuse by request ---------------------------------------------------------------------------
@pytest.fixture
def fake_train(monkeypatch):
    """Replace the train step: writes train_result.json and weights like the real one."""
    calls: list[dict] = []

    def train_step(data, out, settings, *, profile, knobs=None, validation=None):
        calls.append({"data": Path(data), "knobs": dict(knobs or {}), "model_name": settings.model_name,
                      "validation": validation})
        ref = json.loads((Path(data) / "manifest.json").read_text())
        out = Path(out)
        (out / "weights").mkdir(parents=True, exist_ok=True)
        (out / "weights" / "best.pt").write_bytes(b"weights")
        result = TrainResult(
            run_id=f"run{len(calls)}", experiment_id="1", weights=out / "weights" / "best.pt", save_dir=out,
            metrics={"map50_95": 0.5}, epochs=2, duration_s=1.0, device="cpu", threads=1,
            dataset_name=ref["name"], dataset_version=ref["version"], classes=ref["classes"],
        )
        (out / steps.TRAIN_JSON).write_text(result.model_dump_json())
        return result

    monkeypatch.setattr(steps, "train_step", train_step)
    return calls


def test_training_is_reused_only_for_the_same_request(fresh_settings, fake_train):
    r = Runner(fresh_settings, "smoke", SMALL)
    ds = r.dataset()
    first = r.train(ds)
    assert first.run_id == "run1" and fake_train[0]["data"] == Path(ds.path)
    assert fake_train[0]["model_name"] == "shapes-detector"
    assert (Path(fake_train[0]["validation"]) / "validation.json").is_file()  # validated before training
    assert r.train(ds).run_id == "run1" and len(fake_train) == 1
    folder = r.train_folder(ds)
    assert folder.parent == fresh_settings.outputs_dir / "lifecycle" / "shapes"
    request = json.loads((folder / "request.json").read_text())
    assert request["dataset"] == f"{ds.name}:{ds.version}" and request["train"]["epochs"] == 2
    other = Runner(fresh_settings, "smoke", {**SMALL, "epochs": 3})
    assert other.train(ds).run_id == "run2" and other.train_folder(ds) != folder  # another request
    assert r.train(ds, reuse=False).run_id == "run3"
    (folder / "weights" / "best.pt").unlink()  # weights gone: not reusable
    assert r.train(ds).run_id == "run4"


def test_a_failed_training_is_not_reusable(fresh_settings, fake_train, monkeypatch):
    r = Runner(fresh_settings, "smoke", SMALL)
    ds = r.dataset()
    r.train(ds)

    def broken(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(steps, "train_step", broken)
    with pytest.raises(RuntimeError):
        r.train(ds, reuse=False)
    assert r.find_training(ds) is None


def _outcome(train_run_id: str, promote: bool, out: Path) -> EvaluationOutcome:
    result = EvalResult(weights=Path("w.pt"), dataset_name="shapes", dataset_version="v", split="test", imgsz=64,
                        metrics={"map50_95": 0.5 if promote else 0.1}, per_class=[], plots={}, save_dir=Path("."),
                        speed_ms={})
    decision = decide(result.metrics, None, DecisionRule(floor=0.3))
    return EvaluationOutcome(challenger=result, champion=None, champion_version=None, decision=decision,
                             evaluation_run_id=f"ev-{train_run_id}", train_run_id=train_run_id,
                             decision_path=out / "decision.json")


@pytest.fixture
def fake_evaluate(monkeypatch):
    calls: list[dict] = []
    state = {"promote": True}

    def evaluate_step(model, data, out, settings, *, rule):
        trained = TrainResult.model_validate_json((Path(model) / steps.TRAIN_JSON).read_text())
        calls.append({"rule": rule, "train_run_id": trained.run_id})
        outcome = _outcome(trained.run_id, state["promote"], Path(out))
        (Path(out) / steps.EVALUATION_JSON).write_text(outcome.model_dump_json())
        return outcome

    monkeypatch.setattr(steps, "evaluate_step", evaluate_step)
    return calls, state


def test_evaluation_is_reused_for_the_same_training_and_champion(fresh_settings, fake_train, fake_evaluate):
    calls, _ = fake_evaluate
    r = Runner(fresh_settings, "smoke", {**SMALL, "floor": 0.2})
    ds = r.dataset()
    trained = r.train(ds)
    first = r.evaluate(ds, trained)
    assert first.train_run_id == trained.run_id and calls[0]["rule"].floor == 0.2
    assert r.evaluate(ds, trained).evaluation_run_id == first.evaluation_run_id and len(calls) == 1
    retrained = r.train(ds, reuse=False)
    r.evaluate(ds, retrained)
    assert [c["train_run_id"] for c in calls] == [trained.run_id, retrained.run_id]


def test_a_model_is_evaluated_only_on_its_own_data_set(fresh_settings, foreign_export, fake_train, fake_evaluate):
    r = Runner(fresh_settings, "smoke", SMALL)
    shapes = r.dataset()
    trained = r.train(shapes)
    parts, _ = _foreign(fresh_settings, foreign_export)
    with pytest.raises(Exception, match="trained on shapes:.*not on parts:"):
        r.evaluate(parts, trained)


def test_champion_builds_registers_once_and_names_the_reason(fresh_settings, fake_train, fake_evaluate,
                                                              monkeypatch):
    from visionops import registry
    from visionops.pipeline.steps import RegistrationResult

    registered: list[str] = []
    champion = object()
    monkeypatch.setattr(registry, "get_champion", lambda settings, name=None: None)
    monkeypatch.setattr(registry, "require_champion", lambda settings, name=None: champion)

    def register_step(model, evaluation, out, settings):
        outcome = EvaluationOutcome.model_validate_json((Path(evaluation) / "evaluation.json").read_text())
        registered.append(settings.model_name)
        result = RegistrationResult(registered=outcome.decision.promote, reason=outcome.decision.reason,
                                    model_name=settings.model_name, version="1" if outcome.decision.promote else None)
        (Path(out) / "registration.json").write_text(result.model_dump_json())
        return result

    monkeypatch.setattr(steps, "register_step", register_step)
    r = Runner(fresh_settings, "smoke", SMALL)
    ds = r.dataset()
    assert r.champion(ds) is champion and registered == ["shapes-detector"]
    trained = r.train(ds)
    r.register(ds, trained, r.evaluate(ds, trained))
    assert registered == ["shapes-detector"]  # the same evaluation is never registered twice

    fake_evaluate[1]["promote"] = False
    r.train(ds, reuse=False)
    with pytest.raises(ModelNotFoundError, match="misses the floor"):
        r.champion(ds)


# --- data set folders, champion's data, pipeline results ----------------------------------------
def test_local_path_of_local_and_cloud_refs(fresh_settings):
    r = Runner(fresh_settings, "smoke", SMALL)
    ref = r.dataset()
    assert r.local_path(ref) == Path(ref.path)
    cloud = ref.model_copy(update={"path": "azureml://subscriptions/x/datastores/y/paths/shapes", "backend": "azure"})
    assert r.local_path(cloud) == Path(ref.path)  # the catalog's copy of that version
    with pytest.raises(DatasetNotFoundError):
        r.local_path(cloud.model_copy(update={"version": "nope"}))


def test_champion_dataset(fresh_settings):
    from visionops.registry import ModelVersionRef

    ref = Runner(fresh_settings, "smoke", SMALL).dataset()
    champ = ModelVersionRef(name="m", version="1", run_id="r", source="s", created=0,
                            tags={"dataset.name": ref.name, "dataset.version": ref.version})
    assert runner.champion_dataset(fresh_settings, champ) == Path(ref.path)
    with pytest.raises(ModelNotFoundError, match="no dataset.name"):
        runner.champion_dataset(fresh_settings, champ.model_copy(update={"tags": {}}))


def test_pipeline_results(tmp_path):
    from types import SimpleNamespace

    for folder, name, doc in (("model", "train_result.json", {"run_id": "r1"}),
                              ("evaluation", "decision.json", {"outcome": "promote"}),
                              ("registration", "registration.json", {"registered": True, "version": "2"})):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(json.dumps(doc))
    run = SimpleNamespace(outputs={k: str(tmp_path / k) for k in ("model", "evaluation", "registration")})
    assert runner.pipeline_results(run) == {
        "train": {"run_id": "r1"}, "decision": {"outcome": "promote"}, "registration": {"registered": True,
                                                                                       "version": "2"}}
    azure_like = SimpleNamespace(outputs={"model": "azureml://jobs/x/outputs/model"})
    assert runner.pipeline_results(azure_like) == {"train": None, "decision": None, "registration": None}


# --- layering -----------------------------------------------------------------------------------
def test_no_core_module_imports_the_cli():
    """The CLI sits on top: it imports the core, never the other way round (no import cycles)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n == "visionops.cli" or n.startswith("visionops.cli.") for n in names):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == [], f"core modules import visionops.cli: {offenders}"

"""visionops.session: summaries, and the reuse-or-build rules that let each notebook run alone.

Training, evaluation and registration are replaced by fakes here (the notebook tests run the real
ones); the data set is real (the smoke profile generates in a fraction of a second).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visionops import session
from visionops.errors import ConfigError, ModelNotFoundError
from visionops.evaluation.challenge import EvaluationOutcome
from visionops.evaluation.decision import DecisionRule, decide
from visionops.evaluation.metrics import EvalResult
from visionops.training import TrainResult

SMALL = {"n_train": 4, "n_val": 2, "n_test": 2, "image_size": 64}


# --- summaries ----------------------------------------------------------------------------------
def test_record_and_read_summary(fresh_settings):
    path = session.record_summary(fresh_settings, "01_x", {"version": "abc", "where": Path("/a/b"), "n": 3})
    assert path == fresh_settings.outputs_dir / "notebooks" / "01_x.json"
    doc = session.read_summary(fresh_settings, "01_x")
    assert doc["notebook"] == "01_x" and doc["version"] == "abc" and doc["where"] == "/a/b" and doc["n"] == 3
    assert doc["recorded"]
    session.record_summary(fresh_settings, "01_x", {"version": "def"})  # replaced, not merged
    assert session.read_summary(fresh_settings, "01_x")["version"] == "def"
    assert "n" not in session.read_summary(fresh_settings, "01_x")
    assert sorted(p.name for p in path.parent.iterdir()) == ["01_x.json"]  # no temp files left
    assert session.read_summary(fresh_settings, "nope") is None


def test_session_paths(fresh_settings):
    p = session.session_paths(fresh_settings, "smoke")
    assert p.root == fresh_settings.outputs_dir / "session" / "smoke"
    assert (p.train.name, p.evaluate.name, p.register.name) == ("train", "evaluate", "register")


# --- data -------------------------------------------------------------------------------------
def test_ensure_dataset_builds_once_then_reuses(fresh_settings, monkeypatch):
    from visionops import lifecycle

    assert session.find_dataset(fresh_settings, "smoke", SMALL) is None
    ref = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    assert ref.counts["train"]["images"] == 4 and ref.counts["test"]["images"] == 2
    assert Path(ref.path).is_relative_to(fresh_settings.catalog_dir)

    def no_generation(*a, **k):
        raise AssertionError("the registered version should have been reused")

    monkeypatch.setattr(lifecycle, "prepare_dataset", no_generation)
    assert session.ensure_dataset(fresh_settings, "smoke", SMALL) == ref
    # other knobs, another data set: not a match
    assert session.find_dataset(fresh_settings, "smoke", {**SMALL, "n_train": 5}) is None
    # training knobs do not change the data set
    assert session.find_dataset(fresh_settings, "smoke", {**SMALL, "epochs": 9}) == ref


def test_ensure_dataset_keeps_the_source_in_the_catalog_manifest(fresh_settings):
    from visionops.data.manifest import read_manifest

    ref = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    source = read_manifest(Path(ref.path)).source
    assert source == session.profile_data_source(fresh_settings, "smoke", SMALL)
    assert source["kind"] == "synthetic" and source["spec"]["n_train"] == 4


def test_a_data_set_registered_without_its_source_is_not_reused_but_not_duplicated(fresh_settings):
    """`visionops run` registers without the source; ensure_dataset regenerates and gets the same version."""
    from visionops.lifecycle import prepare_dataset
    from visionops.workspace import get_workspace

    ws = get_workspace(fresh_settings)
    plain = ws.register_dataset(prepare_dataset(fresh_settings, "smoke", knobs=SMALL), fresh_settings.dataset_name)
    ref = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    assert ref.version == plain.version
    assert [r.version for r in ws.list_datasets()] == [plain.version]


def test_unknown_knob_is_refused(fresh_settings):
    with pytest.raises(ConfigError, match="unknown profile knob"):
        session.ensure_dataset(fresh_settings, "smoke", {"epoch": 3})


# --- training -------------------------------------------------------------------------------------
@pytest.fixture
def fake_train(monkeypatch):
    """Replace the pipeline's train step: writes train_result.json and weights like the real one."""
    from visionops.pipeline import steps

    calls: list[dict] = []

    def train_step(data, out, settings, *, profile, knobs=None):
        calls.append({"data": Path(data), "profile": profile, "knobs": dict(knobs or {})})
        out = Path(out)
        (out / "weights").mkdir(parents=True, exist_ok=True)
        (out / "weights" / "best.pt").write_bytes(b"weights")
        result = TrainResult(
            run_id=f"run{len(calls)}", experiment_id="1", weights=out / "weights" / "best.pt", save_dir=out,
            metrics={"map50_95": 0.5}, epochs=2, duration_s=1.0, device="cpu", threads=1,
            dataset_name="shapes", dataset_version="v", classes=["circle"],
        )
        (out / steps.TRAIN_JSON).write_text(result.model_dump_json())
        return result

    monkeypatch.setattr(steps, "train_step", train_step)
    return calls


def test_ensure_trained_reuses_only_the_same_request(fresh_settings, fake_train):
    ds = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    first = session.ensure_trained(fresh_settings, "smoke", ds, SMALL)
    assert first.run_id == "run1" and len(fake_train) == 1
    assert fake_train[0]["knobs"] == {}  # data knobs are not training knobs
    assert fake_train[0]["data"] == Path(ds.path)
    assert session.ensure_trained(fresh_settings, "smoke", ds, SMALL).run_id == "run1"
    assert len(fake_train) == 1
    request = json.loads((session.session_paths(fresh_settings, "smoke").train / "request.json").read_text())
    assert request["dataset"] == f"{ds.name}:{ds.version}" and request["train"]["epochs"] == 2
    # a different schedule is another training
    assert session.ensure_trained(fresh_settings, "smoke", ds, {"epochs": 3}).run_id == "run2"
    assert fake_train[-1]["knobs"] == {"epochs": 3}
    # reuse=False always trains
    assert session.ensure_trained(fresh_settings, "smoke", ds, {"epochs": 3}, reuse=False).run_id == "run3"
    # weights gone: not reusable
    (session.session_paths(fresh_settings, "smoke").train / "weights" / "best.pt").unlink()
    assert session.ensure_trained(fresh_settings, "smoke", ds, {"epochs": 3}).run_id == "run4"


def test_a_failed_training_is_not_reusable(fresh_settings, fake_train, monkeypatch):
    from visionops.pipeline import steps

    ds = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    session.ensure_trained(fresh_settings, "smoke", ds)

    def broken(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(steps, "train_step", broken)
    with pytest.raises(RuntimeError):
        session.ensure_trained(fresh_settings, "smoke", ds, reuse=False)
    assert session.find_training(fresh_settings, "smoke", ds) is None


# --- evaluation and champion ----------------------------------------------------------------------
def _outcome(train_run_id: str, promote: bool) -> EvaluationOutcome:
    result = EvalResult(weights=Path("w.pt"), dataset_name="shapes", dataset_version="v", split="test", imgsz=64,
                        metrics={"map50_95": 0.5 if promote else 0.1}, per_class=[], plots={}, save_dir=Path("."),
                        speed_ms={})
    decision = decide(result.metrics, None, DecisionRule(floor=0.3))
    return EvaluationOutcome(challenger=result, champion=None, champion_version=None, decision=decision,
                             evaluation_run_id="ev1", train_run_id=train_run_id, decision_path=Path("d.json"))


@pytest.fixture
def fake_evaluate(monkeypatch):
    from visionops.pipeline import steps

    calls: list[dict] = []
    state = {"promote": True}

    def evaluate_step(model, data, out, settings, *, rule):
        trained = TrainResult.model_validate_json((Path(model) / steps.TRAIN_JSON).read_text())
        calls.append({"rule": rule, "train_run_id": trained.run_id})
        outcome = _outcome(trained.run_id, state["promote"])
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / steps.EVALUATION_JSON).write_text(outcome.model_dump_json())
        return outcome

    monkeypatch.setattr(steps, "evaluate_step", evaluate_step)
    return calls, state


def test_ensure_evaluated_reuses_the_evaluation_of_the_same_training(fresh_settings, fake_train, fake_evaluate):
    calls, _ = fake_evaluate
    ds = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    trained = session.ensure_trained(fresh_settings, "smoke", ds)
    first = session.ensure_evaluated(fresh_settings, "smoke", ds, trained, {"floor": 0.2})
    assert first.train_run_id == trained.run_id and calls[0]["rule"].floor == 0.2
    assert session.ensure_evaluated(fresh_settings, "smoke", ds, trained).evaluation_run_id == "ev1"
    assert len(calls) == 1
    retrained = session.ensure_trained(fresh_settings, "smoke", ds, reuse=False)
    session.ensure_evaluated(fresh_settings, "smoke", ds, retrained)
    assert [c["train_run_id"] for c in calls] == [trained.run_id, retrained.run_id]


def test_ensure_champion_returns_the_registry_champion_without_building(fresh_settings, monkeypatch):
    from visionops import registry

    champion = object()
    monkeypatch.setattr(registry, "get_champion", lambda settings, name=None: champion)
    monkeypatch.setattr(session, "ensure_dataset", lambda *a, **k: pytest.fail("must not build"))
    assert session.ensure_champion(fresh_settings, "smoke") is champion


def test_ensure_champion_builds_and_registers(fresh_settings, fake_train, fake_evaluate, monkeypatch):
    from visionops import registry
    from visionops.pipeline import steps
    from visionops.pipeline.steps import RegistrationResult

    registered: list[tuple] = []
    champion = object()
    monkeypatch.setattr(registry, "get_champion", lambda settings, name=None: None)
    monkeypatch.setattr(registry, "require_champion", lambda settings, name=None: champion)

    def register_step(model, evaluation, out, settings):
        outcome = EvaluationOutcome.model_validate_json((Path(evaluation) / steps.EVALUATION_JSON).read_text())
        registered.append((Path(model).name, Path(evaluation).name, Path(out).name))
        return RegistrationResult(registered=outcome.decision.promote, reason=outcome.decision.reason,
                                  model_name="m", version="1" if outcome.decision.promote else None)

    monkeypatch.setattr(steps, "register_step", register_step)
    assert session.ensure_champion(fresh_settings, "smoke", SMALL) is champion
    assert registered == [("train", "evaluate", "register")]
    assert len(fake_train) == 1

    # not promoted: a clear error with the decision's reason
    fake_evaluate[1]["promote"] = False
    session.ensure_trained(fresh_settings, "smoke", session.ensure_dataset(fresh_settings, "smoke", SMALL),
                           SMALL, reuse=False)
    with pytest.raises(ModelNotFoundError, match="misses the floor"):
        session.ensure_champion(fresh_settings, "smoke", SMALL)


# --- data set folders, champion's data, pipeline results ------------------------------------------
def test_local_path_of_local_and_cloud_refs(fresh_settings):
    ref = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    assert session.local_path(fresh_settings, ref) == Path(ref.path)
    cloud = ref.model_copy(update={"path": "azureml://subscriptions/x/datastores/y/paths/shapes", "backend": "azure"})
    assert session.local_path(fresh_settings, cloud) == Path(ref.path)  # the catalog's copy of that version
    from visionops.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError):
        session.local_path(fresh_settings, cloud.model_copy(update={"version": "nope"}))


def test_champion_dataset(fresh_settings):
    from visionops.registry import ModelVersionRef

    ref = session.ensure_dataset(fresh_settings, "smoke", SMALL)
    champ = ModelVersionRef(name="m", version="1", run_id="r", source="s", created=0,
                            tags={"dataset.name": ref.name, "dataset.version": ref.version})
    assert session.champion_dataset(fresh_settings, champ) == Path(ref.path)
    with pytest.raises(ModelNotFoundError, match="no dataset.name"):
        session.champion_dataset(fresh_settings, champ.model_copy(update={"tags": {}}))


def test_pipeline_results(tmp_path):
    from types import SimpleNamespace

    for folder, name, doc in (("model", "train_result.json", {"run_id": "r1"}),
                              ("evaluation", "decision.json", {"outcome": "promote"}),
                              ("registration", "registration.json", {"registered": True, "version": "2"})):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(json.dumps(doc))
    run = SimpleNamespace(outputs={k: str(tmp_path / k) for k in ("model", "evaluation", "registration")})
    assert session.pipeline_results(run) == {
        "train": {"run_id": "r1"}, "decision": {"outcome": "promote"}, "registration": {"registered": True,
                                                                                       "version": "2"}}
    azure_like = SimpleNamespace(outputs={"model": "azureml://jobs/x/outputs/model"})
    assert session.pipeline_results(azure_like) == {"train": None, "decision": None, "registration": None}

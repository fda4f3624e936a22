"""No silent comparison across label sets, through the real gate: evaluate_challenger + registry.

Two tiny synthetic data sets with different class lists, one one-epoch model on each, in a
project root of their own (own MLflow store, own catalog). The first becomes the champion of
`shapes-detector`; the second, scored against it, must be rejected with a decision that names
both class lists and says to use a new model name, and the registry must refuse it under that
name even with a hand-made promote decision. Under a new model name it is judged on the floor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHAMPION_CLASSES = ["circle", "rectangle"]
OTHER_CLASSES = ["cross", "triangle"]
# Tiny and fast: 16 small images per data set, one epoch. The models need not detect anything:
# the rule under test is about class lists, and the floor is 0 so the first model is promoted.
CHAMPION_NAME = "shapes-detector"
TINY = {"n_train": 16, "n_val": 4, "n_test": 4, "image_size": 64, "max_objects": 2, "epochs": 1, "imgsz": 64,
        "batch": 8, "floor": 0.0}


@dataclass
class Trained:
    dataset: object  # DatasetRef
    weights: Path
    run_id: str


@dataclass
class World:
    settings: object
    rule: object  # DecisionRule
    champion: Trained
    other: Trained
    champion_version: str


def _train(settings, name: str, classes: list[str]) -> Trained:
    from visionops.data.catalog import LocalDatasetCatalog
    from visionops.data.dataset import generate_synthetic
    from visionops.profiles import get_profile
    from visionops.training import train

    profile = get_profile("smoke", **TINY, classes=classes)
    folder = generate_synthetic(profile.data, settings.data_dir / "work" / name, name)
    dataset = LocalDatasetCatalog(settings.catalog_dir).register(folder, name)
    assert dataset.classes == classes
    result = train(dataset, profile.train, settings, profile=f"classes-{name}")
    return Trained(dataset=dataset, weights=Path(result.weights), run_id=result.run_id)


def _register(settings, trained: Trained, decision, name: str = CHAMPION_NAME):
    from visionops import registry

    ds = trained.dataset
    return registry.register(
        settings, decision=decision, weights=trained.weights, train_run_id=trained.run_id,
        tags={"dataset.name": ds.name, "dataset.version": ds.version},
        info={"classes": ds.classes, "dataset": f"{ds.name}:{ds.version}"},
        name=name,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from visionops.evaluation.challenge import evaluate_challenger
    from visionops.profiles import get_profile
    from visionops.settings import get_settings

    settings = get_settings(root=tmp_path_factory.mktemp("challenge-classes"), threads=1)
    rule = get_profile("smoke", floor=0.0).decision
    champion = _train(settings, "shapes", CHAMPION_CLASSES)
    other = _train(settings, "signs", OTHER_CLASSES)
    first = evaluate_challenger(champion.weights, champion.dataset, settings, rule, train_run_id=champion.run_id,
                                out_dir=settings.outputs_dir / "eval-first", model_name=CHAMPION_NAME)
    assert first.decision.outcome == "promote" and first.champion is None
    ref = _register(settings, champion, first.decision)
    return World(settings=settings, rule=rule, champion=champion, other=other, champion_version=ref.version)


def test_registered_version_records_its_class_list(world):
    from visionops import registry

    ref = registry.require_champion(world.settings, CHAMPION_NAME)
    assert json.loads(ref.tags[registry.CLASSES_TAG]) == CHAMPION_CLASSES
    assert ref.tags[registry.CLASSES_COUNT_TAG] == "2"
    assert ref.tags[registry.CLASSES_HASH_TAG] == registry.classes_digest(CHAMPION_CLASSES)
    assert registry.classes_digest(CHAMPION_CLASSES) != registry.classes_digest(CHAMPION_CLASSES[::-1])
    assert registry.version_classes(world.settings, ref) == CHAMPION_CLASSES
    # a version without the tags (registered before they existed): model_info.json still says
    bare = ref.model_copy(update={"tags": {k: v for k, v in ref.tags.items() if not k.startswith("classes")}})
    assert registry.version_classes(world.settings, bare) == CHAMPION_CLASSES


def test_challenger_of_another_class_list_is_rejected_explicitly(world, tmp_path):
    from visionops import registry
    from visionops.evaluation.challenge import evaluate_challenger

    out = evaluate_challenger(world.other.weights, world.other.dataset, world.settings, world.rule,
                              train_run_id=world.other.run_id, out_dir=tmp_path / "eval",
                              model_name=CHAMPION_NAME)
    d = out.decision
    assert d.outcome == "reject" and d.class_list_differs
    assert out.champion is None, "a champion of another label set must not be re-scored"
    assert out.champion_version == world.champion_version
    doc = json.loads((tmp_path / "eval" / "decision.json").read_text())
    assert doc["outcome"] == "reject" and doc["class_list_differs"] is True
    assert doc["challenger_classes"] == OTHER_CLASSES and doc["champion_classes"] == CHAMPION_CLASSES
    assert doc["champion"] is None and doc["model_name"] == CHAMPION_NAME
    for text in ("class list differs", "[circle, rectangle]", "[cross, triangle]", "new model name",
                 "'signs-detector'"):
        assert text in doc["reason"], text
    with pytest.raises(registry.RegistrationRefused, match="class list differs"):
        _register(world.settings, world.other, d)
    assert registry.require_champion(world.settings, CHAMPION_NAME).version == world.champion_version


def test_registry_refuses_another_class_list_even_with_a_promote_decision(world):
    """The last gate: a hand-made floor decision cannot replace the champion's label set either."""
    from visionops import registry
    from visionops.evaluation.decision import decide

    before = [v.version for v in registry.list_versions(world.settings, CHAMPION_NAME)]
    forged = decide({"map50_95": 1.0}, None, world.rule)
    assert forged.promote
    with pytest.raises(registry.RegistrationRefused, match=r"\[circle, rectangle\].*\[cross, triangle\]"):
        _register(world.settings, world.other, forged)
    assert [v.version for v in registry.list_versions(world.settings, CHAMPION_NAME)] == before
    assert registry.require_champion(world.settings, CHAMPION_NAME).version == world.champion_version


def test_same_class_list_is_still_compared_with_the_champion(world, tmp_path):
    from visionops.evaluation.challenge import evaluate_challenger

    out = evaluate_challenger(world.champion.weights, world.champion.dataset, world.settings, world.rule,
                              out_dir=tmp_path / "eval", model_name=CHAMPION_NAME)
    assert not out.decision.class_list_differs
    assert out.champion is not None and out.decision.champion is not None  # re-scored on the same split
    assert out.decision.outcome == "reject" and "tie" in out.decision.reason  # the same weights: a tie


def test_another_class_list_under_a_new_model_name_is_judged_on_the_floor(world, tmp_path):
    from visionops import registry
    from visionops.evaluation.challenge import evaluate_challenger

    out = evaluate_challenger(world.other.weights, world.other.dataset, world.settings, world.rule,
                              train_run_id=world.other.run_id, out_dir=tmp_path / "eval", model_name="signs-detector")
    assert out.decision.outcome == "promote" and "no champion yet" in out.decision.reason
    assert out.champion_version is None and not out.decision.class_list_differs
    ref = _register(world.settings, world.other, out.decision, name="signs-detector")
    assert ref.is_production and json.loads(ref.tags[registry.CLASSES_TAG]) == OTHER_CLASSES
    # the other name's champion is untouched
    assert registry.require_champion(world.settings, CHAMPION_NAME).version == world.champion_version

"""The champion/challenger rule as a table: direction, minimum gain, ties, the floor."""

from __future__ import annotations

import pytest

from visionops.evaluation.decision import DecisionRule, decide

MAX = DecisionRule(metric="map50_95", direction="maximize", min_gain=0.01, floor=0.5)
MIN = DecisionRule(metric="val_loss", direction="minimize", min_gain=0.01, floor=1.0)


@pytest.mark.parametrize(
    ("rule", "challenger", "champion", "outcome", "why"),
    [
        # maximize: higher is better
        (MAX, 0.70, 0.60, "promote", "better by 0.1000"),
        (MAX, 0.61, 0.60, "promote", "better by 0.0100"),  # exactly the minimum gain
        (MAX, 0.605, 0.60, "reject", "less than the minimum gain"),
        (MAX, 0.60, 0.60, "reject", "tie"),
        (MAX, 0.55, 0.60, "reject", "worse than the champion"),
        # minimize: lower is better, same gain semantics
        (MIN, 0.40, 0.50, "promote", "better by 0.1000"),
        (MIN, 0.495, 0.50, "reject", "less than the minimum gain"),
        (MIN, 0.50, 0.50, "reject", "tie"),
        (MIN, 0.60, 0.50, "reject", "worse than the champion"),
        # no champion: the floor decides, inclusive
        (MAX, 0.50, None, "promote", "clears the floor"),
        (MAX, 0.49, None, "reject", "misses the floor"),
        (MIN, 1.00, None, "promote", "clears the floor"),
        (MIN, 1.20, None, "reject", "misses the floor"),
    ],
)
def test_rule_table(rule, challenger, champion, outcome, why):
    champ = None if champion is None else {rule.metric: champion}
    d = decide({rule.metric: challenger, "other": 1.0}, champ, rule)
    assert d.outcome == outcome
    assert why in d.reason
    assert d.promote is (outcome == "promote")
    assert d.challenger == challenger and d.champion == champion
    if champion is not None:
        sign = 1 if rule.direction == "maximize" else -1
        assert d.gain == pytest.approx(sign * (challenger - champion))


def test_tie_never_promotes_even_with_zero_min_gain():
    rule = DecisionRule(min_gain=0.0, floor=0.0)
    assert decide({"map50_95": 0.3}, {"map50_95": 0.3}, rule).outcome == "reject"
    assert decide({"map50_95": 0.3000001}, {"map50_95": 0.3}, rule).outcome == "promote"


def test_float_dust_does_not_flip_an_exact_minimum_gain():
    rule = DecisionRule(min_gain=0.05, floor=0.0)
    assert decide({"map50_95": 0.30}, {"map50_95": 0.25}, rule).outcome == "promote"  # 0.30-0.25 = 0.04999...


def test_missing_metric_names_the_metric():
    with pytest.raises(KeyError, match="map50_95"):
        decide({"map50": 0.5}, None, DecisionRule())
    with pytest.raises(KeyError, match="champion metrics"):
        decide({"map50_95": 0.5}, {"map50": 0.5}, DecisionRule())


def test_versions_are_recorded():
    d = decide({"map50_95": 0.7}, {"map50_95": 0.6}, MAX, challenger_version="2", champion_version="1")
    assert (d.challenger_version, d.champion_version) == ("2", "1")
    assert d.model_dump()["outcome"] == "promote"


# --- label sets: a challenger is compared only with a champion of the same ordered class list ---


def test_other_class_list_rejects_whatever_the_numbers_and_names_both_lists():
    d = decide(
        {"map50_95": 0.95}, {"map50_95": 0.10}, DecisionRule(floor=0.0),
        challenger_classes=["cat", "dog"], champion_classes=["circle", "rectangle", "triangle"],
        champion_version="3", model_name="shapes-detector",
    )
    assert d.outcome == "reject" and not d.promote
    assert d.class_list_differs
    assert d.reason.startswith("class list differs")
    assert "[circle, rectangle, triangle]" in d.reason and "[cat, dog]" in d.reason
    assert "'shapes-detector'" in d.reason and "v3" in d.reason
    assert "new model name" in d.reason
    assert "adds [cat, dog]" in d.reason and "drops [circle, rectangle, triangle]" in d.reason
    # not compared: no champion number, no gain; the full lists are in the record
    assert d.champion is None and d.gain is None
    assert d.challenger_classes == ["cat", "dog"] and d.champion_classes == ["circle", "rectangle", "triangle"]


def test_other_class_list_rejects_even_without_champion_metrics():
    """evaluate_challenger does not re-score a champion of another label set: champion=None here."""
    d = decide({"map50_95": 0.9}, None, DecisionRule(floor=0.0), challenger_classes=["a"], champion_classes=["b"])
    assert d.outcome == "reject" and d.class_list_differs and "floor" not in d.reason


def test_same_names_in_another_order_is_another_class_list():
    d = decide({"map50_95": 0.9}, {"map50_95": 0.1}, DecisionRule(),
               challenger_classes=["dog", "cat"], champion_classes=["cat", "dog"])
    assert d.outcome == "reject" and d.class_list_differs
    assert "another order" in d.reason


def test_same_class_list_compares_as_before():
    classes = ["circle", "rectangle"]
    d = decide({"map50_95": 0.7}, {"map50_95": 0.6}, MAX, challenger_classes=classes, champion_classes=list(classes))
    assert d.outcome == "promote" and not d.class_list_differs and "better by 0.1000" in d.reason
    assert d.challenger_classes == d.champion_classes == classes


def test_no_champion_keeps_the_floor_rule_and_records_the_challenger_classes():
    d = decide({"map50_95": 0.6}, None, MAX, challenger_classes=["cat"])
    assert d.outcome == "promote" and "clears the floor" in d.reason
    assert d.challenger_classes == ["cat"] and d.champion_classes is None and not d.class_list_differs


def test_long_class_lists_are_shortened_in_the_reason():
    coco80 = [f"class{i:02d}" for i in range(80)]
    d = decide({"map50_95": 0.5}, None, MAX, challenger_classes=coco80[:79], champion_classes=coco80)
    assert "+74 more, 80 in all" in d.reason and "+73 more, 79 in all" in d.reason
    assert "drops [class79]" in d.reason and "adds" not in d.reason
    assert len(d.reason) < 600
    assert d.champion_classes == coco80  # the record keeps the full list
